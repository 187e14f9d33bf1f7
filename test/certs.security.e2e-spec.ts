import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RunningApi, startApi } from './support/app';
import { call } from './support/http';
import { appManagerToken, operatorToken, vaultToken } from './support/keys';
import { rootVault, uniqueId } from './support/stack';

/**
 * Security properties of the certificate endpoints: object-level authorization
 * per app, CSR key strength and subject rules, and input that must never
 * produce a 500.
 */

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-certs-sec-'));
function csrOf(key: KeyObject, subj: string): string {
  const keyFile = path.join(dir, `${uniqueId('k')}.pem`);
  fs.writeFileSync(keyFile, key.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  return execFileSync('openssl', ['req', '-new', '-key', keyFile, '-subj', subj], { encoding: 'utf8' });
}

describe('certificate endpoints: security', () => {
  let api: RunningApi;
  let url: string;
  let op: string;

  beforeAll(async () => {
    [api, { token: op }] = await Promise.all([startApi(), operatorToken()]);
    url = api.url;
  });
  afterAll(async () => {
    await api?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('an app manager can never touch another app\'s certificates, on any endpoint', async () => {
    const a = uniqueId('app');
    const b = uniqueId('app');
    const [{ token: ta }, { token: tb }] = await Promise.all([appManagerToken(a), appManagerToken(b)]);
    const mine = await call(url, 'POST', '/v1/certs', { token: ta, body: { appId: a, commonName: `${a}-svc`, ttl: '1h' } });
    expect(mine.status).toBe(201);
    const theirs = await call(url, 'POST', '/v1/certs', { token: tb, body: { appId: b, commonName: `${b}-svc`, ttl: '1h' } });
    expect(theirs.status).toBe(201);
    const s = theirs.body.serial as string;
    const plain = s.replace(/:/g, '');

    const attempts: Array<[string, string, unknown?]> = [
      ['POST', '/v1/certs', { appId: b, commonName: `${b}-evil`, ttl: '1h' }],
      ['GET', `/v1/certs?appId=${b}`],
      ['GET', '/v1/certs'], // every app
      ['GET', `/v1/certs/${s}`],
      ['GET', `/v1/certs/${plain}`],
      ['POST', `/v1/certs/${s}/renew`, {}],
      ['POST', `/v1/certs/${plain}/renew`, { grace: '0s' }],
      ['DELETE', `/v1/certs/${s}`],
      ['DELETE', `/v1/certs/${plain}`],
    ];
    for (const [method, p, body] of attempts) {
      const res = await call(url, method, p, { token: ta, body });
      expect({ method, p, status: res.status, code: res.body?.error?.code }).toEqual({ method, p, status: 403, code: 'FORBIDDEN' });
    }
    // Nothing happened to B's certificate.
    expect((await rootVault().pkiReadCert('pki_latchkey', s))?.revocation_time).toBe(0);
    const list = await call(url, 'GET', `/v1/certs?appId=${b}`, { token: tb });
    expect(list.body.items.map((i: { serial: string }) => i.serial)).toEqual([s]);

    // And A's own certificate is fully manageable by A.
    expect((await call(url, 'GET', `/v1/certs/${mine.body.serial}`, { token: ta })).status).toBe(200);
    expect((await call(url, 'GET', `/v1/certs?appId=${a}`, { token: ta })).status).toBe(200);
    const renewed = await call(url, 'POST', `/v1/certs/${mine.body.serial}/renew`, { token: ta, body: { grace: '0s' } });
    expect(renewed.status).toBe(201);
    expect((await call(url, 'DELETE', `/v1/certs/${renewed.body.serial}`, { token: ta })).status).toBe(204);

    // No credential, or a token without latchkey policies.
    expect((await call(url, 'GET', `/v1/certs/${s}`)).status).toBe(401);
    expect((await call(url, 'POST', '/v1/certs', { body: { appId: b, commonName: 'x' } })).status).toBe(401);
    const { token: nobody } = await vaultToken(['default']);
    expect((await call(url, 'GET', `/v1/certs/${s}`, { token: nobody })).status).toBe(403);
    expect((await call(url, 'DELETE', `/v1/certs/${s}`, { token: nobody })).status).toBe(403);
  });

  it('a name belongs to the first app that gets a certificate for it', async () => {
    const a = uniqueId('app');
    const b = uniqueId('app');
    // Names that do not contain the owner's app id, so the answer can be checked for not naming the owner.
    const cn = uniqueId('payments');
    const spiffe = `spiffe://example.org/${uniqueId('svc')}/payments`;
    expect((await call(url, 'POST', '/v1/certs', { token: op, body: { appId: a, commonName: cn, uriSans: [spiffe], ttl: '1h' } })).status).toBe(201);
    for (const body of [
      { appId: b, commonName: cn, ttl: '1h' },
      { appId: b, commonName: `${b}-other`, uriSans: [spiffe], ttl: '1h' },
    ]) {
      const res = await call(url, 'POST', '/v1/certs', { token: op, body });
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('POLICY_NOT_ALLOWED');
      expect(res.body.error.message).not.toContain(a);
    }
    // The same app may have more certificates for its name.
    expect((await call(url, 'POST', '/v1/certs', { token: op, body: { appId: a, commonName: cn, ttl: '1h' } })).status).toBe(201);
    // A CSR cannot smuggle the name either.
    const csr = csrOf(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, `/CN=${cn}`);
    expect((await call(url, 'POST', '/v1/certs', { token: op, body: { appId: b, csr, ttl: '1h' } })).status).toBe(403);
  });

  it('names are compared in canonical form: case, dot segments and percent-encoding do not get around an owner', async () => {
    const a = uniqueId('app');
    const b = uniqueId('app');
    const [{ token: ta }, { token: tb }] = await Promise.all([appManagerToken(a), appManagerToken(b)]);
    const cn = uniqueId('payments-api');
    const ns = `spiffe://example.org/${uniqueId('ns')}/prod/sa`;
    const mine = await call(url, 'POST', '/v1/certs', { token: ta, body: { appId: a, commonName: cn, uriSans: [`${ns}/payments`], ttl: '1h' } });
    expect(mine.status).toBe(201);
    for (const body of [
      { appId: b, commonName: cn.toUpperCase(), ttl: '1h' },
      { appId: b, commonName: `${b}-x`, uriSans: [`${ns}/x/../payments`], ttl: '1h' },
      { appId: b, commonName: `${b}-y`, uriSans: [`${ns}/p%61yments`], ttl: '1h' },
      { appId: b, commonName: `${b}-z`, uriSans: [`${ns}/%2e/payments`], ttl: '1h' },
    ]) {
      const res = await call(url, 'POST', '/v1/certs', { token: tb, body });
      expect({ body, status: res.status, code: res.body.error?.code }).toEqual({ body, status: 403, code: 'POLICY_NOT_ALLOWED' });
    }
    // Nor through a CSR's CN.
    const csr = csrOf(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, `/CN=${cn.toUpperCase()}`);
    expect((await call(url, 'POST', '/v1/certs', { token: tb, body: { appId: b, csr, ttl: '1h' } })).status).toBe(403);
    // The certificate carries the canonical form, so what was claimed is what a relying party sees.
    const again = await call(url, 'POST', '/v1/certs', { token: ta, body: { appId: a, commonName: cn, uriSans: [`${ns}/x/../p%61yments`], ttl: '1h' } });
    expect(again.status).toBe(201);
    expect(again.body.uriSans).toEqual([`${ns}/payments`]);
  });

  it('input Vault fails on after signing is a 400, not a 503', async () => {
    const appId = uniqueId('app');
    for (const u of ['spiffe://example.org./x', 'spiffe://example..org/x', 'spiffe://.example.org/x']) {
      const res = await call(url, 'POST', '/v1/certs', { token: op, body: { appId, commonName: `${appId}-dot`, uriSans: [u], ttl: '1h' } });
      expect({ u, status: res.status, code: res.body.error?.code, retry: res.headers.get('retry-after') }).toEqual({ u, status: 400, code: 'VALIDATION_FAILED', retry: null });
    }
    for (const commonName of [`${appId}.`, `${appId}..x`]) {
      const res = await call(url, 'POST', '/v1/certs', { token: op, body: { appId, commonName, ttl: '1h' } });
      expect({ commonName, status: res.status, code: res.body.error?.code }).toEqual({ commonName, status: 400, code: 'VALIDATION_FAILED' });
    }
    const zone = await call(url, 'POST', '/v1/certs', { token: op, body: { appId, commonName: `${appId}-ip`, ipSans: ['fe80::1%eth0'], ttl: '1h' } });
    expect({ status: zone.status, code: zone.body.error?.code }).toEqual({ status: 400, code: 'VALIDATION_FAILED' });
  });

  it('a failed issue does not keep the name: another app can take it right after', async () => {
    const a = uniqueId('app');
    const b = uniqueId('app');
    const cn = uniqueId('orders');
    const spiffe = `spiffe://example.org/${uniqueId('svc')}/orders`;
    // A CSR whose signature does not verify: latchkey's own checks pass, Vault refuses it after the names were claimed.
    const der = Buffer.from(csrOf(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, `/CN=${cn}`).replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5] ^= 0x01;
    const broken = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    const failed = await call(url, 'POST', '/v1/certs', { token: op, body: { appId: b, csr: broken, uriSans: [spiffe], ttl: '1h' } });
    expect(failed.status).toBe(400);
    expect(failed.body.error.message).toMatch(/signature/);
    const res = await call(url, 'POST', '/v1/certs', { token: op, body: { appId: a, commonName: cn, uriSans: [spiffe], ttl: '1h' } });
    expect(res.status).toBe(201);
  });

  it('rejects CSRs with weak or unsupported keys, mismatched or missing CNs, and garbage — before Vault signs anything', async () => {
    const appId = uniqueId('app');
    const before = (await rootVault().pkiListCerts('pki_latchkey')).length;
    const cases: Array<[string, string, Record<string, unknown>, RegExp]> = [
      ['RSA 1024', csrOf(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey, `/CN=${appId}-a`), {}, /at least 2048/],
      // OpenBao itself would sign this one: latchkey's own check is what refuses it.
      ['EC P-224', csrOf(generateKeyPairSync('ec', { namedCurve: 'secp224r1' }).privateKey, `/CN=${appId}-b`), {}, /P-256, P-384 or P-521/],
      ['EC secp256k1', csrOf(generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey, `/CN=${appId}-c`), {}, /P-256/],
      ['CN mismatch', csrOf(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, `/CN=${appId}-d`), { commonName: `${appId}-other` }, /differs from commonName/],
      ['two CNs', csrOf(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, `/CN=${appId}-e/CN=${appId}-f`), {}, /exactly one CN/],
      ['no CN', csrOf(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, '/O=nobody'), {}, /exactly one CN/],
      ['bad CN', csrOf(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, '/CN=*.example.com'), {}, /commonName must be/],
      ['garbage', '-----BEGIN CERTIFICATE REQUEST-----\nMIIBAAAA\n-----END CERTIFICATE REQUEST-----', {}, /csr:/],
      ['not PEM', 'hello', {}, /csr:/],
    ];
    for (const [name, csr, extra, re] of cases) {
      const res = await call(url, 'POST', '/v1/certs', { token: op, body: { appId, csr, ttl: '1h', ...extra } });
      expect({ name, status: res.status, code: res.body.error?.code }).toEqual({ name, status: 400, code: 'VALIDATION_FAILED' });
      expect(res.body.error.message).toMatch(re);
    }
    expect((await rootVault().pkiListCerts('pki_latchkey')).length).toBe(before);

    for (const [name, key] of [
      ['RSA 2048', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey],
      ['EC P-521', generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey],
      ['Ed25519', generateKeyPairSync('ed25519').privateKey],
    ] as Array<[string, KeyObject]>) {
      const res = await call(url, 'POST', '/v1/certs', { token: op, body: { appId, csr: csrOf(key, `/CN=${appId}-${name.replace(/\W/g, '')}`), ttl: '1h' } });
      expect({ name, status: res.status }).toEqual({ name, status: 201 });
      expect(res.body.privateKey).toBeUndefined();
    }
  });

  it('validates subjects, SANs and TTLs, and never answers 500 to what a client sent', async () => {
    const appId = uniqueId('app');
    const bad: Array<Record<string, unknown>> = [
      { appId, commonName: `${appId}-x`, uriSans: ['urn:latchkey:app:someone-else'] },
      { appId, commonName: `${appId}-x`, uriSans: ['URN:LATCHKEY:app:x'] },
      { appId, commonName: `${appId}-x`, uriSans: ['https://example.org/x'] },
      { appId, commonName: `${appId}-x`, uriSans: ['spiffe://example.org/a,b'] },
      { appId, commonName: `${appId}-x`, ipSans: ['10.0.0.300'] },
      { appId, commonName: `${appId}-x`, ttl: '721h' },
      { appId, commonName: `${appId}-x`, ttl: 'forever' },
      { appId, commonName: '*.wildcard' },
      { appId, commonName: 'x'.repeat(65) },
      { appId },
      { appId: 'Bad App', commonName: 'x' },
      { appId, commonName: `${appId}-x`, unknown: true },
      { appId, commonName: `${appId}-x`, csr: 42 },
      { appId, commonName: `${appId}-x`, autoRenew: 'yes' },
    ];
    for (const body of bad) {
      const res = await call(url, 'POST', '/v1/certs', { token: op, body });
      expect({ body, status: res.status }).toEqual({ body, status: 400 });
    }
    expect((await call(url, 'POST', '/v1/certs', { token: op, body: { appId, commonName: `${appId}-max`, ttl: '720h' } })).status).toBe(201);

    // Serials: unknown, garbage, path tricks, non-latchkey certificates of the same mount — all "not found".
    const direct = await rootVault().pkiIssue('pki_latchkey', 'latchkey-client', { common_name: 'direct-issue', ttl: '1h' });
    for (const s of ['00:11:22:33', 'zz', '..%2F..%2Fsys%2Fhealth', 'a'.repeat(120), direct.serial_number, direct.serial_number.replace(/:/g, '')]) {
      for (const [method, suffix] of [['GET', ''], ['DELETE', ''], ['POST', '/renew']] as const) {
        const res = await call(url, method, `/v1/certs/${s}${suffix}`, { token: op, body: method === 'POST' ? {} : undefined });
        expect({ s, method, status: res.status }).toEqual({ s, method, status: 404 });
      }
    }
    expect((await rootVault().pkiReadCert('pki_latchkey', direct.serial_number))?.revocation_time).toBe(0);

    // Bad cursors and limits.
    expect((await call(url, 'GET', `/v1/certs?appId=${appId}&cursor=bm9wZQ`, { token: op })).status).toBe(400);
    expect((await call(url, 'GET', `/v1/certs?appId=${appId}&limit=0`, { token: op })).status).toBe(400);
    expect((await call(url, 'GET', `/v1/certs?appId=${appId}&limit=501`, { token: op })).status).toBe(400);

    // Renew input.
    const c = await call(url, 'POST', '/v1/certs', { token: op, body: { appId, commonName: `${appId}-r`, ttl: '1h' } });
    expect((await call(url, 'POST', `/v1/certs/${c.body.serial}/renew`, { token: op, body: { grace: 'soon' } })).status).toBe(400);
    expect((await call(url, 'POST', `/v1/certs/${c.body.serial}/renew`, { token: op, body: { ttl: '9999h' } })).status).toBe(400);

    // Verify: random and hostile input is a verdict or a 400, never a 500.
    const hostile = [
      { certificate: '' },
      { certificate: '-----BEGIN CERTIFICATE-----\n' + 'A'.repeat(20000) + '\n-----END CERTIFICATE-----' },
      { xfcc: 'Cert="' + '%'.repeat(100) + '"' },
      { xfcc: ','.repeat(50) },
      { xfcc: 'By=' + '"'.repeat(20) },
      { xfcc: 'Cert=' + encodeURIComponent('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----') },
      { xfcc: 42 },
      { certificate: ['a'] },
    ];
    for (const body of hostile) {
      const res = await call(url, 'POST', '/v1/certs/verify', { body });
      expect(res.status === 200 || res.status === 400).toBe(true);
      if (res.status === 200) expect(res.body.valid).toBe(false);
    }
    const chars = ['a', '=', ';', ',', '"', '\\', ' ', '%', 'Cert', 'By', 'Hash', '%0A', 'URI'];
    for (let i = 0; i < 50; i++) {
      const xfcc = Array.from({ length: 1 + (i % 15) }, () => chars[Math.floor(Math.random() * chars.length)]).join('');
      const res = await call(url, 'POST', '/v1/certs/verify', { body: { xfcc } });
      expect([200, 400]).toContain(res.status);
    }
  });
});

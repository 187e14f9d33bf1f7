import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { encodeKey } from '@latchkey/keys';
import { RunningApi, startApi } from './support/app';
import { call } from './support/http';
import { createProfile, operatorToken } from './support/keys';
import { rootVault, uniqueId } from './support/stack';
import { MtlsApi, startMtlsApi } from './support/tls';

/** Forward auth with exact headers. */
function forwardAuth(url: string, headers: http.OutgoingHttpHeaders): Promise<{ status: number; code?: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: '/v1/auth', headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: res.headers['x-latchkey-code'] as string | undefined }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('API key bound to a client certificate', () => {
  let api: RunningApi;
  let proxied: RunningApi;
  let hops: RunningApi;
  let hopsListed: RunningApi;
  let op: string;
  let profile: string;

  beforeAll(async () => {
    [api, proxied, hops, hopsListed, { token: op }] = await Promise.all([
      startApi(),
      startApi({ LATCHKEY_TRUST_PROXY: '127.0.0.1', LATCHKEY_CERT_HEADER: 'x-client-cert' }),
      startApi({ LATCHKEY_TRUST_PROXY: '1', LATCHKEY_CERT_HEADER: 'x-forwarded-client-cert' }),
      startApi({ LATCHKEY_TRUST_PROXY: '1', LATCHKEY_CERT_HEADER_PROXIES: '127.0.0.1', LATCHKEY_CERT_HEADER: 'x-forwarded-client-cert' }),
      operatorToken(),
    ]);
    profile = await createProfile(api.url, op);
  });
  afterAll(async () => {
    await Promise.all([api?.close(), proxied?.close(), hops?.close(), hopsListed?.close()]);
  });

  const issue = async (appId: string, cn: string) => {
    const res = await call(api.url, 'POST', '/v1/certs', { token: op, body: { appId, commonName: cn, ttl: '1h' } });
    if (res.status !== 201) throw new Error(`cert issue failed ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as { serial: string; certificate: string };
  };
  const verify = (body: Record<string, unknown>) => call(api.url, 'POST', '/v1/keys/verify', { body });

  it('is valid only together with its certificate', async () => {
    const appId = uniqueId('app');
    const cert = await issue(appId, uniqueId('svc'));
    const other = await issue(appId, uniqueId('svc'));
    const minted = await call(api.url, 'POST', '/v1/keys', { token: op, body: { appId, profile, name: 'bound', certSerial: cert.serial.replace(/:/g, '').toUpperCase() } });
    expect(minted.status).toBe(201);
    expect(minted.body.certSerial).toBe(cert.serial);
    const key: string = minted.body.key;

    expect((await verify({ key })).body).toMatchObject({ valid: false, code: 'CERT_REQUIRED' });
    expect((await verify({ key, certificate: cert.certificate })).body).toMatchObject({ valid: true, code: 'VALID' });
    expect((await verify({ key, certificate: other.certificate })).body).toMatchObject({ valid: false, code: 'CERT_MISMATCH' });
    const xfcc = `Subject="CN=x";Cert="${encodeURIComponent(cert.certificate)}"`;
    expect((await verify({ key, xfcc })).body.code).toBe('VALID');

    // Rotation keeps the binding.
    const rotated = await call(api.url, 'POST', `/v1/keys/${minted.body.keyId}/rotate`, { token: op, body: { grace: '1m' } });
    expect(rotated.body.certSerial).toBe(cert.serial);
    expect((await verify({ key: rotated.body.key })).body.code).toBe('CERT_REQUIRED');
    expect((await verify({ key: rotated.body.key, certificate: cert.certificate })).body.code).toBe('VALID');

    // A revoked certificate no longer vouches for the key.
    expect((await call(api.url, 'DELETE', `/v1/certs/${cert.serial}`, { token: op })).status).toBe(204);
    expect((await verify({ key, certificate: cert.certificate })).body.code).toBe('CERT_REQUIRED');
  });

  it('refuses to bind a key to a certificate of another app or an unknown serial', async () => {
    const appId = uniqueId('app');
    const foreign = await issue(uniqueId('other'), uniqueId('svc'));
    for (const certSerial of [foreign.serial, 'ab:cd:ef', 'not-hex!']) {
      const res = await call(api.url, 'POST', '/v1/keys', { token: op, body: { appId, profile, name: 'x', certSerial } });
      expect(res.status).toBe(400);
    }
  });

  it('believes certificate headers in forward auth only from a trusted proxy', async () => {
    const appId = uniqueId('app');
    const cert = await issue(appId, uniqueId('svc'));
    const minted = await call(api.url, 'POST', '/v1/keys', { token: op, body: { appId, profile, name: 'fa', certSerial: cert.serial } });
    const key: string = minted.body.key;
    const header = { 'x-api-key': key, 'x-client-cert': encodeURIComponent(cert.certificate) };
    // Untrusted peer: a certificate is public, so the header proves nothing.
    expect(await forwardAuth(api.url, header)).toEqual({ status: 403, code: 'CERT_REQUIRED' });
    expect(await forwardAuth(proxied.url, header)).toEqual({ status: 204, code: undefined });
    // Only the header the proxy sets (LATCHKEY_CERT_HEADER): it passes the client's own copy of any other one on.
    expect(await forwardAuth(proxied.url, { 'x-api-key': key, 'x-forwarded-client-cert': `Cert="${encodeURIComponent(cert.certificate)}"` })).toEqual({ status: 403, code: 'CERT_REQUIRED' });
    expect(await forwardAuth(proxied.url, { 'x-api-key': key })).toEqual({ status: 403, code: 'CERT_REQUIRED' });
  });

  it('ignores certificate headers with a hop-count LATCHKEY_TRUST_PROXY unless the proxies are listed', async () => {
    const appId = uniqueId('app');
    const cert = await issue(appId, uniqueId('svc'));
    const minted = await call(api.url, 'POST', '/v1/keys', { token: op, body: { appId, profile, name: 'hops', certSerial: cert.serial } });
    const key: string = minted.body.key;
    const pem = { 'x-api-key': key, 'x-client-cert': encodeURIComponent(cert.certificate) };
    const xfcc = { 'x-api-key': key, 'x-forwarded-client-cert': `Cert="${encodeURIComponent(cert.certificate)}"` };
    // A hop count says how many proxies to skip, not who they are: any client reaching latchkey could send the header.
    expect(await forwardAuth(hops.url, pem)).toEqual({ status: 403, code: 'CERT_REQUIRED' });
    expect(await forwardAuth(hops.url, xfcc)).toEqual({ status: 403, code: 'CERT_REQUIRED' });
    const warning = /client-certificate headers \(X-Forwarded-Client-Cert, X-Client-Cert\) are ignored/g;
    expect(hops.process.output().match(warning)).toHaveLength(1);
    // With the proxies listed, their header counts again (the one named in LATCHKEY_CERT_HEADER, never the other).
    expect(await forwardAuth(hopsListed.url, xfcc)).toEqual({ status: 204, code: undefined });
    expect(await forwardAuth(hopsListed.url, pem)).toEqual({ status: 403, code: 'CERT_REQUIRED' });
    expect(await forwardAuth(hopsListed.url, { 'x-api-key': key })).toEqual({ status: 403, code: 'CERT_REQUIRED' });
    expect(hopsListed.process.output()).not.toMatch(warning);
  });

  describe('across certificate renewal', () => {
    interface Cert {
      serial: string;
      certificate: string;
      privateKey?: string;
      lineage: string;
      generation: number;
      expiresAt: string;
      previousSerial?: string;
    }
    const issueWith = async (body: Record<string, unknown>): Promise<Cert> => {
      const res = await call(api.url, 'POST', '/v1/certs', { token: op, body: { ttl: '1h', ...body } });
      if (res.status !== 201) throw new Error(`cert issue failed ${res.status} ${JSON.stringify(res.body)}`);
      return res.body as Cert;
    };
    const renew = async (serial: string, grace: string): Promise<Cert> => {
      const res = await call(api.url, 'POST', `/v1/certs/${serial}/renew`, { token: op, body: { grace } });
      if (res.status !== 201) throw new Error(`cert renew failed ${res.status} ${JSON.stringify(res.body)}`);
      return res.body as Cert;
    };
    const code = async (key: string, cert?: Cert) => (await verify({ key, ...(cert ? { certificate: cert.certificate } : {}) })).body.code as string;

    it('keeps a key valid with the renewed certificate (manual renew), never with a predecessor of its own certificate, a separate one of the same name, or a revoked one', async () => {
      const appId = uniqueId('app');
      const cn = uniqueId('svc');
      const selfRenew = await createProfile(api.url, op, { selfService: { renew: true } });
      const first = await issueWith({ appId, commonName: cn });
      expect([first.lineage, first.generation]).toEqual([first.serial, 0]);
      // Same app, same common name, issued separately: a lineage of its own.
      const sameName = await issueWith({ appId, commonName: cn });
      expect(sameName.lineage).toBe(sameName.serial);
      const minted = await call(api.url, 'POST', '/v1/keys', { token: op, body: { appId, profile: selfRenew, name: 'bound', certSerial: first.serial } });
      expect(minted.status).toBe(201);
      const key: string = minted.body.key;

      const second = await renew(first.serial, '10m');
      expect([second.lineage, second.generation, second.previousSerial]).toEqual([first.serial, 1, first.serial]);
      expect(await code(key, second)).toBe('VALID');
      expect((await verify({ key, xfcc: `Cert="${encodeURIComponent(second.certificate)}"` })).body.code).toBe('VALID');
      // The renewed-out certificate is in its grace period: still the key's.
      expect(await code(key, first)).toBe('VALID');
      expect(await code(key, sameName)).toBe('CERT_MISMATCH');
      expect(await code(key)).toBe('CERT_REQUIRED');

      // Bound to the renewal: the renewal and later ones, not its predecessor (which is still valid by itself).
      const toSecond = await call(api.url, 'POST', '/v1/keys', { token: op, body: { appId, profile, name: 'bound-2', certSerial: second.serial } });
      expect(toSecond.status).toBe(201);
      expect(await code(toSecond.body.key, second)).toBe('VALID');
      expect(await code(toSecond.body.key, first)).toBe('CERT_MISMATCH');

      // Renewed without grace: the predecessor is revoked at once and vouches for nothing.
      const third = await renew(second.serial, '0s');
      expect([third.lineage, third.generation]).toEqual([first.serial, 2]);
      expect(await code(key, second)).toBe('CERT_REQUIRED');
      expect(await code(toSecond.body.key, second)).toBe('CERT_REQUIRED');
      expect(await code(key, third)).toBe('VALID');
      expect(await code(toSecond.body.key, third)).toBe('VALID');

      // Forward auth and self-service through a trusted proxy's certificate header hold it the same way.
      const viaProxy = (cert: Cert) => ({ 'x-api-key': key, 'x-client-cert': encodeURIComponent(cert.certificate) });
      expect(await forwardAuth(proxied.url, viaProxy(third))).toEqual({ status: 204, code: undefined });
      expect(await forwardAuth(proxied.url, viaProxy(sameName))).toEqual({ status: 403, code: 'CERT_MISMATCH' });
      const selfRenewWith = (cert: Cert) => call(proxied.url, 'POST', '/v1/keys/self/renew', { bearer: key, headers: { 'x-client-cert': encodeURIComponent(cert.certificate) }, body: { increment: '10m' } });
      expect((await selfRenewWith(third)).status).toBe(200);
      const refused = await selfRenewWith(sameName);
      expect([refused.status, refused.body.error.code]).toEqual([403, 'CERT_MISMATCH']);
    });

    it('treats a key bound by serial before lineages as bound to the lineage that starts at that serial', async () => {
      const appId = uniqueId('app');
      const cn = uniqueId('svc');
      const cert = await issueWith({ appId, commonName: cn });
      // What mint wrote before lineages: the serial alone.
      const legacy = await rootVault().raw<{ auth: { client_token: string } }>('POST', `auth/token/create/latchkey-${profile}`, {
        policies: ['default'],
        ttl: '30m',
        meta: { latchkey_app: appId, latchkey_name: 'legacy', latchkey_profile: profile, latchkey_cert: cert.serial },
      });
      const key = encodeKey(legacy.auth.client_token);
      expect(await code(key, cert)).toBe('VALID');
      const renewed = await renew(cert.serial, '10m');
      expect(await code(key, renewed)).toBe('VALID');
      const sameName = await issueWith({ appId, commonName: cn });
      expect(await code(key, sameName)).toBe('CERT_MISMATCH');
      // A rotation keeps the binding as it was read: the successor accepts the renewal too.
      const keyId = (await verify({ key, certificate: renewed.certificate })).body.keyId as string;
      const rotated = await call(api.url, 'POST', `/v1/keys/${keyId}/rotate`, { token: op, body: { grace: '1m' } });
      expect(rotated.status).toBe(201);
      expect(await code(rotated.body.key, renewed)).toBe('VALID');
      expect(await code(rotated.body.key, sameName)).toBe('CERT_MISMATCH');
    });

    it('cuts the ttl of a key bound to a certificate that will not be renewed, with a warning; an auto-renewing one keeps it', async () => {
      const appId = uniqueId('app');
      const once = await issueWith({ appId, commonName: uniqueId('svc') });
      const res = await call(api.url, 'POST', '/v1/keys', { token: op, body: { appId, profile, name: 'long', ttl: '24h', certSerial: once.serial } });
      expect(res.status).toBe(201);
      const warning = (res.body.warnings as string[]).find((w) => /outlives the bound certificate/.test(w));
      expect(warning).toMatch(/^ttl 24h \(86400s\) outlives the bound certificate .* the key's ttl is cut to \d+s\./);
      expect(Date.parse(res.body.expiresAt)).toBeLessThanOrEqual(Date.parse(once.expiresAt));
      expect(await code(res.body.key, once)).toBe('VALID');

      const renewing = await issueWith({ appId, commonName: uniqueId('svc'), autoRenew: true });
      const kept = await call(api.url, 'POST', '/v1/keys', { token: op, body: { appId, profile, name: 'long-renewing', ttl: '24h', certSerial: renewing.serial } });
      expect(kept.status).toBe(201);
      expect(((kept.body.warnings ?? []) as string[]).filter((w) => /outlives/.test(w))).toEqual([]);
      expect(Date.parse(kept.body.expiresAt)).toBeGreaterThan(Date.parse(renewing.expiresAt));
    });
  });

  describe('across certificate renewal, over mTLS (RFC 8705)', () => {
    let mtls: MtlsApi;
    let tlsApi: RunningApi;
    let tlsBase: string;
    let dir: string;

    beforeAll(async () => {
      mtls = await startMtlsApi({ LATCHKEY_ISSUER: 'http://latchkey.test' });
      ({ api: tlsApi, tlsBase, dir } = mtls);
    });
    afterAll(async () => {
      await mtls?.close();
    });

    const files = (body: { certificate: string; privateKey: string }) => {
      const name = uniqueId('c');
      const certFile = path.join(dir, `${name}.pem`);
      const keyFile = path.join(dir, `${name}.key`);
      fs.writeFileSync(certFile, body.certificate, { mode: 0o600 });
      fs.writeFileSync(keyFile, body.privateKey, { mode: 0o600 });
      return { certFile, keyFile, thumbprint: createHash('sha256').update(new X509Certificate(body.certificate).raw).digest('base64url') };
    };
    const curl = (url: string, opts: { cert?: { certFile: string; keyFile: string }; data?: string[]; headers?: string[] }) => {
      const args = ['-s', '-o', '-', '-w', '\n%{http_code}', '--cacert', mtls.serverCertFile];
      if (opts.cert) args.push('--cert', opts.cert.certFile, '--key', opts.cert.keyFile);
      for (const d of opts.data ?? []) args.push('--data-urlencode', d);
      for (const h of opts.headers ?? []) args.push('-H', h);
      const out = execFileSync('curl', [...args, url], { encoding: 'utf8' });
      const nl = out.lastIndexOf('\n');
      return { status: Number(out.slice(nl + 1)), body: out.slice(0, nl) };
    };

    it('authenticates the key with the renewed certificate (X-API-Key, tls_client_auth); a token stays bound to the exact certificate it was issued for', async () => {
      const appId = uniqueId('app');
      const cn = uniqueId('svc');
      const issued = await call(tlsApi.url, 'POST', '/v1/certs', { token: op, body: { appId, commonName: cn, ttl: '1h', autoRenew: true } });
      expect(issued.status).toBe(201);
      const first = files(issued.body);
      const sameName = await call(tlsApi.url, 'POST', '/v1/certs', { token: op, body: { appId, commonName: cn, ttl: '1h' } });
      const foreign = files(sameName.body);
      const k = await call(tlsApi.url, 'POST', '/v1/keys', { token: op, body: { appId, profile, name: 'mtls', certSerial: issued.body.serial } });
      expect(k.status).toBe(201);
      const token = (cert: { certFile: string; keyFile: string }) => curl(`${tlsBase}/oauth2/token`, { cert, data: ['grant_type=client_credentials', `client_id=${k.body.keyId}`] });
      const firstToken = token(first);
      expect(firstToken.status).toBe(200);
      const bearerFirst = [`Authorization: Bearer ${(JSON.parse(firstToken.body) as { access_token: string }).access_token}`];

      const renewed = await call(tlsApi.url, 'POST', `/v1/certs/${issued.body.serial}/renew`, { token: op, body: { grace: '10m' } });
      expect(renewed.status).toBe(201);
      const second = files(renewed.body);

      // The key on the handshake with the renewed certificate: accepted; with one of the same name issued separately: not.
      expect(curl(`${tlsBase}/v1/auth`, { cert: second, headers: [`X-API-Key: ${k.body.key}`] }).status).toBe(204);
      expect(curl(`${tlsBase}/v1/auth`, { cert: foreign, headers: [`X-API-Key: ${k.body.key}`] }).status).toBe(403);
      // tls_client_auth with the renewed certificate: a token bound to it.
      const secondToken = token(second);
      expect(secondToken.status).toBe(200);
      const access = (JSON.parse(secondToken.body) as { access_token: string }).access_token;
      expect(JSON.parse(Buffer.from(access.split('.')[1], 'base64url').toString()).cnf).toEqual({ 'x5t#S256': second.thumbprint });
      expect(curl(`${tlsBase}/v1/auth`, { cert: second, headers: [`Authorization: Bearer ${access}`] }).status).toBe(204);
      expect(token(foreign).status).toBe(401);
      // cnf x5t#S256 names one certificate: a token from before the renewal does not move to the new one.
      expect(curl(`${tlsBase}/v1/auth`, { cert: first, headers: bearerFirst }).status).toBe(204);
      expect(curl(`${tlsBase}/v1/auth`, { cert: second, headers: bearerFirst }).status).toBe(403);
    });
  });
});

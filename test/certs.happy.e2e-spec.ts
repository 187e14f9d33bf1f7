import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import type { IncomingMessage } from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { Redis } from 'ioredis';
import { freePort } from '@latchkey/devstack';
import { RunningApi, startApi } from './support/app';
import { call } from './support/http';
import { operatorToken } from './support/keys';
import { redisPrefix, rootVault, uniqueId } from './support/stack';

/**
 * Certificates end to end: the compiled api against the real OpenBao PKI and
 * Redis of the test stack, with real TLS handshakes and the openssl CLI.
 */

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-certs-e2e-'));
const file = (name: string, content: string): string => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content, { mode: 0o600 });
  return p;
};
const openssl = (args: string[]): string => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const plainHex = (serial: string) => serial.replace(/:/g, '').toUpperCase();

/** A self-signed server certificate for 127.0.0.1 (the test's own TLS servers). */
function serverIdentity(): { cert: string; key: string; certFile: string; keyFile: string } {
  const name = uniqueId('srv');
  const keyFile = file(`${name}.key`, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  const certFile = path.join(dir, `${name}.pem`);
  openssl(['req', '-x509', '-new', '-key', keyFile, '-subj', '/CN=127.0.0.1', '-days', '1', '-addext', 'subjectAltName=IP:127.0.0.1', '-out', certFile]);
  return { cert: fs.readFileSync(certFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8'), certFile, keyFile };
}

/** GET over mutual TLS; resolves with the status, rejects when the handshake fails. */
function mtlsGet(url: string, o: { ca: string; cert?: string; key?: string; agent?: https.Agent }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca: o.ca, cert: o.cert, key: o.key, agent: o.agent ?? false, servername: undefined }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

describe('certificates: happy paths', () => {
  let api: RunningApi;
  let op: string;
  let redis: Redis;
  const issued: string[] = [];

  beforeAll(async () => {
    // Debug logging: a private key in any log line would show up in the captured output.
    [api, { token: op }] = await Promise.all([startApi({ LOG_LEVEL: 'debug' }), operatorToken()]);
    redis = new Redis(process.env.REDIS_URL!);
  });
  afterAll(async () => {
    await Promise.all([api.close(), redis.quit()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const issue = async (body: Record<string, unknown>, token = op) => {
    const res = await call(api.url, 'POST', '/v1/certs', { token, body });
    if (res.status !== 201) throw new Error(`issue failed: ${res.status} ${JSON.stringify(res.body)}`);
    if (res.body.privateKey) issued.push(res.body.privateKey);
    return res.body;
  };
  const verify = (body: Record<string, unknown>) => call(api.url, 'POST', '/v1/certs/verify', { body });
  const caPem = async () => {
    const res = await fetch(`${api.url}/v1/certs/ca`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/x-pem-file/);
    return res.text();
  };

  it('issues a certificate whose private key is returned once, and openssl verifies it against the downloaded CA', async () => {
    const appId = uniqueId('app');
    const res = await call(api.url, 'POST', '/v1/certs', {
      token: op,
      body: { appId, commonName: `${appId}-api`, uriSans: [`spiffe://example.org/ns/prod/sa/${appId}`], ipSans: ['10.0.0.12'], ttl: '2h' },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const c = res.body;
    issued.push(c.privateKey);
    expect(c).toMatchObject({ appId, commonName: `${appId}-api`, uriSans: [`spiffe://example.org/ns/prod/sa/${appId}`], ipSans: ['10.0.0.12'], source: 'issue', keyType: 'ec-P-256', state: 'active', autoRenew: false, privateKeyType: 'ec' });
    expect(c.serial).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2})+$/);
    expect(c.privateKey).toMatch(new RegExp(`^-----BEGIN ${'PRIVATE'} KEY-----`));
    expect(c.caChain.length).toBeGreaterThanOrEqual(1);
    const lifetime = Date.parse(c.expiresAt) - Date.now();
    expect(lifetime).toBeGreaterThan(7000_000);
    expect(lifetime).toBeLessThanOrEqual(7200_000 + 5000);
    expect(Date.parse(c.renewAt)).toBeCloseTo(Date.parse(c.notBefore) + ((Date.parse(c.expiresAt) - Date.parse(c.notBefore)) * 2) / 3, -4);

    const x = new X509Certificate(c.certificate);
    expect(x.checkPrivateKey(createPrivateKey(c.privateKey))).toBe(true);
    expect(x.subjectAltName).toContain(`URI:urn:latchkey:app:${appId}`);
    expect(x.subjectAltName).toContain('IP Address:10.0.0.12');
    expect(x.ca).toBe(false);

    const caFile = file('ca.pem', await caPem());
    const certFile = file(`${appId}.pem`, c.certificate);
    expect(openssl(['verify', '-CAfile', caFile, certFile]).trim()).toBe(`${certFile}: OK`);
    // A client certificate only: usable for TLS client auth, not as a server.
    expect(openssl(['verify', '-CAfile', caFile, '-purpose', 'sslclient', certFile]).trim()).toBe(`${certFile}: OK`);
    expect(openssl(['x509', '-in', certFile, '-noout', '-ext', 'extendedKeyUsage'])).toMatch(/TLS Web Client Authentication/);
    expect(openssl(['x509', '-in', certFile, '-noout', '-ext', 'extendedKeyUsage'])).not.toMatch(/Server/);

    // Vault holds it: it is the source of truth.
    const inVault = await rootVault().pkiReadCert('pki_latchkey', c.serial);
    expect(inVault?.certificate.trim()).toBe(c.certificate.trim());
    expect(inVault?.revocation_time).toBe(0);
  });

  it('gets a certificate by colon or plain hex serial with its live status, and lists an app with cursor pagination', async () => {
    const appId = uniqueId('app');
    const serials: string[] = [];
    for (let i = 0; i < 3; i++) serials.push((await issue({ appId, commonName: `${appId}-${i}`, ttl: '1h' })).serial);

    for (const s of [serials[0], plainHex(serials[0]), serials[0].replace(/:/g, '-')]) {
      const got = await call(api.url, 'GET', `/v1/certs/${s}`, { token: op });
      expect(got.status).toBe(200);
      expect(got.body).toMatchObject({ serial: serials[0], appId, commonName: `${appId}-0`, state: 'active', live: { revoked: false, revokedAt: null } });
      expect(got.body.certificate).toMatch(/BEGIN CERTIFICATE/);
      expect(got.body.privateKey).toBeUndefined();
    }

    const p1 = await call(api.url, 'GET', `/v1/certs?appId=${appId}&limit=2`, { token: op });
    expect(p1.status).toBe(200);
    expect(p1.body.items.map((i: { serial: string }) => i.serial)).toEqual(serials.slice(0, 2));
    expect(p1.body.nextCursor).toEqual(expect.any(String));
    const p2 = await call(api.url, 'GET', `/v1/certs?appId=${appId}&limit=2&cursor=${p1.body.nextCursor}`, { token: op });
    expect(p2.body.items.map((i: { serial: string }) => i.serial)).toEqual(serials.slice(2));
    expect(p2.body.nextCursor).toBeNull();
    expect(JSON.stringify([p1.body, p2.body])).not.toMatch(/PRIVATE KEY/);

    // Revoked certificates leave the listing; their record stays readable.
    expect((await call(api.url, 'DELETE', `/v1/certs/${serials[1]}`, { token: op })).status).toBe(204);
    const after = await call(api.url, 'GET', `/v1/certs?appId=${appId}`, { token: op });
    expect(after.body.items.map((i: { serial: string }) => i.serial)).toEqual([serials[0], serials[2]]);
    expect((await call(api.url, 'GET', `/v1/certs/${serials[1]}`, { token: op })).body).toMatchObject({ state: 'revoked', live: { revoked: true } });
  });

  it('verifies PEM and Envoy XFCC input: VALID, MALFORMED, UNKNOWN_CA, NOT_FOUND, EXPIRED, and 400 for malformed XFCC', async () => {
    const appId = uniqueId('app');
    const c = await issue({ appId, commonName: `${appId}-svc`, uriSans: [`spiffe://example.org/${appId}`], ttl: '1h' });
    const valid = await verify({ certificate: c.certificate });
    expect(valid.status).toBe(200);
    expect(valid.body).toEqual({
      valid: true,
      code: 'VALID',
      serial: c.serial,
      appId,
      subject: `CN=${appId}-svc`,
      commonName: `${appId}-svc`,
      uriSans: [`spiffe://example.org/${appId}`],
      expiresAt: c.expiresAt,
    });

    const der = new X509Certificate(c.certificate).raw;
    const hash = createHash('sha256').update(der).digest('hex');
    const xfcc = `By=spiffe://example.org/gateway;Hash=${hash};Cert="${encodeURIComponent(c.certificate)}";Subject="CN=${appId}-svc";URI=spiffe://example.org/${appId},By=spiffe://example.org/edge;URI=spiffe://example.org/hop`;
    expect((await verify({ xfcc })).body).toMatchObject({ valid: true, code: 'VALID', serial: c.serial, appId });
    // A Hash that does not match the Cert: someone edited the header.
    expect((await verify({ xfcc: xfcc.replace(hash, 'f'.repeat(64)) })).body).toMatchObject({ valid: false, code: 'MALFORMED', serial: null });

    expect((await verify({ certificate: 'not a certificate' })).body).toMatchObject({ valid: false, code: 'MALFORMED' });
    expect((await verify({ certificate: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----' })).body.code).toBe('MALFORMED');
    expect((await verify({ xfcc: `Cert=${encodeURIComponent('garbage')}` })).body.code).toBe('MALFORMED');

    const self = serverIdentity();
    expect((await verify({ certificate: self.cert })).body).toMatchObject({ valid: false, code: 'UNKNOWN_CA' });

    // Issued by the same CA but not through latchkey (no app binding): not a latchkey certificate.
    const direct = await rootVault().pkiIssue('pki_latchkey', 'latchkey-client', { common_name: 'direct', ttl: '1h' });
    expect((await verify({ certificate: direct.certificate })).body).toMatchObject({ valid: false, code: 'NOT_FOUND' });
    // The CA itself is not a client certificate.
    expect((await verify({ certificate: (await caPem()).split('-----END CERTIFICATE-----')[0] + '-----END CERTIFICATE-----' })).body.code).toBe('NOT_FOUND');

    const short = await issue({ appId, commonName: `${appId}-short`, ttl: '2s' });
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(short.expiresAt) - Date.now()) + 1100));
    expect((await verify({ certificate: short.certificate })).body).toMatchObject({ valid: false, code: 'EXPIRED', serial: short.serial });

    for (const bad of ['By=a;Hash=zz', 'Subject="open', 'By=x', '', 'Cert=%E0%A4%A']) {
      const res = await verify({ xfcc: bad });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
    }
    expect((await verify({})).status).toBe(400);
    expect((await verify({ certificate: c.certificate, xfcc })).status).toBe(400);
    expect((await verify({ certificate: c.certificate, extra: 1 })).status).toBe(400);
  });

  it('a real TLS handshake: a server trusting the latchkey CA accepts an issued certificate, and refuses it right after revoke', async () => {
    const appId = uniqueId('app');
    const c = await issue({ appId, commonName: `${appId}-client`, ttl: '1h' });
    const ca = await caPem();
    const srv = serverIdentity();
    // The application server: TLS verifies the chain; latchkey's verify decides revocation.
    const server = https.createServer({ cert: srv.cert, key: srv.key, ca, requestCert: true, rejectUnauthorized: true }, (req: IncomingMessage, res) => {
      const peer = (req.socket as TLSSocket).getPeerX509Certificate();
      void verify({ certificate: peer?.toString() ?? '' }).then((v) => {
        res.writeHead(v.body.valid ? 200 : 403, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: v.body.code, appId: v.body.appId }));
      });
    });
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    try {
      const url = `https://127.0.0.1:${port}/`;
      const ok = await mtlsGet(url, { ca: srv.cert, cert: c.certificate, key: c.privateKey });
      expect(ok.status).toBe(200);
      expect(JSON.parse(ok.body)).toEqual({ code: 'VALID', appId });

      // Without a client certificate the handshake itself fails.
      await expect(mtlsGet(url, { ca: srv.cert })).rejects.toThrow();
      // With a certificate from another CA too.
      await expect(mtlsGet(url, { ca: srv.cert, cert: srv.cert, key: srv.key })).rejects.toThrow();

      expect((await call(api.url, 'DELETE', `/v1/certs/${c.serial}`, { token: op })).status).toBe(204);
      const refused = await mtlsGet(url, { ca: srv.cert, cert: c.certificate, key: c.privateKey });
      expect(refused.status).toBe(403);
      expect(JSON.parse(refused.body).code).toBe('REVOKED');
      // Idempotent.
      expect((await call(api.url, 'DELETE', `/v1/certs/${c.serial}`, { token: op })).status).toBe(204);
      expect((await call(api.url, 'DELETE', `/v1/certs/${plainHex(c.serial)}`, { token: op })).status).toBe(204);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }

    // The CRL (downloaded through latchkey) lists it too, for TLS stacks that only read CRLs.
    const crl = await fetch(`${api.url}/v1/certs/crl`);
    expect(crl.status).toBe(200);
    const crlFile = file(`${appId}.crl`, await crl.text());
    expect(openssl(['crl', '-in', crlFile, '-noout', '-text'])).toContain(plainHex(c.serial));
    let failure = '';
    try {
      openssl(['verify', '-crl_check', '-CRLfile', crlFile, '-CAfile', file('ca2.pem', ca), file(`${appId}-rev.pem`, c.certificate)]);
    } catch (err) {
      failure = String((err as { stdout?: string }).stdout) + String((err as { stderr?: string }).stderr);
    }
    expect(failure).toMatch(/revoked/i);
  });

  it('revocation reaches another api instance at once, although that instance had just verified the certificate', async () => {
    const other = await startApi();
    try {
      const appId = uniqueId('app');
      const c = await issue({ appId, commonName: `${appId}-x`, ttl: '1h' });
      const v = (url: string) => call(url, 'POST', '/v1/certs/verify', { body: { certificate: c.certificate } });
      expect((await v(other.url)).body.code).toBe('VALID'); // now cached there (status is cached for VERIFY_MAX_STALENESS)
      expect((await call(api.url, 'DELETE', `/v1/certs/${c.serial}`, { token: op })).status).toBe(204);
      // Pub/sub delivery is asynchronous across processes, but far below the cache staleness (60s).
      const started = Date.now();
      let code = '';
      while (Date.now() - started < 2000) {
        code = (await v(other.url)).body.code;
        if (code === 'REVOKED') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(code).toBe('REVOKED');
      expect((await v(api.url)).body.code).toBe('REVOKED');
    } finally {
      await other.close();
    }
  });

  it('renews with the same subject: without grace the old one stays valid; with grace it is revoked afterwards; a second renewal is refused', async () => {
    const appId = uniqueId('app');
    const old = await issue({ appId, commonName: `${appId}-r`, uriSans: [`urn:example:${appId}`], ipSans: ['10.9.8.7'], ttl: '1h', autoRenew: true });
    const r1 = await call(api.url, 'POST', `/v1/certs/${old.serial}/renew`, { token: op, body: {} });
    expect(r1.status).toBe(201);
    issued.push(r1.body.privateKey);
    expect(r1.body).toMatchObject({ appId, commonName: `${appId}-r`, uriSans: [`urn:example:${appId}`], ipSans: ['10.9.8.7'], previousSerial: old.serial, autoRenew: true, source: 'issue' });
    expect(r1.body.serial).not.toBe(old.serial);
    expect(r1.body.privateKey).toMatch(/PRIVATE KEY/);
    expect(r1.body.revokeAt).toBeUndefined();
    expect((await verify({ certificate: old.certificate })).body.code).toBe('VALID');
    expect((await call(api.url, 'GET', `/v1/certs/${old.serial}`, { token: op })).body.successorSerial).toBe(r1.body.serial);
    const again = await call(api.url, 'POST', `/v1/certs/${old.serial}/renew`, { token: op, body: {} });
    expect(again.status).toBe(409);

    const r2 = await call(api.url, 'POST', `/v1/certs/${r1.body.serial}/renew`, { token: op, body: { grace: '2s', ttl: '30m' } });
    expect(r2.status).toBe(201);
    issued.push(r2.body.privateKey);
    expect(Date.parse(r2.body.revokeAt) - Date.now()).toBeLessThanOrEqual(2000);
    expect(Date.parse(r2.body.expiresAt) - Date.now()).toBeLessThanOrEqual(1800_000 + 5000);
    expect((await verify({ certificate: r1.body.certificate })).body.code).toBe('VALID');
    const started = Date.now();
    let code = '';
    while (Date.now() - started < 8000) {
      code = (await verify({ certificate: r1.body.certificate })).body.code;
      if (code === 'REVOKED') break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(code).toBe('REVOKED');
    expect((await rootVault().pkiReadCert('pki_latchkey', r1.body.serial))?.revocation_time).toBeGreaterThan(0);
    expect((await verify({ certificate: r2.body.certificate })).body.code).toBe('VALID');

    // grace 0s: revoked before the answer.
    const r3 = await call(api.url, 'POST', `/v1/certs/${r2.body.serial}/renew`, { token: op, body: { grace: '0s' } });
    expect(r3.status).toBe(201);
    issued.push(r3.body.privateKey);
    expect((await verify({ certificate: r2.body.certificate })).body.code).toBe('REVOKED');
    // A revoked certificate cannot be renewed.
    expect((await call(api.url, 'POST', `/v1/certs/${r2.body.serial}/renew`, { token: op, body: {} })).status).toBe(409);
  });

  it('signs a CSR made with a locally generated key: the private key never reaches any response, log line or Redis value', async () => {
    const appId = uniqueId('app');
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const keyFile = file(`${appId}.key`, keyPem);
    const csr = openssl(['req', '-new', '-key', keyFile, '-subj', `/CN=${appId}-csr/O=Example`]);

    const res = await call(api.url, 'POST', '/v1/certs', { token: op, body: { appId, csr, uriSans: [`spiffe://example.org/${appId}`], ttl: '1h' } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ appId, commonName: `${appId}-csr`, source: 'csr', keyType: 'ec-P-384', uriSans: [`spiffe://example.org/${appId}`] });
    expect(res.body.privateKey).toBeUndefined();
    const x = new X509Certificate(res.body.certificate);
    expect(x.publicKey.export({ type: 'spki', format: 'der' }).equals(publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
    expect(x.checkPrivateKey(privateKey)).toBe(true);
    expect((await verify({ certificate: res.body.certificate })).body).toMatchObject({ code: 'VALID', appId });

    // The holder's key works in a real handshake.
    const srv = serverIdentity();
    const server = https.createServer({ cert: srv.cert, key: srv.key, ca: await caPem(), requestCert: true, rejectUnauthorized: true }, (_req, r) => r.end('hello'));
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    try {
      expect(await mtlsGet(`https://127.0.0.1:${port}/`, { ca: srv.cert, cert: res.body.certificate, key: keyPem })).toEqual({ status: 200, body: 'hello' });
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }

    // Renewal re-signs the stored CSR: same key, new certificate.
    const renewed = await call(api.url, 'POST', `/v1/certs/${res.body.serial}/renew`, { token: op, body: {} });
    expect(renewed.status).toBe(201);
    expect(renewed.body.privateKey).toBeUndefined();
    expect(new X509Certificate(renewed.body.certificate).checkPrivateKey(privateKey)).toBe(true);

    // No private key (this one, or any issued by Vault in this file) anywhere latchkey writes.
    const secrets = [keyPem, ...issued].map((k) => k.split('\n').filter((l) => l && !l.startsWith('-----')).join(''));
    const body = (k: string) => k.slice(10, 60);
    const output = api.process.output();
    expect(output.length).toBeGreaterThan(0);
    const values: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${redisPrefix()}:*`, 'COUNT', 1000);
      cursor = next;
      for (const k of keys) {
        const type = await redis.type(k);
        if (type === 'string') values.push((await redis.get(k)) ?? '');
        else if (type === 'stream') values.push(JSON.stringify(await redis.xrange(k, '-', '+')));
        else if (type === 'zset') values.push((await redis.zrange(k, 0, -1)).join(' '));
        else if (type === 'hash') values.push(JSON.stringify(await redis.hgetall(k)));
      }
    } while (cursor !== '0');
    const redisText = values.join('\n');
    for (const s of secrets) {
      expect(output).not.toContain(body(s));
      expect(redisText).not.toContain(body(s));
    }
    expect(output).not.toMatch(/BEGIN (EC |)PRIVATE KEY/);
    expect(redisText).not.toMatch(/PRIVATE KEY/);
  });

  it('serves the same routes over an HTTPS + mTLS listener to certificates latchkey issued, and stops at once after revoke', async () => {
    const srv = serverIdentity();
    const tlsPort = await freePort();
    const mtlsApi = await startApi({ LATCHKEY_TLS_PORT: String(tlsPort), LATCHKEY_TLS_CERT: srv.certFile, LATCHKEY_TLS_KEY: srv.keyFile }, { avoidPorts: [tlsPort] });
    try {
      const appId = uniqueId('app');
      const c = await issue({ appId, commonName: `${appId}-sidecar`, ttl: '1h' });
      const base = `https://127.0.0.1:${tlsPort}`;
      const agent = new https.Agent({ keepAlive: true, ca: srv.cert, cert: c.certificate, key: c.privateKey });
      const health = await mtlsGet(`${base}/health/live`, { ca: srv.cert, cert: c.certificate, key: c.privateKey, agent });
      expect(health.status).toBe(200);
      // The verify endpoint over mTLS, as a sidecar would call it.
      const other = await issue({ appId, commonName: `${appId}-peer`, ttl: '1h' });
      const verified = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = https.request(`${base}/v1/certs/verify`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
          let b = '';
          res.on('data', (d: Buffer) => (b += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
        });
        req.on('error', reject);
        req.end(JSON.stringify({ certificate: other.certificate }));
      });
      expect(verified.status).toBe(200);
      expect(JSON.parse(verified.body)).toMatchObject({ valid: true, code: 'VALID', appId });

      await expect(mtlsGet(`${base}/health/live`, { ca: srv.cert })).rejects.toThrow();
      await expect(mtlsGet(`${base}/health/live`, { ca: srv.cert, cert: srv.cert, key: srv.key })).rejects.toThrow();

      expect((await call(api.url, 'DELETE', `/v1/certs/${c.serial}`, { token: op })).status).toBe(204);
      // The same kept-alive connection, then a fresh one: both refused (revocation set, then CRL or revocation set).
      const started = Date.now();
      let status = 0;
      while (Date.now() - started < 2000) {
        status = (await mtlsGet(`${base}/health/live`, { ca: srv.cert, cert: c.certificate, key: c.privateKey, agent })).status;
        if (status === 403) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(status).toBe(403);
      const fresh = await mtlsGet(`${base}/health/live`, { ca: srv.cert, cert: c.certificate, key: c.privateKey }).then(
        (r) => r.status,
        () => 'handshake refused',
      );
      expect([403, 'handshake refused']).toContain(fresh);
      agent.destroy();
      // The plain listener is unchanged.
      expect((await fetch(`${mtlsApi.url}/health/live`)).status).toBe(200);
    } finally {
      await mtlsApi.close();
    }
  });
});

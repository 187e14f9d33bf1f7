import * as http from 'node:http';
import { RunningApi, startApi } from './support/app';
import { call } from './support/http';
import { createProfile, operatorToken } from './support/keys';
import { uniqueId } from './support/stack';

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
});

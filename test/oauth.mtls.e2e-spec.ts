import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RunningApi } from './support/app';
import { call } from './support/http';
import { mintKey } from './support/keys';
import { uniqueId } from './support/stack';
import { MtlsApi, startMtlsApi } from './support/tls';

/**
 * RFC 8705 with real TLS handshakes (curl --cert against the api's mTLS listener): tls_client_auth at the
 * token endpoint, and certificate-bound access tokens (cnf.x5t#S256) that verify only with the same
 * certificate presented.
 */
const ENV = { LATCHKEY_ISSUER: 'http://latchkey.test' };
const rootToken = (): string => process.env.VAULT_TOKEN!;

describe('certificate-bound access tokens (RFC 8705)', () => {
  let mtls: MtlsApi;
  let api: RunningApi;
  let tlsBase: string;
  let dir: string;

  beforeAll(async () => {
    mtls = await startMtlsApi(ENV);
    ({ api, tlsBase, dir } = mtls);
  });
  afterAll(async () => {
    await mtls?.close();
  });

  /** A client certificate from latchkey's CA, written to files for curl (0600). */
  const clientCert = async (appId: string) => {
    const res = await call(api.url, 'POST', '/v1/certs', { token: rootToken(), body: { appId, commonName: uniqueId('svc'), ttl: '1h' } });
    expect(res.status).toBe(201);
    const name = uniqueId('c');
    const certFile = path.join(dir, `${name}.pem`);
    const keyFile = path.join(dir, `${name}.key`);
    fs.writeFileSync(certFile, res.body.certificate as string, { mode: 0o600 });
    fs.writeFileSync(keyFile, res.body.privateKey as string, { mode: 0o600 });
    const thumbprint = createHash('sha256').update(new X509Certificate(res.body.certificate as string).raw).digest('base64url');
    return { serial: res.body.serial as string, certFile, keyFile, thumbprint };
  };
  /** One HTTPS request with curl: status and body. */
  const curl = (url: string, opts: { cert?: { certFile: string; keyFile: string }; data?: string[]; headers?: string[] }) => {
    const args = ['-s', '-o', '-', '-w', '\n%{http_code}', '--cacert', mtls.serverCertFile];
    if (opts.cert) args.push('--cert', opts.cert.certFile, '--key', opts.cert.keyFile);
    for (const d of opts.data ?? []) args.push('--data-urlencode', d);
    for (const h of opts.headers ?? []) args.push('-H', h);
    const out = execFileSync('curl', [...args, url], { encoding: 'utf8' });
    const nl = out.lastIndexOf('\n');
    return { status: Number(out.slice(nl + 1)), body: out.slice(0, nl) };
  };
  const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()) as Record<string, any>;

  it('authenticates a client by the certificate its key is bound to (tls_client_auth) and binds the token to it', async () => {
    const appId = uniqueId('app');
    const cert = await clientCert(appId);
    const other = await clientCert(appId);
    const k = await mintKey(api.url, rootToken(), { appId, profile: 'default', name: 'bound', certSerial: cert.serial });

    const res = curl(`${tlsBase}/oauth2/token`, { cert, data: ['grant_type=client_credentials', `client_id=${k.keyId}`] });
    expect(res.status).toBe(200);
    const token = (JSON.parse(res.body) as { access_token: string }).access_token;
    expect(claimsOf(token)).toMatchObject({ sub: k.keyId, cnf: { 'x5t#S256': cert.thumbprint } });

    // The same certificate on the handshake: accepted. None, or another latchkey certificate: refused.
    const bearer = [`Authorization: Bearer ${token}`];
    const withCert = curl(`${tlsBase}/v1/auth`, { cert, headers: bearer });
    expect(withCert.status).toBe(204);
    const plain = await fetch(`${api.url}/v1/auth`, { headers: { authorization: `Bearer ${token}` } });
    expect([plain.status, plain.headers.get('x-latchkey-code')]).toEqual([403, 'CERT_REQUIRED']);
    expect(curl(`${tlsBase}/v1/auth`, { cert: other, headers: bearer }).status).toBe(403);
    // POST verify with the certificate handed over by a gateway: the same rule.
    const v = async (certificate?: string) => (await call(api.url, 'POST', '/v1/keys/verify', { body: { key: token, ...(certificate ? { certificate } : {}) } })).body.code;
    expect(await v(fs.readFileSync(cert.certFile, 'utf8'))).toBe('VALID');
    expect(await v(fs.readFileSync(other.certFile, 'utf8'))).toBe('CERT_MISMATCH');
    expect(await v()).toBe('CERT_REQUIRED');

    // tls_client_auth with a certificate the key is not bound to, or for a key bound to none: invalid_client.
    const wrong = curl(`${tlsBase}/oauth2/token`, { cert: other, data: ['grant_type=client_credentials', `client_id=${k.keyId}`] });
    expect([wrong.status, JSON.parse(wrong.body).error]).toEqual([401, 'invalid_client']);
    const unbound = await mintKey(api.url, rootToken(), { appId, profile: 'default', name: 'unbound' });
    const noBinding = curl(`${tlsBase}/oauth2/token`, { cert, data: ['grant_type=client_credentials', `client_id=${unbound.keyId}`] });
    expect([noBinding.status, JSON.parse(noBinding.body).error]).toEqual([401, 'invalid_client']);
  });

  it('binds a token to the certificate presented with a client secret too; without a certificate the token is unbound', async () => {
    const appId = uniqueId('app');
    const cert = await clientCert(appId);
    const k = await mintKey(api.url, rootToken(), { appId, profile: 'default', name: 'secret' });
    const withCert = curl(`${tlsBase}/oauth2/token`, { cert, data: ['grant_type=client_credentials', `client_id=${k.keyId}`, `client_secret=${k.key}`] });
    expect(withCert.status).toBe(200);
    expect(claimsOf(JSON.parse(withCert.body).access_token).cnf).toEqual({ 'x5t#S256': cert.thumbprint });
    const plain = await fetch(`${api.url}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'client_credentials', client_id: k.keyId, client_secret: k.key }).toString() });
    expect(plain.status).toBe(200);
    expect(claimsOf(((await plain.json()) as { access_token: string }).access_token).cnf).toBeUndefined();
    const meta = (await (await fetch(`${api.url}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(meta).toMatchObject({ tls_client_certificate_bound_access_tokens: true });
    expect(meta.token_endpoint_auth_methods_supported).toContain('tls_client_auth');
  });
});

import { ConfigError, loadConfig } from './config';

const base = { VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_TOKEN: 's.' + 'abcdefghijklmnopqrstuvwx' };

function problems(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('builds a typed, frozen configuration with defaults', () => {
    const c = loadConfig(base);
    expect(c.vault.addr).toBe('http://127.0.0.1:8200');
    expect(c.vault.auth).toEqual({ method: 'token', token: base.VAULT_TOKEN });
    expect(c.http.port).toBe(8080);
    expect(c.http.trustProxy).toBeNull();
    expect(c.keyPrefix).toBe('lk');
    expect(c.verify.maxStalenessMs).toBe(60_000);
    expect(Object.isFrozen(c.vault)).toBe(true);
  });

  it('parses numbers, durations and trusted proxies', () => {
    const c = loadConfig({ ...base, LATCHKEY_PORT: '9000', VERIFY_MAX_STALENESS: '2m', LATCHKEY_TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' });
    expect(c.http.port).toBe(9000);
    expect(c.verify.maxStalenessMs).toBe(120_000);
    expect(c.http.trustProxy).toEqual({ addresses: ['10.0.0.0/8', '127.0.0.1'] });
    expect(loadConfig({ ...base, LATCHKEY_TRUST_PROXY: '2' }).http.trustProxy).toEqual({ hops: 2 });
  });

  it('names every bad variable at once', () => {
    const p = problems({ VAULT_ADDR: 'not a url', LATCHKEY_PORT: '99999', VERIFY_MAX_STALENESS: 'forever', LOG_LEVEL: 'loud' });
    const text = p.join('\n');
    expect(text).toMatch(/VAULT_ADDR/);
    expect(text).toMatch(/LATCHKEY_PORT/);
    expect(text).toMatch(/VERIFY_MAX_STALENESS/);
    expect(text).toMatch(/LOG_LEVEL/);
    expect(text).toMatch(/VAULT_TOKEN, VAULT_TOKEN_FILE or VAULT_ROLE_ID/);
  });

  it('requires exactly one Vault identity', () => {
    expect(problems({ ...base, VAULT_ROLE_ID: 'r', VAULT_SECRET_ID: 's' }).join()).toMatch(/exactly one/);
    expect(problems({ VAULT_ADDR: base.VAULT_ADDR, VAULT_ROLE_ID: 'r' }).join()).toMatch(/VAULT_SECRET_ID/);
    const c = loadConfig({ VAULT_ADDR: base.VAULT_ADDR, VAULT_ROLE_ID: 'r', VAULT_SECRET_ID: 's' });
    expect(c.vault.auth).toMatchObject({ method: 'approle', mount: 'approle', roleId: 'r' });
  });

  it('keeps the verify hot path out of the log unless an access log is asked for', () => {
    expect(loadConfig(base).accessLog).toBe('off');
    expect(loadConfig({ ...base, LATCHKEY_ACCESS_LOG: 'verify' }).accessLog).toBe('verify');
    expect(problems({ ...base, LATCHKEY_ACCESS_LOG: 'all' }).join()).toMatch(/LATCHKEY_ACCESS_LOG must be off or verify/);
  });

  it('refuses to trust every proxy', () => {
    expect(problems({ ...base, LATCHKEY_TRUST_PROXY: 'true' }).join()).toMatch(/LATCHKEY_TRUST_PROXY/);
  });

  it('believes certificate headers only from an address list, never from a hop count', () => {
    expect(loadConfig(base).http.certHeaderProxies).toEqual([]);
    expect(loadConfig({ ...base, LATCHKEY_TRUST_PROXY: '2' }).http.certHeaderProxies).toEqual([]);
    expect(loadConfig({ ...base, LATCHKEY_TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }).http.certHeaderProxies).toEqual(['10.0.0.0/8', '127.0.0.1']);
    expect(loadConfig({ ...base, LATCHKEY_TRUST_PROXY: '2', LATCHKEY_CERT_HEADER_PROXIES: '10.1.2.3,fd00::/8' }).http.certHeaderProxies).toEqual(['10.1.2.3', 'fd00::/8']);
    // When set, the explicit list wins over the trusted proxies.
    expect(loadConfig({ ...base, LATCHKEY_TRUST_PROXY: '10.0.0.0/8', LATCHKEY_CERT_HEADER_PROXIES: '10.9.9.9' }).http.certHeaderProxies).toEqual(['10.9.9.9']);
    expect(problems({ ...base, LATCHKEY_CERT_HEADER_PROXIES: '2' }).join()).toMatch(/LATCHKEY_CERT_HEADER_PROXIES/);
  });

  it('believes one named certificate header at most, none unless LATCHKEY_CERT_HEADER names it', () => {
    expect(loadConfig({ ...base, LATCHKEY_TRUST_PROXY: '127.0.0.1' }).http.certHeader).toBeNull();
    expect(loadConfig({ ...base, LATCHKEY_CERT_HEADER: 'X-Client-Cert' }).http.certHeader).toBe('x-client-cert');
    expect(loadConfig({ ...base, LATCHKEY_CERT_HEADER: 'x-forwarded-client-cert' }).http.certHeader).toBe('x-forwarded-client-cert');
    for (const bad of ['x-forwarded-client-cert,x-client-cert', 'x-forwarded-tls-client-cert', 'both']) {
      expect(problems({ ...base, LATCHKEY_CERT_HEADER: bad }).join()).toMatch(/LATCHKEY_CERT_HEADER must be/);
    }
  });

  it('reads forward-auth permissions from the header only unless configured', () => {
    expect(loadConfig(base).verify.authPermissionsFrom).toEqual({ header: true, query: false });
    expect(loadConfig({ ...base, LATCHKEY_AUTH_PERMISSIONS_FROM: 'query' }).verify.authPermissionsFrom).toEqual({ header: false, query: true });
    expect(loadConfig({ ...base, LATCHKEY_AUTH_PERMISSIONS_FROM: 'header, query' }).verify.authPermissionsFrom).toEqual({ header: true, query: true });
    expect(problems({ ...base, LATCHKEY_AUTH_PERMISSIONS_FROM: 'cookie' }).join()).toMatch(/LATCHKEY_AUTH_PERMISSIONS_FROM/);
  });

  it('bounds the time a request may take to arrive', () => {
    expect(loadConfig(base).http.requestTimeoutMs).toBe(30_000);
    expect(loadConfig({ ...base, LATCHKEY_REQUEST_TIMEOUT: '2s' }).http.requestTimeoutMs).toBe(2000);
    expect(problems({ ...base, LATCHKEY_REQUEST_TIMEOUT: '0' }).join()).toMatch(/LATCHKEY_REQUEST_TIMEOUT/);
    expect(problems({ ...base, LATCHKEY_REQUEST_TIMEOUT: 'never' }).join()).toMatch(/LATCHKEY_REQUEST_TIMEOUT/);
  });

  it('webhooks reach only public addresses unless allowed, by switch or by CIDR', () => {
    expect(loadConfig(base).delivery).toMatchObject({ allowPrivate: false, allowedCidrs: [] });
    const c = loadConfig({ ...base, WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_ALLOWED_CIDRS: '10.1.2.3/16, ::ffff:192.168.0.0/120,fd00::/8' });
    expect(c.delivery).toMatchObject({ allowPrivate: true, allowedCidrs: ['10.1.0.0/16', '192.168.0.0/24', 'fd00::/8'] });
    expect(problems({ ...base, WEBHOOK_ALLOWED_CIDRS: '10.0.0.0/33' }).join()).toMatch(/WEBHOOK_ALLOWED_CIDRS/);
    expect(problems({ ...base, WEBHOOK_ALLOWED_CIDRS: 'localhost' }).join()).toMatch(/WEBHOOK_ALLOWED_CIDRS/);
  });

  it('never echoes a value, which may be a secret', () => {
    const secret = 's.' + 'SECRETSECRETSECRETSECRET';
    const p = problems({ VAULT_ADDR: secret, VAULT_TOKEN: secret, VAULT_TIMEOUT_MS: secret });
    expect(p.join('\n')).not.toContain(secret);
  });
});

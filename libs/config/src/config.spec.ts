import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, loadConfig, parseHostPort } from './config';

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

  it("the worker's metrics listener: 127.0.0.1:9464 by default, 0 turns it off, a bad port or host is named", () => {
    expect(loadConfig(base).jobs.metrics).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(loadConfig({ ...base, WORKER_METRICS_PORT: '9100', WORKER_METRICS_HOST: '0.0.0.0' }).jobs.metrics).toEqual({ host: '0.0.0.0', port: 9100 });
    expect(loadConfig({ ...base, WORKER_METRICS_PORT: '0' }).jobs.metrics).toBeNull();
    expect(problems({ ...base, WORKER_METRICS_PORT: '70000' }).join('\n')).toMatch(/WORKER_METRICS_PORT/);
    expect(problems({ ...base, WORKER_METRICS_PORT: 'on' }).join('\n')).toMatch(/WORKER_METRICS_PORT/);
    expect(problems({ ...base, WORKER_METRICS_HOST: 'http://x/' }).join('\n')).toMatch(/WORKER_METRICS_HOST/);
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

  it('webhooks are https only by default; plain http everywhere, or to loopback only (the dev setting), on request', () => {
    expect(loadConfig(base).delivery).toMatchObject({ allowHttp: false, httpLoopbackOnly: false });
    expect(loadConfig({ ...base, WEBHOOK_ALLOW_HTTP: 'true' }).delivery).toMatchObject({ allowHttp: true, httpLoopbackOnly: false });
    expect(loadConfig({ ...base, WEBHOOK_ALLOW_HTTP: 'loopback' }).delivery).toMatchObject({ allowHttp: true, httpLoopbackOnly: true });
    expect(problems({ ...base, WEBHOOK_ALLOW_HTTP: 'yes' }).join()).toMatch(/WEBHOOK_ALLOW_HTTP/);
  });

  it('never echoes a value, which may be a secret', () => {
    const secret = 's.' + 'SECRETSECRETSECRETSECRET';
    const p = problems({ VAULT_ADDR: secret, VAULT_TOKEN: secret, VAULT_TIMEOUT_MS: secret });
    expect(p.join('\n')).not.toContain(secret);
  });
  describe('Redis topologies', () => {
    it('defaults to one local Redis and keeps REDIS_PREFIX as the key prefix', () => {
      const r = loadConfig(base).redis;
      expect(r).toMatchObject({ topology: { kind: 'standalone', url: 'redis://127.0.0.1:6379' }, prefix: 'latchkey', shardedPrefix: 'latchkey', tls: null });
      // An empty variable counts as unset (a compose file's "REDIS_URL=").
      expect(loadConfig({ ...base, REDIS_URL: '', REDIS_CLUSTER_NODES: '10.0.0.1:7000' }).redis.topology.kind).toBe('cluster');
    });

    it('reads Sentinel: sentinels, master name, both passwords and TLS', () => {
      const ca = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lkcfg-')), 'ca.pem');
      fs.writeFileSync(ca, 'not checked here');
      const r = loadConfig({ ...base, REDIS_SENTINELS: '10.0.0.1:26379, sentinel-b.internal:26380,[fd00::1]:26381', REDIS_SENTINEL_NAME: 'latchkey', REDIS_PASSWORD: 'pw1', REDIS_SENTINEL_PASSWORD: 'pw2', REDIS_TLS: 'true', REDIS_CACERT: ca, REDIS_PREFIX: 'lk' }).redis;
      expect(r.topology).toEqual({
        kind: 'sentinel',
        name: 'latchkey',
        sentinels: [
          { host: '10.0.0.1', port: 26379 },
          { host: 'sentinel-b.internal', port: 26380 },
          { host: 'fd00::1', port: 26381 },
        ],
      });
      expect(r).toMatchObject({ password: 'pw1', sentinelPassword: 'pw2', tls: { caFile: ca }, prefix: 'lk', shardedPrefix: 'lk' });
    });

    it('reads a Cluster, whose shared keys get REDIS_PREFIX as a hash tag', () => {
      const r = loadConfig({ ...base, REDIS_CLUSTER_NODES: '127.0.0.1:7000,127.0.0.1:7001', REDIS_TLS: '1', REDIS_PREFIX: 'lk' }).redis;
      expect(r.topology).toEqual({ kind: 'cluster', nodes: [{ host: '127.0.0.1', port: 7000 }, { host: '127.0.0.1', port: 7001 }] });
      expect(r).toMatchObject({ prefix: '{lk}', shardedPrefix: 'lk', tls: {} });
    });

    it('refuses a mix of topologies, naming the variables', () => {
      const mixed = problems({ ...base, REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7000' }).join('\n');
      expect(mixed).toMatch(/REDIS_URL, REDIS_CLUSTER_NODES: configure exactly one Redis topology/);
      expect(problems({ ...base, REDIS_SENTINELS: 'a:1', REDIS_SENTINEL_NAME: 'm', REDIS_CLUSTER_NODES: 'b:2' }).join()).toMatch(/REDIS_SENTINELS, REDIS_CLUSTER_NODES/);
      expect(problems({ ...base, REDIS_URL: 'redis://x:1', REDIS_SENTINELS: 'a:1', REDIS_CLUSTER_NODES: 'b:2' }).join()).toMatch(/REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES/);
    });

    it('refuses malformed host:port lists, naming the entry', () => {
      for (const bad of ['127.0.0.1', '127.0.0.1:0', 'host:65536', 'host:port', ':7000', '127.0.0.1:7000,', 'a b:1', 'fd00::1:7000', '[not-v6]:7000', 'redis://h:1']) {
        const p = problems({ ...base, REDIS_CLUSTER_NODES: bad }).join('\n');
        expect([bad, p]).toEqual([bad, expect.stringMatching(/REDIS_CLUSTER_NODES: ".*" is not host:port/)]);
      }
      expect(problems({ ...base, REDIS_SENTINELS: '10.0.0.1:26379,nope', REDIS_SENTINEL_NAME: 'm' }).join()).toMatch(/REDIS_SENTINELS: "nope" is not host:port/);
      expect(parseHostPort(' [::1]:6379 ')).toEqual({ host: '::1', port: 6379 });
      expect(parseHostPort('redis-0.redis.svc.cluster.local:6379')).toEqual({ host: 'redis-0.redis.svc.cluster.local', port: 6379 });
    });

    it('refuses options that do not fit the topology', () => {
      expect(problems({ ...base, REDIS_SENTINELS: '127.0.0.1:26379' }).join()).toMatch(/REDIS_SENTINEL_NAME is required/);
      expect(problems({ ...base, REDIS_SENTINEL_NAME: 'm' }).join()).toMatch(/REDIS_SENTINEL_NAME is for Sentinel only/);
      expect(problems({ ...base, REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_SENTINEL_PASSWORD: 'x' }).join()).toMatch(/REDIS_SENTINEL_PASSWORD is for Sentinel only/);
      expect(problems({ ...base, REDIS_URL: 'redis://127.0.0.1:6379', REDIS_TLS: 'true' }).join()).toMatch(/rediss:\/\//);
      expect(problems({ ...base, REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_CACERT: '/etc/hostname' }).join()).toMatch(/REDIS_CACERT needs TLS/);
      expect(problems({ ...base, REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_TLS: 'true', REDIS_CACERT: '/nonexistent/ca.pem' }).join()).toMatch(/REDIS_CACERT: no such file/);
      expect(problems({ ...base, REDIS_TLS: 'yes please' }).join()).toMatch(/REDIS_TLS must be true or false/);
      expect(problems({ ...base, REDIS_SENTINELS: 'a:1', REDIS_SENTINEL_NAME: 'bad name' }).join()).toMatch(/REDIS_SENTINEL_NAME must be/);
    });

    it('never echoes a Redis password', () => {
      const secret = 'SECRETSECRETSECRETSECRET';
      const p = problems({ ...base, REDIS_URL: `redis://:${secret}@127.0.0.1:6379`, REDIS_PASSWORD: secret, REDIS_SENTINEL_PASSWORD: secret, REDIS_CLUSTER_NODES: '127.0.0.1:7000' });
      expect(p.join('\n')).toMatch(/REDIS_URL, REDIS_CLUSTER_NODES/);
      expect(p.join('\n')).not.toContain(secret);
      const q = problems({ ...base, REDIS_URL: `redis://:${secret}@127.0.0.1:6379`, REDIS_PASSWORD: secret });
      expect(q.join('\n')).toMatch(/REDIS_PASSWORD: REDIS_URL already carries a password/);
      expect(q.join('\n')).not.toContain(secret);
    });
  });
});

import { Redis } from 'ioredis';
import { RunningApi, startApi } from './support/app';
import { call } from './support/http';
import { mintKey, operatorToken, vaultToken } from './support/keys';
import { rootVault, uniqueId } from './support/stack';

/** Every page of GET /v1/apps for a caller, following the cursor to the end. */
async function allPages(url: string, auth: { token?: string; bearer?: string }, limit?: number) {
  const pages: Array<{ items: Array<{ appId: string; keys: string[]; certs: string[] }>; nextCursor: string | null }> = [];
  let cursor: string | null = null;
  for (let i = 0; i < 50; i++) {
    const q = [limit ? `limit=${limit}` : '', cursor ? `cursor=${cursor}` : ''].filter(Boolean).join('&');
    const r = await call(url, 'GET', `/v1/apps${q ? `?${q}` : ''}`, auth);
    expect(r.status).toBe(200);
    pages.push(r.body);
    cursor = r.body.nextCursor;
    if (!cursor) return pages;
  }
  throw new Error('the cursor never ended');
}

describe('GET /v1/apps: the apps a caller may see (own stack prefix)', () => {
  let api: RunningApi;
  let redis: Redis;
  const prefix = uniqueId('lkapps');
  // Names in byte order a < b < c < legacy < w, so pages are predictable.
  const tag = uniqueId('x').slice(2);
  const [a, b, c, legacy, w] = ['a', 'b', 'c', 'l', 'w'].map((s) => `${s}${tag}`);
  let op: { token: string };

  /** A token whose only latchkey rights are `rules` (path → capabilities). */
  async function tokenWith(rules: Record<string, string[]>): Promise<string> {
    const name = uniqueId('apps-test');
    const policy = Object.entries(rules)
      .map(([p, caps]) => `path "${p}" {\n  capabilities = ${JSON.stringify(caps)}\n}\n`)
      .join('');
    await rootVault().raw('PUT', `sys/policies/acl/${name}`, { policy });
    return (await vaultToken([name])).token;
  }

  beforeAll(async () => {
    redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    // An app indexed before the registry existed: only its per-app key set is in Redis.
    await redis.zadd(`${prefix}:keys:app:${legacy}`, 0, `${String(Date.now()).padStart(13, '0')}:LEGACYaccessor000000001`);
    api = await startApi({ REDIS_PREFIX: prefix, ROTATION_SCAN_EVERY: '0', RECONCILE_EVERY: '0', EXPIRY_SWEEP_EVERY: '0', WEBHOOK_ALLOW_HTTP: 'loopback', WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8' });
    op = await operatorToken();
    for (const app of [a, b, c]) await mintKey(api.url, op.token, { appId: app, profile: 'default', name: 'k' });
    const hook = await call(api.url, 'PUT', `/v1/apps/${w}/webhook`, { token: op.token, body: { url: 'http://127.0.0.1:9/hook' } });
    expect(hook.status).toBe(200);
  }, 60_000);

  afterAll(async () => {
    await api?.close();
    await redis?.quit();
  });

  it('an operator sees every app (keys, webhook-only, and one indexed before the registry), with its capabilities', async () => {
    const r = await call(api.url, 'GET', '/v1/apps', { token: op.token });
    expect(r.status).toBe(200);
    expect(r.body.nextCursor).toBeNull();
    expect(r.body.items.map((i: { appId: string }) => i.appId)).toEqual([a, b, c, legacy, w]);
    const caps = ['create', 'delete', 'list', 'read', 'update'];
    for (const item of r.body.items) expect({ ...item, keys: [...item.keys].sort(), certs: [...item.certs].sort() }).toEqual({ appId: item.appId, keys: caps, certs: caps });
    // Root: every capability, said as Vault says it.
    const root = await call(api.url, 'GET', '/v1/apps', { token: process.env.VAULT_TOKEN });
    expect(root.body.items).toContainEqual({ appId: b, keys: ['root'], certs: ['root'] });
  });

  it('limit and cursor page through by name, every app once', async () => {
    const pages = await allPages(api.url, { token: op.token }, 2);
    expect(pages.map((p) => p.items.map((i) => i.appId))).toEqual([[a, b], [c, legacy], [w]]);
    expect(pages[pages.length - 1].nextCursor).toBeNull();
    const ones = await allPages(api.url, { token: op.token }, 1);
    expect(ones.flatMap((p) => p.items.map((i) => i.appId))).toEqual([a, b, c, legacy, w]);
  });

  it('a caller whose policy covers app A only sees A, and never learns that B exists (items or cursors)', async () => {
    const onlyA = await tokenWith({ [`latchkey/apps/${a}/keys`]: ['read'] });
    for (const limit of [undefined, 1, 2]) {
      const pages = await allPages(api.url, { token: onlyA }, limit);
      expect(pages.flatMap((p) => p.items)).toEqual([{ appId: a, keys: ['read'], certs: [] }]);
      const seen = JSON.stringify(pages);
      for (const other of [b, c, legacy, w]) expect(seen).not.toContain(other);
      // Cursors are opaque: none decodes to a name.
      for (const p of pages) if (p.nextCursor) for (const other of [b, c, legacy, w]) expect(Buffer.from(p.nextCursor, 'base64url').toString('latin1')).not.toContain(other);
    }
    // A page that met only apps the caller may not see is empty and still carries a cursor (a request reads a
    // bounded number of registry pages), which leads on to the caller's app.
    const onlyW = await tokenWith({ [`latchkey/apps/${w}/keys`]: ['read'] });
    const wPages = await allPages(api.url, { token: onlyW }, 1);
    expect(wPages[0]).toEqual({ items: [], nextCursor: expect.any(String) });
    expect(wPages.flatMap((p) => p.items)).toEqual([{ appId: w, keys: ['read'], certs: [] }]);
    // list on keys, or read on certificates, also shows an app; other capabilities alone do not.
    const lister = await tokenWith({ [`latchkey/apps/${b}/keys`]: ['list'], [`latchkey/apps/${c}/keys`]: ['create', 'update'] });
    expect((await allPages(api.url, { token: lister })).flatMap((p) => p.items)).toEqual([{ appId: b, keys: ['list'], certs: [] }]);
    const certReader = await tokenWith({ [`latchkey/apps/${c}/certs`]: ['read'] });
    expect((await allPages(api.url, { token: certReader })).flatMap((p) => p.items)).toEqual([{ appId: c, keys: [], certs: ['read'] }]);
    // A glob policy covers what it matches, as Vault evaluates it.
    const globbed = await tokenWith({ 'latchkey/apps/a*': ['read'] });
    expect((await allPages(api.url, { token: globbed })).flatMap((p) => p.items.map((i) => i.appId))).toContain(a);
    // A key (no latchkey rights of its own) and a token without latchkey policies see nothing.
    const key = await mintKey(api.url, op.token, { appId: a, profile: 'default', name: 'plain' });
    expect((await allPages(api.url, { bearer: key.key })).flatMap((p) => p.items)).toEqual([]);
    expect((await allPages(api.url, { token: (await vaultToken(['default'])).token })).flatMap((p) => p.items)).toEqual([]);
  });

  it('400 on a bad cursor or limit, 401 without a credential', async () => {
    const sealed = (await call(api.url, 'GET', '/v1/apps?limit=1', { token: op.token })).body.nextCursor as string;
    const tampered = sealed.slice(0, -2) + (sealed.endsWith('AA') ? 'BB' : 'AA');
    for (const q of ['cursor=garbage', 'cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', `cursor=${tampered}`, 'cursor=a%2Fb', 'cursor=', `cursor=${'A'.repeat(600)}`, 'limit=0', 'limit=501', 'limit=x', 'limit=1.5', 'limit=-1', 'other=1']) {
      const r = await call(api.url, 'GET', `/v1/apps?${q}`, { token: op.token });
      expect([q, r.status, r.body.error?.code, typeof r.body.error?.requestId]).toEqual([q, 400, 'VALIDATION_FAILED', 'string']);
    }
    expect((await call(api.url, 'GET', `/v1/apps?limit=500&cursor=${sealed}`, { token: op.token })).status).toBe(200);
    const anon = await call(api.url, 'GET', '/v1/apps');
    expect([anon.status, anon.body.error.code]).toEqual([401, 'UNAUTHENTICATED']);
    expect((await call(api.url, 'GET', '/v1/apps', { token: 'hvs.not-a-real-token-000000000000' })).status).toBe(401);
  });

  it('a full page of 500 spans several Vault calls (OpenBao takes at most 1000 strings in a JSON body)', async () => {
    // Registered after every other test's listing (names after w…), so they see only their own apps.
    const many = Array.from({ length: 700 }, (_, i) => `y${tag}-${String(i).padStart(3, '0')}`);
    await redis.zadd(`${prefix}:apps`, ...many.flatMap((m) => [0, m]));
    const pages = await allPages(api.url, { token: op.token }, 500);
    expect(pages.map((p) => p.items.length)).toEqual([500, 205]);
    expect(pages.flatMap((p) => p.items.map((i) => i.appId))).toEqual([a, b, c, legacy, w, ...many]);
    const onlyA = await tokenWith({ [`latchkey/apps/${a}/keys`]: ['read'] });
    expect((await allPages(api.url, { token: onlyA }, 500)).flatMap((p) => p.items.map((i) => i.appId))).toEqual([a]);
  });

  it('is in the OpenAPI document', async () => {
    const doc = await call(api.url, 'GET', '/openapi.json');
    expect(Object.keys(doc.body.paths)).toContain('/v1/apps');
  });
});

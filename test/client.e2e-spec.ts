import * as fs from 'node:fs';
import * as path from 'node:path';
import { inspect, isDeepStrictEqual } from 'node:util';
import { BaoServer, projectRoot, startBao } from '@latchkey/devstack';
import { LatchkeyApiError, LatchkeyClient } from '@latchkey/client';
import { RunningApi, startApi } from './support/app';
import { createProfile, operatorToken } from './support/keys';
import { uniqueId } from './support/stack';

/** A fetch that records what each attempt sent (method, path, Idempotency-Key) and passes it on. */
function recordingFetch(): { fetch: (req: Request) => Promise<Response>; sent: { method: string; path: string; idempotencyKey: string | null }[] } {
  const sent: { method: string; path: string; idempotencyKey: string | null }[] = [];
  return {
    sent,
    fetch: (req) => {
      sent.push({ method: req.method, path: new URL(req.url).pathname, idempotencyKey: req.headers.get('idempotency-key') });
      return fetch(req);
    },
  };
}

/** Every way an error reaches a log: message, stack, JSON, util.inspect (console.log), String(). */
function everyRendering(err: unknown): string {
  return [String(err), (err as Error).stack, JSON.stringify(err), inspect(err, { depth: 10, showHidden: true })].join('\n');
}

async function caught(p: Promise<unknown>): Promise<LatchkeyApiError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof LatchkeyApiError) return err;
    throw err;
  }
  throw new Error('expected a LatchkeyApiError, the call succeeded');
}

describe('@latchkey/client against the real stack', () => {
  let api: RunningApi;
  let op: string;
  let profile: string;

  beforeAll(async () => {
    [api, { token: op }] = await Promise.all([startApi(), operatorToken()]);
    profile = await createProfile(api.url, op);
  });
  afterAll(async () => {
    await api.close();
  });

  it('mints with an Idempotency-Key (generated when none is given); a replay answers the same keyId without the key', async () => {
    const rec = recordingFetch();
    const client = new LatchkeyClient({ baseUrl: api.url, vaultToken: op, fetch: rec.fetch });
    const appId = uniqueId('app');
    const body = { appId, profile, name: 'orders-prod', ttl: '30m', policies: ['orders-read'] };

    const generated = await client.keys.mint(body);
    expect(generated.key).toMatch(/^lk_/);
    expect(rec.sent[0]).toMatchObject({ method: 'POST', path: '/v1/keys' });
    expect(rec.sent[0].idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);

    const idempotencyKey = uniqueId('idem');
    const first = await client.keys.mint(body, { idempotencyKey });
    const replay = await client.keys.mint(body, { idempotencyKey });
    expect(first.key).toMatch(/^lk_/);
    expect(replay.keyId).toBe(first.keyId);
    expect(replay.key).toBeUndefined();
    expect(first.keyId).not.toBe(generated.keyId);
    expect(rec.sent.slice(1).map((s) => s.idempotencyKey)).toEqual([idempotencyKey, idempotencyKey]);

    // Only the mint gets one: other calls are not made idempotent behind the caller's back.
    await client.keys.get(first.keyId);
    expect(rec.sent[3]).toMatchObject({ method: 'GET', idempotencyKey: null });
  });

  it('a mint retried after a 503 sends the same body and Idempotency-Key again and succeeds once', async () => {
    // The first attempt gets a 503 + Retry-After as a load balancer in front of a restarting api would
    // answer it (never reaching the api); the second goes to the real api.
    const sent: { idempotencyKey: string | null; body: string }[] = [];
    const fetchWithOne503 = async (req: Request): Promise<Response> => {
      sent.push({ idempotencyKey: req.headers.get('idempotency-key'), body: await req.clone().text() });
      if (sent.length === 1) return new Response('{"error":{"code":"VAULT_UNAVAILABLE","message":"unavailable","requestId":"lb"}}', { status: 503, headers: { 'retry-after': '1', 'content-type': 'application/json' } });
      return fetch(req);
    };
    const client = new LatchkeyClient({ baseUrl: api.url, vaultToken: op, fetch: fetchWithOne503 });
    const k = await client.keys.mint({ appId: uniqueId('app'), profile, name: 'retried', ttl: '10m' });
    expect(k.key).toMatch(/^lk_/);
    expect(sent).toHaveLength(2);
    expect(sent[1]).toEqual(sent[0]);
    expect(JSON.parse(sent[1].body)).toMatchObject({ name: 'retried' });
  });

  it('verifies, rotates and revokes through the facade', async () => {
    const client = new LatchkeyClient({ baseUrl: api.url, vaultToken: op });
    const k = await client.keys.mint({ appId: uniqueId('app'), profile, name: 'k', ttl: '1h', policies: ['orders-read'] });
    expect(await client.verify({ key: k.key!, permissions: ['orders-read'] })).toMatchObject({ valid: true, code: 'VALID', keyId: k.keyId });
    expect((await client.verify({ key: k.key!, permissions: ['orders-write'] })).code).toBe('INSUFFICIENT_PERMISSIONS');

    const listed = await client.keys.list({ appId: k.appId });
    expect(listed.items.map((i) => i.keyId)).toEqual([k.keyId]);

    const successor = await client.keys.rotate(k.keyId, { grace: '1m', deliver: false });
    expect(successor.key).toMatch(/^lk_/);
    expect(successor.keyId).not.toBe(k.keyId);
    expect(successor.previousKeyId).toBe(k.keyId);
    expect((await client.verify({ key: successor.key! })).code).toBe('VALID');

    await client.keys.revoke(successor.keyId);
    expect((await client.keys.get(successor.keyId)).state).toBe('revoked');
    expect((await client.verify({ key: successor.key! })).code).toBe('NOT_FOUND');
    // idempotent, as the api documents
    await client.keys.revoke(successor.keyId);

    expect((await client.profiles.list()).items.map((p) => p.name)).toContain(profile);
  });

  it('throws a LatchkeyApiError with status, code, message and requestId, and no secret of the request', async () => {
    const client = new LatchkeyClient({ baseUrl: api.url, vaultToken: op });
    const k = await client.keys.mint({ appId: uniqueId('app'), profile, name: 'k', ttl: '1h' });
    const secrets = [op, k.key!];

    // A validation error on a body that carries a key (in meta) and a request that carries the Vault token.
    const invalid = await caught(client.keys.mint({ appId: k.appId, profile, name: 'k2', ttl: 'forever', meta: { leaked: k.key! } }));
    expect(invalid).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
    expect(invalid.message).toBeTruthy();
    expect(invalid.requestId).toBeTruthy();

    // A key used as a management credential: the api refuses it; the key is in the Authorization header.
    const asManager = new LatchkeyClient({ baseUrl: api.url, managementKey: k.key! });
    const refused = await caught(asManager.keys.get(k.keyId));
    expect([401, 403]).toContain(refused.status);
    expect(refused.code).toMatch(/^[A-Z_]+$/);

    const missing = await caught(client.keys.get('AAAAAAAAAAAAAAAAAAAAAAAA'));
    expect(missing).toMatchObject({ status: 404, code: 'NOT_FOUND' });

    for (const err of [invalid, refused, missing]) {
      const text = everyRendering(err);
      for (const s of secrets) expect(text).not.toContain(s);
      expect(text).not.toMatch(/x-vault-token|authorization/i);
      expect(Object.keys(err.toJSON()).sort()).toEqual(['code', 'details', 'message', 'name', 'requestId', 'status']);
    }
  });

  it('reports an unreachable api as NETWORK_ERROR without the request', async () => {
    const client = new LatchkeyClient({ baseUrl: 'http://127.0.0.1:1', vaultToken: op });
    const err = await caught(client.keys.get('AAAAAAAAAAAAAAAAAAAAAAAA'));
    expect(err).toMatchObject({ status: 0, code: 'NETWORK_ERROR', requestId: null });
    expect(everyRendering(err)).not.toContain(op);
  });

  it('the committed OpenAPI document (libs/client/openapi.json) is what the running api serves', async () => {
    // Both parsed here, from text: fetch's .json() builds objects of another realm than jest's, which a strict
    // deep-equal tells apart. Key order is ignored (normalised JSON), values and arrays are not.
    const live: unknown = JSON.parse(await (await fetch(`${api.url}/openapi.json`)).text());
    const committed: unknown = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'libs', 'client', 'openapi.json'), 'utf8'));
    if (!isDeepStrictEqual(live, committed)) {
      const l = live as { paths: Record<string, unknown> };
      const c = committed as { paths: Record<string, unknown> };
      const differing = [...new Set([...Object.keys(l.paths), ...Object.keys(c.paths)])].filter((p) => !isDeepStrictEqual(l.paths[p], c.paths[p]));
      throw new Error(
        'libs/client/openapi.json is out of date with the api (paths differing: ' +
          `${differing.join(', ') || 'none; components or info differ'}). Regenerate it and the client's types with ` +
          '`npm run build && npm run client:openapi` (no server needed), then commit libs/client/openapi.json and libs/client/src/schema.ts.',
      );
    }
  });
});

describe('@latchkey/client retrying a 503', () => {
  let bao: BaoServer;
  let api: RunningApi;

  beforeAll(async () => {
    bao = await startBao();
    api = await startApi({ VAULT_ADDR: bao.addr, VAULT_TOKEN: bao.rootToken, VAULT_TIMEOUT_MS: '1000' });
    await bao.stop();
  });
  afterAll(async () => {
    await api.close();
  });

  it('retries after Retry-After up to maxAttempts, with the same Idempotency-Key, then throws the 503', async () => {
    const rec = recordingFetch();
    const client = new LatchkeyClient({ baseUrl: api.url, vaultToken: bao.rootToken, fetch: rec.fetch, retry: { maxAttempts: 3, maxTotalWaitMs: 60_000 } });
    const err = await caught(client.keys.mint({ appId: 'x', profile: 'default', name: 'k' }));
    expect(err.status).toBe(503);
    expect(err.code).toMatch(/^VAULT_(UNAVAILABLE|TIMEOUT)$/);
    expect(rec.sent).toHaveLength(3);
    expect(new Set(rec.sent.map((s) => s.idempotencyKey)).size).toBe(1);
    expect(rec.sent[0].idempotencyKey).toBeTruthy();
    expect(everyRendering(err)).not.toContain(bao.rootToken);
  });

  it('does not wait past maxTotalWaitMs: a Retry-After beyond the budget returns the 503 at once', async () => {
    const rec = recordingFetch();
    const res = await new LatchkeyClient({ baseUrl: api.url, vaultToken: bao.rootToken, fetch: rec.fetch, retry: { maxAttempts: 5, maxTotalWaitMs: 500 } }).api.GET(
      '/v1/keys/{keyId}',
      { params: { path: { keyId: 'AAAAAAAAAAAAAAAAAAAAAAAA' } } },
    );
    expect(res.response.status).toBe(503);
    expect(Number(res.response.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(rec.sent).toHaveLength(1);
  });

  it('maxAttempts 1 disables retrying', async () => {
    const rec = recordingFetch();
    const err = await caught(new LatchkeyClient({ baseUrl: api.url, vaultToken: bao.rootToken, fetch: rec.fetch, retry: { maxAttempts: 1 } }).keys.list());
    expect(err.status).toBe(503);
    expect(rec.sent).toHaveLength(1);
  });
});

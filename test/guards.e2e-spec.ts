import 'reflect-metadata';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { Controller, Get, Module, Req } from '@nestjs/common';
import { NestFactory, Reflector } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { freePort } from '@latchkey/devstack';
import { LatchkeyVerifier, latchkeyExpress, latchkeyFastify, REFUSAL_MESSAGES } from '@latchkey/guards';
// The monorepo maps @latchkey/<lib> to its src folder only; published, this is '@latchkey/guards/nest'.
import { LatchkeyGuard, LatchkeyPermissions } from '../libs/guards/src/nest';
import { REFUSAL_BODIES } from '../apps/api/src/verify/verify.routes';
import { RunningApi, startApi } from './support/app';
import { call } from './support/http';
import { mintKey } from './support/keys';
import { randomKey } from './support/security';
import { uniqueId } from './support/stack';

/**
 * The guards of issue 16 in real small apps of their frameworks (NestJS on Fastify, Fastify, Express), each
 * verifying through the real api (spawned, real OpenBao and Redis). Between the guard and the api sits a
 * pass-through proxy the test can turn into "latchkey answers 503" or "latchkey unreachable" for the
 * fail-closed and stale-grace cases.
 */

const rootToken = (): string => process.env.VAULT_TOKEN!;

type ProxyMode = 'up' | '503' | 'reset';

interface App {
  url: string;
  close(): Promise<void>;
}

/** Every adapter serves GET /whoami (any valid key, answers req.latchkey) and GET /write (needs orders-write). */
type AppFactory = (verifier: LatchkeyVerifier) => Promise<App>;

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const expressApp: AppFactory = async (verifier) => {
  const app = express();
  app.get('/whoami', latchkeyExpress({ verifier }), (req, res) => void res.json(req.latchkey));
  app.get('/write', latchkeyExpress({ verifier, permissions: ['orders-write'] }), (req, res) => void res.json(req.latchkey));
  const server = http.createServer(app);
  const url = await listen(server);
  return { url, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
};

const fastifyApp: AppFactory = async (verifier) => {
  const app = Fastify();
  await app.register(latchkeyFastify, { verifier });
  app.get('/whoami', async (req) => req.latchkey);
  app.get('/write', { config: { latchkey: { permissions: ['orders-write'] } } }, async (req) => req.latchkey);
  app.get('/open', { config: { latchkey: false } }, async () => ({ open: true }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, close: () => app.close() };
};

@Controller()
class GuardedController {
  @Get('whoami')
  whoami(@Req() req: { latchkey?: unknown }) {
    return req.latchkey;
  }

  @Get('write')
  @LatchkeyPermissions('orders-write')
  write(@Req() req: { latchkey?: unknown }) {
    return req.latchkey;
  }
}

@Module({ controllers: [GuardedController] })
class GuardedModule {}

const nestApp: AppFactory = async (verifier) => {
  const app = await NestFactory.create<NestFastifyApplication>(GuardedModule, new FastifyAdapter(), { logger: false });
  app.useGlobalGuards(new LatchkeyGuard(verifier, app.get(Reflector)));
  await app.listen(0, '127.0.0.1');
  return { url: await app.getUrl(), close: () => app.close() };
};

describe('guards for services that verify through latchkey', () => {
  let api: RunningApi;
  let proxy: http.Server;
  let proxyUrl: string;
  let mode: ProxyMode = 'up';
  let profile: string;
  let limitedProfile: string;
  let reader: { key: string; keyId: string };
  let revoked: { key: string; keyId: string };

  beforeAll(async () => {
    api = await startApi();
    const target = new URL(api.url);
    // Keep-alive on both sides, as a real load balancer in front of latchkey.
    const upstream = new http.Agent({ keepAlive: true });
    proxy = http.createServer((req, res) => {
      if (mode === 'reset') return void req.socket.destroy();
      if (mode === '503') {
        req.resume();
        return void res.writeHead(503, { 'retry-after': '7', 'content-type': 'application/json' }).end('{"error":{"code":"VAULT_UNAVAILABLE","message":"x"}}');
      }
      const out = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent: upstream }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      out.on('error', () => res.destroy());
      req.pipe(out);
    });
    proxyUrl = await listen(proxy);

    profile = uniqueId('gp');
    limitedProfile = uniqueId('gl');
    for (const [name, extra] of [[profile, {}], [limitedProfile, { limits: [{ name: 'requests', limit: 1, window: '60s' }] }]] as const) {
      const res = await call(api.url, 'PUT', `/v1/profiles/${name}`, { token: rootToken(), body: { allowedPolicies: ['orders-read', 'orders-write'], ttl: '1h', maxTtl: '24h', ...extra } });
      if (res.status !== 201) throw new Error(`profile: ${res.status} ${JSON.stringify(res.body)}`);
    }
    reader = await mintKey(api.url, rootToken(), { appId: uniqueId('app'), profile, name: 'reader', policies: ['orders-read'] });
    revoked = await mintKey(api.url, rootToken(), { appId: uniqueId('app'), profile, name: 'gone', policies: ['orders-read'] });
    expect((await call(api.url, 'DELETE', `/v1/keys/${revoked.keyId}`, { token: rootToken() })).status).toBe(204);
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => (proxy ? proxy.close(() => resolve()) : resolve()));
    await api?.close();
  });
  afterEach(() => {
    mode = 'up';
  });

  it("refuses with forward auth's bodies, word for word", () => {
    for (const [code, message] of Object.entries(REFUSAL_MESSAGES)) {
      expect(JSON.parse(REFUSAL_BODIES[code as keyof typeof REFUSAL_BODIES].toString())).toEqual({ error: { code, message } });
    }
    expect(Object.keys(REFUSAL_MESSAGES).sort()).toEqual(Object.keys(REFUSAL_BODIES).sort());
  });

  describe.each([
    ['Express', expressApp],
    ['Fastify', fastifyApp],
    ['NestJS', nestApp],
  ])('%s', (_name, factory) => {
    let strict: LatchkeyVerifier;
    let grace: LatchkeyVerifier;
    let strictApp: App;
    let graceApp: App;
    const reasons: string[] = [];

    beforeAll(async () => {
      strict = new LatchkeyVerifier({ url: proxyUrl, onUnavailable: (r) => reasons.push(r) });
      grace = new LatchkeyVerifier({ url: proxyUrl, staleGraceMs: 10 * 60_000, onUnavailable: (r) => reasons.push(r) });
      [strictApp, graceApp] = await Promise.all([factory(strict), factory(grace)]);
    });
    afterAll(async () => {
      await Promise.all([strictApp?.close(), graceApp?.close()]);
      strict?.close();
      grace?.close();
    });

    const get = (app: App, path: string, headers: Record<string, string> = {}) => call(app.url, 'GET', path, { headers });

    it('accepts a valid key from Bearer, X-API-Key and Basic, and puts the verdict on the request', async () => {
      const basicAsUser = Buffer.from(`${reader.key}:`).toString('base64');
      const basicAsPassword = Buffer.from(`${reader.keyId}:${reader.key}`).toString('base64');
      const forms: Array<Record<string, string>> = [{ authorization: `Bearer ${reader.key}` }, { 'x-api-key': reader.key }, { authorization: `Basic ${basicAsUser}` }, { authorization: `Basic ${basicAsPassword}` }];
      for (const headers of forms) {
        const res = await get(strictApp, '/whoami', headers);
        expect([Object.keys(headers)[0], res.status]).toEqual([Object.keys(headers)[0], 200]);
        expect(res.body).toMatchObject({ valid: true, code: 'VALID', keyId: reader.keyId, name: 'reader' });
        expect(res.body.policies).toContain('orders-read');
        expect(res.body.stale).toBeUndefined();
      }
    });

    it('rejects a missing (401), malformed (401), unknown or revoked (401) and under-privileged (403) key', async () => {
      const missing = await get(strictApp, '/whoami');
      expect([missing.status, missing.headers.get('www-authenticate'), missing.body]).toEqual([401, 'Bearer realm="latchkey"', { error: { code: 'MISSING', message: REFUSAL_MESSAGES.MISSING } }]);
      expect((await get(strictApp, '/whoami', { authorization: 'Bearer' })).body.error.code).toBe('MISSING');

      for (const [bad, code] of [
        ['not-a-key', 'MALFORMED'],
        [`lk_${'x'.repeat(5000)}`, 'MALFORMED'],
        [randomKey(), 'NOT_FOUND'],
        [revoked.key, 'NOT_FOUND'],
      ]) {
        const res = await get(strictApp, '/whoami', { authorization: `Bearer ${bad}` });
        expect([code, res.status, res.headers.get('x-latchkey-code'), res.headers.get('www-authenticate'), res.body]).toEqual([
          code,
          401,
          code,
          'Bearer realm="latchkey", error="invalid_token"',
          { error: { code, message: REFUSAL_MESSAGES[code as keyof typeof REFUSAL_MESSAGES] } },
        ]);
      }

      const under = await get(strictApp, '/write', { 'x-api-key': reader.key });
      expect([under.status, under.body]).toEqual([403, { error: { code: 'INSUFFICIENT_PERMISSIONS', message: REFUSAL_MESSAGES.INSUFFICIENT_PERMISSIONS } }]);
      // And forward auth says the same about the same key.
      const fa = await call(api.url, 'GET', '/v1/auth', { headers: { 'x-api-key': reader.key, 'x-latchkey-permissions': 'orders-write' } });
      expect([fa.status, fa.body]).toEqual([under.status, under.body]);
    });

    it('answers 429 with Retry-After and the RateLimit fields once the key is rate limited', async () => {
      const k = await mintKey(api.url, rootToken(), { appId: uniqueId('app'), profile: limitedProfile, name: 'limited' });
      const ok = await get(strictApp, '/whoami', { authorization: `Bearer ${k.key}` });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('ratelimit-policy')).toBe('"requests";q=1');
      expect(ok.headers.get('ratelimit')).toMatch(/^"requests";r=0;t=\d+$/);
      const limited = await get(strictApp, '/whoami', { authorization: `Bearer ${k.key}` });
      expect([limited.status, limited.headers.get('x-latchkey-code'), limited.body]).toEqual([429, 'RATE_LIMITED', { error: { code: 'RATE_LIMITED', message: REFUSAL_MESSAGES.RATE_LIMITED } }]);
      const retryAfter = Number(limited.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(limited.headers.get('ratelimit')).toMatch(/^"requests";r=0;t=\d+$/);
      // Credits spent: 429 too, as forward auth, with nothing to wait for.
      const c = await mintKey(api.url, rootToken(), { appId: uniqueId('app'), profile, name: 'credits', credits: { remaining: 1 } });
      expect((await get(strictApp, '/whoami', { 'x-api-key': c.key })).status).toBe(200);
      const spent = await get(strictApp, '/whoami', { 'x-api-key': c.key });
      expect([spent.status, spent.headers.get('retry-after'), spent.body.error.code]).toEqual([429, null, 'USAGE_EXCEEDED']);
      const c2 = await mintKey(api.url, rootToken(), { appId: uniqueId('app'), profile, name: 'credits2', credits: { remaining: 1 } });
      await call(api.url, 'GET', '/v1/auth', { headers: { 'x-api-key': c2.key } });
      const fa = await call(api.url, 'GET', '/v1/auth', { headers: { 'x-api-key': c2.key } });
      expect([fa.status, fa.headers.get('retry-after'), fa.body]).toEqual([spent.status, spent.headers.get('retry-after'), spent.body]);
    });

    it('fails closed with 503 and Retry-After when latchkey answers 503 or cannot be reached', async () => {
      mode = '503';
      const down = await get(strictApp, '/whoami', { authorization: `Bearer ${reader.key}` });
      expect([down.status, down.headers.get('retry-after'), down.body.error.code]).toEqual([503, '7', 'LATCHKEY_UNAVAILABLE']);
      mode = 'reset';
      const gone = await get(strictApp, '/whoami', { authorization: `Bearer ${reader.key}` });
      expect([gone.status, gone.headers.get('retry-after'), gone.body.error.code]).toEqual([503, '2', 'LATCHKEY_UNAVAILABLE']);
      // Nothing about the key in the answers nor in what the service is told.
      expect(JSON.stringify([down.body, gone.body, reasons])).not.toContain(reader.key);
      // A missing key is still a 401: it needs no verify.
      expect((await get(strictApp, '/whoami')).status).toBe(401);
    });

    it('stale grace (opt-in) lets a key verified VALID pass while latchkey is down, and nothing else', async () => {
      const fresh = await mintKey(api.url, rootToken(), { appId: uniqueId('app'), profile, name: 'fresh', policies: ['orders-read'] });
      expect((await get(graceApp, '/whoami', { 'x-api-key': reader.key })).status).toBe(200);
      expect((await get(graceApp, '/whoami', { 'x-api-key': revoked.key })).status).toBe(401);
      for (const m of ['503', 'reset'] as const) {
        mode = m;
        const stale = await get(graceApp, '/whoami', { 'x-api-key': reader.key });
        expect([m, stale.status, stale.body.keyId, stale.body.stale]).toEqual([m, 200, reader.keyId, true]);
        // Only with the grace: the strict verifier fails closed on the same key.
        expect((await get(strictApp, '/whoami', { 'x-api-key': reader.key })).status).toBe(503);
        // Never verified here, revoked, or lacking the route's permission: no grace.
        expect((await get(graceApp, '/whoami', { 'x-api-key': fresh.key })).status).toBe(503);
        expect((await get(graceApp, '/whoami', { 'x-api-key': revoked.key })).status).toBe(503);
        expect((await get(graceApp, '/write', { 'x-api-key': reader.key })).status).toBe(503);
      }
      // The memory holds digests, never the credential.
      const memory = (grace as unknown as { stale: Map<string, unknown> }).stale;
      expect(memory.size).toBe(1);
      expect(JSON.stringify([...memory.keys()])).not.toContain(reader.key);
    });
  });

  describe('verifier', () => {
    it('fails closed on a latchkey that accepts the connection and never answers (timeout)', async () => {
      const silent = http.createServer(() => undefined);
      const url = await listen(silent);
      const v = new LatchkeyVerifier({ url, timeoutMs: 300 });
      try {
        const d = await v.check({ headers: { 'x-api-key': reader.key } });
        expect(d).toMatchObject({ allowed: false, status: 503, headers: { 'Retry-After': '2' } });
      } finally {
        v.close();
        silent.closeAllConnections();
        silent.close();
      }
    });

    it('fails closed on a port nothing listens on', async () => {
      const v = new LatchkeyVerifier({ url: `http://127.0.0.1:${await freePort()}` });
      expect(await v.check({ headers: { 'x-api-key': reader.key } })).toMatchObject({ allowed: false, status: 503 });
      v.close();
    });

    it("checks a CIDR-bound key against the end client's address the framework resolved, not the service's", async () => {
      const k = await mintKey(api.url, rootToken(), { appId: uniqueId('app'), profile, name: 'cidr', cidrs: ['10.0.0.0/8'] });
      const v = new LatchkeyVerifier({ url: api.url });
      try {
        expect((await v.check({ headers: { 'x-api-key': k.key }, ip: '10.1.2.3' })).allowed).toBe(true);
        // What a dual-stack listener reports for an IPv4 client; and an IPv6 address with a zone.
        expect((await v.check({ headers: { 'x-api-key': k.key }, ip: '::ffff:10.1.2.3' })).allowed).toBe(true);
        expect(await v.check({ headers: { 'x-api-key': k.key }, ip: 'fe80::1%eth0' })).toMatchObject({ allowed: false, status: 403, code: 'FORBIDDEN_IP' });
        // An unknown client address is no address, not the service's own (127.0.0.1 here).
        const local = await mintKey(api.url, rootToken(), { appId: uniqueId('app'), profile, name: 'local', cidrs: ['127.0.0.0/8'] });
        expect((await v.check({ headers: { 'x-api-key': local.key }, ip: '127.0.0.1' })).allowed).toBe(true);
        for (const ip of [undefined, 'not-an-address']) expect(await v.check({ headers: { 'x-api-key': local.key }, ip })).toMatchObject({ allowed: false, status: 403, code: 'FORBIDDEN_IP' });
        expect((await v.check({ headers: { 'x-api-key': reader.key } })).allowed).toBe(true);
        expect(await v.check({ headers: { 'x-api-key': k.key }, ip: '192.0.2.1' })).toMatchObject({ allowed: false, status: 403, code: 'FORBIDDEN_IP' });
      } finally {
        v.close();
      }
    });

    it('leaves a Fastify route configured with latchkey: false open', async () => {
      const v = new LatchkeyVerifier({ url: api.url });
      const app = await fastifyApp(v);
      try {
        expect((await call(app.url, 'GET', '/open')).status).toBe(200);
        expect((await call(app.url, 'GET', '/whoami')).status).toBe(401);
      } finally {
        await app.close();
        v.close();
      }
    });

    it('bounds the stale-grace memory', async () => {
      const v = new LatchkeyVerifier({ url: api.url, staleGraceMs: 60_000, staleMaxEntries: 2 });
      const keys = await Promise.all([1, 2, 3].map((i) => mintKey(api.url, rootToken(), { appId: uniqueId('app'), profile, name: `b${i}` })));
      for (const k of keys) expect((await v.check({ headers: { 'x-api-key': k.key } })).allowed).toBe(true);
      expect(v.staleSize).toBe(2);
      v.close();
    });

    it('reuses its keep-alive connection across verifies', async () => {
      const sockets = new Set<unknown>();
      const counting = http.createServer((req, res) => {
        sockets.add(req.socket);
        req.resume();
        req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ valid: false, code: 'NOT_FOUND', keyId: null, appId: null, name: null, policies: [], meta: {}, expiresAt: null, ratelimits: [], credits: null })));
      });
      const url = await listen(counting);
      const v = new LatchkeyVerifier({ url });
      try {
        for (let i = 0; i < 5; i++) expect((await v.check({ headers: { 'x-api-key': randomKey() } })).allowed).toBe(false);
        expect(sockets.size).toBe(1);
      } finally {
        v.close();
        counting.closeAllConnections();
        counting.close();
      }
    });
  });
});

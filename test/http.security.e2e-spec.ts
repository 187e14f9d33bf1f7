import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { freePort } from '@latchkey/devstack';
import { RunningApi, startApi } from './support/app';
import { call } from './support/http';
import { createProfile, mintKey, operatorToken } from './support/keys';
import { uniqueId } from './support/stack';
import { serverIdentity, ServerIdentity } from './support/tls';

/**
 * HTTP-level hardening (security review #10, findings 4, 5 and 9): forward-auth
 * requirements come from the gateway only, JSON nesting is bounded before any
 * parsing or validation, and slow requests time out — against the compiled api.
 */

/** Forward auth with exact headers (repeated ones as arrays) and an exact path and query. */
function forwardAuth(url: string, path: string, headers: http.OutgoingHttpHeaders): Promise<{ status: number; code?: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path, method: 'GET', headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: res.headers['x-latchkey-code'] as string | undefined }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** POST a raw JSON text (not built with JSON.stringify, so it can nest as deep as we like). */
async function postRaw(url: string, path: string, text: string, headers: Record<string, string> = {}): Promise<{ status: number; code?: string }> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: text });
  const body = (await res.json().catch(() => undefined)) as { error?: { code?: string } } | undefined;
  return { status: res.status, code: body?.error?.code };
}

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

interface Trickled {
  response: string;
  closed: boolean;
}

/**
 * Send `head` on a connected socket, then `drip` one character every `everyMs`,
 * until the server closes the connection or `giveUpMs` passes. `drip` is far
 * longer than `giveUpMs` allows, so only the server can end this early.
 */
function trickle(socket: net.Socket, head: string, drip: string, everyMs: number, giveUpMs: number): Promise<Trickled> {
  return new Promise((resolve) => {
    let response = '';
    let i = 0;
    let settled = false;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearInterval(dripping);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ response, closed });
    };
    socket.on('data', (b: Buffer) => (response += b.toString()));
    socket.on('close', () => finish(true));
    socket.on('error', () => undefined);
    socket.write(head);
    const dripping = setInterval(() => {
      if (i < drip.length && socket.writable) socket.write(drip[i++]);
    }, everyMs);
    const giveUp = setTimeout(() => finish(false), giveUpMs);
  });
}

const connectPlain = (url: string) =>
  new Promise<net.Socket>((resolve, reject) => {
    const u = new URL(url);
    const s = net.connect(Number(u.port), u.hostname, () => resolve(s));
    s.once('error', reject);
  });

const SLOW_BODY_HEAD = 'POST /v1/keys/verify HTTP/1.1\r\nHost: latchkey\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n';
const SLOW_BODY = '{"key":"' + 'a'.repeat(500);
const SLOW_HEADERS_HEAD = 'GET /health/live HTTP/1.1\r\nHost: latchkey\r\n';
const SLOW_HEADERS = 'X-Slow: ' + 'a'.repeat(500);

describe('forward auth: required permissions come from the gateway only', () => {
  let dflt: RunningApi;
  let fromQuery: RunningApi;
  let fromBoth: RunningApi;
  let key: string;

  beforeAll(async () => {
    let op: string;
    [dflt, fromQuery, fromBoth, { token: op }] = await Promise.all([
      startApi(),
      startApi({ LATCHKEY_AUTH_PERMISSIONS_FROM: 'query' }),
      startApi({ LATCHKEY_AUTH_PERMISSIONS_FROM: 'header,query' }),
      operatorToken(),
    ]);
    const profile = await createProfile(dflt.url, op);
    ({ key } = await mintKey(dflt.url, op, { appId: uniqueId('app'), profile, name: 'reader', policies: ['orders-read'] }));
  });
  afterAll(async () => {
    await Promise.all([dflt?.close(), fromQuery?.close(), fromBoth?.close()]);
  });

  it("never lets the client's query string cancel the gateway's header requirement", async () => {
    const gateway = { 'x-api-key': key, 'x-latchkey-permissions': 'orders-write' };
    expect(await forwardAuth(dflt.url, '/v1/auth/orders', gateway)).toEqual({ status: 403, code: 'INSUFFICIENT_PERMISSIONS' });
    expect(await forwardAuth(dflt.url, '/v1/auth/orders?permissions=default', gateway)).toEqual({ status: 403, code: 'INSUFFICIENT_PERMISSIONS' });
    expect(await forwardAuth(dflt.url, '/v1/auth/orders?permissions=', gateway)).toEqual({ status: 403, code: 'INSUFFICIENT_PERMISSIONS' });
    expect(await forwardAuth(dflt.url, '/v1/auth/orders?permissions=default&permissions=orders-read', gateway)).toEqual({ status: 403, code: 'INSUFFICIENT_PERMISSIONS' });
  });

  it('ignores the query string by default', async () => {
    expect(await forwardAuth(dflt.url, '/v1/auth/orders?permissions=orders-write', { 'x-api-key': key })).toEqual({ status: 204, code: undefined });
    expect(await forwardAuth(dflt.url, '/v1/auth?permissions=orders-write&permissions=admin', { 'x-api-key': key })).toEqual({ status: 204, code: undefined });
  });

  it('adds repeated headers together; an empty one cancels nothing', async () => {
    const h = (...values: string[]) => ({ 'x-api-key': key, 'x-latchkey-permissions': values });
    expect(await forwardAuth(dflt.url, '/v1/auth', h('orders-read', 'orders-write'))).toEqual({ status: 403, code: 'INSUFFICIENT_PERMISSIONS' });
    expect(await forwardAuth(dflt.url, '/v1/auth', h('', 'orders-write'))).toEqual({ status: 403, code: 'INSUFFICIENT_PERMISSIONS' });
    expect(await forwardAuth(dflt.url, '/v1/auth', h('orders-write', ''))).toEqual({ status: 403, code: 'INSUFFICIENT_PERMISSIONS' });
    expect(await forwardAuth(dflt.url, '/v1/auth', h('orders-read', ''))).toEqual({ status: 204, code: undefined });
    expect(await forwardAuth(dflt.url, '/v1/auth', h(' , orders-read,,'))).toEqual({ status: 204, code: undefined });
  });

  it('honours the query string when configured as the source, repeated parameters adding requirements', async () => {
    const k = { 'x-api-key': key };
    expect(await forwardAuth(fromQuery.url, '/v1/auth?permissions=orders-write', k)).toEqual({ status: 403, code: 'INSUFFICIENT_PERMISSIONS' });
    expect(await forwardAuth(fromQuery.url, '/v1/auth?permissions=orders-read', k)).toEqual({ status: 204, code: undefined });
    expect(await forwardAuth(fromQuery.url, '/v1/auth?permissions=orders-read&permissions=orders-write', k)).toEqual({ status: 403, code: 'INSUFFICIENT_PERMISSIONS' });
    expect(await forwardAuth(fromQuery.url, '/v1/auth?permissions=orders-write&permissions=', k)).toEqual({ status: 403, code: 'INSUFFICIENT_PERMISSIONS' });
    expect(await forwardAuth(fromQuery.url, '/v1/auth?permissions=orders-read,orders-write', k)).toEqual({ status: 403, code: 'INSUFFICIENT_PERMISSIONS' });
    // The header is not a configured source there.
    expect(await forwardAuth(fromQuery.url, '/v1/auth', { ...k, 'x-latchkey-permissions': 'orders-write' })).toEqual({ status: 204, code: undefined });
  });

  it('requires the union of header and query when both are configured', async () => {
    const h = (v: string) => ({ 'x-api-key': key, 'x-latchkey-permissions': v });
    expect(await forwardAuth(fromBoth.url, '/v1/auth?permissions=default', h('orders-write'))).toEqual({ status: 403, code: 'INSUFFICIENT_PERMISSIONS' });
    expect(await forwardAuth(fromBoth.url, '/v1/auth?permissions=', h('orders-write'))).toEqual({ status: 403, code: 'INSUFFICIENT_PERMISSIONS' });
    expect(await forwardAuth(fromBoth.url, '/v1/auth?permissions=orders-write', h('orders-read'))).toEqual({ status: 403, code: 'INSUFFICIENT_PERMISSIONS' });
    expect(await forwardAuth(fromBoth.url, '/v1/auth?permissions=orders-write', h(''))).toEqual({ status: 403, code: 'INSUFFICIENT_PERMISSIONS' });
    expect(await forwardAuth(fromBoth.url, '/v1/auth?permissions=orders-read', h('orders-read'))).toEqual({ status: 204, code: undefined });
  });

  it('documents where the requirement comes from, the depth bound and the timeout', async () => {
    const doc = (await call(dflt.url, 'GET', '/openapi.json')).body;
    const params = doc.paths['/v1/auth'].get.parameters as { name: string; description: string }[];
    expect(params.find((p) => p.name === 'permissions')?.description).toMatch(/Ignored unless LATCHKEY_AUTH_PERMISSIONS_FROM/);
    expect(params.find((p) => p.name === 'X-Latchkey-Permissions')?.description).toMatch(/Repeated headers add requirements/);
    expect(doc.paths['/v1/keys/verify'].post.responses['400'].description).toMatch(/JSON_TOO_DEEP/);
    expect(doc.paths['/v1/keys/unwrap'].post.responses['408'].description).toMatch(/REQUEST_TIMEOUT/);
  });
});

describe('JSON nesting depth is bounded before parsing and validation', () => {
  let api: RunningApi;
  let op: string;

  beforeAll(async () => {
    [api, { token: op }] = await Promise.all([startApi(), operatorToken()]);
  });
  afterAll(async () => {
    await api?.close();
  });

  it('answers 400 JSON_TOO_DEEP, never 500, on an unauthenticated Nest route, the verify hot path and an authenticated route', async () => {
    const bomb = nested(5000); // the ~10 KB body of the finding
    expect(await postRaw(api.url, '/v1/keys/unwrap', bomb)).toEqual({ status: 400, code: 'JSON_TOO_DEEP' });
    expect(await postRaw(api.url, '/v1/keys/unwrap', `{"wrapToken":${bomb}}`)).toEqual({ status: 400, code: 'JSON_TOO_DEEP' });
    expect(await postRaw(api.url, '/v1/keys/verify', `{"key":"lk_x","permissions":${bomb}}`)).toEqual({ status: 400, code: 'JSON_TOO_DEEP' });
    expect(await postRaw(api.url, '/v1/keys', `{"appId":"a","profile":"default","name":"n","meta":{"a":${bomb}}}`, { 'x-vault-token': op })).toEqual({
      status: 400,
      code: 'JSON_TOO_DEEP',
    });
    // Within the bound, bodies reach validation as before; brackets inside strings do not count.
    expect(await postRaw(api.url, '/v1/keys/unwrap', `{"wrapToken":${nested(31)}}`)).toEqual({ status: 400, code: 'VALIDATION_FAILED' });
    expect(await postRaw(api.url, '/v1/keys/unwrap', `{"wrapToken":${nested(32)}}`)).toEqual({ status: 400, code: 'JSON_TOO_DEEP' });
    const inString = await call(api.url, 'POST', '/v1/keys/verify', { body: { key: '['.repeat(1000) + '\\"{{{{' } });
    expect(inString.status).toBe(200);
    expect(inString.body.code).toBe('MALFORMED');
    // The rest of the JSON parser is Fastify's own: malformed and prototype-poisoning bodies keep their answers.
    expect(await postRaw(api.url, '/v1/keys/unwrap', '{"wrapToken":')).toEqual({ status: 400, code: 'MALFORMED_JSON' });
    expect(await postRaw(api.url, '/v1/keys/verify', '{"key":"lk_x","__proto__":{"x":1}}')).toEqual({ status: 400, code: 'MALFORMED_JSON' });
    expect(await postRaw(api.url, '/v1/keys/unwrap', '{"wrapToken":"x","constructor":{"prototype":{"x":1}}}')).toEqual({ status: 400, code: 'MALFORMED_JSON' });
    expect(await postRaw(api.url, '/v1/keys/verify', '')).toEqual({ status: 400, code: 'MALFORMED_JSON' });
    expect((await postRaw(api.url, '/v1/keys/unwrap', '')).status).toBe(400);
  });

  it('keeps answering cached forward auth while nesting bombs arrive', async () => {
    const profile = await createProfile(api.url, op);
    const { key } = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'fa' });
    expect(await forwardAuth(api.url, '/v1/auth', { 'x-api-key': key })).toEqual({ status: 204, code: undefined });
    const bomb = nested(30_000); // near the 64 KB body limit
    const bombs = Array.from({ length: 30 }, (_, i) => postRaw(api.url, i % 2 ? '/v1/keys/unwrap' : '/v1/keys/verify', i % 2 ? bomb : `{"key":${bomb}}`));
    const auths = Array.from({ length: 30 }, () => forwardAuth(api.url, '/v1/auth/orders', { 'x-api-key': key }));
    const [bombed, authed] = await Promise.all([Promise.all(bombs), Promise.all(auths)]);
    expect(new Set(bombed.map((r) => `${r.status} ${r.code}`))).toEqual(new Set(['400 JSON_TOO_DEEP']));
    expect(new Set(authed.map((r) => r.status))).toEqual(new Set([204]));
    expect((await call(api.url, 'GET', '/health/live')).status).toBe(200);
  });
});

describe('slow requests time out (LATCHKEY_REQUEST_TIMEOUT), on the plain and the mTLS listener', () => {
  let api: RunningApi;
  let srv: ServerIdentity;
  let tlsPort: number;
  let client: { certificate: string; privateKey: string };

  beforeAll(async () => {
    srv = serverIdentity();
    tlsPort = await freePort();
    let op: string;
    [api, { token: op }] = await Promise.all([
      startApi({ LATCHKEY_REQUEST_TIMEOUT: '2s', LATCHKEY_TLS_PORT: String(tlsPort), LATCHKEY_TLS_CERT: srv.certFile, LATCHKEY_TLS_KEY: srv.keyFile }, { avoidPorts: [tlsPort] }),
      operatorToken(),
    ]);
    const issued = await call(api.url, 'POST', '/v1/certs', { token: op, body: { appId: uniqueId('app'), commonName: uniqueId('sidecar'), ttl: '1h' } });
    if (issued.status !== 201) throw new Error(`cert issue failed ${issued.status}`);
    client = issued.body;
  });
  afterAll(async () => {
    await api?.close();
    srv?.remove();
  });

  const connectMtls = () =>
    new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: tlsPort, ca: srv.cert, cert: client.certificate, key: client.privateKey }, () => resolve(s));
      s.once('error', reject);
    });

  // 100 body bytes at one per 300 ms would take 30 s; the 2 s timeout must cut it off long before the 10 s we wait.
  it('cuts off a body trickled one byte every 300 ms with 408 REQUEST_TIMEOUT', async () => {
    const r = await trickle(await connectPlain(api.url), SLOW_BODY_HEAD, SLOW_BODY, 300, 10_000);
    expect(r.closed).toBe(true);
    expect(r.response).toMatch(/^HTTP\/1\.1 408 /);
    expect(r.response).toContain('"code":"REQUEST_TIMEOUT"');
  });

  it('cuts off headers trickled one byte every 300 ms', async () => {
    const r = await trickle(await connectPlain(api.url), SLOW_HEADERS_HEAD, SLOW_HEADERS, 300, 10_000);
    expect(r.closed).toBe(true);
    expect(r.response).toMatch(/^(HTTP\/1\.1 408 |$)/);
  });

  it('does the same on the mTLS listener, which also bounds JSON nesting', async () => {
    const body = await trickle(await connectMtls(), SLOW_BODY_HEAD, SLOW_BODY, 300, 10_000);
    expect(body.closed).toBe(true);
    expect(body.response).toMatch(/^HTTP\/1\.1 408 /);
    const headers = await trickle(await connectMtls(), SLOW_HEADERS_HEAD, SLOW_HEADERS, 300, 10_000);
    expect(headers.closed).toBe(true);

    const deep = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.request(
        `https://127.0.0.1:${tlsPort}/v1/keys/unwrap`,
        { method: 'POST', agent: false, ca: srv.cert, cert: client.certificate, key: client.privateKey, headers: { 'content-type': 'application/json' } },
        (res) => {
          let b = '';
          res.on('data', (d: Buffer) => (b += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
        },
      );
      req.on('error', reject);
      req.end(nested(5000));
    });
    expect(deep.status).toBe(400);
    expect(JSON.parse(deep.body).error.code).toBe('JSON_TOO_DEEP');
  });

  it('keeps kept-alive connections working across pauses longer than the timeout', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const u = new URL(api.url);
    const post = () =>
      new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
        const req = http.request({ host: u.hostname, port: u.port, path: '/v1/keys/verify', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }));
        });
        req.on('error', reject);
        req.end(JSON.stringify({ key: 'lk_not_a_key' }));
      });
    try {
      const results = [await post()];
      for (let i = 0; i < 2; i++) {
        await new Promise((r) => setTimeout(r, 2600));
        results.push(await post());
      }
      expect(results).toEqual([
        { status: 200, reused: false },
        { status: 200, reused: true },
        { status: 200, reused: true },
      ]);
    } finally {
      agent.destroy();
    }
  });
});

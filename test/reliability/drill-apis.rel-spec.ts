import { RunningNginx, startNginx } from '../support/nginx';
import { RunningApi, startApi } from '../support/app';
import { call } from '../support/http';
import { mintKey } from '../support/keys';
import { uniqueId } from '../support/stack';
import { HEAVY, recordFigure } from './report';

/**
 * Drill (d) of issue 14: three api instances behind an nginx `upstream`, forward-auth load through nginx, one
 * instance SIGKILLed mid-load. Failed requests must be at most those in flight at the kill, and revocations
 * made afterwards must still reach the survivors (the revocation bus does not depend on the dead one).
 */
const rootToken = (): string => process.env.VAULT_TOKEN!;
const CONCURRENCY = 16;
const LOAD_S = HEAVY ? 20 : 6;

describe('drill: an api instance SIGKILLed behind nginx', () => {
  let apis: RunningApi[];
  let nginx: RunningNginx;
  let base: string;

  beforeAll(async () => {
    const env = { LATCHKEY_ISSUER: 'http://latchkey.drill' };
    apis = await Promise.all([startApi(env), startApi(env), startApi(env)]);
    const servers = apis.map((a) => `server 127.0.0.1:${new URL(a.url).port} max_fails=1 fail_timeout=10s;`).join(' ');
    nginx = await startNginx(
      (port) => `
  upstream latchkey { ${servers} keepalive 32; }
  server {
    listen 127.0.0.1:${port};
    location /auth {
      proxy_pass http://latchkey/v1/auth;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # The README's setting: a connection error (a dead instance) moves an idempotent request to the next one.
      proxy_next_upstream error timeout;
      proxy_connect_timeout 1s;
    }
  }`,
      async (url) => (await fetch(`${url}/auth`)).status === 401,
    );
    base = nginx.url;
  }, 90_000);

  afterAll(async () => {
    await nginx?.stop();
    await Promise.all(apis.map((a) => a.close().catch(() => undefined)));
  });

  it('fails at most the requests in flight at the kill, and revocations still reach the survivors', async () => {
    const k = await mintKey(apis[0].url, rootToken(), { appId: uniqueId('app'), profile: 'default', name: 'drill' });
    for (const a of apis) expect((await fetch(`${a.url}/v1/auth`, { headers: { 'x-api-key': k.key } })).status).toBe(204);

    const statuses = new Map<number, number>();
    let errors = 0;
    let total = 0;
    let killedAt = 0;
    const deadline = Date.now() + LOAD_S * 1000;
    const worker = async () => {
      while (Date.now() < deadline) {
        try {
          const res = await fetch(`${base}/auth`, { headers: { 'x-api-key': k.key } });
          await res.arrayBuffer();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        } catch {
          errors++;
        }
        total++;
      }
    };
    const load = Promise.all(Array.from({ length: CONCURRENCY }, worker));
    await new Promise((r) => setTimeout(r, (LOAD_S * 1000) / 3));
    apis[1].process.child.kill('SIGKILL');
    killedAt = Date.now();
    await load;
    const failed = total - (statuses.get(204) ?? 0);

    // A revocation made on a survivor reaches the other survivor (and nginx keeps routing around the dead one).
    const victim = await mintKey(apis[0].url, rootToken(), { appId: uniqueId('app'), profile: 'default', name: 'victim' });
    for (const a of [apis[0], apis[2]]) expect((await fetch(`${a.url}/v1/auth`, { headers: { 'x-api-key': victim.key } })).status).toBe(204);
    const revoked = Date.now();
    expect((await call(apis[0].url, 'DELETE', `/v1/keys/${victim.keyId}`, { token: rootToken() })).status).toBe(204);
    let reachedMs = -1;
    while (Date.now() - revoked < 2000) {
      if ((await fetch(`${apis[2].url}/v1/auth`, { headers: { 'x-api-key': victim.key } })).status === 401) {
        reachedMs = Date.now() - revoked;
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    const viaNginx = (await fetch(`${base}/auth`, { headers: { 'x-api-key': victim.key } })).status;

    recordFigure({
      test: 'Drill: api instance SIGKILLed behind nginx: failed requests',
      injects: `3 api instances behind an nginx upstream (proxy_next_upstream error timeout), forward auth through nginx with ${CONCURRENCY} concurrent clients for ${LOAD_S} s, one instance SIGKILLed at ${Math.round(LOAD_S / 3)} s`,
      figure: `${failed} failed of ${total} (statuses ${JSON.stringify(Object.fromEntries(statuses))}, ${errors} client errors); at most ${CONCURRENCY} were in flight at the kill`,
      target: `<= ${CONCURRENCY} (the requests in flight)`,
      pass: failed <= CONCURRENCY,
    });
    recordFigure({
      test: 'Drill: api instance SIGKILLed behind nginx: revocation to survivors',
      injects: 'key revoked on one survivor after the kill',
      figure: `the other survivor answered 401 after ${reachedMs} ms; through nginx ${viaNginx}`,
      target: '<= 1000 ms; 401',
      pass: reachedMs >= 0 && reachedMs <= 1000 && viaNginx === 401,
    });
    expect(killedAt).toBeGreaterThan(0);
    expect(failed).toBeLessThanOrEqual(CONCURRENCY);
    expect(reachedMs).toBeGreaterThanOrEqual(0);
    expect(reachedMs).toBeLessThanOrEqual(1000);
    expect(viaNginx).toBe(401);
  }, 120_000);
});

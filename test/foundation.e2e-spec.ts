import { BaoServer, freePort, startBao, waitFor } from '@latchkey/devstack';
import { RunningApi, spawnApp, startApi, waitForOutput } from './support/app';
import { jsonOf } from './support/http';

describe('api foundation over HTTP', () => {
  let api: RunningApi;

  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(async () => {
    await api.close();
  });

  it('answers liveness and readiness', async () => {
    const live = await fetch(`${api.url}/health/live`);
    expect(live.status).toBe(200);
    const ready = await fetch(`${api.url}/health/ready`);
    expect(ready.status).toBe(200);
    const body = await jsonOf(ready);
    expect(body.info.vault.status).toBe('up');
    expect(body.info.redis.status).toBe('up');
  });

  it('serves the OpenAPI document and the docs UI', async () => {
    const doc = await jsonOf(await fetch(`${api.url}/openapi.json`));
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info.title).toBe('latchkey');
    const ui = await fetch(`${api.url}/docs`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain('swagger');
  });

  it('exposes Prometheus metrics', async () => {
    await fetch(`${api.url}/health/ready`);
    const res = await fetch(`${api.url}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain('latchkey_process_cpu_user_seconds_total');
    expect(text).toMatch(/latchkey_vault_request_duration_seconds_count\{operation="health",outcome="ok"\} \d+/);
  });

  it('answers a malformed JSON body with 400 in the error format', async () => {
    const res = await fetch(`${api.url}/health/live`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":' });
    expect(res.status).toBe(400);
    const body = await jsonOf(res);
    expect(body).toEqual({ error: { code: 'MALFORMED_JSON', message: expect.any(String), requestId: expect.any(String) } });
    expect(res.headers.get('x-request-id')).toBe(body.error.requestId);
  });

  it('rejects an oversized body with 413', async () => {
    const res = await fetch(`${api.url}/health/live`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pad: 'x'.repeat(128 * 1024) }),
    });
    expect(res.status).toBe(413);
    expect((await jsonOf(res)).error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('answers unknown routes with 404 in the error format and keeps a sane caller request id', async () => {
    const res = await fetch(`${api.url}/v1/nope`, { headers: { 'x-request-id': 'trace-123' } });
    expect(res.status).toBe(404);
    expect(await jsonOf(res)).toEqual({ error: { code: 'ROUTE_NOT_FOUND', message: expect.any(String), requestId: 'trace-123' } });
    const bad = await fetch(`${api.url}/v1/nope`, { headers: { 'x-request-id': 'bad id with spaces' } });
    expect((await jsonOf(bad)).error.requestId).not.toBe('bad id with spaces');
  });
});

describe('readiness follows OpenBao', () => {
  let bao: BaoServer;
  let api: RunningApi;

  beforeAll(async () => {
    bao = await startBao();
    api = await startApi({ VAULT_ADDR: bao.addr, VAULT_TOKEN: bao.rootToken, VAULT_TIMEOUT_MS: '1000' });
  });
  afterAll(async () => {
    await api.close();
    await bao.stop();
  });

  it('is ready with OpenBao up and not ready, quickly, once it is stopped', async () => {
    expect((await fetch(`${api.url}/health/ready`)).status).toBe(200);
    await bao.stop();
    const started = Date.now();
    const res = await fetch(`${api.url}/health/ready`);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBeTruthy();
    const body = await jsonOf(res);
    expect(body.error.vault.status).toBe('down');
    expect(body.info.redis.status).toBe('up');
    // Liveness is about the process, not its dependencies.
    expect((await fetch(`${api.url}/health/live`)).status).toBe(200);
  });
});

describe('processes', () => {
  it('api refuses to start on bad configuration, naming each bad variable', async () => {
    const p = spawnApp('api', { VAULT_ADDR: 'nope', VAULT_TOKEN: '', LATCHKEY_PORT: 'eighty' });
    const { code } = await p.exited;
    expect(code).toBe(78);
    expect(p.output()).toMatch(/VAULT_ADDR/);
    expect(p.output()).toMatch(/LATCHKEY_PORT/);
    expect(p.output()).toMatch(/VAULT_TOKEN, VAULT_TOKEN_FILE or VAULT_ROLE_ID/);
  });

  it('api serves, then stops gracefully on SIGTERM', async () => {
    const port = await freePort();
    const p = spawnApp('api', { LATCHKEY_PORT: String(port), LOG_LEVEL: 'info' });
    await waitFor('api', async () => (await fetch(`http://127.0.0.1:${port}/health/ready`)).status === 200, 30_000);
    p.child.kill('SIGTERM');
    const { code } = await p.exited;
    expect(code).toBe(0);
    expect(p.output()).toMatch(/SIGTERM received, shutting down/);
    expect(p.output()).toMatch(/"msg":"stopped"/);
  });

  it('worker starts its queues and closes gracefully on SIGTERM', async () => {
    const p = spawnApp('worker', { LOG_LEVEL: 'info' });
    await waitForOutput(p, /latchkey worker started/);
    expect(p.output()).toMatch(/processing queue latchkey-lifecycle/);
    p.child.kill('SIGTERM');
    const { code } = await p.exited;
    expect(code).toBe(0);
    expect(p.output()).toMatch(/"msg":"stopped"/);
  });
});

import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { QUEUE } from '@latchkey/jobs';
import { RunningApi, startApi } from './support/app';
import { appManagerToken, mintKey, operatorToken } from './support/keys';
import { testBullPrefix, uniqueId } from './support/stack';

/**
 * The Bull Board queue UI at /admin/queues: the JSON view's authorization (read on latchkey/audit), a
 * credential a browser can send (HTTP Basic, the password a Vault token), read-only for real (no retry,
 * removal, pause or add reaches a job or a queue), and free text passed through the central redaction.
 * Own Redis prefix and no worker: the jobs in these queues are only the ones this file puts there.
 */
const PREFIX = `lkq${randomBytes(4).toString('hex')}`;
const BOARD = '/admin/queues';

function basic(token: string, user = 'operator'): string {
  return `Basic ${Buffer.from(`${user}:${token}`).toString('base64')}`;
}

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(url, { headers });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

describe('queue UI (Bull Board, read-only)', () => {
  let api: RunningApi;
  let op: string;
  let queue: Queue;
  // Token-shaped text in a job's data and failure reason: the board must show neither.
  const fakeToken = `hvs.${randomBytes(18).toString('hex')}`;
  let waitingId: string;
  let failedId: string;
  let mgmtKey = '';

  beforeAll(async () => {
    [api, { token: op }] = await Promise.all([startApi({ REDIS_PREFIX: PREFIX, LATCHKEY_GRANTABLE_OWN_POLICIES: 'latchkey-operator' }), operatorToken()]);
    const connection = { url: process.env.REDIS_URL };
    const prefix = await testBullPrefix(PREFIX);
    // A failed job in the delivery queue (processed once by a throwaway worker), then a waiting one behind it.
    queue = new Queue(QUEUE.delivery, { connection, prefix });
    const failing = await queue.add('deliver-key', { keyId: uniqueId('k'), note: fakeToken }, { attempts: 1 });
    const worker = new Worker(QUEUE.delivery, async () => {
      throw new Error(`refused with ${fakeToken}`);
    }, { connection, prefix });
    try {
      await new Promise<void>((resolve) => worker.on('failed', (job) => job?.id === failing.id && resolve()));
    } finally {
      await worker.close();
    }
    failedId = String(failing.id);
    waitingId = String((await queue.add('deliver-key', { keyId: uniqueId('k'), note: fakeToken })).id);
  }, 60_000);

  afterAll(async () => {
    await queue?.obliterate({ force: true }).catch(() => undefined);
    await queue?.close();
    await api?.close();
  });

  it('serves the page and its assets to a caller with read on latchkey/audit, over Basic or X-Vault-Token', async () => {
    for (const path of [BOARD, `${BOARD}/`]) {
      const page = await get(`${api.url}${path}`, { authorization: basic(op) });
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(page.headers.get('cache-control')).toBe('no-store');
      expect(page.text).not.toContain(op);
    }
    const html = (await get(`${api.url}${BOARD}`, { 'x-vault-token': op })).text;
    // Assets are relative to the page's <base href>, which must be the board's own path.
    expect(/<base href="([^"]+)"/.exec(html)?.[1]).toBe(`${BOARD}/`);
    const relative = /<script[^>]+src="([^"]+\.js)"/.exec(html)?.[1];
    const script = new URL(relative!, `http://x${BOARD}/`).pathname;
    expect(script).toMatch(new RegExp(`^${BOARD}/static/`));
    const asset = await get(`${api.url}${script!}`, { authorization: basic(op) });
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/javascript/);

    // Without a credential: 401 with the Basic challenge a browser answers with a prompt; HTML and assets alike.
    for (const path of [BOARD, script!, `${BOARD}/api/queues`]) {
      const anon = await get(`${api.url}${path}`);
      expect(anon.status).toBe(401);
      expect(anon.headers.get('www-authenticate')).toMatch(/^Basic realm="latchkey queues"/);
      expect(JSON.parse(anon.text).error.code).toBe('UNAUTHENTICATED');
    }
    // A credential that is not a Vault token, and a Basic header without a password.
    expect((await get(`${api.url}${BOARD}`, { authorization: basic('hvs.not-a-real-token-at-all-000000') })).status).toBe(401);
    expect((await get(`${api.url}${BOARD}`, { authorization: basic('') })).status).toBe(401);

    // A valid token without read on latchkey/audit (an app manager): 403 on the page, the assets and the API.
    const manager = await appManagerToken(uniqueId('app'));
    for (const path of [BOARD, script!, `${BOARD}/api/queues`]) {
      const denied = await get(`${api.url}${path}`, { authorization: basic(manager.token) });
      expect(denied.status).toBe(403);
      expect(denied.headers.get('www-authenticate')).toBeNull();
    }
  });

  it('takes a management key as the Basic password or as Bearer; a key without read on latchkey/audit gets 403', async () => {
    const mgmt = await mintKey(api.url, process.env.VAULT_TOKEN!, { appId: 'latchkey', profile: 'management', name: uniqueId('mgmt'), ttl: '1h' });
    mgmtKey = mgmt.key;
    expect((await get(`${api.url}${BOARD}`, { authorization: basic(mgmt.key) })).status).toBe(200);
    expect((await get(`${api.url}${BOARD}/api/queues`, { authorization: `Bearer ${mgmt.key}` })).status).toBe(200);
    const plain = await mintKey(api.url, op, { appId: uniqueId('app'), profile: 'default', name: uniqueId('k'), ttl: '1h' });
    expect((await get(`${api.url}${BOARD}/api/queues`, { authorization: basic(plain.key) })).status).toBe(403);
  });

  it("lists this cluster's queues and jobs, with token-shaped text redacted", async () => {
    const res = await get(`${api.url}${BOARD}/api/queues?activeQueue=${QUEUE.delivery}&status=failed&page=1&jobsPerPage=10`, { authorization: basic(op) });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.text) as { queues: Array<{ name: string; readOnlyMode: boolean; jobs: Array<{ id: string; failedReason?: string }> }> };
    expect(body.queues.map((q) => q.name).sort()).toEqual(Object.values(QUEUE).sort());
    for (const q of body.queues) expect(q.readOnlyMode).toBe(true);
    const delivery = body.queues.find((q) => q.name === QUEUE.delivery)!;
    const failed = delivery.jobs.find((j) => j.id === failedId);
    expect(failed?.failedReason).toContain('[REDACTED TOKEN]');
    expect(res.text).not.toContain(fakeToken);

    const job = await get(`${api.url}${BOARD}/api/queues/${QUEUE.delivery}/${waitingId}`, { authorization: basic(op) });
    expect(job.status).toBe(200);
    expect(job.text).toContain(waitingId);
    expect(job.text).not.toContain(fakeToken);
  });

  it('refuses every action: retries, removals, pauses, adds and edits change nothing', async () => {
    const before = { counts: await queue.getJobCounts(), failed: await queue.getJob(failedId), waiting: await queue.getJob(waitingId) };
    const q = QUEUE.delivery;
    const attempts: Array<[string, string, unknown?]> = [
      ['PUT', `/api/queues/${q}/${failedId}/retry`],
      ['PUT', `/api/queues/${q}/retry/failed`],
      ['PUT', `/api/queues/${q}/${waitingId}/clean`],
      ['PUT', `/api/queues/${q}/clean/failed`],
      ['PUT', `/api/queues/${q}/empty`],
      ['PUT', `/api/queues/${q}/obliterate`],
      ['PUT', `/api/queues/${q}/pause`],
      ['PUT', '/api/queues/pause'],
      ['PUT', `/api/queues/${q}/${waitingId}/promote`],
      ['POST', `/api/queues/${q}/add`, { name: 'deliver-key', data: {} }],
      ['PATCH', `/api/queues/${q}/${waitingId}/update-data`, { jobData: { keyId: 'changed' } }],
      ['DELETE', `/api/queues/${q}/${waitingId}`],
    ];
    const accepted: Array<{ method: string; path: string; status: number }> = [];
    for (const [method, path, body] of attempts) {
      const res = await fetch(`${api.url}${BOARD}${path}`, {
        method,
        headers: { authorization: basic(op), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      // Not registered at all (404), or registered for reading only (405): never reached a handler.
      if (res.status !== 404 && res.status !== 405) accepted.push({ method, path, status: res.status });
    }
    expect(accepted).toEqual([]);
    expect(await queue.isPaused()).toBe(false);
    expect(await queue.getJobCounts()).toEqual(before.counts);
    const failed = await queue.getJob(failedId);
    expect(await failed!.getState()).toBe('failed');
    expect(failed!.attemptsMade).toBe(before.failed!.attemptsMade);
    const waiting = await queue.getJob(waitingId);
    expect(await waiting!.getState()).toBe('waiting');
    expect(waiting!.data).toEqual(before.waiting!.data);
  });

  it('logs no credential', () => {
    expect(api.process.output()).not.toContain(op);
    expect(api.process.output()).not.toContain(fakeToken);
    if (mgmtKey) expect(api.process.output()).not.toContain(mgmtKey);
  });
});

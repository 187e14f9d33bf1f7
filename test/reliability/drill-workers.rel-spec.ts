import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { BaoServer, startBao, waitFor } from '@latchkey/devstack';
import { bullPrefix, QUEUE, VaultClusterId } from '@latchkey/jobs';
import { VaultClient } from '@latchkey/vault';
import { RunningApi, spawnApp, SpawnedProcess, startApi, waitForOutput } from '../support/app';
import { call } from '../support/http';
import { createProfile, mintKey } from '../support/keys';
import { uniqueId } from '../support/stack';
import { bootstrapPrivate, JOB_ENV, lineages, settled } from './faults-support';
import { HEAVY, recordFigure } from './report';

/**
 * Drill (e) of issue 14: two workers on one deployment. Every scheduled job (rotation scan, reconciliation,
 * expiry sweep, certificate renewal scan, token-key check, audit ingestion) runs exactly once per tick —
 * on one worker or the other, never on both, never skipped — and every rotation mints exactly one successor.
 */
describe('drill: two workers run every scheduled job exactly once', () => {
  let bao: BaoServer;
  let vault: VaultClient;
  let api: RunningApi;
  let redis: Redis;
  const workers: SpawnedProcess[] = [];
  const prefix = uniqueId('lkdw');
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    bao = await startBao();
    vault = await bootstrapPrivate(bao.addr, bao.rootToken);
    env = { ...JOB_ENV, CERT_RENEW_SCAN_EVERY: '2s', TOKEN_KEY_ROTATE_EVERY: '8s', VAULT_ADDR: bao.addr, VAULT_TOKEN: bao.rootToken, AUDIT_LOG_PATH: bao.auditLogPath, REDIS_PREFIX: prefix, LOG_LEVEL: 'info' };
    api = await startApi({ ...env, LOG_LEVEL: 'error' });
    redis = new Redis(process.env.REDIS_URL!);
  }, 60_000);
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await api?.close();
    redis?.disconnect();
    await bao?.stop();
  });

  it('runs each tick of each scheduler once, on either worker, and mints one successor per rotation', async () => {
    const op = bao.rootToken;
    const appId = uniqueId('app');
    const NAMES = HEAVY ? 12 : 6;
    const RUN_MS = HEAVY ? 60_000 : 15_000;
    const profile = await createProfile(api.url, op, { rotation: { every: '3s', grace: '1s' } });
    await Promise.all(Array.from({ length: NAMES }, (_, i) => mintKey(api.url, op, { appId, profile, name: `svc-${i}` })));
    for (let i = 0; i < 2; i++) workers.push(spawnApp('worker', env));
    await Promise.all(workers.map((w) => waitForOutput(w, /latchkey worker started/, 30_000)));
    const pids = new Set(workers.map((w) => String(w.child.pid)));
    const started = Date.now();
    await new Promise((r) => setTimeout(r, RUN_MS));
    // Stop new rotations; let what is under way settle, then stop both workers so the queues hold still.
    expect((await call(api.url, 'PUT', `/v1/profiles/${profile}`, { token: op, body: { allowedPolicies: ['default', 'orders-read', 'orders-write'], ttl: '1h', maxTtl: '24h' } })).status).toBe(200);
    let last = await lineages(vault, redis, prefix, appId);
    await waitFor('every lineage settled with one live key', async () => settled((last = await lineages(vault, redis, prefix, appId)), NAMES), 60_000);
    const elapsedMs = Date.now() - started;
    await Promise.all(workers.map((w) => w.stop()));

    // Every iteration a scheduler produced, and who ran it.
    const bull = bullPrefix(prefix, await new VaultClusterId(vault).get());
    const perScheduler = new Map<string, { runs: number; byWorker: Map<string, number>; twice: number; failed: number; gapsMs: number[] }>();
    for (const queue of [QUEUE.maintenance, QUEUE.audit]) {
      const q = new Queue(queue, { connection: redis, prefix: bull });
      const jobs = await q.getJobs(['completed', 'failed'], 0, -1);
      const times = new Map<string, number[]>();
      for (const j of jobs) {
        const scheduler = j.repeatJobKey;
        if (!scheduler) continue;
        const s = perScheduler.get(scheduler) ?? { runs: 0, byWorker: new Map(), twice: 0, failed: 0, gapsMs: [] };
        s.runs++;
        const by = String(j.processedBy ?? '?').split(':').pop()!;
        s.byWorker.set(by, (s.byWorker.get(by) ?? 0) + 1);
        // Run once: a job started again after a stall, or retried, would show it here.
        if (j.attemptsMade > 1 || (j.stalledCounter ?? 0) > 0) s.twice++;
        if (j.failedReason) s.failed++;
        times.set(scheduler, [...(times.get(scheduler) ?? []), j.timestamp]);
        perScheduler.set(scheduler, s);
      }
      for (const [scheduler, ts] of times) {
        ts.sort((a, b) => a - b);
        perScheduler.get(scheduler)!.gapsMs = ts.slice(1).map((t, i) => t - ts[i]);
      }
      await q.close();
    }
    const summary = Object.fromEntries(
      [...perScheduler].map(([id, s]) => [id, { runs: s.runs, byWorker: Object.fromEntries(s.byWorker), twice: s.twice, failed: s.failed, maxGapMs: Math.max(0, ...s.gapsMs) }]),
    );
    process.stdout.write(`[drill-workers] ${JSON.stringify({ elapsedMs, rotations: last.rotations, doubleMints: last.doubleMints, summary })}\n`);

    const expected = ['audit-ingest', 'cert-renew-scan', 'key-rotation-scan', 'keys-expiry-sweep', 'keys-reconcile', 'tokens-rotate-check'];
    const missing = expected.filter((id) => ![...perScheduler.keys()].some((k) => k.includes(id)));
    const doubled = [...perScheduler.values()].reduce((n, s) => n + s.twice, 0);
    const strangers = [...perScheduler.values()].flatMap((s) => [...s.byWorker.keys()]).filter((p) => !pids.has(p));
    const bothWorked = new Set([...perScheduler.values()].flatMap((s) => [...s.byWorker.keys()])).size;
    recordFigure({
      test: 'Drill: two workers, scheduled jobs',
      injects: `2 worker processes, ${NAMES} keys rotating every 3 s (grace 1 s), schedulers every 1-2 s (token-key check every 2 s) for ${Math.round(RUN_MS / 1000)} s`,
      figure: `${[...perScheduler.values()].reduce((n, s) => n + s.runs, 0)} scheduled runs over ${perScheduler.size} schedulers, ${doubled} run twice, ${missing.length} schedulers never run, run by ${bothWorked} workers; ${last.rotations} rotations, ${last.doubleMints.length} double mints`,
      target: '0 run twice, 0 never run; 0 double mints',
      pass: doubled === 0 && missing.length === 0 && last.doubleMints.length === 0 && last.rotations > 0,
    });
    expect(missing).toEqual([]);
    expect(doubled).toBe(0);
    expect(strangers).toEqual([]);
    expect(last.rotations).toBeGreaterThan(0);
    expect(last.doubleMints).toEqual([]);
    // No tick skipped: consecutive runs of a scheduler are never more than two of its intervals (plus slack) apart.
    for (const [id, s] of perScheduler) expect({ id, late: s.gapsMs.filter((g) => g > 5_000) }).toEqual({ id, late: [] });
  }, 180_000);
});

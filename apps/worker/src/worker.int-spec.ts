import { randomBytes, randomUUID } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { register } from 'prom-client';
import { loadConfig } from '@latchkey/config';
import { JOB, JobName, JobsProducer, QUEUE, VAULT_STAMP, VaultClusterId, bullPrefix, legacyBullPrefix } from '@latchkey/jobs';
import { createVaultClient } from '@latchkey/vault';
import { JobHandlers } from './job-handlers';
import { LegacyJobs } from './legacy-jobs';
import { WorkerService } from './worker.service';

/**
 * The worker's guard against jobs enqueued for another Vault, against the real
 * OpenBao and Redis of the test stack: the stamp decides, never the queue alone.
 */
describe('worker: jobs are tied to the Vault cluster they were enqueued for', () => {
  const prefix = `lkstamp${randomBytes(3).toString('hex')}`;
  const config = loadConfig({ ...process.env, REDIS_PREFIX: prefix, LATCHKEY_PORT: '0', JOB_LOCK_DURATION: '5s' });
  const ran: Array<{ name: string; data: unknown }> = [];
  const handlers = Object.fromEntries(
    (Object.values(JOB) as JobName[]).map((n) => [n, async (data: unknown) => void ran.push({ name: n, data })]),
  ) as unknown as JobHandlers;
  let cluster: string;
  let worker: WorkerService;
  let legacy: LegacyJobs;
  let lifecycle: Queue;
  let redis: Redis;
  const errors: string[] = [];

  const refused = async (reason: string) => (await register.getSingleMetric('latchkey_jobs_refused_total')?.get())?.values.find((v) => v.labels.reason === reason)?.value ?? 0;
  const until = async (what: string, check: () => Promise<boolean> | boolean, ms = 15_000) => {
    const end = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  beforeAll(async () => {
    jest.spyOn(Logger.prototype, 'error').mockImplementation((m: unknown) => void errors.push(String(m)));
    const clusterIds = new VaultClusterId(createVaultClient(config).client);
    cluster = await clusterIds.get();
    legacy = new LegacyJobs(config);
    worker = new WorkerService(config, handlers, clusterIds, legacy);
    redis = new Redis(process.env.REDIS_URL!);
    lifecycle = new Queue(QUEUE.lifecycle, { connection: redis, prefix: bullPrefix(prefix, cluster) });
  });

  afterAll(async () => {
    await worker.onApplicationShutdown();
    await legacy.onApplicationShutdown();
    await lifecycle.close();
    for (const k of await redis.keys(`${prefix}:*`)) await redis.unlink(k);
    await redis.quit();
    jest.restoreAllMocks();
  });

  it('reads the cluster id from sys/health (a UUID, the same on every read)', async () => {
    expect(cluster).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(await new VaultClusterId(createVaultClient(config).client).get()).toBe(cluster);
  });

  it('adopts a job an older version left in the un-namespaced queue, and drops that version\'s schedulers', async () => {
    // Before the worker starts, as an older api and worker would have left them.
    const old = new Queue(QUEUE.lifecycle, { connection: redis, prefix: legacyBullPrefix(prefix) });
    const oldScans = new Queue(QUEUE.maintenance, { connection: redis, prefix: legacyBullPrefix(prefix) });
    await old.add(JOB.revokeAfterGrace, { keyId: 'k-legacy', appId: 'a', successorKeyId: '', reason: 'rotation' }, { jobId: 'legacy-1', delay: 300 });
    await oldScans.upsertJobScheduler('keys-reconcile', { every: 3_600_000 }, { name: JOB.reconcile, data: {} });
    expect(await oldScans.getJobSchedulersCount()).toBe(1);

    worker.onModuleInit();
    await until('the legacy job to run here, stamped', () => ran.some((r) => (r.data as { keyId?: string }).keyId === 'k-legacy'));
    expect(ran.find((r) => (r.data as { keyId?: string }).keyId === 'k-legacy')).toEqual({
      name: JOB.revokeAfterGrace,
      data: { keyId: 'k-legacy', appId: 'a', successorKeyId: '', reason: 'rotation' },
    });
    expect(await old.getJob('legacy-1')).toBeUndefined();
    expect(await oldScans.getJobSchedulersCount()).toBe(0);
    expect((await oldScans.getDelayedCount()) + (await oldScans.getWaitingCount())).toBe(0);
    await Promise.all([old.close(), oldScans.close()]);
  });

  it('runs a job stamped with its own Vault, handing the handler the data without the stamp', async () => {
    await lifecycle.add(JOB.revokeAfterGrace, { keyId: 'k-own', appId: 'a', successorKeyId: '', reason: 'rotation', [VAULT_STAMP]: cluster }, { jobId: 'own-1' });
    await until('own job done', async () => (await lifecycle.getJobState('own-1')) === 'completed');
    expect(ran).toContainEqual({ name: JOB.revokeAfterGrace, data: { keyId: 'k-own', appId: 'a', successorKeyId: '', reason: 'rotation' } });
  });

  it('refuses a job stamped for another Vault: not run, not failed, not removed; logged with both cluster ids and counted', async () => {
    const foreign = randomUUID();
    const before = await refused('foreign');
    await lifecycle.add(JOB.revokeAfterGrace, { keyId: 'k-foreign', appId: 'a', successorKeyId: '', reason: 'rotation', [VAULT_STAMP]: foreign }, { jobId: 'foreign-1', attempts: 3 });
    await until('the refusal', async () => (await refused('foreign')) > before);
    await until('the job back in the delayed set', async () => (await lifecycle.getJobState('foreign-1')) === 'delayed');
    const job = (await lifecycle.getJob('foreign-1')) as Job;
    expect(job.data[VAULT_STAMP]).toBe(foreign); // untouched: its own worker can still take it
    expect(job.attemptsMade).toBe(0);
    expect(job.delay).toBeGreaterThan(30_000);
    expect(ran.some((r) => (r.data as { keyId?: string }).keyId === 'k-foreign')).toBe(false);
    const line = errors.find((e) => e.includes('foreign-1'));
    expect(line).toContain(foreign);
    expect(line).toContain(cluster);
    await lifecycle.remove('foreign-1');
  });

  it('fails an unstamped job in its own namespace without running it (no latchkey producer writes one)', async () => {
    const before = await refused('unstamped');
    await lifecycle.add(JOB.revokeAfterGrace, { keyId: 'k-bare', appId: 'a', successorKeyId: '', reason: 'rotation' }, { jobId: 'bare-1', attempts: 5 });
    await until('the job failed', async () => (await lifecycle.getJobState('bare-1')) === 'failed');
    const job = (await lifecycle.getJob('bare-1')) as Job;
    expect(job.failedReason).toMatch(/no Vault cluster stamp/);
    expect(job.attemptsMade).toBe(1); // unrecoverable: no retry
    expect(await refused('unstamped')).toBe(before + 1);
    expect(ran.some((r) => (r.data as { keyId?: string }).keyId === 'k-bare')).toBe(false);
    expect(errors.some((e) => e.includes('bare-1') && e.includes(cluster))).toBe(true);
  });

  it('the producer enqueues into its Vault\'s namespace and stamps every job, scheduler iterations included', async () => {
    const producer = new JobsProducer(config, new VaultClusterId(createVaultClient(config).client));
    const maintenance = new Queue(QUEUE.maintenance, { connection: redis, prefix: bullPrefix(prefix, cluster) });
    try {
      await producer.add(JOB.keyRotate, { keyId: 'k-prod', appId: 'a', generation: 0 }, { jobId: 'prod-1', delay: 600_000 });
      expect((await lifecycle.getJob('prod-1'))?.data).toEqual({ keyId: 'k-prod', appId: 'a', generation: 0, [VAULT_STAMP]: cluster });
      await producer.upsertScheduler('iso-scan', JOB.reconcile, 3_600_000, { attempts: 1 });
      let iteration: Job | undefined;
      await until('a scheduler iteration', async () => {
        iteration = (await maintenance.getJobs(['delayed', 'waiting', 'active', 'completed'])).find((j) => j?.repeatJobKey === 'iso-scan');
        return iteration !== undefined;
      });
      expect(iteration!.data).toEqual({ [VAULT_STAMP]: cluster });
    } finally {
      await lifecycle.remove('prod-1');
      await producer.removeScheduler('iso-scan', JOB.reconcile);
      await maintenance.close();
      await producer.onApplicationShutdown();
    }
  });
});

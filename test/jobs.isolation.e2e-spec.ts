import { Redis } from 'ioredis';
import { LatchkeyError } from '@latchkey/common';
import { BaoServer, startBao } from '@latchkey/devstack';
import { bullPrefix, QUEUE, VaultClusterId } from '@latchkey/jobs';
import { decodeKey } from '@latchkey/keys';
import { VaultClient } from '@latchkey/vault';
import { bootstrapPrivate } from './reliability/faults-support';
import { RunningApi, spawnApp, SpawnedProcess, startApi, waitForOutput } from './support/app';
import { call } from './support/http';
import { createProfile, mintKey } from './support/keys';
import { uniqueId } from './support/stack';

/** Two deployments, each with its own OpenBao, api and worker, that share one Redis and the same REDIS_PREFIX by mistake. */
interface Stack {
  name: string;
  bao: BaoServer;
  vault: VaultClient;
  clusterId: string;
  api: RunningApi;
  worker: SpawnedProcess;
}

async function alive(vault: VaultClient, key: string): Promise<boolean> {
  const d = decodeKey(key);
  if (!d.ok) throw new Error('not a key');
  try {
    await vault.lookupToken(d.token);
    return true;
  } catch (err) {
    if (err instanceof LatchkeyError) return false;
    throw err;
  }
}

describe('two deployments on one Redis and one REDIS_PREFIX leave each other\'s jobs alone', () => {
  const prefix = uniqueId('lkiso');
  const stacks: Stack[] = [];
  let redis: Redis;

  beforeAll(async () => {
    redis = new Redis(process.env.REDIS_URL!);
    const baos = await Promise.all([startBao(), startBao()]);
    for (const [i, bao] of baos.entries()) {
      const vault = await bootstrapPrivate(bao.addr, bao.rootToken);
      const env = {
        VAULT_ADDR: bao.addr,
        VAULT_TOKEN: bao.rootToken,
        AUDIT_LOG_PATH: bao.auditLogPath,
        REDIS_PREFIX: prefix,
        // Scans are off: with one prefix the two share a key index, and a scan would mix them up (not what this test is about).
        ROTATION_SCAN_EVERY: '0',
        RECONCILE_EVERY: '0',
        EXPIRY_SWEEP_EVERY: '0',
        CERT_RENEW_SCAN_EVERY: '0',
        AUDIT_INGEST_EVERY: '1h',
      };
      const [api, clusterId] = await Promise.all([startApi(env), new VaultClusterId(vault).get()]);
      const worker = spawnApp('worker', { ...env, LOG_LEVEL: 'info' });
      stacks.push({ name: `stack ${'ab'[i]}`, bao, vault, clusterId, api, worker });
    }
    await Promise.all(stacks.map((s) => waitForOutput(s.worker, /processing queue latchkey-lifecycle/, 30_000)));
  }, 90_000);

  afterAll(async () => {
    await Promise.all(stacks.flatMap((s) => [s.api.close(), s.worker.stop()]));
    await Promise.all(stacks.map((s) => s.bao.stop()));
    for (const k of await redis.keys(`${prefix}:*`)) await redis.unlink(k);
    await redis.quit();
  });

  it('each delayed revocation is carried out by its own worker against its own Vault', async () => {
    const [a, b] = stacks;
    expect(a.clusterId).not.toBe(b.clusterId);

    // Several rotations per stack: before the namespace, each job went to either worker at random.
    const rotations = await Promise.all(
      stacks.map(async (s) => {
        const profile = await createProfile(s.api.url, s.bao.rootToken, { allowedPolicies: ['default'] });
        const appId = uniqueId('app');
        return Promise.all(
          [0, 1, 2, 3].map(async (i) => {
            const old = await mintKey(s.api.url, s.bao.rootToken, { appId, profile, name: `k${i}` });
            const res = await call(s.api.url, 'POST', `/v1/keys/${old.keyId}/rotate`, { token: s.bao.rootToken, body: { grace: '2s' } });
            expect(res.status).toBe(201);
            return { stack: s, old, next: res.body as { key: string; keyId: string } };
          }),
        );
      }),
    );
    const all = rotations.flat();
    for (const r of all) expect(await alive(r.stack.vault, r.old.key)).toBe(true);

    const deadline = Date.now() + 30_000;
    for (const r of all) {
      while ((await alive(r.stack.vault, r.old.key)) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 200));
      expect({ key: r.old.keyId, stack: r.stack.name, revokedInItsVault: !(await alive(r.stack.vault, r.old.key)) }).toEqual({ key: r.old.keyId, stack: r.stack.name, revokedInItsVault: true });
      expect(await alive(r.stack.vault, r.next.key)).toBe(true);
      const detail = await call(r.stack.api.url, 'GET', `/v1/keys/${r.old.keyId}`, { token: r.stack.bao.rootToken });
      expect(detail.body.state).toBe('revoked');
    }

    // Who did what: each worker logged its own revocations only, and never had to refuse a job.
    for (const s of stacks) {
      const out = s.worker.output();
      for (const r of all) {
        const line = `key ${r.old.keyId} of app`;
        expect({ worker: s.name, key: r.old.keyId, ranIt: out.includes(line) }).toEqual({ worker: s.name, key: r.old.keyId, ranIt: r.stack === s });
      }
      expect(out).not.toMatch(/refused job/);
    }

    // The jobs sit in their own cluster's namespace, and nothing was enqueued where both would see it.
    for (const s of stacks) {
      const done = await redis.zrange(`${bullPrefix(prefix, s.clusterId)}:${QUEUE.lifecycle}:completed`, 0, -1);
      const own = all.filter((r) => r.stack === s).map((r) => `key-revoke-after-grace.${r.old.keyId}`);
      expect(done.filter((id) => id.startsWith('key-revoke-after-grace.')).sort()).toEqual(own.sort());
    }
    expect(await redis.keys(`${prefix}:bull:${QUEUE.lifecycle}:*`)).toEqual([]);
  });
});

import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { auditStreamKey } from '@latchkey/audit';
import { waitFor } from '@latchkey/devstack';
import { spawnApp, SpawnedProcess, waitForOutput } from './support/app';
import { rootVault } from './support/stack';

/**
 * Scheduled rotation of the token signing key by real worker processes against the test OpenBao:
 * two workers share the schedule and rotate once per TOKEN_KEY_ROTATE_EVERY, never twice.
 * The Transit key is this file's own (test/oauth.e2e-spec.ts rotates the shared `latchkey-tokens`),
 * and so is the Redis prefix (its scheduler, lease and audit stream).
 */
const PREFIX = `lkr${randomBytes(4).toString('hex')}`;
const KEY = `rot-${randomBytes(4).toString('hex')}`;
const KEY_PATH = `latchkey-transit/keys/${KEY}`;
const EVERY_MS = 4000;
/** The check runs every EVERY/4: a rotation may be that late, plus job pick-up and Vault round trips on a busy machine (measured: ≤ 1 s late). */
const LATE_MS = EVERY_MS / 4 + 3000;
const ENV: NodeJS.ProcessEnv = { REDIS_PREFIX: PREFIX, LOG_LEVEL: 'info', TOKEN_SIGNING_KEY: KEY, TOKEN_KEY_ROTATE_EVERY: `${EVERY_MS / 1000}s` };

interface TransitKey {
  latest_version: number;
  keys: Record<string, { creation_time: string }>;
}
const readKey = async () => (await rootVault().call<{ data: TransitKey }>({ method: 'GET', path: KEY_PATH, operation: 'test read' })).data;

describe('token signing key: scheduled rotation by the worker', () => {
  const workers: SpawnedProcess[] = [];
  let redis: Redis;

  beforeAll(async () => {
    redis = new Redis(process.env.REDIS_URL!);
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await rootVault().call({ method: 'POST', path: `${KEY_PATH}/config`, body: { deletion_allowed: true }, operation: 'test key config' }).catch(() => undefined);
    await rootVault().call({ method: 'DELETE', path: KEY_PATH, operation: 'test key delete' }).catch(() => undefined);
    for (const k of await redis.keys(`${PREFIX}:*`)) await redis.unlink(k);
    await redis.quit();
  });

  it('two workers rotate once per period: each version TOKEN_KEY_ROTATE_EVERY after the previous, one audit event each', async () => {
    await rootVault().call({ method: 'POST', path: KEY_PATH, body: { type: 'ecdsa-p256' }, operation: 'test key create' });
    const before = await readKey();
    expect(before.latest_version).toBe(1);

    workers.push(spawnApp('worker', ENV), spawnApp('worker', ENV));
    await Promise.all(workers.map((w) => waitForOutput(w, /latchkey worker started/, 30_000)));
    expect(workers[0].output()).toMatch(/scheduler tokens-rotate-check: tokens-rotate-check every 1000 ms/);

    // Two rotations: the second shows that the first was not repeated by the other worker within its period.
    const after = await waitFor('two rotations', async () => {
      const k = await readKey();
      return k.latest_version >= 3 ? k : null;
    }, 3 * EVERY_MS + 2 * LATE_MS + 5000);
    await Promise.all(workers.map((w) => w.stop()));

    const created = Object.entries(after.keys)
      .map(([v, k]) => [Number(v), Date.parse(k.creation_time)] as const)
      .sort((a, b) => a[0] - b[0])
      .map(([, t]) => t);
    expect(created.length).toBe(after.latest_version);
    for (let i = 1; i < created.length; i++) {
      const gap = created[i] - created[i - 1];
      expect(gap).toBeGreaterThanOrEqual(EVERY_MS);
      expect(gap).toBeLessThanOrEqual(EVERY_MS + LATE_MS);
    }

    const rotations = after.latest_version - 1;
    const events = (await redis.xrange(auditStreamKey(PREFIX), '-', '+'))
      .map(([, f]) => Object.fromEntries(f.flatMap((v, i) => (i % 2 ? [] : [[v, f[i + 1]]]))))
      .filter((e) => e.type === 'admin.tokens.key.rotated');
    expect(events.map((e) => e.detail)).toEqual(Array.from({ length: rotations }, (_, i) => `${KEY_PATH} version ${i + 2}`));
    expect(events.every((e) => e.actor === 'latchkey-worker' && e.outcome === 'success')).toBe(true);
    const logged = workers.map((w) => (w.output().match(/token signing key \S+ rotated/g) ?? []).length);
    expect(logged[0] + logged[1]).toBe(rotations);
    // The warning that versions will pile up in the JWKS at this pace (JWKS_MAX_AGE 5m > 4 s).
    expect(workers[0].output()).toMatch(/TOKEN_KEY_ROTATE_EVERY \(4s\) is shorter than/);
  }, 40_000);
});

import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { LEASE_MS, withLease } from './lease';

/** The scan lease against a real Redis: one run at a time, released at the end, short-lived when its holder is gone. */
describe('withLease', () => {
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const key = `lkt-lease-${randomBytes(4).toString('hex')}`;
  afterAll(async () => {
    await redis.del(key);
    await redis.quit();
  });

  it('runs one holder at a time, renews while it runs, and releases at the end', async () => {
    let release!: () => void;
    const first = withLease(redis, key, 60_000, () => new Promise<string>((r) => (release = () => r('first'))));
    await new Promise((r) => setTimeout(r, 50));
    expect(await withLease(redis, key, 60_000, async () => 'second')).toEqual({ skipped: 'another run is in progress' });
    // Short-lived, not the run's whole budget: a lost release blocks others for LEASE_MS at most.
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(LEASE_MS);
    release();
    expect(await first).toBe('first');
    expect(await redis.exists(key)).toBe(0);
    expect(await withLease(redis, key, 60_000, async () => 'third')).toBe('third');
  });

  it('a lease whose holder is gone expires by itself within LEASE_MS', async () => {
    await redis.set(key, 'a dead holder', 'PX', 300);
    expect(await withLease(redis, key, 60_000, async () => 'blocked')).toEqual({ skipped: 'another run is in progress' });
    await new Promise((r) => setTimeout(r, 400));
    expect(await withLease(redis, key, 60_000, async () => 'after')).toBe('after');
  });
});

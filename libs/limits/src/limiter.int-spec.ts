import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { LatchkeyError } from '@latchkey/common';
import { freePort } from '@latchkey/devstack';
import { RateLimiter } from './limiter';
import { CreditsSpec, LimitSpec } from './specs';

/** Rate limits and credits against a real Redis, with several limiter instances as several api processes would have. */
describe('RateLimiter (real Redis)', () => {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  let prefix: string;
  const conns: Redis[] = [];
  const limiters: RateLimiter[] = [];
  const connect = () => {
    const r = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    conns.push(r);
    return r;
  };
  const limiter = async (opts: { now?: () => number; syncMs?: number } = {}) => {
    const r = connect();
    await new Promise((res) => (r.status === 'ready' ? res(null) : r.once('ready', res)));
    const l = new RateLimiter(r, { prefix, ...opts });
    limiters.push(l);
    return l;
  };
  const keyId = () => randomBytes(12).toString('hex');
  const strict = (limit: number, windowMs = 10_000, name = 'requests'): LimitSpec => ({ name, limit, windowMs, mode: 'strict', autoApply: true });

  beforeEach(() => {
    prefix = `lkt-limits-${randomBytes(4).toString('hex')}`;
  });
  afterEach(async () => {
    for (const l of limiters.splice(0)) await l.stop();
    const admin = new Redis(url);
    const keys = await admin.keys(`${prefix}:*`);
    if (keys.length) await admin.del(...keys);
    await admin.quit();
    for (const c of conns.splice(0)) c.disconnect();
  });

  it('strict: exactly the limit passes when 1,000 verifies race across 3 instances', async () => {
    const ls = [await limiter(), await limiter(), await limiter()];
    const id = keyId();
    const spec = strict(100);
    const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => ls[i % 3].charge(id, [{ spec, cost: 1 }], null)));
    const ok = results.filter((r) => r.outcome === 'ok').length;
    expect({ ok, limited: results.filter((r) => r.outcome === 'RATE_LIMITED').length }).toEqual({ ok: 100, limited: 900 });
    const last = results.find((r) => r.outcome === 'RATE_LIMITED')!;
    expect(last.ratelimits[0]).toMatchObject({ name: 'requests', limit: 100, remaining: 0 });
    expect(last.retryAfterMs).toBeGreaterThan(0);
    expect(last.retryAfterMs).toBeLessThanOrEqual(10_000);
  });

  it('strict: a cost counts its units, and a charge that would go over spends nothing', async () => {
    const l = await limiter();
    const id = keyId();
    const spec = strict(1000, 10_000, 'tokens');
    expect((await l.charge(id, [{ spec, cost: 600 }], null)).outcome).toBe('ok');
    expect((await l.charge(id, [{ spec, cost: 500 }], null)).outcome).toBe('RATE_LIMITED');
    const r = await l.charge(id, [{ spec, cost: 400 }], null);
    expect([r.outcome, r.ratelimits[0].remaining]).toEqual(['ok', 0]);
  });

  it('credits: exactly the balance is spent when verifies race across 3 instances', async () => {
    const ls = [await limiter(), await limiter(), await limiter()];
    const id = keyId();
    const spec: CreditsSpec = { remaining: 1000, refill: null };
    const results = await Promise.all(Array.from({ length: 1500 }, (_, i) => ls[i % 3].charge(id, [], { spec, anchorMs: 0, cost: 1 })));
    expect(results.filter((r) => r.outcome === 'ok').length).toBe(1000);
    expect(results.filter((r) => r.outcome === 'USAGE_EXCEEDED').length).toBe(500);
    expect(await ls[0].store.readCredits(id, spec, 0)).toBe(0);
  });

  it('checks limits before credits: a refusal spends nothing anywhere', async () => {
    const l = await limiter();
    const id = keyId();
    const spec = strict(2);
    const credits: CreditsSpec = { remaining: 5, refill: null };
    const outcomes = [];
    for (let i = 0; i < 4; i++) outcomes.push((await l.charge(id, [{ spec, cost: 1 }], { spec: credits, anchorMs: 0, cost: 1 })).outcome);
    expect(outcomes).toEqual(['ok', 'ok', 'RATE_LIMITED', 'RATE_LIMITED']);
    expect(await l.store.readCredits(id, credits, 0)).toBe(3);
    // Credits refuse: the limit's units are not spent either.
    const id2 = keyId();
    const none: CreditsSpec = { remaining: 0, refill: null };
    expect((await l.charge(id2, [{ spec, cost: 1 }], { spec: none, anchorMs: 0, cost: 1 })).outcome).toBe('USAGE_EXCEEDED');
    expect((await l.store.readLimit(id2, spec)).used).toBe(0);
  });

  it('strict: charges made in the same turn go to Redis as one script call per 64, each decided in arrival order', async () => {
    const l = await limiter();
    const calls: number[] = [];
    const conn = conns[conns.length - 1] as unknown as { lkCharge: (...a: unknown[]) => Promise<number[]> };
    const real = conn.lkCharge.bind(conn);
    conn.lkCharge = (...a: unknown[]) => {
      calls.push(Number(a[0]));
      return real(...a);
    };
    const id = keyId();
    const spec = strict(1000, 10_000, 'tokens');
    // Same key, no await between: 600 passes, 500 would go over and spends nothing, so 400 still fits.
    const same = await Promise.all([600, 500, 400].map((cost) => l.charge(id, [{ spec, cost }], null)));
    expect(same.map((r) => r.outcome)).toEqual(['ok', 'RATE_LIMITED', 'ok']);
    expect(same.map((r) => r.ratelimits[0].remaining)).toEqual([400, 400, 0]);
    expect(calls).toEqual([3]);
    // 150 keys with a credit balance each, in one turn: three script calls (64 + 64 + 22), every answer its own.
    calls.length = 0;
    const ids = Array.from({ length: 150 }, () => keyId());
    const credits: CreditsSpec = { remaining: 7, refill: null };
    const many = await Promise.all(ids.map((k, i) => l.charge(k, [{ spec: strict(5), cost: 1 + (i % 2) }], { spec: credits, anchorMs: 0, cost: 1 + (i % 3) })));
    expect(calls).toEqual([128, 128, 44]);
    many.forEach((r, i) => {
      expect(r.outcome).toBe('ok');
      expect(r.credits).toEqual({ remaining: 7 - (1 + (i % 3)) });
      expect(r.ratelimits[0].remaining).toBe(5 - (1 + (i % 2)));
    });
  });

  it('refills once per period, however many instances and restarts see the period change', async () => {
    let now = 10_000;
    const clock = () => now;
    const spec: CreditsSpec = { remaining: 3, refill: { amount: 5, everyMs: 60_000 } };
    const id = keyId();
    const anchorMs = 0;
    const a = await limiter({ now: clock });
    for (let i = 0; i < 3; i++) expect((await a.charge(id, [], { spec, anchorMs, cost: 1 })).outcome).toBe('ok');
    expect((await a.charge(id, [], { spec, anchorMs, cost: 1 })).outcome).toBe('USAGE_EXCEEDED');
    now = 70_000; // period 1
    // Two instances and a "restarted" one, all racing in the new period: 5 credits in total, not 5 each.
    const ls = [a, await limiter({ now: clock }), await limiter({ now: clock })];
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => ls[i % 3].charge(id, [], { spec, anchorMs, cost: 1 })));
    expect(results.filter((r) => r.outcome === 'ok').length).toBe(5);
    const restarted = await limiter({ now: clock });
    expect((await restarted.charge(id, [], { spec, anchorMs, cost: 1 })).outcome).toBe('USAGE_EXCEEDED');
    now = 130_000; // period 2
    expect((await restarted.charge(id, [], { spec, anchorMs, cost: 5 })).outcome).toBe('ok');
    expect((await restarted.charge(id, [], { spec, anchorMs, cost: 1 })).outcome).toBe('USAGE_EXCEEDED');
  });

  it('set and add adjust the balance atomically', async () => {
    const l = await limiter();
    const id = keyId();
    const spec: CreditsSpec = { remaining: 10, refill: null };
    expect(await l.store.adjustCredits(id, 'add', 5, spec, 0)).toBe(15);
    expect(await l.store.adjustCredits(id, 'set', 2, spec, 0)).toBe(2);
    expect((await l.charge(id, [], { spec, anchorMs: 0, cost: 3 })).outcome).toBe('USAGE_EXCEEDED');
    expect((await l.charge(id, [], { spec, anchorMs: 0, cost: 2 })).outcome).toBe('ok');
  });

  it('local: decided from leases, never over the limit across 3 instances, Redis asked per lease, not per verify', async () => {
    const ls = [await limiter({ syncMs: 100 }), await limiter({ syncMs: 100 }), await limiter({ syncMs: 100 })];
    // As at api start-up: each instance has announced itself and counted the others before it serves.
    for (const l of ls) await l.tick();
    await Promise.all(ls.map((l) => l.start()));
    const id = keyId();
    const spec: LimitSpec = { name: 'requests', limit: 100, windowMs: 10_000, mode: 'local', autoApply: true };
    // Count what the three instances send to Redis about this key: lease scripts only, never a command per verify.
    let commands = 0;
    for (const c of conns) {
      const send = c.sendCommand.bind(c);
      c.sendCommand = ((cmd: { args: unknown[] }) => {
        if (cmd.args.some((x) => String(x).includes(id))) commands++;
        return send(cmd as never);
      }) as typeof c.sendCommand;
    }
    let ok = 0;
    let attempts = 0;
    for (let round = 0; round < 20; round++) {
      for (const l of ls) for (let i = 0; i < 10; i++) {
        attempts++;
        if ((await l.charge(id, [{ spec, cost: 1 }], null)).outcome === 'ok') ok++;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(attempts).toBe(600);
    // Never over; idle leases can leave a little unused, never more than one share per instance.
    expect(ok).toBeLessThanOrEqual(100);
    expect(ok).toBeGreaterThanOrEqual(100 - 2 * Math.ceil(100 / 3));
    // A few lease fetches per instance (and a refused verify with a spent window asks nothing), not one per verify.
    expect(commands).toBeGreaterThan(0);
    expect(commands).toBeLessThan(attempts / 6);
  });

  it('Redis unreachable: strict limits fall back to this instance’s share, never unlimited; credits give no verdict', async () => {
    const up = [await limiter(), await limiter()];
    for (const l of up) await l.tick();
    const port = await freePort();
    const dead = new Redis(`redis://127.0.0.1:${port}`, { enableOfflineQueue: false, maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null });
    dead.on('error', () => undefined);
    conns.push(dead);
    const warn = jest.fn();
    const l = new RateLimiter(dead, { prefix, log: { warn, log: () => undefined } });
    // It learned of 2 live instances before Redis went away.
    (l as unknown as { liveInstances: number }).liveInstances = 2;
    const id = keyId();
    const spec = strict(10);
    const results = [];
    for (let i = 0; i < 12; i++) results.push(await l.charge(id, [{ spec, cost: 1 }], null));
    expect(results.filter((r) => r.outcome === 'ok').length).toBe(5);
    expect(results.every((r) => r.degraded)).toBe(true);
    expect(warn).toHaveBeenCalledTimes(1);
    await expect(l.charge(id, [], { spec: { remaining: 100, refill: null }, anchorMs: 0, cost: 1 })).rejects.toBeInstanceOf(LatchkeyError);
  });
});

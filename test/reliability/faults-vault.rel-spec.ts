import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { BaoServer, PersistentBaoServer, sleep, startBao, startPersistentBao, waitFor } from '@latchkey/devstack';
import { encodeKey } from '@latchkey/keys';
import { RunningApi, startApi } from '../support/app';
import { call } from '../support/http';
import { createProfile, mintKey } from '../support/keys';
import { uniqueId } from '../support/stack';
import { bootstrapPrivate, percentile } from './faults-support';
import { HEAVY, recordFigure } from './report';

/**
 * Fault injection against Vault: OpenBao stopped then killed under a steady verify load (with
 * persistent (raft) storage so keys survive the restart), and the audit device made unwritable.
 * Each test runs its own OpenBao and api (own Redis prefix on the suite's Redis).
 */

const STALENESS_MS = 8000;
const VAULT_TIMEOUT_MS = 1000;
/** Client-side slack on top of the Vault timeout: 200 concurrent requests on a 2-core machine queue a little. */
const LATENCY_MARGIN_MS = 1500;

type Category = 'cached' | 'uncached' | 'revoked' | 'expired' | 'unknown';
interface Sample {
  cat: Category;
  /** Start, relative to the load start (ms). */
  at: number;
  ms: number;
  status: number;
  code?: string;
}

const verifyOnce = async (url: string, key: string): Promise<{ status: number; code?: string }> => {
  const res = await fetch(`${url}/v1/keys/verify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) });
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { code?: string }).code;
  } catch {
    code = undefined;
  }
  return { status: res.status, code };
};

describe('fault: OpenBao stopped and killed under 200-concurrent verify load (persistent raft storage, restart + unseal)', () => {
  let bao: PersistentBaoServer;
  let api: RunningApi;

  beforeAll(async () => {
    bao = await startPersistentBao();
    await bootstrapPrivate(bao.addr, bao.rootToken);
    api = await startApi({
      VAULT_ADDR: bao.addr,
      VAULT_TOKEN: bao.rootToken,
      REDIS_PREFIX: uniqueId('lkfv'),
      VERIFY_MAX_STALENESS: `${STALENESS_MS / 1000}s`,
      VERIFY_NEGATIVE_TTL: '1s',
      VAULT_TIMEOUT_MS: String(VAULT_TIMEOUT_MS),
      LOG_LEVEL: 'error',
    });
  }, 90_000);
  afterAll(async () => {
    await api?.close();
    await bao?.stop();
  });

  it('accepts no revoked, expired or unknown key; cached keys only within the staleness bound; nothing hangs; full recovery', async () => {
    const op = bao.rootToken;
    const N = HEAVY ? 50 : 20;
    const appId = uniqueId('app');
    const profile = await createProfile(api.url, op);
    const mintN = (n: number, tag: string, extra: Record<string, unknown> = {}) =>
      Promise.all(Array.from({ length: n }, (_, i) => mintKey(api.url, op, { appId, profile, name: `${tag}-${i}`, ...extra })));
    const expiredKeys = await mintN(N, 'expired', { ttl: '3s' });
    const [cachedKeys, uncachedKeys, revokedKeys] = [await mintN(N, 'cached'), await mintN(N, 'uncached'), await mintN(N, 'revoked')];
    // Revoked and expired keys were verified (cached) while valid, so the test also covers cache invalidation.
    for (const k of [...revokedKeys, ...expiredKeys]) expect((await verifyOnce(api.url, k.key)).code).toBe('VALID');
    for (const k of revokedKeys) expect((await call(api.url, 'DELETE', `/v1/keys/${k.keyId}`, { token: op })).status).toBe(204);
    await sleep(Math.max(0, Math.max(...expiredKeys.map((k) => Date.parse(k.expiresAt as string))) - Date.now() + 500));
    const unknownKeys = Array.from({ length: N }, () => ({ key: encodeKey(`s.${randomBytes(18).toString('base64url').slice(0, 24)}`) }));
    // Warm the cache for the "cached" keys just before the load: their entries expire STALENESS_MS from now.
    for (const k of cachedKeys) expect((await verifyOnce(api.url, k.key)).code).toBe('VALID');

    const pools: Record<Category, string[]> = {
      cached: cachedKeys.map((k) => k.key),
      uncached: uncachedKeys.map((k) => k.key),
      revoked: revokedKeys.map((k) => k.key),
      expired: expiredKeys.map((k) => k.key),
      unknown: unknownKeys.map((k) => k.key),
    };
    const samples: Sample[] = [];
    const t0 = Date.now();
    const now = () => Date.now() - t0;
    let outageAt = Infinity; // Vault stops answering (SIGSTOP), then is killed
    let running = true;
    const cats = (): Category[] => (now() >= outageAt ? ['cached', 'uncached', 'revoked', 'expired', 'unknown'] : ['cached', 'revoked', 'expired', 'unknown']);
    const CONCURRENCY = 200;
    const loop = async (w: number) => {
      let i = w;
      while (running) {
        const cs = cats();
        const cat = cs[i % cs.length];
        const pool = pools[cat];
        const key = pool[Math.floor(i / cs.length) % pool.length];
        i += 7;
        const at = now();
        try {
          const r = await verifyOnce(api.url, key);
          samples.push({ cat, at, ms: now() - at, ...r });
        } catch {
          samples.push({ cat, at, ms: now() - at, status: 0 });
        }
      }
    };
    const load = Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => loop(w)));

    // 2 s of steady load, then Vault hangs (SIGSTOP: connections accepted, never answered) for 2 s, then SIGKILL.
    await sleep(2000);
    process.kill(bao.process.pid!, 'SIGSTOP');
    // The outage starts when OpenBao stops answering, not when the signal is sent: on a loaded machine a
    // stopped process was seen answering lookups for up to ~150 ms after SIGSTOP (keys looked up then are
    // rightly VALID). Uncached keys are asked for only once a probe has gone unanswered.
    await waitUnanswered(`${bao.addr}/v1/sys/health`);
    outageAt = now();
    await sleep(2000);
    await bao.kill('SIGKILL');
    const killedAt = now();
    // Stay down until well past the staleness bound of every cached entry.
    await sleep(outageAt + STALENESS_MS + 2000 - now());
    const restartAt = now();
    await bao.restart();
    const unsealedAt = now();
    await sleep(HEAVY ? 10_000 : 3000);
    running = false;
    await load;
    const endAt = now();

    if (process.env.LATCHKEY_FAULTS_DUMP) fs.writeFileSync(process.env.LATCHKEY_FAULTS_DUMP, JSON.stringify({ samples, outageAt, killedAt, restartAt, unsealedAt }));
    const after = (s: Sample, t: number) => s.at >= t;
    const bad = samples.filter((s) => ['revoked', 'expired', 'unknown'].includes(s.cat));
    const badAccepted = bad.filter((s) => s.code === 'VALID').length;
    // A cached entry was confirmed by Vault before the outage, so none may answer VALID once the bound has passed.
    const staleWindow = samples.filter((s) => s.cat === 'cached' && after(s, outageAt + STALENESS_MS + 50) && s.at + s.ms < restartAt);
    const staleAccepted = staleWindow.filter((s) => s.code === 'VALID').length;
    // Requests wholly inside the first 2 s of the outage (started after it, answered within it): the entries warmed
    // just before the load are younger than the bound then, whatever the machine's load.
    const earlyOutage = samples.filter((s) => s.cat === 'cached' && after(s, outageAt) && s.at + s.ms < outageAt + 2000);
    const earlyValid = earlyOutage.filter((s) => s.code === 'VALID').length;
    // Answered before OpenBao was started again: no lookup could have succeeded.
    const uncachedOutage = samples.filter((s) => s.cat === 'uncached' && after(s, outageAt) && s.at + s.ms < restartAt);
    const uncachedAccepted = uncachedOutage.filter((s) => s.code === 'VALID').length;
    const unexpectedStatus = samples.filter((s) => s.status !== 200 && s.status !== 503);
    const latencies = samples.map((s) => s.ms);
    // The machine is shared (2 cores, other suites running): the outage may add at most the Vault timeout to the
    // latency the same load sees with Vault up.
    const steadyMax = Math.max(0, ...samples.filter((s) => s.at < outageAt).map((s) => s.ms));
    const outageLat = samples.filter((s) => after(s, outageAt) && s.at < unsealedAt).map((s) => s.ms);
    const maxMs = Math.max(0, ...outageLat);
    const latencyBound = steadyMax + VAULT_TIMEOUT_MS + LATENCY_MARGIN_MS;
    // Recovery: first moment after unseal from which every valid key verifies VALID and every bad one NOT_FOUND.
    const post = samples.filter((s) => after(s, unsealedAt)).sort((a, b) => a.at - b.at);
    const wrongPost = post.filter((s) => (['cached', 'uncached'].includes(s.cat) ? s.code !== 'VALID' : s.code !== 'NOT_FOUND'));
    const recoveredAt = wrongPost.length ? wrongPost[wrongPost.length - 1].at : unsealedAt;

    // Explicit final pass after the load.
    const final = await Promise.all([
      ...uncachedKeys.map(async (k) => ['uncached', (await verifyOnce(api.url, k.key)).code] as const),
      ...cachedKeys.map(async (k) => ['cached', (await verifyOnce(api.url, k.key)).code] as const),
      ...[...revokedKeys, ...expiredKeys, ...unknownKeys].map(async (k) => ['bad', (await verifyOnce(api.url, k.key)).code] as const),
    ]);
    const finalWrong = final.filter(([c, code]) => (c === 'bad' ? code !== 'NOT_FOUND' : code !== 'VALID')).length;

    const figures = {
      requests: samples.length,
      rps: Math.round(samples.length / (endAt / 1000)),
      outageAt,
      killedAt,
      restartAt,
      unsealedAt,
      badRequests: bad.length,
      badAccepted,
      cachedEarlyOutageValid: `${earlyValid}/${earlyOutage.length}`,
      cachedAfterBoundValid: `${staleAccepted}/${staleWindow.length}`,
      uncachedOutageValid: `${uncachedAccepted}/${uncachedOutage.length}`,
      unexpectedStatuses: [...new Set(unexpectedStatus.map((s) => s.status))],
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      steadyMax,
      maxMs,
      outageP99: percentile(outageLat, 99),
      recoveryMsAfterUnseal: recoveredAt - unsealedAt,
      finalWrong,
    };
    process.stdout.write(`[faults] OpenBao kill under load: ${JSON.stringify(figures)}\n`);

    const injects = `200 concurrent verifies (cached/uncached valid, revoked, expired, unknown); OpenBao SIGSTOP 2 s then SIGKILL, down ${Math.round((restartAt - outageAt) / 1000)} s, restart + unseal (raft storage)`;
    recordFigure({ test: 'OpenBao killed under verify load: bad keys accepted', injects, figure: `${badAccepted} of ${bad.length} revoked/expired/unknown verifications accepted (${samples.length} requests, ${figures.rps} req/s)`, target: '0', pass: badAccepted === 0 && uncachedAccepted === 0 });
    recordFigure({ test: 'OpenBao killed under verify load: staleness bound', injects, figure: `cached keys VALID ${earlyValid}/${earlyOutage.length} in the first 2 s of the outage, ${staleAccepted}/${staleWindow.length} after VERIFY_MAX_STALENESS=${STALENESS_MS / 1000}s`, target: '100 % within, 0 after', pass: staleAccepted === 0 && earlyOutage.length > 0 && earlyValid === earlyOutage.length });
    recordFigure({ test: 'OpenBao killed under verify load: no hang', injects, figure: `max latency during the outage ${maxMs} ms (p99 ${figures.outageP99} ms) vs ${steadyMax} ms with OpenBao up; ${unexpectedStatus.length} answers other than 200/503`, target: `<= steady max + ${VAULT_TIMEOUT_MS} ms timeout + ${LATENCY_MARGIN_MS} ms; 0`, pass: maxMs <= latencyBound && unexpectedStatus.length === 0 });
    recordFigure({ test: 'OpenBao killed under verify load: recovery', injects, figure: `all verdicts correct ${recoveredAt - unsealedAt} ms after unseal; ${finalWrong} wrong of ${final.length} in the final pass`, target: '<= 3000 ms; 0', pass: recoveredAt - unsealedAt <= 3000 && finalWrong === 0 });

    expect(badAccepted).toBe(0);
    expect(uncachedAccepted).toBe(0);
    expect(earlyOutage.length).toBeGreaterThan(0);
    expect(earlyValid).toBe(earlyOutage.length);
    expect(staleWindow.length).toBeGreaterThan(0);
    expect(staleAccepted).toBe(0);
    expect(unexpectedStatus).toEqual([]);
    expect(maxMs).toBeLessThanOrEqual(latencyBound);
    expect(recoveredAt - unsealedAt).toBeLessThanOrEqual(3000);
    expect(finalWrong).toBe(0);
  }, 180_000);
});

/** Make the audit file unwritable for OpenBao (root ignores file modes): chattr +i, else point the path at /dev/full. */
function blockAudit(bao: BaoServer): { how: string; restore(): Promise<void> } {
  try {
    execFileSync('chattr', ['+i', bao.auditLogPath], { stdio: 'ignore' });
    return { how: 'chattr +i on the audit file', restore: async () => void execFileSync('chattr', ['-i', bao.auditLogPath]) };
  } catch {
    const keep = `${bao.auditLogPath}.kept`;
    fs.renameSync(bao.auditLogPath, keep);
    fs.symlinkSync('/dev/full', bao.auditLogPath);
    process.kill(bao.process.pid!, 'SIGHUP');
    return {
      how: 'audit path -> /dev/full (ENOSPC) + SIGHUP',
      restore: async () => {
        fs.unlinkSync(bao.auditLogPath);
        fs.renameSync(keep, bao.auditLogPath);
        process.kill(bao.process.pid!, 'SIGHUP');
        await sleep(300);
      },
    };
  }
}

describe('fault: audit device blocked (audit file unwritable)', () => {
  let bao: BaoServer;
  let api: RunningApi;

  beforeAll(async () => {
    bao = await startBao();
    await bootstrapPrivate(bao.addr, bao.rootToken);
    api = await startApi({ VAULT_ADDR: bao.addr, VAULT_TOKEN: bao.rootToken, REDIS_PREFIX: uniqueId('lkfa'), VAULT_TIMEOUT_MS: String(VAULT_TIMEOUT_MS), VERIFY_MAX_STALENESS: '60s', LOG_LEVEL: 'error' });
  }, 60_000);
  afterAll(async () => {
    try {
      execFileSync('chattr', ['-i', bao.auditLogPath], { stdio: 'ignore' });
    } catch {
      // not blocked
    }
    await api?.close();
    await bao?.stop();
  });

  it('mint and revoke answer 503 within the timeout; verify of cached keys is unaffected; recovery after restore', async () => {
    const op = bao.rootToken;
    const appId = uniqueId('app');
    const profile = await createProfile(api.url, op);
    const cached = await Promise.all(Array.from({ length: 10 }, (_, i) => mintKey(api.url, op, { appId, profile, name: `c-${i}` })));
    const uncached = await mintKey(api.url, op, { appId, profile, name: 'u' });
    const toRevoke = await mintKey(api.url, op, { appId, profile, name: 'r' });
    for (const k of cached) expect((await verifyOnce(api.url, k.key)).code).toBe('VALID');
    const burst = () =>
      Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          const s = Date.now();
          const r = await verifyOnce(api.url, cached[i % cached.length].key);
          return [r, Date.now() - s] as const;
        }),
      );
    await burst(); // connections warm
    const baselineP99 = percentile((await burst()).map(([, ms]) => ms), 99);

    const blocked = blockAudit(bao);
    let restored = false;
    try {
      // Vault itself now refuses every request it cannot audit.
      const direct = await fetch(`${bao.addr}/v1/auth/token/lookup-self`, { headers: { 'x-vault-token': op } });
      expect(direct.status).toBe(500);

      const timed = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
        const s = Date.now();
        const r = await f();
        return [r, Date.now() - s];
      };
      const mints = await Promise.all(Array.from({ length: 5 }, (_, i) => timed(() => call(api.url, 'POST', '/v1/keys', { token: op, body: { appId, profile, name: `blocked-${i}` } }))));
      const [revoke, revokeMs] = await timed(() => call(api.url, 'DELETE', `/v1/keys/${toRevoke.keyId}`, { token: op }));
      const cachedRuns = await burst();
      const [unc] = await timed(() => verifyOnce(api.url, uncached.key));

      const mintStatuses = mints.map(([r]) => r.status);
      const writeStatuses = [...mintStatuses, revoke.status];
      const maxWriteMs = Math.max(revokeMs, ...mints.map(([, ms]) => ms));
      const retryAfter = mints.every(([r]) => r.headers.get('retry-after') !== null);
      const cachedValid = cachedRuns.filter(([r]) => r.code === 'VALID').length;
      const cachedP99 = percentile(cachedRuns.map(([, ms]) => ms), 99);
      process.stdout.write(`[faults] audit blocked (${blocked.how}): mint/revoke ${JSON.stringify(writeStatuses)} max ${maxWriteMs} ms; cached verify ${cachedValid}/200 VALID p99 ${cachedP99} ms (before: ${baselineP99} ms); uncached verify ${unc.status}\n`);

      await blocked.restore();
      restored = true;
      const after = await call(api.url, 'POST', '/v1/keys', { token: op, body: { appId, profile, name: 'after' } });
      const revokeAfter = await call(api.url, 'DELETE', `/v1/keys/${toRevoke.keyId}`, { token: op });
      const revokedVerdict = (await verifyOnce(api.url, toRevoke.key)).code;
      const uncachedAfter = (await verifyOnce(api.url, uncached.key)).code;

      const injects = `audit file unwritable (${blocked.how}); 5 mints, 1 revoke, 200 cached verifies`;
      const writesOk = writeStatuses.every((s) => s === 503) && retryAfter && maxWriteMs <= VAULT_TIMEOUT_MS + 500;
      recordFigure({ test: 'Audit device blocked: mint/revoke', injects, figure: `statuses ${[...new Set(writeStatuses)].join(',')}, slowest ${maxWriteMs} ms`, target: `503 + Retry-After, <= ${VAULT_TIMEOUT_MS} ms + 500 ms`, pass: writesOk });
      recordFigure({ test: 'Audit device blocked: cached verify', injects, figure: `${cachedValid}/200 VALID, p99 ${cachedP99} ms (${baselineP99} ms before); uncached key ${unc.status} (fail closed)`, target: '200/200 VALID; uncached 503', pass: cachedValid === 200 && unc.status === 503 });
      recordFigure({ test: 'Audit device blocked: recovery', injects, figure: `after restore: mint ${after.status}, revoke ${revokeAfter.status}, revoked key ${revokedVerdict}, uncached key ${uncachedAfter}`, target: '201, 204, NOT_FOUND, VALID', pass: after.status === 201 && revokeAfter.status === 204 && revokedVerdict === 'NOT_FOUND' && uncachedAfter === 'VALID' });

      expect(writeStatuses).toEqual([503, 503, 503, 503, 503, 503]);
      expect(retryAfter).toBe(true);
      expect(maxWriteMs).toBeLessThanOrEqual(VAULT_TIMEOUT_MS + 500);
      expect(cachedValid).toBe(200);
      expect(unc.status).toBe(503);
      expect([after.status, revokeAfter.status, revokedVerdict, uncachedAfter]).toEqual([201, 204, 'NOT_FOUND', 'VALID']);
      await waitFor('nothing left blocked', async () => (await fetch(`${bao.addr}/v1/sys/health`)).status === 200, 5000);
    } finally {
      if (!restored) await blocked.restore();
    }
  }, 90_000);
});

/** Resolve once a GET to `url` goes unanswered for 250 ms (the server is stopped). */
async function waitUnanswered(url: string): Promise<void> {
  for (let i = 0; i < 40; i++) {
    try {
      await fetch(url, { signal: AbortSignal.timeout(250) });
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${url} kept answering after SIGSTOP`);
}

import { randomBytes } from 'node:crypto';
import { RaftCluster, sleep, startRaftCluster, waitFor } from '@latchkey/devstack';
import { RunningNginx, startNginx } from '../support/nginx';
import { RunningApi, spawnApp, startApi, waitForOutput } from '../support/app';
import { call } from '../support/http';
import { metricValue } from '../support/metrics';
import { createProfile, mintKey } from '../support/keys';
import { uniqueId } from '../support/stack';
import { bootstrapPrivate, liveLatchkeyTokens, vaultFor } from './faults-support';
import { HEAVY, recordFigure } from './report';

/**
 * Drill (a) of issue 14: latchkey on a 3-node OpenBao raft cluster behind a loopback nginx `upstream`
 * over all three nodes. Under verify load (cached valid keys, revoked keys) and mints with an
 * Idempotency-Key, the active node is SIGKILLed; the drill measures false accepts, cached verifies,
 * how long mints are unavailable compared with the election, double mints and lost keys.
 */

const VAULT_TIMEOUT_MS = 5000;

interface MintAttempt {
  idem: string;
  at: number;
  end: number;
  status: number;
  keyId?: string;
  key?: string;
}

const verifyOnce = async (url: string, key: string): Promise<{ status: number; code?: string }> => {
  const res = await fetch(`${url}/v1/keys/verify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }), signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { code?: string; error?: { code?: string } };
    return { status: res.status, code: body.code ?? body.error?.code };
  } catch {
    return { status: res.status };
  }
};

/**
 * nginx round robin over the nodes. proxy_next_upstream error: a refused connection (the killed node) goes
 * to the next node; nginx never passes a POST on once it has been sent (no `non_idempotent`), so a write is
 * never sent twice by nginx.
 */
function startVaultNginx(addrs: string[]): Promise<RunningNginx> {
  return startNginx(
    (port) => `
  upstream vault {
${addrs.map((a) => `    server ${new URL(a).host} max_fails=1 fail_timeout=2s;`).join('\n')}
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://vault;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout;
      proxy_next_upstream_tries 3;
      proxy_connect_timeout 300ms;
      proxy_read_timeout 30s;
    }
  }`,
    async (url) => (await fetch(`${url}/v1/sys/health?standbyok=true`)).status === 200,
    'nginx in front of the raft cluster',
  );
}

// disable_standby_reads = true is the configuration docs/vault-notes.md asks for. Heavy runs also point latchkey at
// one standby node instead of nginx. OpenBao's default (standby reads) runs only when asked
// (LATCHKEY_RAFT_DRILL_VARIANTS=all), as a measuring tool rather than a gate: it is known to fail "lost keys"
// (a node just unsealed answers lookups from a copy still missing recent tokens: delivered keys verify
// NOT_FOUND; see docs/vault-notes.md).
interface Variant {
  name: string;
  disableStandbyReads: boolean;
  via: 'nginx' | 'standby';
}
const ALL = process.env.LATCHKEY_RAFT_DRILL_VARIANTS === 'all';
const VARIANTS: Variant[] = [
  { name: 'disable_standby_reads = true, through nginx', disableStandbyReads: true, via: 'nginx' },
  ...(HEAVY || ALL ? [{ name: 'disable_standby_reads = true, api on one standby node', disableStandbyReads: true, via: 'standby' as const }] : []),
  ...(ALL ? [{ name: 'standby reads (OpenBao default), through nginx', disableStandbyReads: false, via: 'nginx' as const }] : []),
];

describe.each(VARIANTS.map((v) => [v.name, v] as const))('drill: 3-node OpenBao raft cluster (%s), active node SIGKILLed under verify and mint load', (variant, { disableStandbyReads, via }) => {
  let cluster: RaftCluster;
  let nginx: RunningNginx;
  let api: RunningApi;
  let vaultAddr: string;
  const prefix = uniqueId('lkraft');

  beforeAll(async () => {
    cluster = await startRaftCluster({ nodes: 3, disableStandbyReads });
    nginx = await startVaultNginx(cluster.addrs);
    await bootstrapPrivate(nginx.url, cluster.rootToken);
    const active = await cluster.waitLeader();
    vaultAddr = via === 'nginx' ? nginx.url : cluster.addrs[(active + 1) % cluster.addrs.length];
    api = await startApi({
      VAULT_ADDR: vaultAddr,
      VAULT_TOKEN: cluster.rootToken,
      REDIS_PREFIX: prefix,
      VERIFY_MAX_STALENESS: '30s',
      VERIFY_NEGATIVE_TTL: '1s',
      VAULT_TIMEOUT_MS: String(VAULT_TIMEOUT_MS),
      LOG_LEVEL: 'error',
    });
  }, 150_000);
  afterAll(async () => {
    await api?.close();
    await nginx?.stop();
    await cluster?.stop();
  });

  it('accepts no revoked key, keeps cached verifies answering, mints again soon after the election, never doubles or loses a mint', async () => {
    const op = cluster.rootToken;
    const N = HEAVY ? 40 : 15;
    const appId = uniqueId('app');
    const profile = await createProfile(api.url, op);
    const mintN = (n: number, tag: string) => Promise.all(Array.from({ length: n }, (_, i) => mintKey(api.url, op, { appId, profile, name: `${tag}-${i}` })));
    const cachedKeys = await mintN(N, 'cached');
    const revokedKeys = await mintN(N, 'revoked');
    for (const k of [...cachedKeys, ...revokedKeys]) expect((await verifyOnce(api.url, k.key)).code).toBe('VALID');
    for (const k of revokedKeys) expect((await call(api.url, 'DELETE', `/v1/keys/${k.keyId}`, { token: op })).status).toBe(204);
    for (const k of revokedKeys) expect((await verifyOnce(api.url, k.key)).code).not.toBe('VALID');

    const t0 = Date.now();
    const now = () => Date.now() - t0;
    let running = true;
    const verifies: Array<{ cat: 'cached' | 'revoked'; at: number; end: number; status: number; code?: string }> = [];
    const verifyLoop = async (w: number) => {
      for (let i = w; running; i += 3) {
        const cat = i % 2 === 0 ? 'cached' : 'revoked';
        const pool = cat === 'cached' ? cachedKeys : revokedKeys;
        const at = now();
        try {
          const r = await verifyOnce(api.url, pool[Math.floor(i / 2) % pool.length].key);
          verifies.push({ cat, at, end: now(), ...r });
        } catch {
          verifies.push({ cat, at, end: now(), status: 0 });
        }
      }
    };
    const mints: MintAttempt[] = [];
    const idemKeys: string[] = [];
    const mintLoop = async (w: number) => {
      for (let j = 0; running; j++) {
        const idem = `drill-${w}-${j}-${randomBytes(6).toString('hex')}`;
        idemKeys.push(idem);
        const body = { appId, profile, name: `m-${w}-${j}` };
        // A client that retries with the same Idempotency-Key until it has an answer (bounded).
        for (let attempt = 0; attempt < 60; attempt++) {
          const at = now();
          const r = await call(api.url, 'POST', '/v1/keys', { token: op, body, headers: { 'idempotency-key': idem } }).catch(() => ({ status: 0, body: undefined }));
          mints.push({ idem, at, end: now(), status: r.status, keyId: r.body?.keyId, key: r.body?.key });
          if (r.status === 201 || r.status === 200) break;
          await sleep(200);
        }
      }
    };
    const load = Promise.all([...Array.from({ length: 12 }, (_, w) => verifyLoop(w)), ...Array.from({ length: 3 }, (_, w) => mintLoop(w))]);

    await sleep(3000);
    const leader = (await cluster.leader())!;
    expect(leader).toBeDefined();
    await cluster.kill(leader, 'SIGKILL');
    const killedAt = now();
    const newLeader = await cluster.waitLeader(60_000);
    const electedAt = now();
    await sleep(HEAVY ? 15_000 : 5000);
    // The killed node comes back sealed and stays in nginx's rotation (a 503 is not an nginx failure):
    // every request nginx sends it is answered 503 "Vault is sealed", which latchkey asks again.
    await cluster.restart(leader, { unseal: false });
    const sealedRetriesBefore = await metricValue(api.url, 'latchkey_vault_retries_total', { reason: 'sealed' });
    const sealedFrom = now();
    await sleep(HEAVY ? 10_000 : 4000);
    const sealedTo = now();
    const sealedRetries = (await metricValue(api.url, 'latchkey_vault_retries_total', { reason: 'sealed' })) - sealedRetriesBefore;
    running = false;
    await load;
    // Back in service for the checks below (each answer from a sealed node costs a retry).
    await cluster.unseal(leader);

    // Every Idempotency-Key: at most one key id, whatever the answers (201, then 200 replays).
    const byIdem = new Map<string, Set<string>>();
    for (const m of mints) if (m.keyId && (m.status === 201 || m.status === 200)) byIdem.set(m.idem, (byIdem.get(m.idem) ?? new Set()).add(m.keyId));
    const doubles = [...byIdem.values()].filter((s) => s.size > 1).length;
    const minted = mints.filter((m) => m.status === 201);
    // A replay of every completed mint answers with the same key id.
    let replayMismatch = 0;
    for (const m of minted) {
      const body = { appId, profile, name: `m-${m.idem.split('-')[1]}-${m.idem.split('-')[2]}` };
      const r = await call(api.url, 'POST', '/v1/keys', { token: op, body, headers: { 'idempotency-key': m.idem } });
      if (r.status !== 200 || r.body?.keyId !== m.keyId) replayMismatch++;
    }
    // Every delivered key works afterwards (none lost with the killed node).
    let lost = 0;
    const lostCodes: Record<string, number> = {};
    for (const m of minted) {
      // A verdict, not a 503: thousands of uncached keys verified in a row spend VERIFY_LOOKUP_BUDGET.
      let r = await verifyOnce(api.url, m.key!);
      for (let i = 0; r.status === 503 && i < 40; i++) {
        await sleep(250);
        r = await verifyOnce(api.url, m.key!);
      }
      if (r.code === 'VALID') continue;
      lost++;
      lostCodes[`${r.status} ${r.code}`] = (lostCodes[`${r.status} ${r.code}`] ?? 0) + 1;
    }
    // Tokens OpenBao holds for the drill's mints that no client received (a mint performed whose answer was lost).
    const live = await liveLatchkeyTokens(vaultFor(vaultAddr, cluster.rootToken));
    // Key ids some answer carried: a 201 with the key, or a 200 replay (the id only: the first answer was lost
    // after the key was in the index, and a replay never shows a key again).
    const answered = new Set(mints.filter((m) => m.keyId && (m.status === 201 || m.status === 200)).map((m) => m.keyId!));
    const undelivered = [...live.values()].filter((l) => l.meta?.latchkey_app === appId && String(l.meta?.latchkey_name ?? '').startsWith('m-') && !answered.has(l.accessor)).length;
    const idOnly = answered.size - minted.length;
    let leftIds: string[] = [];
    // Tokens whose mint answer was lost are found by their journaled nonce and revoked by reconciliation
    // (attempts settle 3 × VAULT_TIMEOUT_MS + 10 s after they start), never adopted as keys.
    const reconcileStart = Date.now();
    let leftAfterReconcile = undelivered;
    if (undelivered > 0) {
      const worker = spawnApp('worker', { VAULT_ADDR: vaultAddr, VAULT_TOKEN: cluster.rootToken, REDIS_PREFIX: prefix, VAULT_TIMEOUT_MS: String(VAULT_TIMEOUT_MS), RECONCILE_EVERY: '2s', ROTATION_SCAN_EVERY: '0', EXPIRY_SWEEP_EVERY: '0', LOG_LEVEL: 'info' });
      try {
        await waitForOutput(worker, /latchkey worker started/, 30_000);
        await waitFor(
          'reconciliation revokes the undelivered tokens',
          async () => {
            const now = await liveLatchkeyTokens(vaultFor(vaultAddr, cluster.rootToken));
            const left = [...now.values()].filter((l) => l.meta?.latchkey_app === appId && String(l.meta?.latchkey_name ?? '').startsWith('m-') && !answered.has(l.accessor));
            leftAfterReconcile = left.length;
            leftIds = left.map((l) => `${l.accessor} ${l.meta?.latchkey_name} ${l.meta?.latchkey_mint ?? '-'}`);
            return leftAfterReconcile <= 0;
          },
          3 * VAULT_TIMEOUT_MS + 45_000,
        ).catch(() => undefined);
      } finally {
        await worker.stop();
      }
    }
    const reconcileMs = Date.now() - reconcileStart;

    const badAccepted = verifies.filter((v) => v.cat === 'revoked' && v.code === 'VALID').length;
    const revokedTotal = verifies.filter((v) => v.cat === 'revoked').length;
    const cachedDuring = verifies.filter((v) => v.cat === 'cached' && v.at >= killedAt && v.end <= electedAt + 2000);
    const cachedValid = cachedDuring.filter((v) => v.status === 200 && v.code === 'VALID').length;
    const cachedMax = Math.max(0, ...cachedDuring.map((v) => v.end - v.at));
    // Mint unavailability: the longest stretch after the kill without a completed 201.
    const okEnds = minted.map((m) => m.end).sort((a, b) => a - b);
    const lastBefore = Math.max(killedAt, ...okEnds.filter((e) => e <= killedAt));
    const firstAfter = okEnds.find((e) => e > killedAt) ?? Infinity;
    const mintGap = firstAfter - lastBefore;
    const election = electedAt - killedAt;
    const unexpected = mints.filter((m) => ![200, 201, 503, 409].includes(m.status)).map((m) => m.status);

    // With a sealed node in the upstream: every request started and answered in that window succeeds.
    const inSealed = <T extends { at: number; end: number }>(xs: T[]) => xs.filter((x) => x.at >= sealedFrom && x.end <= sealedTo);
    const sealedVerifyFail = inSealed(verifies.filter((v) => v.cat === 'cached')).filter((v) => v.code !== 'VALID').length;
    const sealedVerifyTotal = inSealed(verifies.filter((v) => v.cat === 'cached')).length;
    const sealedMints = inSealed(mints);
    const sealedMintFail = sealedMints.filter((m) => m.status !== 201 && m.status !== 200).length;

    // Row names stay those of the default variant; the heavy run's other variants are tagged.
    const tag = via === 'standby' ? ' (api on one standby)' : disableStandbyReads ? '' : ' (standby reads on)';
    const injects = `SIGKILL of the active node of 3 (raft, ${variant}), 12 verify + 3 mint clients`;
    recordFigure({ test: `raft cluster${tag}, active node killed: false accepts`, injects, figure: `${badAccepted} of ${revokedTotal} revoked-key verifications VALID`, target: '0', pass: badAccepted === 0 });
    recordFigure({
      test: `raft cluster${tag}, active node killed: cached verifies`,
      injects,
      figure: `${cachedValid}/${cachedDuring.length} VALID from the kill to election + 2 s, max ${cachedMax} ms`,
      target: '100 %',
      pass: cachedDuring.length > 0 && cachedValid === cachedDuring.length,
    });
    recordFigure({
      test: `raft cluster${tag}, active node killed: mint unavailable`,
      injects,
      figure: `${mintGap} ms without a 201 (election ${election} ms, new leader node ${newLeader}); ${minted.length} mints`,
      target: '<= election + 2000 ms',
      pass: mintGap <= election + 2000,
    });
    recordFigure({
      test: `raft cluster${tag}, active node killed: double / lost mints`,
      injects,
      figure: `${doubles} Idempotency-Keys with two key ids, ${replayMismatch} replays with another key id, ${lost} of ${minted.length} delivered keys not VALID afterwards${lost ? ` ${JSON.stringify(lostCodes)}` : ''}; ${idOnly} answered by a replay only (id, no key); ${undelivered} tokens no answer named (answer lost), ${Math.max(0, leftAfterReconcile)} left after reconciliation${undelivered ? ` (${reconcileMs} ms)` : ''}${leftIds.length ? ` ${leftIds.join('; ')}` : ''}`,
      target: '0; 0; 0; 0 left',
      pass: doubles === 0 && replayMismatch === 0 && lost === 0 && leftAfterReconcile <= 0,
    });

    if (via === 'nginx') recordFigure({
      test: `raft cluster${tag}, a sealed node in the upstream`,
      injects: `the killed node restarted sealed behind nginx (round robin), ${variant}`,
      figure: `${sealedVerifyFail} of ${sealedVerifyTotal} cached verifies and ${sealedMintFail} of ${sealedMints.length} mints failed in ${sealedTo - sealedFrom} ms (${sealedRetries} Vault calls answered \"sealed\" and asked again)`,
      target: '0; 0',
      pass: sealedVerifyFail === 0 && sealedMintFail === 0 && sealedMints.length > 0,
    });

    if (via === 'nginx') {
      // Through one standby the sealed (old active) node is not on latchkey's path: nothing to measure.
      expect(sealedRetries).toBeGreaterThan(0);
      expect(sealedMints.length).toBeGreaterThan(0);
    }
    expect(sealedVerifyFail).toBe(0);
    expect(sealedMintFail).toBe(0);
    expect(badAccepted).toBe(0);
    expect(cachedDuring.length).toBeGreaterThan(0);
    expect(cachedValid).toBe(cachedDuring.length);
    expect(doubles).toBe(0);
    expect(replayMismatch).toBe(0);
    expect(lost).toBe(0);
    expect(leftAfterReconcile).toBeLessThanOrEqual(0);
    expect(mintGap).toBeLessThanOrEqual(election + 2000);
    expect(unexpected).toEqual([]);
  }, HEAVY ? 360_000 : 180_000);

});

/**
 * Brute force against verify: valid-key p99 at a fixed moderate load, alone and
 * then while a separate process floods POST /v1/keys/verify with invalid keys
 * (malformed, bad checksum, well-formed but unknown and unique each time) as
 * close to 10k req/s as the machine allows. Vault lookups must stay within
 * VERIFY_LOOKUP_BUDGET (the unknown-but-well-formed keys are what would reach
 * Vault: each is new, so the negative cache never helps) and valid p99 within +20 %.
 * The load generators share the machine with the api: the figures say what was achieved.
 */
import { spawn } from 'node:child_process';
import autocannon from 'autocannon';
import { projectRoot, waitFor } from '@latchkey/devstack';
import { RunningApi, startApi } from '../support/app';
import { createProfile, mintKey, operatorToken } from '../support/keys';
import { metricValue } from '../support/metrics';
import { uniqueId } from '../support/stack';
import { HEAVY, recordFigure } from './report';

const BUDGET = 500;
const TARGET_RATE = 10_000;
const VALID_RATE = 300;
const MEASURE_S = HEAVY ? 20 : 6;
const WARMUP_S = 2;

/** The attacker: its own process, so its event loop does not sit in the valid-key measurement. */
const ATTACK_SCRIPT = `
const autocannon = require('autocannon');
const { randomBytes } = require('node:crypto');
const { encodeKey } = require('./dist/libs/keys/src/format');
const B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const rnd = (n) => { const b = randomBytes(n); let s = ''; for (const x of b) s += B62[x % 62]; return s; };
let i = 0;
const next = () => {
  const k = i++ % 3;
  if (k === 0) return 'lk_garbage-' + rnd(20);                      // malformed
  if (k === 1) { const v = encodeKey('s.' + rnd(24)); return v.slice(0, -1) + (v.endsWith('A') ? 'B' : 'A'); } // bad checksum
  return encodeKey('s.' + rnd(24));                                  // well-formed, unknown, unique
};
const inst = autocannon({
  url: process.env.URL, connections: 64, pipelining: 1, duration: Number(process.env.DURATION), overallRate: Number(process.env.RATE),
  requests: [{ method: 'POST', path: '/v1/keys/verify', headers: { 'content-type': 'application/json' }, setupRequest: (r) => ({ ...r, body: JSON.stringify({ key: next() }) }) }],
}, (err, res) => {
  if (err) { console.error(err); process.exit(1); }
  const codes = {}; for (const [k, v] of Object.entries(res.statusCodeStats || {})) codes[k] = v.count;
  process.stdout.write(JSON.stringify({ total: res.requests.total, duration: res.duration, rps: res.requests.average, codes, errors: res.errors, timeouts: res.timeouts }) + '\\n');
});
`;

interface AttackResult {
  total: number;
  duration: number;
  rps: number;
  codes: Record<string, number>;
  errors: number;
  timeouts: number;
}

function attack(url: string, seconds: number): Promise<AttackResult> {
  const child = spawn(process.execPath, ['-e', ATTACK_SCRIPT], { cwd: projectRoot(), env: { ...process.env, URL: url, DURATION: String(seconds), RATE: String(TARGET_RATE) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  return new Promise((resolve, reject) =>
    child.once('exit', (code) => (code === 0 && out.trim() ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`attacker exited ${code}: ${err.slice(-2000)}`)))),
  );
}

/** Valid-key verifies at a fixed offered rate; returns latency percentiles (ms). */
async function validLoad(url: string, key: string, seconds: number): Promise<{ p50: number; p99: number; rps: number; non2xx: number }> {
  const r = await autocannon({
    url: `${url}/v1/keys/verify`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key }),
    connections: 10,
    duration: seconds,
    overallRate: VALID_RATE,
  });
  return { p50: r.latency.p50, p99: r.latency.p99, rps: r.requests.average, non2xx: r.non2xx };
}

describe('brute force against verify', () => {
  let api: RunningApi;
  let key: string;

  beforeAll(async () => {
    api = await startApi({ VERIFY_LOOKUP_BUDGET: String(BUDGET), LOG_LEVEL: 'warn' });
    const { token: op } = await operatorToken();
    const profile = await createProfile(api.url, op);
    key = (await mintKey(api.url, op, { appId: uniqueId('bf'), profile, name: 'valid' })).key;
  });
  afterAll(async () => api?.close());

  it('keeps Vault lookups within the budget and valid-key p99 within +20 % under 10k invalid keys/s', async () => {
    // Warm the cache and the JIT, then the baseline.
    await validLoad(api.url, key, 2);
    const alone = await validLoad(api.url, key, MEASURE_S);

    const lookups = () => metricValue(api.url, 'latchkey_verify_vault_lookups_total');
    const shedCount = () => metricValue(api.url, 'latchkey_verify_lookups_shed_total');
    const shed0 = await shedCount();
    const attacking = attack(api.url, WARMUP_S + MEASURE_S + 3);
    // The bucket starts full (one second of budget). Measure the steady rate only once the flood
    // has spent that burst, i.e. once lookups are being shed: a fixed warm-up was not enough when
    // the attacker process took long to start on a loaded machine, so the burst landed in the window.
    await waitFor('the flood to spend the initial burst', async () => (await shedCount()) > shed0, 15_000);
    await new Promise((r) => setTimeout(r, WARMUP_S * 1000));
    // Each counter reading is timed at the middle of its /metrics request: on a loaded machine that request
    // takes a while, and timing it at either end would stretch or shrink the window by that much.
    const reading = async () => {
      const before = Date.now();
      const value = await lookups();
      return { value, at: (before + Date.now()) / 2 };
    };
    const r0 = await reading();
    const under = await validLoad(api.url, key, MEASURE_S);
    const r1 = await reading();
    const lookupRate = (r1.value - r0.value) / ((r1.at - r0.at) / 1000);
    const a = await attacking;
    const shed = (await shedCount()) - shed0;

    const degradation = (under.p99 - alone.p99) / alone.p99;
    process.stdout.write(`[bruteforce] valid alone ${JSON.stringify(alone)}; under attack ${JSON.stringify(under)}; attacker ${JSON.stringify(a)}; lookups ${lookupRate.toFixed(1)}/s; shed ${shed}\n`);

    recordFigure({
      test: 'brute force: invalid-key rate achieved',
      injects: 'malformed / bad-checksum / unknown unique well-formed keys (1:1:1) from a separate process, 64 connections',
      figure: `${Math.round(a.rps)} req/s achieved of ${TARGET_RATE} asked (${a.total} requests; status ${JSON.stringify(a.codes)}; ${a.errors} errors, ${a.timeouts} timeouts)`,
      target: `${TARGET_RATE} req/s (2-core machine, generator shares it; timing figure, not asserted)`,
      pass: a.rps >= TARGET_RATE * 0.95,
    });
    recordFigure({
      test: 'brute force: Vault lookup rate',
      injects: `same flood; VERIFY_LOOKUP_BUDGET=${BUDGET}/s`,
      figure: `${lookupRate.toFixed(1)} lookups/s (${shed} verifies of uncached keys shed with 503)`,
      target: `<= ${BUDGET}/s`,
      pass: lookupRate <= BUDGET * 1.02,
    });
    recordFigure({
      test: 'brute force: valid-key p99',
      injects: `valid key at ${VALID_RATE} req/s, 10 connections, ${MEASURE_S}s, alone then under the flood`,
      figure: `p99 ${alone.p99} ms alone → ${under.p99} ms under attack (${degradation >= 0 ? '+' : ''}${(degradation * 100).toFixed(0)} %); p50 ${alone.p50} → ${under.p50} ms; ${under.non2xx} non-2xx`,
      target: '<= +20 % (timing figure, not asserted)',
      pass: degradation <= 0.2 && under.non2xx === 0,
    });
    // Correctness is asserted; latency and throughput are figures for docs/reliability.md
    // (the project checks speed targets with benchmarks, never with timed assertions in tests).
    expect(under.non2xx).toBe(0);
    expect(lookupRate).toBeLessThanOrEqual(BUDGET * 1.02);
  }, 120_000);
});

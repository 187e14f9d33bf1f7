import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { load as loadYaml } from 'js-yaml';
import { Queue } from 'bullmq';
import { freePort, projectRoot, waitFor } from '@latchkey/devstack';
import { JOB, QUEUE } from '@latchkey/jobs';
import { RunningApi, spawnApp, SpawnedProcess, startApi } from './support/app';
import { call } from './support/http';
import { createProfile, mintKey, operatorToken } from './support/keys';
import { testBullPrefix, uniqueId } from './support/stack';

/*
 * Monitoring end to end: the worker's own metrics listener (WORKER_METRICS_PORT) with process
 * metrics, queue depths, job durations and failures, audit-ingestion backlog and keys nearing
 * expiry; and deploy/monitoring's Grafana dashboard and Prometheus rules checked against what a
 * running api and worker really export: every PromQL expression must parse (Prometheus' own
 * Lezer grammar) and name only metric families found in their /metrics.
 */

const root = projectRoot();
const DASHBOARD = path.join(root, 'deploy/monitoring/grafana-dashboard.json');
const RULES = path.join(root, 'deploy/monitoring/prometheus-rules.yml');
/** Own Redis prefix: the worker started here takes only this file's jobs. */
const ENV: NodeJS.ProcessEnv = { REDIS_PREFIX: `lkm${randomBytes(4).toString('hex')}`, ROTATION_SCAN_EVERY: '1s', AUDIT_INGEST_EVERY: '1s' };

/** Grafana's built-in interval variables, replaced by a plain duration before parsing. */
const GRAFANA_VARS: Record<string, string> = { __rate_interval: '5m', __interval: '1m', __range: '1h' };

/** Families of a Prometheus text exposition, with the series names each one produces. */
function familiesOf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$/.exec(line);
    if (!m) continue;
    const [, name, type] = m;
    out.set(name, type);
    // A histogram's or summary's samples are named by suffix; a query names those.
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) out.set(name + s, `${type} series`);
    if (type === 'summary') for (const s of ['_sum', '_count']) out.set(name + s, `${type} series`);
  }
  return out;
}

/** Sample values of one series name, keyed by their label set as written. */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)/.exec(line);
    if (m && m[1] === name) out.set(m[2] ?? '', Number(m[3]));
  }
  return out;
}

/**
 * The metric names a PromQL expression selects, from Prometheus' own grammar: the Identifier
 * of each VectorSelector (function names, label names, keywords and durations are other nodes).
 * Throws on a syntax error, naming the position.
 */
function metricNames(expr: string): string[] {
  const text = expr.replace(/\$\{?(\w+)\}?/g, (all, v: string) => {
    if (!(v in GRAFANA_VARS)) throw new Error(`unknown Grafana variable ${all} in ${expr}`);
    return GRAFANA_VARS[v];
  });
  const names: string[] = [];
  const cursor = parser.parse(text).cursor();
  do {
    if (cursor.type.isError) throw new Error(`PromQL syntax error at ${cursor.from} in: ${text}`);
    if (cursor.name === 'VectorSelector') {
      const selector = cursor.node;
      const id = selector.getChild('Identifier');
      if (id) names.push(text.slice(id.from, id.to));
    }
  } while (cursor.next());
  return names;
}

interface Panel {
  type: string;
  title?: string;
  gridPos?: { h: number; w: number; x: number; y: number };
  targets?: Array<{ expr?: string; refId?: string }>;
  panels?: Panel[];
}

function dashboardExprs(): Array<{ where: string; expr: string }> {
  const dash = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] };
  const all = dash.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  return all.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr ?? '' })));
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function rules(): Rule[] {
  const doc = loadYaml(fs.readFileSync(RULES, 'utf8')) as { groups: Array<{ name: string; rules: Rule[] }> };
  return doc.groups.flatMap((g) => g.rules);
}

describe('monitoring artefacts (offline)', () => {
  it('the dashboard is a Grafana dashboard model: titled, uid, schema version, panels placed on the grid with PromQL targets', () => {
    const dash = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8'));
    expect(typeof dash.title).toBe('string');
    expect(dash.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    expect(Number.isInteger(dash.schemaVersion)).toBe(true);
    expect(dash.templating.list.find((v: { type: string }) => v.type === 'datasource')?.query).toBe('prometheus');
    const panels = dash.panels as Panel[];
    expect(panels.filter((p) => p.type !== 'row').length).toBeGreaterThanOrEqual(10);
    const ids = new Set<number>();
    for (const p of panels as Array<Panel & { id: number }>) {
      expect(ids.has(p.id)).toBe(false);
      ids.add(p.id);
      expect(p.gridPos).toEqual({ h: expect.any(Number), w: expect.any(Number), x: expect.any(Number), y: expect.any(Number) });
      expect(p.gridPos!.x + p.gridPos!.w).toBeLessThanOrEqual(24);
      if (p.type !== 'row') expect(p.targets?.length).toBeGreaterThan(0);
    }
  });

  it('every rule is an alert with an expression, a severity and a summary; every duration parses', () => {
    const all = rules();
    expect(all.length).toBeGreaterThanOrEqual(10);
    const names = new Set<string>();
    for (const r of all) {
      expect(r.alert).toMatch(/^Latchkey[A-Za-z]+$/);
      expect(names.has(r.alert!)).toBe(false);
      names.add(r.alert!);
      expect(['critical', 'warning', 'info']).toContain(r.labels?.severity);
      expect(r.annotations?.summary).toEqual(expect.any(String));
      if (r.for !== undefined) expect(r.for).toMatch(/^\d+[smhd]$/);
    }
  });

  it('every PromQL expression of the dashboard and the rules parses', () => {
    for (const { where, expr } of [...dashboardExprs(), ...rules().map((r) => ({ where: `rule ${r.alert}`, expr: r.expr }))]) {
      expect(() => metricNames(expr)).not.toThrow();
      expect(metricNames(expr).length).toBeGreaterThan(0);
      void where;
    }
  });

  it('the extractor finds metric names, not functions, labels, keywords or durations', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{code!="x"}[$__rate_interval]))) / ignoring(code) group_left max(b) > 0 and absent(c)')).toEqual([
      'a_bucket',
      'b',
      'c',
    ]);
    expect(() => metricNames('sum(rate(a[5m])')).toThrow(/syntax error/);
    expect(() => metricNames('rate(a[$nope])')).toThrow(/unknown Grafana variable/);
  });
});

describe('metrics of a running api and worker', () => {
  let api: RunningApi;
  let worker: SpawnedProcess;
  let workerUrl: string;
  let op: string;

  beforeAll(async () => {
    const port = await freePort();
    workerUrl = `http://127.0.0.1:${port}`;
    [api, { token: op }] = await Promise.all([startApi(ENV), operatorToken()]);
    worker = spawnApp('worker', { ...ENV, WORKER_METRICS_PORT: String(port), WORKER_METRICS_HOST: '127.0.0.1' });
    await waitFor(
      'worker metrics',
      async () => {
        if (worker.child.exitCode !== null) throw new Error(`worker exited: ${worker.output()}`);
        return (await fetch(`${workerUrl}/metrics`).catch(() => null))?.status === 200;
      },
      60_000,
    );
  });
  afterAll(async () => {
    await Promise.all([api?.close(), worker?.stop()]);
  });

  const scrape = async (base: string) => {
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return res.text();
  };

  it('the worker exports process metrics, queue depths per queue and state, job durations, ingestion backlog and keys nearing expiry', async () => {
    const profile = await createProfile(api.url, op);
    const key = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'soon', ttl: '30m' });
    expect(key.keyId).toEqual(expect.any(String));
    // The first scrape after the worker learned its Vault's cluster id has queue samples; jobs run every second.
    const text = await waitFor(
      'queue samples, a finished job and the new key in the expiry gauge',
      async () => {
        const t = await scrape(workerUrl);
        const ran = [...samples(t, 'latchkey_job_duration_seconds_count').values()].some((v) => v > 0);
        const soon = samples(t, 'latchkey_keys_expiring').get('{within="1h"}') ?? 0;
        return samples(t, 'latchkey_queue_jobs').size > 0 && ran && soon >= 1 ? t : null;
      },
      60_000,
    );
    const fams = familiesOf(text);
    for (const name of [
      'latchkey_process_resident_memory_bytes',
      'latchkey_process_cpu_seconds_total',
      'latchkey_nodejs_heap_size_used_bytes',
      'latchkey_nodejs_eventloop_lag_p99_seconds',
      'latchkey_nodejs_gc_duration_seconds',
      'latchkey_jobs_failed_total',
      'latchkey_worker_queues_consuming',
      'latchkey_jobs_refused_total',
      'latchkey_queue_oldest_waiting_seconds',
      'latchkey_audit_ingest_malformed_total',
    ]) {
      expect([name, fams.has(name)]).toEqual([name, true]);
    }
    expect(samples(text, 'latchkey_worker_queues_consuming').get('')).toBe(Object.values(QUEUE).length);
    const depth = samples(text, 'latchkey_queue_jobs');
    for (const queue of Object.values(QUEUE)) {
      for (const state of ['waiting', 'active', 'delayed', 'failed']) expect(depth.get(`{queue="${queue}",state="${state}"}`)).toEqual(expect.any(Number));
      expect(samples(text, 'latchkey_queue_oldest_waiting_seconds').get(`{queue="${queue}"}`)).toBeGreaterThanOrEqual(0);
    }
    const ks = samples(text, 'latchkey_keys_expiring');
    expect(ks.get('{within="1d"}')).toBeGreaterThanOrEqual(ks.get('{within="1h"}')!);
    expect(ks.get('{within="7d"}')).toBeGreaterThanOrEqual(ks.get('{within="1d"}')!);
    // The test stack's OpenBao writes a file audit log (AUDIT_LOG_PATH): the backlog is measured.
    expect(samples(text, 'latchkey_audit_ingest_behind_bytes').get('')).toBeGreaterThanOrEqual(0);
  });

  it('the worker listener serves GET /metrics only, and no secret: not the Vault token, not a key', async () => {
    const profile = await createProfile(api.url, op);
    const key = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'secret-check' });
    expect((await call(api.url, 'POST', '/v1/keys/verify', { body: { key: key.key } })).body.code).toBe('VALID');
    expect((await fetch(`${workerUrl}/`)).status).toBe(404);
    expect((await fetch(`${workerUrl}/metrics/../health`)).status).toBe(404);
    expect((await fetch(`${workerUrl}/metrics`, { method: 'POST', body: 'x' })).status).toBe(404);
    for (const text of [await scrape(workerUrl), await scrape(api.url)]) {
      expect(text).not.toContain(process.env.VAULT_TOKEN!);
      expect(text).not.toContain(key.key);
      expect(text).not.toContain(op);
    }
  });

  it('counts a failed job by queue and job name (final: not retried), and a job name outside the closed list as unknown', async () => {
    // Jobs without the Vault cluster stamp are refused for good: a failure anyone can cause in a test.
    const q = new Queue(QUEUE.maintenance, { connection: { url: process.env.REDIS_URL }, prefix: await testBullPrefix(ENV.REDIS_PREFIX) });
    try {
      await q.add(JOB.reconcile, {}, { attempts: 3 });
      await q.add('made-up-job', {}, { attempts: 1 });
    } finally {
      await q.close();
    }
    const text = await waitFor(
      'both failures counted',
      async () => {
        const t = await scrape(workerUrl);
        const failed = samples(t, 'latchkey_jobs_failed_total');
        return failed.get(`{queue="${QUEUE.maintenance}",name="${JOB.reconcile}",final="true"}`) && failed.get(`{queue="${QUEUE.maintenance}",name="unknown",final="true"}`) ? t : null;
      },
      30_000,
    );
    expect(samples(text, 'latchkey_job_duration_seconds_count').get(`{queue="${QUEUE.maintenance}",name="${JOB.reconcile}",outcome="failed"}`)).toBeGreaterThanOrEqual(1);
    expect(samples(text, 'latchkey_jobs_refused_total').get('{reason="unstamped"}')).toBeGreaterThanOrEqual(2);
    expect(samples(text, 'latchkey_queue_jobs').get(`{queue="${QUEUE.maintenance}",state="failed"}`)).toBeGreaterThanOrEqual(2);
    expect(text).not.toContain('made-up-job');
  });

  it('every metric the dashboard and the rules query is exported by the api or the worker', async () => {
    // Traffic first, so that families created on first use exist: a valid, a malformed and an unknown key.
    const profile = await createProfile(api.url, op);
    const key = await mintKey(api.url, op, { appId: uniqueId('app'), profile, name: 'dash' });
    for (const k of [key.key, key.key, 'not-a-key', `${key.key.slice(0, -4)}AAAA`]) await call(api.url, 'POST', '/v1/keys/verify', { body: { key: k } });
    const known = new Map([...familiesOf(await scrape(api.url)), ...familiesOf(await scrape(workerUrl))]);
    const missing: string[] = [];
    for (const { where, expr } of [...dashboardExprs(), ...rules().map((r) => ({ where: `rule ${r.alert}`, expr: r.expr }))]) {
      for (const name of metricNames(expr)) if (!known.has(name)) missing.push(`${where}: ${name}`);
    }
    expect(missing).toEqual([]);
  });
});

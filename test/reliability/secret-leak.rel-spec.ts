/**
 * Secret-leak scan: an api and a worker at LOG_LEVEL=debug go through a wide
 * scenario (profiles, every kind of mint, verify, forward auth, renew, rotate,
 * self-rotate, revoke, revoke-all, certificates, a webhook delivery, and errors
 * carrying secrets in bodies, headers and URLs). Every secret seen is then
 * searched for in both processes' output, in every Redis key name and value
 * (all types, bull:* included) and in every HTTP response except the ones whose
 * job is to hand a secret over (mint, rotate, issue, unwrap, webhook create).
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { waitFor } from '@latchkey/devstack';
import { decodeKey } from '@latchkey/keys';
import { RunningApi, spawnApp, SpawnedProcess, startApi, waitForOutput } from '../support/app';
import { call } from '../support/http';
import { createProfile, operatorToken } from '../support/keys';
import { rootVault, uniqueId } from '../support/stack';
import { recordFigure } from './report';

const PREFIX = `lks${randomBytes(4).toString('hex')}`;
const ENV: NodeJS.ProcessEnv = {
  LOG_LEVEL: 'debug',
  REDIS_PREFIX: PREFIX,
  ROTATION_MIN_INTERVAL: '2s',
  ROTATION_SCAN_EVERY: '1s',
  RECONCILE_EVERY: '2s',
  EXPIRY_SWEEP_EVERY: '2s',
  AUDIT_INGEST_EVERY: '1s',
  USAGE_FLUSH_EVERY: '1s',
  WEBHOOK_ALLOW_HTTP: 'true',
  // The receiver listens on loopback, which webhooks may not reach by default.
  WEBHOOK_ALLOW_PRIVATE: 'true',
  WEBHOOK_BACKOFF: '500ms',
};

interface Seen {
  what: string;
  text: string;
}

describe('secret-leak scan', () => {
  let api: RunningApi;
  let worker: SpawnedProcess;
  let redis: Redis;
  let hookServer: http.Server;
  const hooks: string[] = [];
  /** name → secret value. */
  const secrets = new Map<string, string>();
  /** Every HTTP response received that must not carry a secret. */
  const responses: Seen[] = [];
  let exempt = 0;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-leak-'));

  const addSecret = (name: string, value: unknown) => {
    if (typeof value !== 'string' || value.length < 8) throw new Error(`secret ${name} missing`);
    secrets.set(name, value);
    if (value.startsWith('-----BEGIN')) return;
    const d = decodeKey(value);
    if (d.ok) secrets.set(`${name} (Vault token)`, d.token);
  };

  /** An HTTP call whose response is searched afterwards, unless it legitimately returns a secret. */
  const req = async (method: string, p: string, opts: Parameters<typeof call>[3] & { secretResponse?: boolean } = {}) => {
    const res = await call(api.url, method, p, opts);
    if (opts.secretResponse) exempt++;
    else {
      const headers = [...res.headers.entries()].map(([k, v]) => `${k}: ${v}`).join('\n');
      responses.push({ what: `${method} ${p} → ${res.status}`, text: `${headers}\n${typeof res.body === 'string' ? res.body : JSON.stringify(res.body)}` });
    }
    return res;
  };
  const rawReq = async (method: string, p: string, headers: Record<string, string>, body?: string) => {
    const res = await fetch(`${api.url}${p}`, { method, headers, body });
    const text = await res.text();
    responses.push({ what: `${method} ${p.slice(0, 40)} → ${res.status}`, text: `${[...res.headers.entries()].map(([k, v]) => `${k}: ${v}`).join('\n')}\n${text}` });
    return res.status;
  };

  beforeAll(async () => {
    hookServer = http.createServer((r, s) => {
      let b = '';
      r.on('data', (c: Buffer) => (b += c.toString()));
      r.on('end', () => {
        hooks.push(b);
        s.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
    [api, worker] = await Promise.all([startApi(ENV), (async () => {
      const w = spawnApp('worker', ENV);
      await waitForOutput(w, /latchkey worker started/, 30_000);
      return w;
    })()]);
    redis = new Redis(process.env.REDIS_URL!);
  });
  afterAll(async () => {
    await Promise.all([api?.close(), worker?.stop(), redis?.quit(), new Promise((r) => hookServer?.close(r))]);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('finds no minted secret in logs, Redis or non-secret HTTP responses', async () => {
    const { token: op } = await operatorToken();
    addSecret('operator Vault token', op);
    const appId = uniqueId('leak');
    const profile = await createProfile(api.url, op, { cidrs: [], selfService: { renew: true, rotate: true } });
    const rotProfile = await createProfile(api.url, op, { rotation: { every: '3s', grace: '2s' } });
    await req('GET', `/v1/profiles/${profile}`, { token: op });
    await req('GET', '/v1/profiles', { token: op });

    // A webhook, so the worker's scheduled rotation delivers a wrapping token.
    const port = (hookServer.address() as AddressInfo).port;
    const hook = await req('PUT', `/v1/apps/${appId}/webhook`, { token: op, body: { url: `http://127.0.0.1:${port}/hook` }, secretResponse: true });
    expect(hook.status).toBe(200);
    addSecret('webhook signing secret', hook.body.secret);

    // Mints: plain, CIDR-bound, wrapped, idempotent (and its replay), management, rotating profile.
    const mint = async (name: string, body: Record<string, unknown>, headers?: Record<string, string>) => {
      const res = await req('POST', '/v1/keys', { token: op, body: { appId, profile, name, ...body }, headers, secretResponse: true });
      expect([200, 201]).toContain(res.status);
      return res.body;
    };
    const plain = await mint('plain', { meta: { owner: 'team-a' } });
    addSecret('plain key', plain.key);
    const cidr = await mint('cidr', { cidrs: ['127.0.0.0/8', '10.0.0.0/8'] });
    addSecret('CIDR key', cidr.key);
    const wrapped = await mint('wrapped', { wrapTtl: '5m' });
    addSecret('wrap token', wrapped.wrapToken);
    const idem = await mint('idem', {}, { 'Idempotency-Key': `leak-${appId}` });
    addSecret('idempotent key', idem.key);
    const replay = await req('POST', '/v1/keys', { token: op, body: { appId, profile, name: 'idem' }, headers: { 'Idempotency-Key': `leak-${appId}` } });
    expect(replay.status).toBe(200); // a replay carries no key: searched like any other response
    const rotating = await req('POST', '/v1/keys', { token: op, body: { appId, profile: rotProfile, name: 'rot' }, secretResponse: true });
    addSecret('scheduled-rotation key', rotating.body.key);
    const unwrapped = await req('POST', '/v1/keys/unwrap', { body: { wrapToken: wrapped.wrapToken }, secretResponse: true });
    addSecret('unwrapped key', unwrapped.body.key);
    await req('POST', '/v1/keys/unwrap', { body: { wrapToken: wrapped.wrapToken } }); // used up: an error that must not echo it

    // Verify and forward auth, valid and invalid.
    for (const k of [plain.key, cidr.key, unwrapped.body.key, idem.key]) {
      await req('POST', '/v1/keys/verify', { body: { key: k } });
      await req('POST', '/v1/keys/verify', { body: { key: k, ip: '192.0.2.1', permissions: ['orders-write'] } });
      await req('GET', '/v1/auth', { bearer: k });
      await req('GET', '/v1/auth/some/path?permissions=nope', { headers: { 'x-api-key': k } });
    }

    // Lifecycle: list, get, renew, usage, rotate, self-renew, self-rotate, revoke.
    await req('GET', `/v1/keys?appId=${appId}&limit=50`, { token: op });
    await req('GET', `/v1/keys/${plain.keyId}`, { token: op });
    await req('POST', `/v1/keys/${plain.keyId}/renew`, { token: op, body: { increment: '2h' } });
    await req('GET', `/v1/keys/${plain.keyId}/usage`, { token: op });
    const rotated = await req('POST', `/v1/keys/${plain.keyId}/rotate`, { token: op, body: { grace: '1m' }, secretResponse: true });
    addSecret('rotated key', rotated.body.key);
    await req('POST', '/v1/keys/self/renew', { bearer: idem.key, body: {} });
    const selfRot = await req('POST', '/v1/keys/self/rotate', { bearer: idem.key, body: { grace: '1m' }, secretResponse: true });
    addSecret('self-rotated key', selfRot.body.key);
    await req('DELETE', `/v1/keys/${cidr.keyId}`, { token: op });
    await req('POST', '/v1/keys/verify', { body: { key: cidr.key } });

    // Certificates: issue, sign a CSR, renew, verify, revoke.
    const issued = await req('POST', '/v1/certs', { token: op, body: { appId, commonName: uniqueId('cn'), ttl: '1h' }, secretResponse: true });
    expect(issued.status).toBe(201);
    addSecret('issued private key', issued.body.privateKey);
    const csrKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    addSecret('CSR private key', csrKey);
    fs.writeFileSync(path.join(tmp, 'k.pem'), csrKey);
    const csr = execFileSync('openssl', ['req', '-new', '-key', path.join(tmp, 'k.pem'), '-subj', `/CN=${uniqueId('csr')}`], { encoding: 'utf8' });
    const signed = await req('POST', '/v1/certs', { token: op, body: { appId, csr, ttl: '1h' } });
    expect(signed.status).toBe(201);
    const renewed = await req('POST', `/v1/certs/${issued.body.serial}/renew`, { token: op, body: {}, secretResponse: true });
    expect(renewed.status).toBe(201);
    addSecret('renewed private key', renewed.body.privateKey);
    await req('POST', '/v1/certs/verify', { body: { certificate: issued.body.certificate } });
    await req('GET', `/v1/certs/${signed.body.serial}`, { token: op });
    await req('GET', `/v1/certs?appId=${appId}`, { token: op });
    await req('DELETE', `/v1/certs/${signed.body.serial}`, { token: op });

    // Errors with secrets in them: bodies failing validation, keys as bad credentials, keys in URLs, broken JSON.
    const k = rotated.body.key as string;
    await req('POST', '/v1/keys', { token: op, body: { appId: k, profile, name: k } });
    await req('POST', '/v1/keys', { token: op, body: { appId, profile, name: 'x', meta: { [k.slice(0, 30)]: k, latchkey_x: k } } });
    await req('PUT', `/v1/profiles/${uniqueId('p')}`, { token: op, body: { allowedPolicies: [k], ttl: k } });
    await req('POST', '/v1/keys/verify', { body: { key: k, ip: k } });
    await req('POST', '/v1/keys/verify', { body: { key: k, extra: k } });
    await req('POST', '/v1/keys/verify', { body: { key: `${k}x` } });
    await req('POST', '/v1/keys/unwrap', { body: { wrapToken: k } });
    await req('GET', `/v1/keys?appId=${appId}`, { bearer: op }); // a Vault token as a bearer key
    await req('GET', `/v1/keys?appId=${appId}`, { token: k }); // a key as a Vault token
    await req('GET', '/v1/auth', { headers: { authorization: `Token ${k}` } });
    await req('GET', '/v1/auth', { headers: { 'x-api-key': op } });
    await req('GET', `/v1/keys/${k}`, { token: op });
    await req('GET', `/v1/keys?appId=${appId}&cursor=${k}`, { token: op });
    await req('POST', `/v1/keys/${plain.keyId}/renew`, { token: op, body: { increment: k } });
    await rawReq('POST', '/v1/keys/verify', { 'content-type': 'application/json' }, `{"key": "${k}", `);
    await rawReq('POST', '/v1/keys', { 'content-type': 'application/json', 'x-vault-token': op }, `{"appId": "${k}" "profile"}`);
    await rawReq('POST', '/v1/keys/self/renew', { 'content-type': 'text/plain', authorization: `Bearer ${k}` }, k);

    // Revoke-all (kill switch), then let the worker rotate, deliver and ingest the audit log.
    // Two deliveries to the app's webhook: the self-rotated successor and the scheduled one.
    const deliveryOf = (name: string) => hooks.find((h) => h.includes('wrapToken') && (JSON.parse(h) as { name: string }).name === name);
    const delivered = await waitFor('webhook delivery', async () => deliveryOf('rot'), 40_000);
    const hookBody = JSON.parse(delivered) as { wrapToken: string; name: string };
    addSecret('webhook wrap token', hookBody.wrapToken);
    const selfDelivered = await waitFor('webhook delivery of the self-rotation', async () => deliveryOf('idem'), 20_000);
    addSecret('self-rotation webhook wrap token', (JSON.parse(selfDelivered) as { wrapToken: string }).wrapToken);
    const kv = await rootVault().kvRead<{ key: string }>('latchkey-kv', `delivery/${appId}/rot`);
    addSecret('scheduled-rotation successor', kv?.key);
    await req('POST', `/v1/apps/${appId}/keys/revoke-all`, { token: op });
    await req('GET', `/v1/apps/${appId}/webhook`, { token: op });
    await req('GET', '/v1/admin/queues', { token: op });
    await new Promise((r) => setTimeout(r, 3000)); // one more ingestion / usage flush / scan round
    await req('GET', `/v1/audit/events?appId=${appId}&limit=500`, { token: op });
    await req('GET', `/v1/keys/${plain.keyId}/usage`, { token: op });
    await req('GET', '/metrics');

    // --- search -----------------------------------------------------------------------
    const places: Seen[] = [
      { what: 'api output', text: api.process.output() },
      { what: 'worker output', text: worker.output() },
      ...responses,
    ];
    let redisKeys = 0;
    for (let cursor = '0'; ; ) {
      const [next, keys] = await redis.scan(cursor, 'COUNT', 1000);
      for (const key of keys) {
        redisKeys++;
        const type = await redis.type(key);
        let value: unknown;
        if (type === 'string') value = await redis.get(key);
        else if (type === 'hash') value = await redis.hgetall(key);
        else if (type === 'list') value = await redis.lrange(key, 0, -1);
        else if (type === 'set') value = await redis.smembers(key);
        else if (type === 'zset') value = await redis.zrange(key, 0, -1, 'WITHSCORES');
        else if (type === 'stream') value = await redis.xrange(key, '-', '+');
        else value = null; // gone meanwhile (other tests share this Redis)
        places.push({ what: `redis ${type} ${key}`, text: `${key}\n${JSON.stringify(value)}` });
      }
      cursor = next;
      if (cursor === '0') break;
    }
    // Search each secret, plus for PEM keys a base64 run and for tokens the part after the Vault prefix.
    const needles: Array<[string, string]> = [];
    for (const [name, s] of secrets) {
      if (s.startsWith('-----BEGIN')) {
        const lines = s.split('\n').filter((l) => /^[A-Za-z0-9+/=]{40,}$/.test(l));
        lines.forEach((l, i) => needles.push([`${name} line ${i + 1}`, l.slice(0, 40)]));
      } else {
        needles.push([name, s]);
        const dot = s.indexOf('.');
        if (dot > 0 && dot < 5 && s.length - dot > 16) needles.push([`${name} (without prefix)`, s.slice(dot + 1)]);
      }
    }
    const hits: string[] = [];
    for (const p of places) {
      for (const [name, n] of needles) {
        const at = Math.max(p.text.indexOf(n), p.text.indexOf(JSON.stringify(n).slice(1, -1)));
        // Where it was found, with the secret itself masked, so the report can be pasted safely.
        if (at >= 0) hits.push(`${name} in ${p.what}: …${p.text.slice(Math.max(0, at - 200), at + n.length + 100).split(n).join('<SECRET>')}…`);
      }
    }

    const figure = `${secrets.size} secrets × ${places.length} places searched (2 process logs, ${redisKeys} Redis keys, ${responses.length} HTTP responses; ${exempt} secret-bearing responses exempt): ${hits.length} hits`;
    recordFigure({ test: 'secret-leak scan', injects: 'LOG_LEVEL=debug api+worker, full key/cert/webhook lifecycle, secrets in bad bodies/headers/URLs', figure, target: '0 hits', pass: hits.length === 0 });
    expect(hits).toEqual([]);
  }, 150_000);
});

import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { freePort, stopProcess, waitFor, which } from '@latchkey/devstack';
import { RunningApi, spawnApp, SpawnedProcess, startApi, waitForOutput } from './support/app';
import { call } from './support/http';
import { createProfile, mintKey, operatorToken } from './support/keys';
import { uniqueId } from './support/stack';
import { ServerIdentity, serverIdentity } from './support/tls';

/**
 * latchkey on a Redis that speaks TLS only and asks for a password (issue 14: "with passwords and TLS"):
 * two api instances and a worker connect with a rediss:// REDIS_URL and REDIS_CACERT; mint, verify with a
 * strict limit (Lua), and the revocation bus (pub/sub) work across instances; a connection that does not
 * trust the server's certificate is refused, and the password never reaches a log.
 */
const PREFIX = `lktls${randomBytes(4).toString('hex')}`;
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;

describe('Redis over TLS with a password', () => {
  let identity: ServerIdentity;
  let redis: ChildProcess;
  let port: number;
  const apis: RunningApi[] = [];
  let worker: SpawnedProcess | undefined;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    identity = serverIdentity();
    port = await freePort();
    const bin = which('redis-server');
    if (!bin) throw new Error('redis-server is required for this test');
    redis = spawn(
      bin,
      ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--tls-cert-file', identity.certFile, '--tls-key-file', identity.keyFile, '--tls-ca-cert-file', identity.certFile, '--tls-auth-clients', 'no', '--requirepass', PASSWORD, '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    env = { REDIS_URL: `rediss://:${PASSWORD}@127.0.0.1:${port}`, REDIS_CACERT: identity.certFile, REDIS_PREFIX: PREFIX, VERIFY_MAX_STALENESS: '10m', LOG_LEVEL: 'info' };
    const w = spawnApp('worker', env);
    worker = w;
    [apis[0], apis[1]] = await Promise.all([startApi(env), startApi(env), waitForOutput(w, /latchkey worker started/, 30_000)]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([...apis.map((a) => a?.close()), worker?.stop()]);
    if (redis) await stopProcess(redis);
    identity?.remove();
  });

  it('mints, verifies with a strict limit and hears revocations across instances', async () => {
    const { token: op } = await operatorToken();
    for (const a of apis) await waitFor('ready over TLS', async () => (await fetch(`${a.url}/health/ready`)).status === 200, 20_000);
    const profile = await createProfile(apis[0].url, op, { limits: [{ name: 'requests', limit: 3, window: '60s', mode: 'strict' }] });
    const k = await mintKey(apis[0].url, op, { appId: uniqueId('app'), profile, name: 'tls' });
    const codes: string[] = [];
    for (const i of [0, 1, 0, 1]) codes.push((await call(apis[i].url, 'POST', '/v1/keys/verify', { body: { key: k.key } })).body.code);
    // The limit is shared through Redis: the fourth verify, on either instance, is over it.
    expect(codes).toEqual(['VALID', 'VALID', 'VALID', 'RATE_LIMITED']);
    expect((await call(apis[0].url, 'DELETE', `/v1/keys/${k.keyId}`, { token: op })).status).toBe(204);
    await waitFor('revocation heard by the other instance', async () => (await call(apis[1].url, 'POST', '/v1/keys/verify', { body: { key: k.key } })).body.code === 'NOT_FOUND', 5000);
    for (const p of [...apis.map((a) => a.process), worker!]) expect(p.output()).not.toContain(PASSWORD);
  });

  it('refuses a server whose certificate it does not trust', async () => {
    const p = await freePort();
    const untrusting = spawnApp('api', { ...env, REDIS_CACERT: '', LATCHKEY_HOST: '127.0.0.1', LATCHKEY_PORT: String(p) });
    try {
      await waitForOutput(untrusting, /Redis connection error: self-signed certificate/, 30_000);
      const ready = await fetch(`http://127.0.0.1:${p}/health/ready`).then((r) => r.status, () => 0);
      expect(ready).not.toBe(200);
      expect(untrusting.output()).not.toContain(PASSWORD);
    } finally {
      await untrusting.stop();
    }
  });
});

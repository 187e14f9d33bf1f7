import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { LatchkeyError } from '@latchkey/common';
import { waitFor } from '@latchkey/devstack';
import { MINT_NONCE_META } from '@latchkey/keys';
import { TokenLookup } from '@latchkey/vault';
import { RunningApi, spawnApp, SpawnedProcess, startApi, waitForOutput } from './support/app';
import { call } from './support/http';
import { createProfile, operatorToken } from './support/keys';
import { rootVault, uniqueId } from './support/stack';

/**
 * A mint whose answer is lost after Vault performed it (issue 14: "a retry never doubles a mint"). A proxy
 * in front of the test stack's OpenBao lets token-create requests through and then cuts the connection
 * before the answer reaches latchkey: Vault holds a token whose secret nobody received. The client's retry
 * gets a key of its own, and reconciliation revokes the orphan by the nonce the mint journaled, instead of
 * adopting it into the index as a second key of the app.
 */
const PREFIX = `lkm${randomBytes(4).toString('hex')}`;
const ENV: NodeJS.ProcessEnv = { REDIS_PREFIX: PREFIX, VAULT_TIMEOUT_MS: '2000', ROTATION_SCAN_EVERY: '0', EXPIRY_SWEEP_EVERY: '0' };

/**
 * Forwards bytes to OpenBao (a TCP proxy: Vault's LIST method is not one node's HTTP parser accepts). While
 * `cutCreates` is set, a connection that carries a token-create request is cut as soon as Vault starts to
 * answer: the token exists, and latchkey never reads the answer.
 */
function lossyVaultProxy(target: string) {
  const state = { cutCreates: false, cut: 0 };
  const t = new URL(target);
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(t.port), t.hostname);
    let cutNext = false;
    client.on('data', (chunk) => {
      if (state.cutCreates && chunk.toString('latin1', 0, 64).startsWith('POST /v1/auth/token/create')) cutNext = true;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (!cutNext) return void client.write(chunk);
      state.cut++;
      client.destroy();
      upstream.destroy();
    });
    const end = () => (client.destroy(), upstream.destroy());
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  return {
    state,
    listen: () => new Promise<string>((r) => server.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function tokensOf(appId: string): Promise<TokenLookup[]> {
  const vault = rootVault();
  const out: TokenLookup[] = [];
  for (const a of await vault.listAccessors()) {
    try {
      const l = await vault.lookupAccessor(a);
      if (l.meta?.latchkey_app === appId) out.push(l);
    } catch (err) {
      if (!(err instanceof LatchkeyError)) throw err; // revoked meanwhile
    }
  }
  return out;
}

describe('mint whose answer is lost after Vault performed it', () => {
  const proxy = lossyVaultProxy(process.env.VAULT_ADDR!);
  let api: RunningApi;
  let worker: SpawnedProcess | undefined;
  let op: string;
  let redis: Redis;

  beforeAll(async () => {
    const url = await proxy.listen();
    [api, { token: op }] = await Promise.all([startApi({ ...ENV, VAULT_ADDR: url }), operatorToken()]);
    redis = new Redis(process.env.REDIS_URL!);
  });
  afterAll(async () => {
    await Promise.all([api?.close(), worker?.stop(), redis?.quit()]);
    await proxy.close();
  });

  it('answers 503, the retry with the same Idempotency-Key gets one key, and reconciliation revokes the orphan', async () => {
    const profile = await createProfile(api.url, op);
    const appId = uniqueId('app');
    const body = { appId, profile, name: 'lost' };
    const idem = `idem-${randomBytes(6).toString('hex')}`;

    proxy.state.cutCreates = true;
    const first = await call(api.url, 'POST', '/v1/keys', { token: op, body, headers: { 'idempotency-key': idem } });
    proxy.state.cutCreates = false;
    expect(proxy.state.cut).toBe(1);
    expect(first.status).toBe(503);
    expect(first.body.error.code).toBe('VAULT_UNAVAILABLE');
    expect(JSON.stringify(first.body)).not.toMatch(/lk_|hvs\.|s\./);

    // Vault performed the mint: one token, carrying the nonce that is still journaled.
    const [orphan] = await tokensOf(appId);
    expect(orphan).toBeDefined();
    const nonce = orphan.meta?.[MINT_NONCE_META];
    expect(nonce).toMatch(/^[0-9a-f]{24}$/);
    expect(await redis.hexists(`${PREFIX}:mint-journal`, nonce!)).toBe(1);
    expect(await redis.get(`${PREFIX}:key:${orphan.accessor}`)).toBeNull();

    const retry = await call(api.url, 'POST', '/v1/keys', { token: op, body, headers: { 'idempotency-key': idem } });
    expect(retry.status).toBe(201);
    expect(retry.body.keyId).not.toBe(orphan.accessor);
    // The completed mint left nothing in the journal; a replay answers with the same key id.
    const replay = await call(api.url, 'POST', '/v1/keys', { token: op, body, headers: { 'idempotency-key': idem } });
    expect(replay.status).toBe(200);
    expect(replay.body.keyId).toBe(retry.body.keyId);
    expect(await redis.hkeys(`${PREFIX}:mint-journal`)).toEqual([nonce]);

    // Reconciliation (VAULT_TIMEOUT_MS 2 s: attempts settle 16 s after they start) revokes the orphan only.
    worker = spawnApp('worker', { LOG_LEVEL: 'info', ...ENV, RECONCILE_EVERY: '2s' });
    await waitForOutput(worker, /latchkey worker started/, 30_000);
    await waitFor('the orphan is revoked', async () => (await tokensOf(appId)).every((l) => l.accessor !== orphan.accessor), 45_000).catch((err: Error) => {
      throw new Error(`${err.message}\n--- worker ---\n${worker?.output().slice(-3000)}`);
    });
    const live = await tokensOf(appId);
    expect(live.map((l) => l.accessor)).toEqual([retry.body.keyId]);
    expect(await redis.hlen(`${PREFIX}:mint-journal`)).toBe(0);
    // Never adopted: the index knows the app's one key only, and that key verifies.
    const list = await call(api.url, 'GET', `/v1/keys?appId=${appId}`, { token: op });
    expect(list.body.items.map((k: { keyId: string }) => k.keyId)).toEqual([retry.body.keyId]);
    expect((await call(api.url, 'POST', '/v1/keys/verify', { body: { key: retry.body.key } })).body.code).toBe('VALID');
    expect(worker.output()).toMatch(new RegExp(`key ${orphan.accessor} of app ${appId} was minted for a request that never received it: revoked`));
  }, 120_000);
});

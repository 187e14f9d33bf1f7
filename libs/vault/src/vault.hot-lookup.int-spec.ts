import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { register } from 'prom-client';
import { ErrorCode } from '@latchkey/common';
import { loadConfig } from '@latchkey/config';
import { createVaultClient, HotLookupTransport, VaultClient, VaultResponse } from '@latchkey/vault';
import { freePort } from '@latchkey/devstack';
import { rootVault, testConfig, uniqueId } from '../../../test/support/stack';

/** The verify hot path's own lookup transport (node:http keep-alive) against the real OpenBao. */
describe('HotLookupTransport against OpenBao', () => {
  const config = testConfig();
  let vault: VaultClient;
  let hot: HotLookupTransport;
  let role: string;
  const root = config.vault.auth.method === 'token' ? config.vault.auth.token : '';

  beforeAll(async () => {
    vault = rootVault(config);
    hot = new HotLookupTransport({ addr: config.vault.addr, timeoutMs: config.vault.timeoutMs });
    role = `latchkey-${uniqueId('hot')}`;
    await vault.writeRole(role, { allowed_policies: ['default'], orphan: true, renewable: true, token_type: 'service', token_explicit_max_ttl: 7200 });
  });

  afterAll(async () => {
    hot.close();
    await vault.deleteRole(role);
  });

  async function lookupCount(outcome: string): Promise<number> {
    const m = (await register.getSingleMetric('latchkey_vault_request_duration_seconds')!.get()).values;
    return m.find((v) => (v as { metricName?: string }).metricName?.endsWith('_count') && v.labels.operation === 'token lookup' && v.labels.outcome === outcome)?.value ?? 0;
  }

  it('finds a token (POST, token in the body) and records the call', async () => {
    const res = await vault.createToken(role, { policies: ['default'], meta: { latchkey_app: 'hot' }, ttl: '1h' });
    const before = await lookupCount('ok');
    const l = (await hot.lookup(res.auth!.client_token, root)).data!;
    expect(l.accessor).toBe(res.auth!.accessor);
    expect(l.meta).toEqual({ latchkey_app: 'hot' });
    expect(l.role).toBe(role);
    expect(await lookupCount('ok')).toBe(before + 1);
    // Vault's audit log shows the lookup path with the token only HMAC'd in the body.
    const text = fs.readFileSync(process.env.AUDIT_LOG_PATH!, 'utf8');
    expect(text).not.toContain(res.auth!.client_token);
  });

  it('maps an unknown token to permission denied (Vault 403 "bad token")', async () => {
    const before = await lookupCount(ErrorCode.VAULT_PERMISSION_DENIED);
    await expect(hot.lookup(`s.${'unknown'.repeat(4)}`, root)).rejects.toMatchObject({ code: ErrorCode.VAULT_PERMISSION_DENIED, message: expect.stringMatching(/bad token/) });
    expect(await lookupCount(ErrorCode.VAULT_PERMISSION_DENIED)).toBe(before + 1);
  });

  it('maps its own bad token to permission denied as well ("permission denied")', async () => {
    const res = await vault.createToken(role, { policies: ['default'], ttl: '1h' });
    await expect(hot.lookup(res.auth!.client_token, `s.${'notours'.repeat(4)}`)).rejects.toMatchObject({ code: ErrorCode.VAULT_PERMISSION_DENIED, message: expect.stringMatching(/permission denied/) });
  });

  it('times out when Vault accepts but never answers', async () => {
    const silent = net.createServer(() => undefined).listen(0, '127.0.0.1');
    await new Promise((r) => silent.once('listening', r));
    const slow = new HotLookupTransport({ addr: `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`, timeoutMs: 5000 });
    const started = Date.now();
    await expect(slow.lookup('s.whatever', root, 200)).rejects.toMatchObject({ code: ErrorCode.VAULT_TIMEOUT });
    expect(Date.now() - started).toBeLessThan(2000);
    slow.close();
    silent.close();
  });

  it('maps Vault down (connection refused) to unavailable (503)', async () => {
    const down = new HotLookupTransport({ addr: `http://127.0.0.1:${await freePort()}`, timeoutMs: 1000 });
    await expect(down.lookup('s.whatever', root)).rejects.toMatchObject({ code: ErrorCode.VAULT_UNAVAILABLE, httpStatus: 503 });
    down.close();
  });

  it('maps a Vault 5xx to unavailable and keeps no token in the error', async () => {
    const server = http.createServer((_req, res) => void res.writeHead(500, { 'content-type': 'application/json' }).end('{"errors":["internal error"]}')).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const broken = new HotLookupTransport({ addr: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, timeoutMs: 1000 });
    const secret = `s.${'secret'.repeat(3)}`;
    const err = await broken.lookup(secret, root).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.VAULT_UNAVAILABLE });
    expect(JSON.stringify(err)).not.toContain(secret);
    broken.close();
    server.close();
  });

  it('an unknown key does not make an AppRole client log in again (403 "bad token" is about the key, not about latchkey)', async () => {
    const roleId = (await vault.raw<VaultResponse<{ role_id: string }>>('GET', 'auth/approle/role/latchkey/role-id')).data!.role_id;
    const secretId = (await vault.raw<VaultResponse<{ secret_id: string }>>('POST', 'auth/approle/role/latchkey/secret-id', {})).data!.secret_id;
    const { client, tokens } = createVaultClient(loadConfig({ VAULT_ADDR: config.vault.addr, VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: secretId }));
    const own = await tokens.token();
    for (let i = 0; i < 3; i++) await expect(client.lookupToken(`s.unknown${uniqueId('x')}`)).rejects.toMatchObject({ code: ErrorCode.VAULT_PERMISSION_DENIED });
    expect(await tokens.token()).toBe(own);
    // Its own token refused ("permission denied") still makes it log in again and retry.
    await vault.raw('POST', 'auth/token/revoke', { token: own });
    const res = await vault.createToken(role, { policies: ['default'], ttl: '1h' });
    await expect(client.lookupToken(res.auth!.client_token)).resolves.toMatchObject({ accessor: res.auth!.accessor });
    expect(await tokens.token()).not.toBe(own);
    tokens.stop();
  });

  it('VaultClient.lookupToken follows a standby redirect through node-vault', async () => {
    const res = await vault.createToken(role, { policies: ['default'], ttl: '1h' });
    let asked = 0;
    const standby = http
      .createServer((req, reply) => {
        asked++;
        void reply.writeHead(307, { location: `${config.vault.addr}${req.url}` }).end();
      })
      .listen(0, '127.0.0.1');
    await new Promise((r) => standby.once('listening', r));
    const viaStandby = createVaultClient(loadConfig({ ...process.env, VAULT_ADDR: `http://127.0.0.1:${(standby.address() as net.AddressInfo).port}` })).client;
    await expect(viaStandby.lookupToken(res.auth!.client_token)).resolves.toMatchObject({ accessor: res.auth!.accessor });
    expect(asked).toBe(2); // once by the hot transport, once by node-vault before it followed the redirect
    standby.close();
  });
});

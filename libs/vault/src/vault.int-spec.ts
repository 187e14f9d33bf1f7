import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { loadConfig } from '@latchkey/config';
import { createVaultClient, VaultClient, VaultResponse } from '@latchkey/vault';
import { rootVault, testConfig, uniqueId } from '../../../test/support/stack';

/** libs/vault against the real OpenBao started by the test stack. */
describe('VaultClient against OpenBao', () => {
  const config = testConfig();
  let vault: VaultClient;
  let role: string;

  beforeAll(async () => {
    vault = rootVault(config);
    role = `latchkey-${uniqueId('int')}`;
    await vault.writeRole(role, {
      allowed_policies: ['default'],
      orphan: true,
      renewable: true,
      token_type: 'service',
      token_explicit_max_ttl: 7200,
    });
  });

  afterAll(async () => {
    await vault.deleteRole(role);
  });

  async function mint(meta: Record<string, string> = {}): Promise<{ token: string; accessor: string }> {
    const res = await vault.createToken(role, { policies: ['default'], meta, ttl: '1h' });
    return { token: res.auth!.client_token, accessor: res.auth!.accessor };
  }

  it('creates a token through a role, then looks it up by value and by accessor', async () => {
    const { token, accessor } = await mint({ latchkey_app: 'int' });
    const byValue = await vault.lookupToken(token);
    expect(byValue.accessor).toBe(accessor);
    expect(byValue.meta).toEqual({ latchkey_app: 'int' });
    expect(byValue.orphan).toBe(true);
    expect(byValue.role).toBe(role);
    expect(byValue.ttl).toBeGreaterThan(3500);

    const byAccessor = await vault.lookupAccessor(accessor);
    expect(byAccessor.accessor).toBe(accessor);
    expect(byAccessor.id).toBe(''); // Vault blanks the token in accessor lookups
  });

  it('refuses an empty token instead of letting Vault look up its own', async () => {
    await expect(vault.lookupToken('')).rejects.toMatchObject({ code: ErrorCode.BAD_REQUEST });
  });

  it('maps an unknown token to permission denied', async () => {
    await expect(vault.lookupToken('s.' + 'doesnotexistdoesnotexist')).rejects.toMatchObject({ code: ErrorCode.VAULT_PERMISSION_DENIED });
  });

  it('renews by accessor', async () => {
    const { token, accessor } = await mint();
    const before = await vault.lookupToken(token);
    const res = await vault.renewAccessor(accessor, '2h');
    expect(res.auth?.lease_duration).toBeGreaterThan(before.ttl);
  });

  it('revokes by accessor, idempotently', async () => {
    const { token, accessor } = await mint();
    expect(await vault.revokeAccessor(accessor)).toBe(true);
    await expect(vault.lookupToken(token)).rejects.toBeInstanceOf(LatchkeyError);
    expect(await vault.revokeAccessor(accessor)).toBe(false); // Vault only warns the second time
  });

  it('issues a client certificate from the PKI mount', async () => {
    const cert = await vault.pkiIssue(config.vault.pkiMount, config.vault.pkiRole, { common_name: 'int-client', ttl: '1h' });
    expect(cert.certificate).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(cert.private_key).toMatch(/PRIVATE KEY/);
    expect(cert.serial_number).toMatch(/^([0-9a-f]{2}:)+[0-9a-f]{2}$/);
    const read = await vault.pkiReadCert(config.vault.pkiMount, cert.serial_number);
    expect(read?.revocation_time).toBe(0);
  });

  it('writes and reads KV v2', async () => {
    const p = `test/${uniqueId()}`;
    const { version } = await vault.kvWrite(config.vault.kvMount, p, { hello: 'world' });
    expect(version).toBe(1);
    expect(await vault.kvRead(config.vault.kvMount, p)).toEqual({ hello: 'world' });
    expect(await vault.kvRead(config.vault.kvMount, `${p}-missing`)).toBeNull();
  });

  it('response-wraps a minted token', async () => {
    const res = await vault.createToken(role, { policies: ['default'], ttl: '1h' }, '60s');
    expect(res.auth).toBeNull();
    expect(res.wrap_info?.token).toBeTruthy();
    const unwrapped = await vault.unwrap<VaultResponse>(res.wrap_info!.token);
    expect(unwrapped.auth?.accessor).toBe(res.wrap_info!.wrapped_accessor);
  });

  it('writes an audit line for each use of a key, with its accessor in clear and its token hashed', async () => {
    const { token, accessor } = await mint({ latchkey_app: 'audit-check' });
    await vault.callAs(token, { method: 'GET', path: 'auth/token/lookup-self', operation: 'lookup-self' });
    const text = fs.readFileSync(process.env.AUDIT_LOG_PATH!, 'utf8');
    expect(text).not.toContain(token);
    const lines = text.trim().split('\n').map((l) => JSON.parse(l));
    const hits = lines.filter((l) => l.request?.path === 'auth/token/lookup-self' && l.auth?.accessor === accessor);
    expect(hits.map((l) => l.type).sort()).toEqual(['request', 'response']);
    expect(hits[0].auth.metadata).toEqual({ latchkey_app: 'audit-check' });
    expect(hits[0].auth.client_token).toMatch(/^hmac-sha256:/);
  });

  it('times out instead of hanging when Vault does not answer', async () => {
    const net = await import('node:net');
    // A server that accepts connections and never answers.
    const silent = net.createServer(() => undefined).listen(0, '127.0.0.1');
    await new Promise((r) => silent.once('listening', r));
    const port = (silent.address() as { port: number }).port;
    const slow = createVaultClient(loadConfig({ ...process.env, VAULT_ADDR: `http://127.0.0.1:${port}`, VAULT_TIMEOUT_MS: '300' })).client;
    const started = Date.now();
    await expect(slow.lookupAccessor('x')).rejects.toMatchObject({ code: ErrorCode.VAULT_TIMEOUT });
    expect(Date.now() - started).toBeLessThan(3000);
    silent.close();
  });

  it('reads its token from a file and picks up a replaced token', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-tokfile-'));
    const file = path.join(dir, 'token');
    const first = await vault.raw<VaultResponse>('POST', 'auth/token/create', { policies: ['latchkey-service'], ttl: '1h' });
    fs.writeFileSync(file, `${first.auth!.client_token}\n`);
    const fromFile = createVaultClient(loadConfig({ VAULT_ADDR: config.vault.addr, VAULT_TOKEN_FILE: file })).client;
    const { accessor } = await mint();
    await expect(fromFile.lookupAccessor(accessor)).resolves.toMatchObject({ accessor });

    // Rotate: revoke the first token and write a new one; the client recovers on the next call.
    const second = await vault.raw<VaultResponse>('POST', 'auth/token/create', { policies: ['latchkey-service'], ttl: '1h' });
    await vault.revokeAccessor(first.auth!.accessor);
    fs.writeFileSync(file, second.auth!.client_token);
    await expect(fromFile.lookupAccessor(accessor)).resolves.toMatchObject({ accessor });
    fs.rmSync(dir, { recursive: true });
  });

  it('logs in with AppRole and acts with the latchkey-service policy', async () => {
    const roleId = (await vault.raw<VaultResponse<{ role_id: string }>>('GET', 'auth/approle/role/latchkey/role-id')).data!.role_id;
    const secretId = (await vault.raw<VaultResponse<{ secret_id: string }>>('POST', 'auth/approle/role/latchkey/secret-id', {})).data!.secret_id;
    const { client, tokens } = createVaultClient(loadConfig({ VAULT_ADDR: config.vault.addr, VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: secretId }));
    const { accessor } = await mint();
    await expect(client.lookupAccessor(accessor)).resolves.toMatchObject({ accessor });
    // latchkey-service may not write policies.
    await expect(client.raw('PUT', 'sys/policies/acl/nope', { policy: '' })).rejects.toMatchObject({ code: ErrorCode.VAULT_PERMISSION_DENIED });
    tokens.stop();
  });
});

import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { projectRoot } from '@latchkey/devstack';
import { decodeKey } from '@latchkey/keys';
import { RunningApi, startApi } from './support/app';
import { call } from './support/http';
import { createProfile, mintKey, operatorToken } from './support/keys';
import { rootVault, uniqueId } from './support/stack';

/** `npm run bootstrap -- …` as an operator runs it (the built script, the test stack's root token). */
function bootstrap(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const script = path.join(projectRoot(), 'dist', 'scripts', 'bootstrap.js');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The key printed once by bootstrap. */
function printedKey(stdout: string, app: string): string {
  const m = new RegExp(`MANAGEMENT KEY for app ${app} \\(shown once\\):\\n(\\S+)`).exec(stdout);
  if (!m) throw new Error(`no key in bootstrap output:\n${stdout}`);
  return m[1];
}

/** Every audit event matching `query`, as the holder of `key` sees them (following the cursor). */
async function eventsAs(base: string, key: string, query: string): Promise<Array<{ type: string; appId?: string }>> {
  const items: Array<{ type: string; appId?: string }> = [];
  let cursor: string | null = null;
  do {
    const r = await call(base, 'GET', `/v1/audit/events?${query}&limit=500${cursor ? `&cursor=${cursor}` : ''}`, { bearer: key });
    if (r.status !== 200) throw new Error(`audit events: ${r.status} ${JSON.stringify(r.body)}`);
    items.push(...r.body.items);
    cursor = r.body.nextCursor;
  } while (cursor);
  return items;
}

async function policyText(name: string): Promise<string> {
  return (await rootVault().raw<{ data: { policy: string } }>('GET', `sys/policies/acl/${name}`)).data.policy;
}

describe('delegating an app to its team: bootstrap --app-manager', () => {
  let api: RunningApi;
  const prefix = uniqueId('lkdeleg');
  const env = { REDIS_PREFIX: prefix, ROTATION_SCAN_EVERY: '0', RECONCILE_EVERY: '0', EXPIRY_SWEEP_EVERY: '0' };

  beforeAll(async () => {
    api = await startApi(env);
  }, 60_000);

  afterAll(async () => {
    await api?.close();
  });

  it('is idempotent, hands out a scoped management key once, and refuses to overwrite hand edits without --force', async () => {
    const op = await operatorToken();
    const app = uniqueId('team');
    const other = uniqueId('team');
    const partner = await createProfile(api.url, op.token, { allowedPolicies: ['orders-read'] });
    const unlisted = await createProfile(api.url, op.token, { allowedPolicies: ['orders-read'] });

    const first = await bootstrap(['--app-manager', app, '--profiles', `${partner},default`], env);
    expect([first.code, first.stderr]).toEqual([0, '']);
    expect(first.stdout).toContain(`policy latchkey-app-${app} created`);
    expect(first.stdout).toContain(`profile app-manager-${app} created`);
    expect(first.stdout).toMatch(new RegExp(`minted management key \\w+ for app ${app}`));
    expect(first.stdout).not.toMatch(/bootstrap: done \(0 changes\)/);
    const key = printedKey(first.stdout, app);
    expect(key).toMatch(/^lk_/);

    // Second run: nothing to do, and no second key.
    const second = await bootstrap(['--app-manager', app, '--profiles', `${partner},default`], env);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('bootstrap: done (0 changes)');
    expect(second.stdout).toMatch(/management key \w+ of app .* is active/);
    expect(second.stdout).not.toContain('MANAGEMENT KEY');

    // The key is a real latchkey key of the app, with the app's manager policy only.
    const me = await call(api.url, 'GET', `/v1/keys?appId=${app}`, { bearer: key });
    expect(me.status).toBe(200);
    expect(me.body.items).toHaveLength(1);
    expect(me.body.items[0]).toMatchObject({ appId: app, profile: `app-manager-${app}`, policies: [`latchkey-app-${app}`] });

    // It manages its app's keys in the listed profiles, and nothing else.
    expect((await call(api.url, 'POST', '/v1/keys', { bearer: key, body: { appId: app, profile: partner, name: 'svc' } })).status).toBe(201);
    expect((await call(api.url, 'POST', '/v1/keys', { bearer: key, body: { appId: app, profile: 'default', name: 'svc2' } })).status).toBe(201);
    expect((await call(api.url, 'POST', '/v1/keys', { bearer: key, body: { appId: app, profile: unlisted, name: 'x' } })).status).toBe(403);
    expect((await call(api.url, 'POST', '/v1/keys', { bearer: key, body: { appId: app, profile: 'management', name: 'x' } })).status).toBe(403);
    expect((await call(api.url, 'POST', '/v1/keys', { bearer: key, body: { appId: app, profile: `app-manager-${app}`, name: 'x' } })).status).toBe(403);
    expect((await call(api.url, 'POST', '/v1/keys', { bearer: key, body: { appId: other, profile: partner, name: 'x' } })).status).toBe(403);
    const foreign = await mintKey(api.url, op.token, { appId: other, profile: partner, name: 'theirs' });
    expect((await call(api.url, 'GET', `/v1/keys/${foreign.keyId}`, { bearer: key })).status).toBe(403);
    expect((await call(api.url, 'DELETE', `/v1/keys/${foreign.keyId}`, { bearer: key })).status).toBe(403);
    expect((await call(api.url, 'GET', `/v1/keys?appId=${other}`, { bearer: key })).status).toBe(403);
    expect((await call(api.url, 'PUT', `/v1/profiles/${partner}`, { bearer: key, body: { allowedPolicies: ['orders-read'], ttl: '1h', maxTtl: '24h' } })).status).toBe(403);
    // Its holder renews it (the profile opts in to self-renew).
    expect((await call(api.url, 'POST', '/v1/keys/self/renew', { bearer: key, body: {} })).status).toBe(200);

    // A hand edit is refused loudly, and nothing is changed.
    const edited = `${await policyText(`latchkey-app-${app}`)}path "latchkey/apps/${other}/keys" {\n  capabilities = ["read"]\n}\n`;
    await rootVault().raw('PUT', `sys/policies/acl/latchkey-app-${app}`, { policy: edited });
    const refused = await bootstrap(['--app-manager', app, '--profiles', `${partner},default`], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`policies changed outside bootstrap since it last wrote them: latchkey-app-${app}`);
    expect(refused.stderr).toContain('--force');
    expect(await policyText(`latchkey-app-${app}`)).toBe(edited);
    // --force overwrites it (and says so); the run after is clean again.
    const forced = await bootstrap(['--force', '--app-manager', app, '--profiles', `${partner},default`], env);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toContain(`policy latchkey-app-${app} overwritten`);
    expect(await policyText(`latchkey-app-${app}`)).not.toContain(other);
    const clean = await bootstrap(['--app-manager', app, '--profiles', `${partner},default`], env);
    expect(clean.stdout).toContain('bootstrap: done (0 changes)');

    // Changing the profiles list is a change of latchkey's own text, not a hand edit.
    const fewer = await bootstrap(['--app-manager', app, '--profiles', partner], env);
    expect(fewer.code).toBe(0);
    expect(fewer.stdout).toContain(`policy latchkey-app-${app} updated`);
    expect(await policyText(`latchkey-app-${app}`)).not.toContain('latchkey/profiles/default/keys');

    // Unknown profiles are refused before anything is written.
    const typo = await bootstrap(['--app-manager', app, '--profiles', 'no-such-profile'], env);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toContain('profile no-such-profile (for --app-manager');

    // No secret in the api's output; the key only on bootstrap's stdout.
    expect(api.process.output()).not.toContain(key);
    expect(first.stderr + second.stdout).not.toContain(key);
  }, 120_000);

  it('revoke-all spares the team key, an operator revokes it by id, --new-key replaces it', async () => {
    const op = await operatorToken();
    const app = uniqueId('team');
    const first = await bootstrap(['--app-manager', app], env);
    expect(first.code).toBe(0);
    const key = printedKey(first.stdout, app);
    const managerKeyId = (await call(api.url, 'GET', `/v1/keys?appId=${app}`, { bearer: key })).body.items[0].keyId as string;

    // The team's kill switch: every other key goes, the team keeps its key.
    const a = await call(api.url, 'POST', '/v1/keys', { bearer: key, body: { appId: app, profile: 'default', name: 'a' } });
    expect(a.status).toBe(201);
    const byTeam = await call(api.url, 'POST', `/v1/apps/${app}/keys/revoke-all`, { bearer: key });
    expect(byTeam.status).toBe(200);
    expect(byTeam.body.revoked).toBe(1);
    expect((await call(api.url, 'POST', '/v1/keys/verify', { body: { key: a.body.key } })).body.code).toBe('NOT_FOUND');
    expect((await call(api.url, 'GET', `/v1/keys?appId=${app}`, { bearer: key })).status).toBe(200);
    // The operator's kill switch spares it too.
    const byOperator = await call(api.url, 'POST', `/v1/apps/${app}/keys/revoke-all`, { token: op.token });
    expect(byOperator.body.revoked).toBe(0);
    expect((await call(api.url, 'GET', `/v1/keys?appId=${app}`, { bearer: key })).status).toBe(200);

    // --new-key: a new key (wrapped, for the hand-over), the previous one revoked at once.
    const renewed = await bootstrap(['--app-manager', app, '--new-key', '--wrap', '10m'], env);
    expect(renewed.code).toBe(0);
    expect(renewed.stdout).toContain(`revoked the previous management key ${managerKeyId}`);
    const wrap = /WRAPPING TOKEN for app \S+ \(single use, valid 600s; the team runs POST \/v1\/keys\/unwrap\):\n(\S+)/.exec(renewed.stdout);
    expect(wrap).not.toBeNull();
    expect(renewed.stdout).not.toContain('MANAGEMENT KEY');
    expect((await call(api.url, 'GET', `/v1/keys?appId=${app}`, { bearer: key })).status).toBe(401);
    const unwrapped = await call(api.url, 'POST', '/v1/keys/unwrap', { body: { wrapToken: wrap![1] } });
    expect(unwrapped.status).toBe(200);
    const fresh = unwrapped.body.key as string;
    expect((await call(api.url, 'GET', `/v1/keys?appId=${app}`, { bearer: fresh })).status).toBe(200);

    // An operator can still revoke the team's key explicitly.
    expect((await call(api.url, 'DELETE', `/v1/keys/${unwrapped.body.keyId}`, { token: op.token })).status).toBe(204);
    expect((await call(api.url, 'GET', `/v1/keys?appId=${app}`, { bearer: fresh })).status).toBe(401);
  }, 120_000);

  it("the team reads its own app's audit events and no other app's", async () => {
    const op = await operatorToken();
    const app = uniqueId('team');
    const other = uniqueId('team');
    const run = await bootstrap(['--app-manager', app, '--app-manager', other], env);
    expect(run.code).toBe(0);
    const key = printedKey(run.stdout, app);
    await mintKey(api.url, op.token, { appId: app, profile: 'default', name: 'mine' });
    await mintKey(api.url, op.token, { appId: other, profile: 'default', name: 'theirs' });

    const mine = await eventsAs(api.url, key, `appId=${app}&type=admin.*`);
    expect(mine.length).toBeGreaterThanOrEqual(2); // the bootstrap's mint of the team key, the operator's mint
    expect(mine.every((e) => e.appId === app)).toBe(true);
    expect(mine.map((e) => e.type)).toContain('admin.key.mint');

    // The trail never holds the key nor the Vault token inside it.
    const decoded = decodeKey(key, 'lk');
    if (!decoded.ok) throw new Error('the printed key does not decode');
    const everyEvent = JSON.stringify(await eventsAs(api.url, key, `appId=${app}`));
    expect(everyEvent).not.toContain(key);
    expect(everyEvent).not.toContain(decoded.token);

    const theirs = await call(api.url, 'GET', `/v1/audit/events?appId=${other}`, { bearer: key });
    expect([theirs.status, theirs.body.error.code]).toEqual([403, 'FORBIDDEN']);
    const everything = await call(api.url, 'GET', '/v1/audit/events', { bearer: key });
    expect(everything.status).toBe(403);
    const relative = await call(api.url, 'GET', `/v1/audit/events?appId=${app}&since=1h`, { bearer: key });
    expect(relative.status).toBe(200);
  }, 120_000);
});

import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { projectRoot, waitFor } from '@latchkey/devstack';
import { RunningApi, startApi } from './support/app';
import { createProfile, operatorToken, vaultToken } from './support/keys';
import { uniqueId } from './support/stack';

/**
 * The built `latchkey` CLI as a real process against the real stack (spawned api, real OpenBao and
 * Redis). Every run's stdout+stderr is kept, so the last test can check that no secret was ever printed
 * except the one key a create or rotate was asked for, by that run only.
 */
interface Run {
  args: string[];
  code: number | null;
  stdout: string;
  stderr: string;
}

const CLI = path.join(projectRoot(), 'dist', 'apps', 'cli', 'src', 'main.js');
const runs: Run[] = [];

function cli(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; stdin?: string } = {}): Promise<Run> {
  // A minimal environment: nothing from the test runner's (no stray VAULT_TOKEN, LATCHKEY_URL).
  const env = { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), ...opts.env };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, cwd: opts.cwd ?? os.tmpdir(), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const r = { args, code, stdout, stderr };
      runs.push(r);
      resolve(r);
    });
    child.stdin.end(opts.stdin ?? '');
  });
}

const mode = (f: string) => fs.statSync(f).mode & 0o777;

// Each test spawns a dozen or more node processes; on a loaded CI machine that takes longer than the default.
jest.setTimeout(180_000);

describe('latchkey CLI against the real stack', () => {
  let api: RunningApi;
  let op: string;
  let profile: string;
  let env: NodeJS.ProcessEnv;
  let dir: string;
  /** every secret the CLI may print only in the run that created it: key -> index of that run */
  const created = new Map<string, number>();
  const privateKeys: string[] = [];

  const json = (r: Run) => {
    expect([r.args.join(' '), r.code, r.stderr]).toEqual([r.args.join(' '), 0, '']);
    return JSON.parse(r.stdout);
  };
  const createKey = async (appId: string, name: string, extra: string[] = []) => {
    const r = await cli(['keys', 'create', '--app', appId, '--profile', profile, '--name', name, '--json', ...extra], { env });
    const k = json(r);
    expect(k.key).toMatch(/^lk_/);
    created.set(k.key, runs.indexOf(r));
    return k as { key: string; keyId: string };
  };

  beforeAll(async () => {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
    [api, { token: op }] = await Promise.all([startApi(), operatorToken()]);
    profile = await createProfile(api.url, op, { allowedPolicies: ['default', 'orders-read'] });
    env = { LATCHKEY_URL: api.url, VAULT_TOKEN: op };
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-cli-'));
  });
  afterAll(async () => {
    await api?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('documents its exit codes in --help (0), and a usage error or missing configuration exits 1', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Exit codes:[\s\S]*1 +usage or local error[\s\S]*2 +the api refused[\s\S]*3 +the api is unavailable[\s\S]*4 +verify/);

    expect((await cli(['no-such-command'], { env })).code).toBe(1);
    expect((await cli(['keys', 'create', '--name', 'x'], { env })).code).toBe(1); // --app missing
    expect((await cli(['keys', 'list', '--limit', 'many'], { env })).code).toBe(1);
    expect((await cli(['keys', 'revoke-all', '--app', uniqueId('app')], { env })).code).toBe(1); // no --yes

    const noConfig = await cli(['keys', 'list'], { cwd: dir });
    expect(noConfig.code).toBe(1);
    expect(noConfig.stderr).toMatch(/LATCHKEY_URL is not set/);
    const noCredential = await cli(['keys', 'list'], { env: { LATCHKEY_URL: api.url }, cwd: dir });
    expect(noCredential.code).toBe(1);
    expect(noCredential.stderr).toMatch(/VAULT_TOKEN/);
  });

  it('reads LATCHKEY_URL and VAULT_TOKEN from .latchkey/dev.env in the current directory when they are unset', async () => {
    const cwd = fs.mkdtempSync(path.join(dir, 'dev-'));
    fs.mkdirSync(path.join(cwd, '.latchkey'));
    fs.writeFileSync(path.join(cwd, '.latchkey', 'dev.env'), `LATCHKEY_URL=${api.url}\nVAULT_ADDR=http://127.0.0.1:1\nVAULT_TOKEN=${op}\n`, { mode: 0o600 });
    const out = json(await cli(['profiles', 'list', '--json'], { cwd }));
    expect(out.items.map((p: { name: string }) => p.name)).toContain(profile);

    // The environment wins over the file.
    const wrong = await cli(['profiles', 'list'], { cwd, env: { LATCHKEY_URL: 'http://127.0.0.1:1' } });
    expect(wrong.code).toBe(3);
  });

  it('profiles list|get as a table and as JSON', async () => {
    const table = await cli(['profiles', 'list'], { env });
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME +TTL +MAXTTL/);
    expect(table.stdout).toContain(profile);
    const got = json(await cli(['profiles', 'get', profile, '--json'], { env }));
    expect(got).toMatchObject({ name: profile, allowedPolicies: expect.arrayContaining(['default', 'orders-read']) });
    const missing = await cli(['profiles', 'get', uniqueId('nope')], { env });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/NOT_FOUND/);
  });

  it('keys create/list/get/renew/rotate/revoke/verify, with the key printed only by create and rotate', async () => {
    const appId = uniqueId('app');
    const k = await createKey(appId, 'orders-prod', ['--ttl', '30m', '--policy', 'orders-read', '--meta', 'owner=team-orders']);

    // The human form of create shows the key once too.
    const human = await cli(['keys', 'create', '--app', appId, '--profile', profile, '--name', 'second'], { env });
    expect(human.code).toBe(0);
    const humanKey = /key \(shown once, store it now\):\n(lk_\S+)/.exec(human.stdout)?.[1];
    expect(humanKey).toBeDefined();
    created.set(humanKey!, runs.indexOf(human));

    const list = json(await cli(['keys', 'list', '--app', appId, '--json'], { env }));
    expect(list.items.map((i: { keyId: string }) => i.keyId).sort()).toEqual(expect.arrayContaining([k.keyId]));
    expect(list.items).toHaveLength(2);
    const table = await cli(['keys', 'list', '--app', appId], { env });
    expect(table.stdout.split('\n')[0]).toMatch(/^KEYID +APP +NAME +PROFILE +STATE +EXPIRESAT$/);
    expect(table.stdout).toContain(k.keyId);

    const got = json(await cli(['keys', 'get', k.keyId, '--json'], { env }));
    expect(got).toMatchObject({ keyId: k.keyId, appId, name: 'orders-prod', state: 'active', policies: expect.arrayContaining(['orders-read']) });
    expect(got.key).toBeUndefined();

    const renewed = json(await cli(['keys', 'renew', k.keyId, '--increment', '20m', '--json'], { env }));
    expect(renewed.keyId).toBe(k.keyId);

    // verify: from the argument, and from stdin with "-" (the key stays out of the shell history).
    const ok = await cli(['verify', k.key, '--json'], { env: { LATCHKEY_URL: api.url } });
    expect(json(ok)).toMatchObject({ valid: true, code: 'VALID', keyId: k.keyId, appId });
    const fromStdin = await cli(['verify', '-'], { env: { LATCHKEY_URL: api.url }, stdin: `${k.key}\n` });
    expect(fromStdin.code).toBe(0);
    expect(fromStdin.stdout).toMatch(/code: +VALID/);
    const forbidden = await cli(['verify', '-', '--permission', 'orders.admin'], { env: { LATCHKEY_URL: api.url }, stdin: k.key });
    expect(forbidden.code).toBe(4);
    const garbage = await cli(['verify', 'lk_not_a_key', '--json'], { env: { LATCHKEY_URL: api.url } });
    expect(garbage.code).toBe(4);
    expect(JSON.parse(garbage.stdout)).toMatchObject({ valid: false });

    const rotated = await cli(['keys', 'rotate', k.keyId, '--grace', '1h', '--json'], { env });
    const successor = json(rotated);
    expect(successor.key).toMatch(/^lk_/);
    expect(successor.keyId).not.toBe(k.keyId);
    created.set(successor.key, runs.indexOf(rotated));
    expect((await cli(['verify', successor.key], { env: { LATCHKEY_URL: api.url } })).code).toBe(0);

    const revoked = await cli(['keys', 'revoke', successor.keyId], { env });
    expect(revoked.code).toBe(0);
    await waitFor('the revoked key to fail verification', async () => (await cli(['verify', '-'], { env: { LATCHKEY_URL: api.url }, stdin: successor.key })).code === 4, 30_000);
    expect(json(await cli(['keys', 'get', successor.keyId, '--json'], { env })).state).toBe('revoked');

    const unknown = await cli(['keys', 'get', 'doesnotexist000000000000', '--json'], { env });
    expect(unknown.code).toBe(2);
    expect(JSON.parse(unknown.stderr).error).toMatchObject({ status: expect.any(Number), code: expect.any(String) });

    // revoke-all with --yes revokes what is left of the app.
    const all = json(await cli(['keys', 'revoke-all', '--app', appId, '--reason', 'cli test', '--yes', '--json'], { env }));
    expect(all.revoked).toBeGreaterThanOrEqual(1);
    expect(json(await cli(['keys', 'list', '--app', appId, '--state', 'active', '--json'], { env })).items).toEqual([]);
  });

  it('usage of a key and of an app, and audit events with --since 1h', async () => {
    const appId = uniqueId('app');
    const k = await createKey(appId, 'usage');
    expect((await cli(['verify', '-'], { env: { LATCHKEY_URL: api.url }, stdin: k.key })).code).toBe(0);

    const u = json(await cli(['usage', k.keyId, '--json'], { env }));
    expect(u).toMatchObject({ keyId: k.keyId, appId });
    const h = await cli(['usage', k.keyId], { env });
    expect(h.stdout).toMatch(/^keyId: +\S+/m);
    const a = json(await cli(['usage', '--app', appId, '--json'], { env }));
    expect(a).toMatchObject({ appId });
    expect((await cli(['usage'], { env })).code).toBe(1);
    expect((await cli(['usage', k.keyId, '--app', appId], { env })).code).toBe(1);
    // Per hour: once the api has flushed the verification, the current hour shows it.
    const hourly = await waitFor('the verification in the hourly usage', async () => {
      const r = json(await cli(['usage', k.keyId, '--hours', '6', '--json'], { env }));
      return r.hourly?.at(-1)?.valid === 1 ? r : null;
    }, 30_000);
    expect(hourly.hourly).toHaveLength(6);
    expect((await cli(['usage', k.keyId, '--hours', '6'], { env })).stdout).toMatch(/^HOUR \(UTC\) +VALID +REFUSED +BY CODE\n\S+T\d\d:00 +1 +0 /m);
    expect((await cli(['usage', k.keyId, '--hours', '0'], { env })).code).toBe(1);

    const events = await waitFor('the mint in the audit events', async () => {
      const e = json(await cli(['events', '--app', appId, '--since', '1h', '--type', 'admin.key.mint', '--json'], { env }));
      return e.items.length > 0 ? e : undefined;
    });
    expect(events.items.map((i: { keyId: string }) => i.keyId)).toEqual([k.keyId]);
    const none = json(await cli(['events', '--app', appId, '--until', '1h', '--json'], { env }));
    expect(none.items).toEqual([]);
    const table = await cli(['events', '--app', appId, '--since', '1h'], { env });
    expect(table.stdout.split('\n')[0]).toMatch(/^TIME +SOURCE +TYPE/);
    expect(table.stdout).toContain('admin.key.mint');
    expect((await cli(['events', '--since', 'yesterday'], { env })).code).toBe(2);
  });

  it('a token without the rights gets exit 2, and its error names neither token', async () => {
    const { token: weak } = await vaultToken(['default']);
    const r = await cli(['keys', 'list', '--app', uniqueId('app')], { env: { LATCHKEY_URL: api.url, VAULT_TOKEN: weak } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: HTTP 40[13] /);
    expect(r.stdout + r.stderr).not.toContain(weak);
    const down = await cli(['keys', 'list'], { env: { LATCHKEY_URL: 'http://127.0.0.1:1', VAULT_TOKEN: op } });
    expect(down.code).toBe(3);
  });

  it('certs issue writes cert, key and CA with mode 0600, refuses to overwrite without --force; sign, renew, ca, revoke', async () => {
    const appId = uniqueId('app');
    const out = fs.mkdtempSync(path.join(dir, 'certs-'));
    const issue = (extra: string[] = []) =>
      cli(['certs', 'issue', '--app', appId, '--cn', `${appId}-api`, '--ttl', '1h', '--out-dir', out, '--name', 'client', '--json', ...extra], { env });

    const first = await issue();
    const c = json(first);
    const files = ['client.crt', 'client.key', 'client.ca.crt'].map((f) => path.join(out, f));
    expect(c).toMatchObject({ appId, commonName: `${appId}-api`, certFile: files[0], keyFile: files[1], caFile: files[2] });
    expect(c.privateKey).toBeUndefined();
    for (const f of files) expect([f, mode(f)]).toEqual([f, 0o600]);
    const keyPem = fs.readFileSync(files[1], 'utf8');
    expect(keyPem).toMatch(/BEGIN (EC |RSA )?PRIVATE KEY/);
    privateKeys.push(keyPem);
    const cert = new X509Certificate(fs.readFileSync(files[0]));
    expect(cert.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
    expect(fs.readFileSync(files[2], 'utf8')).toMatch(/BEGIN CERTIFICATE/);

    // Not overwritten: refused before anything is issued, files untouched.
    const before = files.map((f) => fs.readFileSync(f, 'utf8'));
    const again = await issue();
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/exists.*--force/);
    expect(files.map((f) => fs.readFileSync(f, 'utf8'))).toEqual(before);

    // --force replaces them, still 0600 even if the old file had been made world-readable.
    fs.chmodSync(files[1], 0o644);
    const forced = json(await issue(['--force']));
    expect(forced.serial).not.toBe(c.serial);
    for (const f of files) expect([f, mode(f)]).toEqual([f, 0o600]);
    const forcedKey = fs.readFileSync(files[1], 'utf8');
    expect(forcedKey).not.toBe(keyPem);
    privateKeys.push(forcedKey);

    // The human form does not print the private key either.
    const humanOut = fs.mkdtempSync(path.join(dir, 'certs-h-'));
    const human = await cli(['certs', 'issue', '--app', appId, '--cn', `${appId}-h`, '--ttl', '1h', '--out-dir', humanOut], { env });
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^serial: +[0-9a-f:]+$/m);
    privateKeys.push(fs.readFileSync(path.join(humanOut, `${appId}-h.key`), 'utf8'));

    // sign: the private key stays local; cert and CA written 0600, no key file.
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const localKey = path.join(out, 'local.key');
    fs.writeFileSync(localKey, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    const csrFile = path.join(out, 'svc.csr');
    execFileSync('openssl', ['req', '-new', '-key', localKey, '-subj', `/CN=${appId}-csr`, '-out', csrFile], { stdio: 'ignore' });
    const signed = json(await cli(['certs', 'sign', '--csr', csrFile, '--app', appId, '--ttl', '1h', '--out-dir', out, '--json'], { env }));
    expect(signed).toMatchObject({ appId, commonName: `${appId}-csr`, source: 'csr', certFile: path.join(out, 'svc.crt'), caFile: path.join(out, 'svc.ca.crt') });
    expect(signed.keyFile).toBeUndefined();
    expect(mode(path.join(out, 'svc.crt'))).toBe(0o600);

    // renew: new files (with a new private key for a Vault-generated certificate).
    const renewOut = fs.mkdtempSync(path.join(dir, 'renew-'));
    const renewed = json(await cli(['certs', 'renew', forced.serial, '--out-dir', renewOut, '--name', 'client', '--json'], { env }));
    expect(renewed).toMatchObject({ previousSerial: forced.serial, keyFile: path.join(renewOut, 'client.key') });
    expect(mode(path.join(renewOut, 'client.key'))).toBe(0o600);
    privateKeys.push(fs.readFileSync(path.join(renewOut, 'client.key'), 'utf8'));
    expect((await cli(['certs', 'renew', renewed.serial, '--out-dir', renewOut, '--name', 'client'], { env })).code).toBe(1);

    // ca: public, no credential needed.
    const ca = await cli(['certs', 'ca'], { env: { LATCHKEY_URL: api.url } });
    expect(ca.code).toBe(0);
    expect(ca.stdout).toMatch(/^-----BEGIN CERTIFICATE-----/);

    const rev = await cli(['certs', 'revoke', renewed.serial], { env });
    expect(rev.code).toBe(0);
    expect(json(await cli(['certs', 'get', renewed.serial, '--json'], { env })).state).toBe('revoked');
  });

  it('never printed a secret: no Vault token anywhere, each key only by the run that created it, no private key', () => {
    expect(runs.length).toBeGreaterThan(30);
    expect(created.size).toBeGreaterThanOrEqual(4);
    const keyBody = (pem: string) => pem.split('\n').filter((l) => l && !l.startsWith('-----')).join('').slice(0, 40);
    runs.forEach((r, i) => {
      const printed = r.stdout + r.stderr;
      expect([r.args.join(' '), printed.includes(op)]).toEqual([r.args.join(' '), false]);
      for (const [key, by] of created) {
        if (i !== by) expect([r.args.join(' '), printed.includes(key)]).toEqual([r.args.join(' '), false]);
      }
      for (const pk of privateKeys) expect([r.args.join(' '), printed.includes(keyBody(pk))]).toEqual([r.args.join(' '), false]);
      expect(printed).not.toMatch(/PRIVATE KEY/);
    });
  });
});

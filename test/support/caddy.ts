import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, stopProcess, waitFor, which } from '@latchkey/devstack';

export interface RunningCaddy {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * A real Caddy (Debian package) on a free loopback port, with its admin endpoint, automatic HTTPS and storage
 * kept out of the way (a temporary HOME). `sites` is the Caddyfile after the global options, written by the caller
 * from the port it is given. Resolves once `ready` says the configuration answers.
 */
export async function startCaddy(sites: (port: number) => string, ready: (url: string) => Promise<boolean>): Promise<RunningCaddy> {
  const bin = which('caddy') ?? ['/usr/bin/caddy'].find((p) => fs.existsSync(p));
  if (!bin) throw new Error('caddy is required for this test (apt-get install caddy; .ci/run installs it)');
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-caddy-'));
  const file = path.join(dir, 'Caddyfile');
  fs.writeFileSync(file, `{\n  admin off\n  auto_https off\n}\n${sites(port)}\n`);
  const env = { ...process.env, HOME: dir, XDG_DATA_HOME: path.join(dir, 'data'), XDG_CONFIG_HOME: path.join(dir, 'config') };
  const child: ChildProcess = spawn(bin, ['run', '--config', file, '--adapter', 'caddyfile'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await stopProcess(child);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  await waitFor('caddy', async () => {
    if (child.exitCode !== null) throw new Error(`caddy exited: ${err.slice(-3000)}`);
    return ready(url).catch(() => false);
  }).catch(async (e) => {
    await stop();
    throw e;
  });
  return { url, port, stop };
}

import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePort, projectRoot, stopProcess, waitFor } from '@latchkey/devstack';

export interface RunningApi {
  url: string;
  process: SpawnedProcess;
  close(): Promise<void>;
}

/**
 * Boot the compiled api as a real process on a free port (end-to-end tests go
 * through the same entry point as production, and jest's module system never
 * has to load the api's ESM-only dependencies).
 */
export async function startApi(overrides: NodeJS.ProcessEnv = {}, opts: { avoidPorts?: number[] } = {}): Promise<RunningApi> {
  // freePort can hand out the same free port twice in a row: never the one a caller took for another listener.
  let port = await freePort();
  while (opts.avoidPorts?.includes(port)) port = await freePort();
  const p = spawnApp('api', { LATCHKEY_HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...overrides, LATCHKEY_PORT: String(port) });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    `api on ${url}`,
    async () => {
      if (p.child.exitCode !== null) throw new Error(`api exited: ${p.output()}`);
      return (await fetch(`${url}/health/live`)).status === 200;
    },
    30_000,
  ).catch(async (err: Error) => {
    await p.stop();
    throw new Error(`${err.message}\n--- api output ---\n${p.output().slice(-3000)}`);
  });
  return { url, process: p, close: () => p.stop() };
}

/** The compiled entry points (npm test builds them first). */
export function distEntry(name: 'api' | 'worker'): string {
  const p = path.join(projectRoot(), 'dist', 'apps', name, 'src', 'main.js');
  if (!fs.existsSync(p)) throw new Error(`${p} is missing: run "npm run build" first (npm test does)`);
  return p;
}

export interface SpawnedProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
}

/** Run a compiled app as a real process, capturing its output. */
export function spawnApp(name: 'api' | 'worker', env: NodeJS.ProcessEnv): SpawnedProcess {
  const child = spawn(process.execPath, [distEntry(name)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => out, exited, stop: () => stopProcess(child) };
}

export async function waitForOutput(p: SpawnedProcess, re: RegExp, timeoutMs = 20_000): Promise<void> {
  await waitFor(`output ${re}`, async () => re.test(p.output()), timeoutMs);
}

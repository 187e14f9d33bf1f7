import { ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import { stopProcess } from './openbao';
import { freePort, waitFor, which } from './util';

export interface RedisHandle {
  url: string;
  started: boolean;
  process?: ChildProcess;
  stop(): Promise<void>;
}

/** Send PING over a raw socket (no client library needed to probe). */
export function redisPing(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (buf) => done(buf.toString().startsWith('+PONG')));
  });
}

/** Use REDIS_URL or 127.0.0.1:6379 when it answers; otherwise start redis-server on a free port. */
export async function ensureRedis(opts: { forceOwn?: boolean; log?: (m: string) => void } = {}): Promise<RedisHandle> {
  if (!opts.forceOwn) {
    const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    const u = new URL(url);
    if (await redisPing(u.hostname, Number(u.port || 6379))) {
      return { url, started: false, stop: () => Promise.resolve() };
    }
  }
  return startRedis(opts.log);
}

export async function startRedis(log: (m: string) => void = () => undefined): Promise<RedisHandle> {
  const bin = which('redis-server');
  if (!bin) throw new Error('no Redis answers and no redis-server binary is installed (apt-get install redis-server)');
  const port = await freePort();
  log(`starting redis-server on 127.0.0.1:${port}`);
  const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await waitFor(`redis-server on ${port}`, () => redisPing('127.0.0.1', port));
  return { url: `redis://127.0.0.1:${port}`, started: true, process: child, stop: () => stopProcess(child) };
}

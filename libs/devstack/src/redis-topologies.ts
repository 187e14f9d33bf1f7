import { ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { stopProcess } from './openbao';
import { redisPing } from './redis';
import { freePort, waitFor, which } from './util';

const run = promisify(execFile);

export interface HostPort {
  host: string;
  port: number;
}

function bin(name: 'redis-server' | 'redis-cli'): string {
  const p = which(name);
  if (!p) throw new Error(`${name} is not installed (apt-get install redis-server)`);
  return p;
}

/** One reply of redis-cli against a loopback port (plain text, no client library needed). */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run(bin('redis-cli'), ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 5000 });
  return stdout.trim();
}

function spawnServer(args: string[], logFile: string): ChildProcess {
  const out = fs.openSync(logFile, 'a');
  const child = spawn(bin('redis-server'), args, { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  return child;
}

async function stopAll(children: ChildProcess[], dir: string): Promise<void> {
  await Promise.all(children.map((c) => stopProcess(c, 3000)));
  fs.rmSync(dir, { recursive: true, force: true });
}

export interface RedisClusterHandle {
  nodes: HostPort[];
  /** The value for REDIS_CLUSTER_NODES. */
  env: string;
  dir: string;
  /** Every node as started, with its process (for drills that kill one). */
  servers: Array<HostPort & { process: ChildProcess }>;
  /** The master serving `key`'s slot now, as a node that answers sees it. */
  masterFor(key: string): Promise<HostPort>;
  stop(): Promise<void>;
}

/**
 * A Redis Cluster of `masters` masters, each with `replicas` replicas (default none), on loopback, in a
 * temporary folder, without persistence. Each node's cluster bus gets its own free port (the default,
 * port + 10000, may not exist). A master is declared failed after 2 s (cluster-node-timeout).
 */
export async function startRedisCluster(opts: { masters?: number; replicas?: number; log?: (m: string) => void } = {}): Promise<RedisClusterHandle> {
  const replicas = opts.replicas ?? 0;
  const n = (opts.masters ?? 3) * (1 + replicas);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-redis-cluster-'));
  const children: ChildProcess[] = [];
  try {
    const nodes: HostPort[] = [];
    // Two ports per node, all distinct: freePort can hand the same free port out twice in a row.
    const taken = new Set<number>();
    const distinctPort = async (): Promise<number> => {
      for (;;) {
        const p = await freePort();
        if (!taken.has(p)) return taken.add(p), p;
      }
    };
    for (let i = 0; i < n; i++) {
      const [port, bus] = [await distinctPort(), await distinctPort()];
      nodes.push({ host: '127.0.0.1', port });
      children.push(
        spawnServer(
          ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-port', String(bus), '--cluster-config-file', path.join(dir, `nodes-${port}.conf`),
            '--cluster-node-timeout', '2000', '--appendonly', 'no', '--save', '', '--dir', dir],
          path.join(dir, `redis-${port}.log`),
        ),
      );
    }
    for (const node of nodes) await waitFor(`cluster node ${node.port}`, () => redisPing(node.host, node.port), 10_000);
    opts.log?.(`creating a Redis Cluster of ${n} nodes (${replicas} replica(s) per master) on ports ${nodes.map((x) => x.port).join(', ')}`);
    await run(bin('redis-cli'), ['--cluster', 'create', ...nodes.map((x) => `${x.host}:${x.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 30_000 });
    for (const node of nodes) {
      await waitFor(`cluster_state:ok on ${node.port}`, async () => /cluster_state:ok/.test(await redisCli(node.port, 'cluster', 'info')), 20_000);
    }
    if (replicas) {
      // A replica can only be promoted once it has synced with its master.
      for (const node of nodes) {
        await waitFor(`replica ${node.port} in sync`, async () => {
          const info = await redisCli(node.port, 'info', 'replication');
          return /role:master/.test(info) || /master_link_status:up/.test(info);
        }, 20_000);
      }
    }
    const servers = nodes.map((x, i) => ({ ...x, process: children[i] }));
    const masterFor = async (key: string): Promise<HostPort> => {
      for (const s of servers) {
        if (s.process.exitCode !== null || s.process.signalCode !== null) continue;
        const slot = Number(await redisCli(s.port, 'cluster', 'keyslot', key));
        // `cluster nodes`: <id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot ranges…>
        for (const line of (await redisCli(s.port, 'cluster', 'nodes')).split('\n')) {
          const f = line.trim().split(/\s+/);
          if (f.length < 9 || !f[2].split(',').includes('master') || f[2].includes('fail')) continue;
          const owns = f.slice(8).some((r) => {
            const [a, b] = r.split('-').map(Number);
            return slot >= a && slot <= (Number.isFinite(b) ? b : a);
          });
          if (owns) {
            const [host, port] = f[1].split('@')[0].split(':');
            return { host, port: Number(port) };
          }
        }
      }
      throw new Error(`no master serves the slot of ${key}`);
    };
    return { nodes, env: nodes.map((x) => `${x.host}:${x.port}`).join(','), dir, servers, masterFor, stop: () => stopAll(children, dir) };
  } catch (err) {
    await stopAll(children, dir);
    throw err;
  }
}

export interface RedisSentinelHandle {
  /** The master name the sentinels monitor. */
  name: string;
  sentinels: HostPort[];
  /** The value for REDIS_SENTINELS. */
  env: string;
  /** The data nodes as started: [master, replica]. */
  servers: Array<HostPort & { process: ChildProcess }>;
  dir: string;
  /** Where the sentinels (the first that answers) say the master is now. */
  master(): Promise<HostPort>;
  stop(): Promise<void>;
}

/**
 * A master, one replica and three sentinels (quorum 2) on loopback, in a temporary folder, without
 * persistence, with short failure detection (down after 1 s, failover timeout 5 s). Resolves once the
 * replica is in sync and every sentinel knows the replica and the two other sentinels, so a failover can be
 * authorised as soon as the master fails.
 */
export async function startRedisSentinel(opts: { name?: string; log?: (m: string) => void } = {}): Promise<RedisSentinelHandle> {
  const name = opts.name ?? 'latchkey';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-redis-sentinel-'));
  const children: ChildProcess[] = [];
  try {
    const [mport, rport] = [await freePort(), await freePort()];
    const common = ['--bind', '127.0.0.1', '--appendonly', 'no', '--save', '', '--dir', dir, '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0'];
    const primary = spawnServer(['--port', String(mport), ...common], path.join(dir, `redis-${mport}.log`));
    children.push(primary);
    await waitFor(`master ${mport}`, () => redisPing('127.0.0.1', mport), 10_000);
    const replica = spawnServer(['--port', String(rport), '--replicaof', '127.0.0.1', String(mport), ...common], path.join(dir, `redis-${rport}.log`));
    children.push(replica);
    await waitFor(`replica ${rport} in sync`, async () => /master_link_status:up/.test(await redisCli(rport, 'info', 'replication')), 15_000);

    const sentinels: HostPort[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = path.join(dir, `sentinel-${port}.conf`);
      // Sentinel rewrites its own file (what it learns about replicas, sentinels, epochs): one each.
      fs.writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${mport} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 5000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      children.push(spawnServer([conf, '--sentinel'], path.join(dir, `sentinel-${port}.log`)));
      sentinels.push({ host: '127.0.0.1', port });
    }
    opts.log?.(`Redis Sentinel: master ${mport}, replica ${rport}, sentinels ${sentinels.map((s) => s.port).join(', ')}`);
    for (const s of sentinels) {
      await waitFor(
        `sentinel ${s.port} knows the replica and the other sentinels`,
        async () => {
          const info = await redisCli(s.port, 'sentinel', 'master', name);
          const field = (f: string) => Number(new RegExp(`(?:^|\\n)${f}\\n(\\d+)`).exec(info)?.[1] ?? -1);
          return field('num-slaves') >= 1 && field('num-other-sentinels') >= 2;
        },
        30_000,
      );
    }
    const master = async (): Promise<HostPort> => {
      for (const s of sentinels) {
        try {
          const [host, port] = (await redisCli(s.port, 'sentinel', 'get-master-addr-by-name', name)).split('\n');
          if (host && port) return { host, port: Number(port) };
        } catch {
          // try the next sentinel
        }
      }
      throw new Error('no sentinel answered');
    };
    return {
      name,
      sentinels,
      env: sentinels.map((s) => `${s.host}:${s.port}`).join(','),
      servers: [
        { host: '127.0.0.1', port: mport, process: primary },
        { host: '127.0.0.1', port: rport, process: replica },
      ],
      dir,
      master,
      stop: () => stopAll(children, dir),
    };
  } catch (err) {
    await stopAll(children, dir);
    throw err;
  }
}

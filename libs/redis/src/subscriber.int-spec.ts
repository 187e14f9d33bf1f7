import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { loadConfig } from '@latchkey/config';
import { RedisClusterHandle, startRedisCluster, waitFor } from '@latchkey/devstack';
import { Subscriber } from './subscriber';

const base = { VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_TOKEN: 's.' + 'abcdefghijklmnopqrstuvwx' };

/** Records what a subscriber reports. */
function watch(sub: Subscriber) {
  const seen = { messages: [] as string[], lost: 0, restored: 0 };
  sub.on('message', (_ch: string, m: string) => seen.messages.push(m));
  sub.on('lost', () => seen.lost++);
  sub.on('restored', () => seen.restored++);
  return seen;
}

/** Kill, on whichever of these nodes holds it, the connection named `name` (others' connections are left alone). */
async function killByName(nodes: Redis[], name: string): Promise<number> {
  let killed = 0;
  for (const n of nodes) {
    const list = (await n.client('LIST')) as string;
    for (const line of list.split('\n')) {
      if (!line.includes(` name=${name} `)) continue;
      await n.client('KILL', 'ID', /id=(\d+)/.exec(line)![1]);
      killed++;
    }
  }
  return killed;
}

describe('Subscriber: says when it may have missed messages, on each topology', () => {
  const channel = `lk-sub-test-${randomBytes(4).toString('hex')}`;
  const name = `lk-sub-${randomBytes(4).toString('hex')}`;

  it('one server: the connection is killed → lost, then restored (re-subscribed) and hearing again', async () => {
    const cfg = loadConfig({ ...base, REDIS_URL: process.env.REDIS_URL }).redis;
    const sub = new Subscriber(cfg, name, [channel]);
    const seen = watch(sub);
    const pub = new Redis(process.env.REDIS_URL!);
    try {
      await sub.start();
      await pub.publish(channel, 'one');
      await waitFor('first message', async () => seen.messages.includes('one'), 5000);
      expect(await killByName([pub], name)).toBe(1);
      await waitFor('restored', async () => seen.restored === 1, 10_000);
      expect(seen.lost).toBe(1);
      await pub.publish(channel, 'two');
      await waitFor('message after the reconnect', async () => seen.messages.includes('two'), 5000);
    } finally {
      await sub.stop();
      await pub.quit();
    }
  });

  describe('Redis Cluster', () => {
    let cluster: RedisClusterHandle;
    let client: Cluster;
    beforeAll(async () => {
      cluster = await startRedisCluster();
      client = new Cluster(cluster.nodes);
      await waitFor('cluster client ready', async () => client.status === 'ready', 10_000);
    }, 60_000);
    afterAll(async () => {
      await client?.quit().catch(() => undefined);
      await cluster?.stop();
    });

    it('hears a PUBLISH made on any node; when its node connection ends it moves to another node, resyncs and hears again', async () => {
      const cfg = loadConfig({ ...base, REDIS_URL: '', REDIS_CLUSTER_NODES: cluster.env }).redis;
      const sub = new Subscriber(cfg, name, [channel], () => cluster.nodes);
      const seen = watch(sub);
      const direct = cluster.nodes.map((n) => new Redis(n.port, n.host));
      try {
        await sub.start();
        // Classic pub/sub is broadcast over the cluster bus: a publish on any node reaches the subscriber.
        for (const [i, node] of direct.entries()) await node.publish(channel, `via-${i}`);
        await waitFor('a message from every node', async () => seen.messages.length === direct.length, 5000);
        for (let round = 1; round <= 2; round++) {
          expect(await killByName(direct, name)).toBe(1);
          await waitFor(`restored (${round})`, async () => seen.restored === round, 10_000);
          expect(seen.lost).toBe(round);
          await client.publish(channel, `after-${round}`);
          await waitFor(`message after move ${round}`, async () => seen.messages.includes(`after-${round}`), 5000);
        }
      } finally {
        await sub.stop();
        await Promise.all(direct.map((d) => d.quit()));
      }
    });
  });
});

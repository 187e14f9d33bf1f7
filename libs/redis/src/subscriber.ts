import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import type { RedisConfig, RedisNodeAddress } from '@latchkey/config';
import { connect, nodeAuth } from './redis';

/**
 * A pub/sub connection to the configured topology that tells when messages may have been missed:
 * 'lost' when the connection drops, 'restored' once it is subscribed again (the receiver resyncs then),
 * 'message' (channel, text) for each message.
 *
 * - One server or Sentinel: one connection that reconnects forever (through Sentinel: to whichever node is
 *   master now) and re-subscribes by itself.
 * - Cluster: classic PUBLISH reaches every node of a Cluster, so one connection to any node hears every
 *   message. ioredis' own Cluster subscriber switches nodes silently (no event to resync on), so this one
 *   owns its connection: when it ends, the next node is tried, from the seeds and the nodes `knownNodes`
 *   (the command client) has discovered.
 */
export class Subscriber extends EventEmitter {
  private conn?: Redis;
  private stopped = false;
  private lost = false;
  private everReady = false;
  private attempt = 0;
  private nextNode = 0;
  private timer?: NodeJS.Timeout;
  private firstReady?: () => void;

  constructor(
    private readonly cfg: RedisConfig,
    private readonly name: string,
    private readonly channels: string[],
    private readonly knownNodes: () => RedisNodeAddress[] = () => [],
  ) {
    super();
  }

  /** Connect; resolves once first subscribed (like a SUBSCRIBE that waits for Redis to be there). */
  start(): Promise<void> {
    const subscribed = new Promise<void>((resolve) => (this.firstReady = resolve));
    if (this.cfg.topology.kind === 'cluster') this.connectClusterNode();
    else this.connectOne();
    return subscribed;
  }

  private connectOne(): void {
    const conn = connect(this.cfg, { connectionName: this.name, maxRetriesPerRequest: null, retryStrategy: (n) => Math.min(n * 100, 2000) }) as Redis;
    this.conn = conn;
    conn.on('error', (err: Error) => this.markLost(err));
    conn.on('close', () => this.markLost());
    // ioredis re-subscribes by itself after each reconnect, just after 'ready'; subscribing again (a no-op
    // for the server) tells when that is done, so a resync never runs while the channel is still deaf.
    conn.on('ready', () => void conn.subscribe(...this.channels).then(() => this.markReady(), (err: Error) => this.markLost(err)));
    conn.on('message', (ch: string, m: string) => this.emit('message', ch, m));
  }

  private connectClusterNode(): void {
    if (this.stopped || this.cfg.topology.kind !== 'cluster') return;
    const seen = new Set<string>();
    const candidates = [...this.knownNodes(), ...this.cfg.topology.nodes].filter((n) => {
      const k = `${n.host}:${n.port}`;
      return seen.has(k) ? false : (seen.add(k), true);
    });
    const node = candidates[this.nextNode++ % candidates.length];
    // No reconnection of its own: when this node goes, 'end' moves on to another node.
    const conn = new Redis({ ...nodeAuth(this.cfg), host: node.host, port: node.port, connectionName: this.name, retryStrategy: () => null, maxRetriesPerRequest: null, connectTimeout: 2000 });
    this.conn = conn;
    conn.on('error', (err: Error) => this.markLost(err));
    conn.on('message', (ch: string, m: string) => this.emit('message', ch, m));
    conn.once('ready', () => {
      conn.subscribe(...this.channels).then(
        () => this.markReady(),
        (err: Error) => {
          this.markLost(err);
          conn.disconnect();
        },
      );
    });
    conn.once('end', () => {
      this.markLost();
      if (this.stopped) return;
      const delay = Math.min(this.attempt++ * 100, 2000);
      this.timer = setTimeout(() => this.connectClusterNode(), delay);
    });
  }

  private markLost(err?: Error): void {
    if (this.stopped) return;
    if (!this.lost) this.emit('lost', err);
    this.lost = true;
  }

  private markReady(): void {
    this.attempt = 0;
    this.firstReady?.();
    this.firstReady = undefined;
    if (this.everReady && this.lost) this.emit('restored');
    this.everReady = true;
    this.lost = false;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.firstReady?.();
    if (this.timer) clearTimeout(this.timer);
    await this.conn?.quit().catch(() => this.conn?.disconnect());
  }
}

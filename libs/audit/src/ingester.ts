import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { auditKeys, COMMIT_SCRIPT, RELEASE_SCRIPT, RENEW_SCRIPT, utcDay } from './audit-keys';
import { dedupBucket, dedupMember, isKeyUse, parseAuditLine, streamFields } from './audit-line';
import { auditStreamKey } from './admin-audit';
import { ingestMetrics, markCaughtUp } from './metrics';
import type { RedisClient } from '@latchkey/redis';

export interface IngesterOptions {
  /** The file audit log (what Vault's `file_path` names). */
  path: string;
  prefix: string;
  /** Lines per atomic commit. */
  batchLines: number;
  streamMaxLen: number;
  /** Stream entries older than this are trimmed. */
  retentionMs: number;
  dedupTtlMs: number;
  usageRetentionMs: number;
  lockTtlMs: number;
  /** A run stops after this long; the next run continues from the checkpoint. */
  maxRunMs?: number;
  log?: { log(m: string): void; warn(m: string): void };
}

export interface IngestReport {
  lines: number;
  malformed: number;
  events: number;
  duplicates: number;
  caughtUp: boolean;
  /** Why nothing (more) was read. */
  stopped?: 'locked' | 'no-file' | 'conflict' | 'lock-lost' | 'time';
}

export interface Checkpoint {
  file: string;
  offset: number;
  path: string;
  headLen: number;
  headHash: string;
}

interface FileStat {
  id: string;
  size: number;
}

interface Expect {
  file: string;
  offset: string;
}

type CommitResult = 'ok' | 'lock-lost' | 'conflict';

const CHUNK = 1 << 20;
const MAX_LINE = 8 << 20;
const HEAD_BYTES = 512;

type RedisWithScripts = RedisClient & {
  lkAuditCommit(checkpoint: string, lock: string, stream: string, owner: string, batch: string): Promise<[number, number]>;
  lkAuditRenew(lock: string, owner: string, ttlMs: number): Promise<number>;
  lkAuditRelease(lock: string, owner: string): Promise<number>;
};

export function withAuditScripts(redis: RedisClient): RedisWithScripts {
  const r = redis as RedisWithScripts;
  if (typeof r.lkAuditCommit !== 'function') {
    redis.defineCommand('lkAuditCommit', { numberOfKeys: 3, lua: COMMIT_SCRIPT });
    redis.defineCommand('lkAuditRenew', { numberOfKeys: 1, lua: RENEW_SCRIPT });
    redis.defineCommand('lkAuditRelease', { numberOfKeys: 1, lua: RELEASE_SCRIPT });
  }
  return r;
}

function fileId(st: fs.BigIntStats): string {
  return `${st.dev}:${st.ino}`;
}

async function statPath(p: string): Promise<FileStat | null> {
  try {
    const st = await fs.promises.stat(p, { bigint: true });
    return st.isFile() ? { id: fileId(st), size: Number(st.size) } : null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

async function headOf(fd: fs.promises.FileHandle, len: number): Promise<string> {
  const b = Buffer.alloc(len);
  const { bytesRead } = await fd.read(b, 0, len, 0);
  return createHash('sha1').update(b.subarray(0, bytesRead)).digest('hex');
}

/**
 * Reads the Vault file audit log into Redis from a checkpoint, exactly once
 * in effect:
 * - one reader at a time (a Redis lock with a TTL, renewed while reading);
 * - every batch is one atomic Redis script that checks the lock and that the
 *   checkpoint still is where the batch was read from, deduplicates by request
 *   id + type, appends the events, merges per-key usage and moves the
 *   checkpoint — so a crash anywhere either commits a batch whole or not at all;
 * - rotation is detected by file identity (device + inode) and a fingerprint of
 *   the file's first bytes (inode reuse); the rotated file is finished when it
 *   can still be found in the same folder, then reading starts at 0 of the new
 *   file; truncation (size below the offset) restarts at 0.
 */
export class AuditIngester {
  private readonly redis: RedisWithScripts;
  private readonly keys;
  private readonly stream: string;
  private readonly owner = randomUUID();
  private lockLost = false;

  constructor(
    redis: RedisClient,
    private readonly opts: IngesterOptions,
  ) {
    this.redis = withAuditScripts(redis);
    this.keys = auditKeys(opts.prefix);
    this.stream = auditStreamKey(opts.prefix);
  }

  /** Take the lock, read everything new (bounded by maxRunMs), release the lock. */
  async run(): Promise<IngestReport> {
    const report: IngestReport = { lines: 0, malformed: 0, events: 0, duplicates: 0, caughtUp: false };
    const got = await this.redis.set(this.keys.lock, this.owner, 'PX', this.opts.lockTtlMs, 'NX');
    if (got !== 'OK') return { ...report, stopped: 'locked' };
    this.lockLost = false;
    const renew = setInterval(() => {
      this.redis.lkAuditRenew(this.keys.lock, this.owner, this.opts.lockTtlMs).then(
        (ok) => {
          if (!ok) this.lockLost = true;
        },
        () => undefined, // Redis unreachable: the commit will fail or the lock will expire
      );
    }, Math.max(500, Math.floor(this.opts.lockTtlMs / 3)));
    renew.unref();
    try {
      await this.drain(report, Date.now() + (this.opts.maxRunMs ?? 60_000));
    } finally {
      clearInterval(renew);
      await this.redis.lkAuditRelease(this.keys.lock, this.owner).catch(() => undefined);
    }
    return report;
  }

  async checkpoint(): Promise<Checkpoint | null> {
    const h = await this.redis.hgetall(this.keys.checkpoint);
    if (!h.file) return null;
    return { file: h.file, offset: Number(h.offset), path: h.path ?? '', headLen: Number(h.headLen ?? 0), headHash: h.headHash ?? '' };
  }

  /**
   * Bytes of the audit log not yet read: the current file's size past the
   * checkpoint, or all of it when the checkpoint is on an older (rotated) file
   * or no checkpoint exists yet. Null when the log does not exist.
   */
  async backlogBytes(): Promise<number | null> {
    const cur = await statPath(this.opts.path);
    if (!cur) return null;
    const cp = await this.checkpoint();
    if (!cp || cp.file !== cur.id || cur.size < cp.offset) return cur.size;
    return cur.size - cp.offset;
  }

  private async drain(report: IngestReport, deadline: number): Promise<void> {
    const file = this.opts.path;
    // A run crosses at most a couple of file changes; the bound only guards against a pathological loop.
    let previous = '';
    for (let step = 0; step < 8; step++) {
      const cp = await this.checkpoint();
      const here = cp ? `${cp.file}@${cp.offset}` : '';
      if (step > 0 && here === previous) return; // no progress (e.g. a partial last line of a renamed file)
      previous = here;
      const cur = await statPath(file);
      if (!cp) {
        if (!cur) return void (report.stopped = 'no-file');
        await this.readFile(file, cur.id, 0, { file: '', offset: '' }, false, report, deadline);
        return;
      }
      const expect: Expect = { file: cp.file, offset: String(cp.offset) };
      if (cur && cur.id === cp.file) {
        let from = cp.offset;
        if (cur.size < cp.offset) {
          this.opts.log?.warn(`audit log ${file} was truncated (size ${cur.size} < offset ${cp.offset}); reading it from the start`);
          ingestMetrics.rotations().inc({ kind: 'truncation' });
          from = 0;
        } else if (!(await this.headMatches(file, cp))) {
          this.opts.log?.warn(`audit log ${file} was replaced (same inode, different content); reading it from the start`);
          ingestMetrics.rotations().inc({ kind: 'replaced' });
          from = 0;
        }
        await this.readFile(file, cur.id, from, expect, false, report, deadline);
        return;
      }
      // The checkpointed file is no longer at `path`: renamed by rotation (finish it if we can find it), or gone.
      const old = await this.findById(path.dirname(file), path.basename(file), cp.file);
      if (old && old.size > cp.offset) {
        const done = await this.readFile(old.path, cp.file, cp.offset, expect, cur !== null, report, deadline);
        if (!done) return;
        continue;
      }
      if (!cur) return void (report.stopped = 'no-file'); // renamed, Vault not yet reopened (SIGHUP): wait
      if (!old) {
        this.opts.log?.warn(`audit log rotated and the previous file (${cp.path}) is gone; lines after offset ${cp.offset} of it were not read`);
        ingestMetrics.rotations().inc({ kind: 'lost' });
      } else {
        ingestMetrics.rotations().inc({ kind: 'rotation' });
      }
      // Switch to the new file: the checkpoint moves to its offset 0 (in the same atomic step as its first batch).
      await this.readFile(file, cur.id, 0, expect, false, report, deadline);
      return;
    }
  }

  private async headMatches(file: string, cp: Checkpoint): Promise<boolean> {
    if (!cp.headHash || cp.headLen === 0) return true;
    const fd = await fs.promises.open(file, 'r');
    try {
      return (await headOf(fd, cp.headLen)) === cp.headHash;
    } finally {
      await fd.close();
    }
  }

  private async findById(dir: string, base: string, id: string): Promise<{ path: string; size: number } | null> {
    let names: string[];
    try {
      names = await fs.promises.readdir(dir);
    } catch {
      return null;
    }
    // Rotated names usually extend the base name (audit.log.1, audit.log-20260101): look at those first.
    names.sort((a, b) => Number(!a.startsWith(base)) - Number(!b.startsWith(base)));
    for (const n of names) {
      const p = path.join(dir, n);
      const st = await statPath(p).catch(() => null);
      if (st && st.id === id) return { path: p, size: st.size };
    }
    return null;
  }

  /**
   * Read `file` from `from` to its end in batches, committing each. With
   * `final` (the writer has moved to a new file) a last line without its
   * newline is taken as a line; otherwise it waits for the next run.
   * Returns true when the end of the file was reached and committed.
   */
  private async readFile(file: string, id: string, from: number, expect: Expect, final: boolean, report: IngestReport, deadline: number): Promise<boolean> {
    let fd: fs.promises.FileHandle;
    try {
      fd = await fs.promises.open(file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    try {
      const st = await fd.stat({ bigint: true });
      if (fileId(st) !== id) return false; // replaced between stat and open: the next run sees the new state
      const headLen = Math.min(Number(st.size), HEAD_BYTES);
      const headHash = await headOf(fd, headLen);

      const chunk = Buffer.allocUnsafe(CHUNK);
      let carry: Buffer = Buffer.alloc(0);
      let carryStart = from; // file offset of carry[0]
      let pos = from; // next byte to read
      let skipping = false; // inside an over-long line: drop bytes up to the next newline
      let batch = new Batch(id, file, headLen, headHash, from);
      // One commit may be in flight while the next batch is parsed. Its successor expects the checkpoint it
      // writes, so if it fails the successor is refused too: ordering and exactly-once are kept.
      let inflight: Promise<CommitResult> = Promise.resolve('ok');
      const settle = async (): Promise<boolean> => {
        const res = await inflight;
        if (res !== 'ok') report.stopped = res;
        return res === 'ok';
      };
      const commit = async (caughtUp: boolean): Promise<boolean> => {
        if (!(await settle())) return false;
        inflight = this.commit(expect, batch, caughtUp, report);
        inflight.catch(() => undefined); // awaited by the next settle()
        expect = { file: id, offset: String(batch.offset) };
        batch = new Batch(id, file, headLen, headHash, batch.offset);
        return true;
      };

      for (;;) {
        const { bytesRead } = await fd.read(chunk, 0, CHUNK, pos);
        if (bytesRead === 0) break;
        pos += bytesRead;
        const buf = carry.length ? Buffer.concat([carry, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
        let start = 0;
        for (;;) {
          const nl = buf.indexOf(10, start);
          if (nl < 0) break;
          const lineEnd = carryStart + nl + 1;
          if (skipping) {
            skipping = false;
            batch.malformedLine(lineEnd);
          } else {
            batch.line(buf.toString('utf8', start, nl), lineEnd);
          }
          start = nl + 1;
          if (batch.lines >= this.opts.batchLines) {
            if (!(await commit(false))) return false;
            if (this.lockLost || Date.now() > deadline) {
              if (!(await settle())) return false;
              report.stopped = this.lockLost ? 'lock-lost' : 'time';
              return false;
            }
          }
        }
        const rest = buf.length - start;
        if (skipping || rest > MAX_LINE) {
          skipping = true;
          carry = Buffer.alloc(0);
          carryStart = pos;
        } else {
          // Copy: `chunk` is reused by the next read.
          carry = Buffer.from(buf.subarray(start));
          carryStart += start;
        }
      }
      if (final && (carry.length > 0 || skipping)) {
        if (skipping) batch.malformedLine(pos);
        else batch.line(carry.toString('utf8'), carryStart + carry.length);
      }
      // Always commit at the end: it records progress (and the switch to a new file) even without events.
      if (!(await commit(true)) || !(await settle())) return false;
      report.caughtUp = true;
      return true;
    } finally {
      await fd.close();
    }
  }

  private async commit(expect: Expect, batch: Batch, caughtUp: boolean, report: IngestReport): Promise<CommitResult> {
    const now = Date.now();
    const payload = JSON.stringify({
      ef: expect.file,
      eo: expect.offset,
      nf: batch.fileId,
      no: String(batch.offset),
      np: batch.path,
      hl: batch.headLen,
      hh: batch.headHash,
      p: this.opts.prefix,
      ml: this.opts.streamMaxLen,
      mi: this.opts.retentionMs > 0 ? `${now - this.opts.retentionMs}-0` : '',
      dt: Math.ceil(this.opts.dedupTtlMs / 1000),
      ut: Math.ceil(this.opts.usageRetentionMs / 1000),
      ln: batch.lines,
      mf: batch.malformed,
      lt: batch.lastEventTime,
      cu: caughtUp ? 1 : 0,
      now: String(now),
      ev: batch.events,
    });
    const [added, dups] = await this.redis.lkAuditCommit(this.keys.checkpoint, this.keys.lock, this.stream, this.owner, payload);
    if (added === -1) {
      this.lockLost = true;
      return 'lock-lost';
    }
    if (added === -2) return 'conflict';
    report.lines += batch.lines;
    report.malformed += batch.malformed;
    report.events += added;
    report.duplicates += dups;
    ingestMetrics.lines().inc(batch.lines);
    if (batch.malformed) {
      ingestMetrics.malformed().inc(batch.malformed);
      this.opts.log?.warn(`audit log ${batch.path}: skipped ${batch.malformed} malformed line(s), first at ${batch.firstMalformed}`);
    }
    if (added) ingestMetrics.events().inc(added);
    if (dups) ingestMetrics.duplicates().inc(dups);
    const lag = ingestMetrics.eventLag();
    for (const t of batch.times) lag.observe(Math.max(0, (now - t) / 1000));
    if (caughtUp) markCaughtUp(now);
    return 'ok';
  }
}

/** Lines read since the last commit, as the commit script takes them. */
class Batch {
  lines = 0;
  malformed = 0;
  lastEventTime = '';
  /** Where the first malformed line of the batch is, for the log (never its content: it may hold secrets). */
  firstMalformed?: string;
  readonly events: unknown[] = [];
  readonly times: number[] = [];

  constructor(
    readonly fileId: string,
    readonly path: string,
    readonly headLen: number,
    readonly headHash: string,
    /** File offset just past the last line taken. */
    public offset = 0,
  ) {}

  line(text: string, end: number): void {
    const start = this.offset;
    this.offset = end;
    const r = parseAuditLine(text);
    if (!r.ok) {
      if (r.reason !== 'empty') {
        this.lines++;
        this.malformed++;
        this.firstMalformed ??= `bytes ${start}-${end} (${r.reason})`;
      }
      return;
    }
    this.lines++;
    const e = r.event;
    // [bucket, member, stream fields, usage or false, accessor the commit must find in the key index].
    const entry: unknown[] = [dedupBucket(e), dedupMember(e), streamFields(e), false];
    if (isKeyUse(e)) {
      // Usage counts each request once, from its response line (which also tells whether it failed).
      if (e.kind === 'response') {
        const at = e.timeMs || Date.now();
        entry[3] = [e.accessor, e.error !== undefined ? 1 : 0, String(at), e.remoteAddress ?? '', utcDay(at)];
      }
      entry.push(e.accessor);
    }
    this.events.push(entry);
    if (e.timeMs) this.times.push(e.timeMs);
    this.lastEventTime = e.time;
  }

  malformedLine(end: number): void {
    this.firstMalformed ??= `bytes ${this.offset}-${end} (too long)`;
    this.offset = end;
    this.lines++;
    this.malformed++;
  }
}

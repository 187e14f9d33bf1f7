import { ErrorCode, LatchkeyError } from '@latchkey/common';
import type { RedisClient } from './redis';

/** Members are `<13-digit created-at ms>:<id>`; the id starts after this offset. */
const ID_OFFSET = 14;

export interface LexPage<T> {
  items: T[];
  nextCursor: string | null;
}

/**
 * One page of an index kept as a sorted set of `<createdAt ms>:<id>` members
 * (all score 0), read by lex range so cursors stay stable under concurrent
 * inserts. Records are JSON strings at `recordKey(id)`; members whose record
 * has lapsed are dropped from the set as they are met. The cursor is the last
 * member, base64url-encoded, and must match `memberRe`.
 */
export async function lexPage<T>(
  redis: RedisClient,
  set: string,
  opts: { limit: number; cursor?: string; memberRe: RegExp; recordKey: (id: string) => string },
): Promise<LexPage<T>> {
  let start = '-';
  if (opts.cursor) {
    const decoded = Buffer.from(opts.cursor, 'base64url').toString();
    if (!opts.memberRe.test(decoded)) throw new LatchkeyError(ErrorCode.VALIDATION_FAILED, 'cursor is not valid');
    start = `(${decoded}`;
  }
  const members = await redis.zrangebylex(set, start, '+', 'LIMIT', 0, opts.limit + 1);
  const page = members.slice(0, opts.limit);
  const raws = page.length ? await redis.mget(page.map((m) => opts.recordKey(m.slice(ID_OFFSET)))) : [];
  const items: T[] = [];
  const gone: string[] = [];
  raws.forEach((r, i) => (r === null ? gone.push(page[i]) : items.push(JSON.parse(r) as T)));
  if (gone.length) await redis.zrem(set, ...gone);
  const nextCursor = members.length > opts.limit ? Buffer.from(page[page.length - 1]).toString('base64url') : null;
  return { items, nextCursor };
}

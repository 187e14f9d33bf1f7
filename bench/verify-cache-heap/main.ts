/**
 * bench/verify-cache-heap — `npm run build && node --expose-gc dist/bench/verify-cache-heap/main.js [count]`
 *
 * Heap cost of one cached key in the verify engine, without Vault or HTTP:
 * fills a VerifyCache through the same entry builder verify uses, from
 * lookups shaped like OpenBao's (24-char accessors, nanosecond ISO expiries,
 * a few apps, profiles, policy lists and names shared between keys), and
 * counts one verification per key in a UsageCounter the way verify does.
 * Prints heapUsed after a forced GC, per key, for the cache alone and with
 * the usage counts not yet flushed. Asserts nothing.
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { UsageCounter } from '@latchkey/audit';
import { loadConfig } from '@latchkey/config';
import { encodeKey } from '@latchkey/keys';
import type { TokenLookup } from '@latchkey/vault';
import { cacheKey, KeyEntries, VerifyCache } from '@latchkey/verify';

const COUNT = Number(process.argv[2] ?? 100_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  process.stderr.write('run with node --expose-gc\n');
  process.exit(2);
}

const ALPHA = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const rand = (n: number) => Array.from(randomBytes(n), (b) => ALPHA[b % ALPHA.length]).join('');

/** The JSON OpenBao answers for `auth/token/lookup`, parsed as the api parses it (fresh strings per key). */
function lookupJson(i: number): string {
  const expire = new Date(Date.now() + 3600_000 + i).toISOString().replace('Z', '123456Z');
  return JSON.stringify({
    accessor: rand(24),
    id: `hvs.${rand(24)}`,
    policies: ['default', i % 3 === 0 ? 'orders-read' : 'orders-write'],
    meta: { latchkey_app: `app-${i % 20}`, latchkey_name: `key-${i % 50}`, latchkey_profile: 'default', owner: `team-${i % 5}` },
    display_name: 'token',
    num_uses: 0,
    orphan: true,
    creation_time: Math.floor(Date.now() / 1000),
    creation_ttl: 3600,
    expire_time: expire,
    explicit_max_ttl: 0,
    ttl: 3600,
    type: 'service',
    path: 'auth/token/create/latchkey-default',
    role: 'latchkey-default',
    renewable: true,
  });
}

function heap(): number {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed;
}

function main(): void {
  const config = loadConfig({ VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_TOKEN: 'unused' });
  // Input prepared before the baseline and kept alive to the end: only what the cache keeps is counted.
  const inputs: Array<{ key: string; lookup: string }> = Array.from({ length: COUNT }, (_, i) => ({ key: encodeKey(`hvs.${rand(90)}`), lookup: lookupJson(i) }));
  const redis = { defineCommand: () => undefined, lkUsageMerge: () => undefined };
  const usage = new UsageCounter(redis as never, config);
  // Allocated before the baseline so that its slots are not counted as the cache's.
  const keyIds: string[] = new Array<string>(COUNT).fill('');
  const base = heap();
  // Constructed after the baseline: lru-cache preallocates its slot arrays for `max` entries.
  const cache = new VerifyCache({ max: COUNT, maxStalenessMs: 3600_000, negativeTtlMs: 30_000 });
  const entries = new KeyEntries(config.vault.rolePrefix);
  for (let i = 0; i < COUNT; i++) {
    const entry = entries.fromLookup(JSON.parse(inputs[i].lookup) as TokenLookup);
    if (!entry || !cache.setKey(cacheKey(inputs[i].key), entry, Date.now())) throw new Error('entry not cached');
    keyIds[i] = entry.keyId;
  }
  const withCache = heap();
  for (const id of keyIds) usage.record(id, '10.1.2.3', true);
  const withUsage = heap();
  const size = cache.size;
  const perKey = (b: number) => (b / COUNT).toFixed(0);
  process.stdout.write(
    `node ${process.version}, ${COUNT} keys, cache.size ${size}, usage.pendingKeys ${usage.pendingKeys}, inputs ${inputs.length}\n` +
      `heap per cached key: ${perKey(withCache - base)} B (the cache with its preallocated slots, entries, revocation index)\n` +
      `+ usage counts not yet flushed: ${perKey(withUsage - withCache)} B per key (UsageCounter, until the next USAGE_FLUSH_EVERY)\n`,
  );
}

main();

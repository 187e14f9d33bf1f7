/**
 * Redis keys and server-side scripts of audit ingestion and usage. All keys
 * start with the configured prefix (config.redis.prefix). The scripts touch
 * keys they compute from that prefix (dedup buckets, key records, usage): on a
 * Redis Cluster the prefix is a hash tag, so all of them share the slot of the
 * keys the call names, and the node that runs the script holds them all.
 */
export const auditKeys = (p: string) => ({
  checkpoint: `${p}:audit:ingest:checkpoint`,
  lock: `${p}:audit:ingest:lock`,
  usage: (keyId: string) => `${p}:usage:${keyId}`,
  usageDays: (keyId: string) => `${p}:usage:${keyId}:days`,
  /** Per app (verify counts, refusals by code); a separate namespace from the per-key hashes. */
  appUsage: (appId: string) => `${p}:appusage:${appId}`,
  appUsageDays: (appId: string) => `${p}:appusage:${appId}:days`,
  /** Per UTC day, verifications by hour and outcome: fields `HH|VALID` and `HH|<refusal code>` (charts). */
  usageHours: (keyId: string, day: string) => `${p}:usage:${keyId}:h:${day}`,
  appUsageHours: (appId: string, day: string) => `${p}:appusage:${appId}:h:${day}`,
  seen: (bucket: string) => `${p}:audit:seen:${bucket}`,
});

/**
 * Merge usage into a key's hashes: counters add up, the "last" fields only
 * move forward in time (two api instances, or the api and the worker, may
 * flush out of order). `source` is `vault` (audit log) or `verify` (api).
 */
const USAGE_FN = `
local function usage(prefix, keyId, source, n, fails, at, ip, day, ttl)
  local uk = prefix .. ':usage:' .. keyId
  redis.call('HINCRBY', uk, 'count', n)
  redis.call('HINCRBY', uk, source .. 'Count', n)
  if fails > 0 then
    redis.call('HINCRBY', uk, 'errors', fails)
    redis.call('HINCRBY', uk, source .. 'Errors', fails)
  end
  local last = tonumber(redis.call('HGET', uk, 'lastUsedAt') or '0') or 0
  if tonumber(at) >= last then
    redis.call('HSET', uk, 'lastUsedAt', at, 'lastSource', source)
    if ip ~= '' then redis.call('HSET', uk, 'lastIp', ip) end
  end
  redis.call('HINCRBY', uk .. ':days', day, n)
  redis.call('EXPIRE', uk, ttl)
  redis.call('EXPIRE', uk .. ':days', ttl)
end
`;

/**
 * One ingestion batch, atomically: fence (the caller still holds the lock and
 * the checkpoint is where it read from), deduplicate by request id + type,
 * append events, merge usage, trim by age, move the checkpoint. A crash before
 * it runs loses nothing (the batch is re-read); after it, nothing is re-added.
 *
 * KEYS: checkpoint, lock, stream. ARGV: lock owner, JSON batch.
 * Returns {added, duplicates} or {-1} (lock lost) / {-2} (checkpoint moved).
 */
export const COMMIT_SCRIPT = `${USAGE_FN}
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {-1, 0} end
local a = cjson.decode(ARGV[2])
local file = redis.call('HGET', KEYS[1], 'file') or ''
local offset = redis.call('HGET', KEYS[1], 'offset') or ''
if file ~= a.ef or offset ~= a.eo then return {-2, 0} end
local added, dups = 0, 0
local buckets = {}
-- A token's metadata proves nothing (anyone allowed to create tokens can write latchkey_app=…): an event
-- is attributed to a key, and counted in its usage, only when the key index knows the accessor.
local keyFields = { keyId = true, appId = true, name = true, profile = true }
for _, e in ipairs(a.ev) do
  local sk = a.p .. ':audit:seen:' .. e[1]
  if redis.call('SADD', sk, e[2]) == 1 then
    buckets[sk] = true
    local fields = e[3]
    local known = e[5] ~= nil and redis.call('EXISTS', a.p .. ':key:' .. e[5]) == 1
    if e[5] ~= nil and not known then
      local kept = {}
      for i = 1, #fields, 2 do
        if not keyFields[fields[i]] then
          kept[#kept + 1] = fields[i]
          kept[#kept + 1] = fields[i + 1]
        end
      end
      fields = kept
    end
    redis.call('XADD', KEYS[3], '*', unpack(fields))
    local u = e[4]
    if known and type(u) == 'table' then usage(a.p, u[1], 'vault', 1, u[2], u[3], u[4], u[5], a.ut) end
    added = added + 1
  else
    dups = dups + 1
  end
end
for sk, _ in pairs(buckets) do redis.call('EXPIRE', sk, a.dt) end
if added > 0 then
  redis.call('XTRIM', KEYS[3], 'MAXLEN', '~', a.ml)
  if a.mi ~= '' then redis.call('XTRIM', KEYS[3], 'MINID', '~', a.mi) end
end
redis.call('HSET', KEYS[1], 'file', a.nf, 'offset', a.no, 'path', a.np, 'headLen', a.hl, 'headHash', a.hh, 'updatedAt', a.now)
redis.call('HINCRBY', KEYS[1], 'lines', a.ln)
redis.call('HINCRBY', KEYS[1], 'malformed', a.mf)
redis.call('HINCRBY', KEYS[1], 'events', added)
redis.call('HINCRBY', KEYS[1], 'duplicates', dups)
if a.lt ~= '' then redis.call('HSET', KEYS[1], 'lastEventTime', a.lt) end
if a.cu == 1 then redis.call('HSET', KEYS[1], 'caughtUpAt', a.now) end
return {added, dups}
`;

/**
 * Usage from the api's verify path: KEYS[1] = the key's usage hash (named so that a Cluster sends the call to
 * its slot; the script derives the same name), ARGV = prefix, keyId, count, failures, lastAt ms, lastIp, day, ttl seconds.
 */
export const USAGE_SCRIPT = `${USAGE_FN}
usage(ARGV[1], ARGV[2], 'verify', tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8]))
return 1
`;

/** Renew the lock only if we still own it. KEYS: lock. ARGV: owner, ttl ms. */
export const RENEW_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/** Release the lock only if we still own it. */
export const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** Hourly hashes outlive the longest series the API serves (168 hours) by a day. */
export const HOURLY_TTL_SECONDS = 8 * 86400;

/** UTC day of an epoch-ms time, for per-day counters. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** UTC hour (`00`..`23`) of an epoch-ms time, the field prefix in the hourly hashes. */
export function utcHour(ms: number): string {
  return new Date(ms).toISOString().slice(11, 13);
}

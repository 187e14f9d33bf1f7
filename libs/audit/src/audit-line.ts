import { createHash } from 'node:crypto';
import { redactText } from '@latchkey/common';

/**
 * One Vault/OpenBao file-audit line reduced to what latchkey keeps. Request
 * bodies (`request.data`) and response bodies are never kept: only ids, the
 * path, the caller's accessor and metadata, the remote address and the error.
 */
export interface VaultAuditEvent {
  /** `request` or `response`. */
  kind: 'request' | 'response';
  /** Vault's request id (`request.id`); with `kind` the deduplication key. */
  requestId: string;
  /** Vault's timestamp of the line (RFC 3339, as written). */
  time: string;
  /** Epoch ms of `time` (NaN-safe: 0 when unparsable). */
  timeMs: number;
  operation?: string;
  path?: string;
  mount?: string;
  remoteAddress?: string;
  /** Accessor of the token that made the request (in clear with hmac_accessor=false). */
  accessor?: string;
  displayName?: string;
  policies?: string[];
  tokenType?: string;
  /** latchkey metadata of the calling token: present when the caller is a latchkey key. */
  appId?: string;
  keyName?: string;
  profile?: string;
  /** Vault's error message, redacted and truncated. */
  error?: string;
}

export type ParseResult = { ok: true; event: VaultAuditEvent } | { ok: false; reason: 'empty' | 'json' | 'shape' };

const MAX_STRING = 512;
const MAX_ERROR = 1024;
const HMAC_PREFIX = 'hmac-sha256:';

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
}

/** A short clear-text string, or undefined. HMAC'd values and token-shaped text are dropped or redacted. */
function str(v: unknown, max = MAX_STRING): string | undefined {
  if (typeof v !== 'string' || v.length === 0) return undefined;
  if (v.startsWith(HMAC_PREFIX)) return undefined;
  const s = v.length > max ? v.slice(0, max) : v;
  return redactText(s);
}

function strings(v: unknown): string[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: string[] = [];
  for (const x of v) {
    const s = str(x, 128);
    if (s !== undefined) out.push(s);
    if (out.length >= 64) break;
  }
  return out;
}

/** Accessors are short alphanumeric ids; anything else (e.g. an HMAC when hmac_accessor=true) is not one. */
const ACCESSOR_RE = /^[A-Za-z0-9._-]{8,128}$/;

/**
 * Parse one line of the file audit log. Never throws: malformed input is
 * reported with a reason so the caller can skip and count it.
 */
export function parseAuditLine(line: string): ParseResult {
  if (line.length === 0 || /^\s*$/.test(line)) return { ok: false, reason: 'empty' };
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return { ok: false, reason: 'json' };
  }
  return fromObject(raw, line);
}

/**
 * Reduce an already-parsed audit object. `line` (the raw text) names events
 * Vault wrote without a request id (its own internal requests, e.g. dev mode
 * mounting `secret/` at start): their id is a hash of the line, so a re-read
 * of the same line is still recognised as a duplicate.
 */
export function fromObject(raw: unknown, line?: string): ParseResult {
  const o = obj(raw);
  if (!o) return { ok: false, reason: 'shape' };
  const kind = o.type;
  if (kind !== 'request' && kind !== 'response') return { ok: false, reason: 'shape' };
  const request = obj(o.request);
  const time = typeof o.time === 'string' && o.time.length <= 64 ? o.time : undefined;
  if (!request || !time) return { ok: false, reason: 'shape' };
  const rid = request.id;
  let requestId: string;
  if (typeof rid === 'string' && rid.length > 0 && rid.length <= 128) requestId = rid;
  else if (rid === undefined && line !== undefined) requestId = `line-${createHash('sha1').update(line).digest('hex').slice(0, 24)}`;
  else return { ok: false, reason: 'shape' };

  const auth = obj(o.auth);
  const meta = obj(auth?.metadata);
  const accessorRaw = auth?.accessor;
  const accessor = typeof accessorRaw === 'string' && ACCESSOR_RE.test(accessorRaw) ? accessorRaw : undefined;
  const timeMs = Date.parse(time);

  const event: VaultAuditEvent = { kind, requestId: redactText(requestId), time, timeMs: Number.isFinite(timeMs) ? timeMs : 0 };
  const set = <K extends keyof VaultAuditEvent>(k: K, v: VaultAuditEvent[K] | undefined) => {
    if (v !== undefined) event[k] = v;
  };
  set('operation', str(request.operation, 32));
  set('path', str(request.path));
  set('mount', str(request.mount_point, 256));
  set('remoteAddress', str(request.remote_address, 64));
  set('accessor', accessor);
  set('displayName', str(auth?.display_name, 256));
  set('policies', strings(auth?.policies));
  set('tokenType', str(auth?.token_type, 32));
  set('appId', str(meta?.latchkey_app, 128));
  set('keyName', str(meta?.latchkey_name, 128));
  set('profile', str(meta?.latchkey_profile, 128));
  const err = o.error;
  if (typeof err === 'string' && err.length > 0) set('error', redactText(err.length > MAX_ERROR ? err.slice(0, MAX_ERROR) : err));
  return { ok: true, event };
}

/** The deduplication member of an event: request id + kind. */
export function dedupMember(e: VaultAuditEvent): string {
  return `${e.requestId}|${e.kind === 'request' ? 'q' : 's'}`;
}

/** Hour bucket (UTC, from Vault's own timestamp) of the dedup set an event belongs to. */
export function dedupBucket(e: VaultAuditEvent): string {
  // "2026-11-27T17:57:24.17Z" → "2026112717"; a duplicate line carries the same time, hence the same bucket.
  const t = e.time;
  return /^\d{4}-\d{2}-\d{2}T\d{2}/.test(t) ? `${t.slice(0, 4)}${t.slice(5, 7)}${t.slice(8, 10)}${t.slice(11, 13)}` : 'x';
}

/** True when the event is a use of a latchkey key (the caller's token carries latchkey_app). */
export function isKeyUse(e: VaultAuditEvent): boolean {
  return e.accessor !== undefined && e.appId !== undefined;
}

/** Fields of the audit stream entry for an ingested Vault event (flat name/value list for XADD). */
export function streamFields(e: VaultAuditEvent): string[] {
  const f: string[] = ['source', 'vault', 'type', `vault.${e.kind}`, 'time', e.time, 'requestId', e.requestId];
  const add = (k: string, v: string | undefined) => {
    if (v !== undefined) f.push(k, v);
  };
  add('operation', e.operation);
  add('path', e.path);
  add('mount', e.mount);
  add('remoteAddress', e.remoteAddress);
  add('actor', e.accessor);
  if (isKeyUse(e)) add('keyId', e.accessor);
  add('appId', e.appId);
  add('name', e.keyName);
  add('profile', e.profile);
  add('actorName', e.displayName);
  add('policies', e.policies?.join(','));
  add('tokenType', e.tokenType);
  // A request line says only that Vault received it; the outcome is known from the response line (or an error).
  add('outcome', e.error !== undefined ? 'failure' : e.kind === 'response' ? 'success' : undefined);
  add('error', e.error);
  return f;
}

import type { components } from '../../../libs/client/src/schema';

export type Schemas = components['schemas'];
export type Key = Schemas['KeyResponse'];
export type KeyDetail = Schemas['KeyDetailResponse'];
export type Profile = Schemas['ProfileResponse'];
export type Cert = Schemas['CertResponse'];
export type CertDetail = Schemas['CertDetailResponse'];
export type IssuedCert = Schemas['IssueCertResponse'];
export type AuditEvent = Schemas['AuditEvent'];

/** One hour of verifications (GET …/usage?hours=N). */
export interface HourUsage {
  hour: string;
  valid: number;
  refused: number;
  refusedByCode: Record<string, number>;
}
export type KeyUsage = Schemas['KeyUsageResponse'] & { hourly?: HourUsage[]; verify: { refusedByCode?: Record<string, number> } };
export type AppUsage = Schemas['AppUsageResponse'] & { hourly?: HourUsage[] };
export interface AppEntry {
  appId: string;
  keys: string[];
  certs: string[];
}

/** An answer of the REST API that was not 2xx: its machine-readable code and message, never the credential. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId?: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

const STORAGE_KEY = 'latchkey.console.credential';

/**
 * The signed-in credential: a Vault token or a management key (lk_…). It lives in this module's memory
 * and, only when the person asked for it, in this tab's sessionStorage (gone when the tab closes). It is
 * never put in a cookie, a URL or localStorage, and is sent only to this origin's REST API.
 */
let credential: string | null = null;
const listeners = new Set<() => void>();

export function restoreSession(): void {
  try {
    credential = sessionStorage.getItem(STORAGE_KEY);
  } catch {
    credential = null;
  }
}

export function signedIn(): boolean {
  return credential !== null;
}

export function credentialKind(): 'vault token' | 'management key' | null {
  if (credential === null) return null;
  return credential.startsWith('lk_') ? 'management key' : 'vault token';
}

export function signIn(secret: string, keepInTab: boolean): void {
  credential = secret;
  try {
    if (keepInTab) sessionStorage.setItem(STORAGE_KEY, secret);
    else sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // sessionStorage unavailable (private mode): memory only
  }
  listeners.forEach((l) => l());
}

export function signOut(): void {
  credential = null;
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // nothing stored
  }
  listeners.forEach((l) => l());
}

export function onSessionChange(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

/** The header the REST API takes for this credential (the same as curl would send). */
function authHeaders(secret = credential): Record<string, string> {
  if (secret === null) return {};
  return secret.startsWith('lk_') ? { authorization: `Bearer ${secret}` } : { 'x-vault-token': secret };
}

type Query = Record<string, string | number | boolean | undefined | null>;

export function withQuery(path: string, q?: Query): string {
  if (!q) return path;
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') sp.set(k, String(v));
  const s = sp.toString();
  return s ? `${path}?${s}` : path;
}

/**
 * A path segment from untrusted text (an app id, a key id typed into a URL): always encoded, and never a
 * dot segment — `encodeURIComponent('..')` is still `..`, which URL resolution would turn into "the parent
 * route", pointing an authenticated call (a revoke) at another path.
 */
export function seg(s: string): string {
  if (s === '' || s === '.' || s === '..') throw new ApiError(400, 'INVALID_ID', `"${s}" is not an id`);
  return encodeURIComponent(s);
}

/**
 * An Idempotency-Key: random, from getRandomValues (crypto.randomUUID exists only in secure contexts, and a
 * console behind plain HTTP on a private network must still mint).
 */
export function newIdempotencyKey(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export interface Answer<T> {
  status: number;
  body: T;
  headers: Headers;
}

/** Call the REST API on this origin. Non-2xx answers throw ApiError; a 401 also ends the session. */
export async function call<T>(method: string, path: string, opts: { query?: Query; body?: unknown; headers?: Record<string, string>; as?: string } = {}): Promise<Answer<T>> {
  // `as`: a credential being tried at sign-in, before it becomes the session's.
  const headers: Record<string, string> = { accept: 'application/json', ...authHeaders(opts.as ?? credential), ...opts.headers };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(withQuery(path, opts.query), {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      credentials: 'omit',
      cache: 'no-store',
      redirect: 'error',
    });
  } catch {
    throw new ApiError(0, 'NETWORK', 'latchkey could not be reached');
  }
  const text = await res.text();
  let body: unknown = undefined;
  if (text && (res.headers.get('content-type') ?? '').includes('json')) {
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
  } else if (text) body = text;
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string; requestId?: string; details?: unknown } } | undefined)?.error;
    const err = new ApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? res.statusText, e?.requestId, e?.details);
    if (res.status === 401 && credential !== null && opts.as === undefined) endSession(`${err.code}: ${err.message}`);
    throw err;
  }
  return { status: res.status, body: body as T, headers: res.headers };
}

/** Why the last session ended (shown on the sign-in page), if a 401 or the idle timer ended it. */
export let sessionEndedReason: string | null = null;

export function endSession(reason: string): void {
  sessionEndedReason = reason;
  signOut();
}
export function clearSessionEndedReason(): void {
  sessionEndedReason = null;
}

export const get = async <T>(path: string, query?: Query) => (await call<T>('GET', path, { query })).body;

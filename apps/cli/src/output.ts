import { LatchkeyApiError } from '@latchkey/client';

/** The documented exit codes (also in `latchkey --help`). */
export const Exit = {
  OK: 0,
  /** bad arguments, missing configuration, a file that would be overwritten without --force, a local I/O error */
  USAGE: 1,
  /** the api refused the request (4xx: validation, not found, forbidden, ...) */
  REFUSED: 2,
  /** the api is unavailable (5xx, 503 after retries, network error, timeout) */
  UNAVAILABLE: 3,
  /** verify answered: the key is not valid */
  NOT_VALID: 4,
} as const;

export const EXIT_CODES_HELP = `
Exit codes:
  0  ok
  1  usage or local error: bad arguments, missing LATCHKEY_URL or credential, output file exists
     (use --force), a file that cannot be read or written
  2  the api refused the request (HTTP 4xx; the error code is printed, e.g. NOT_FOUND, FORBIDDEN)
  3  the api is unavailable (HTTP 5xx, 503 after bounded retries, network error)
  4  verify: the key is not valid (the verdict's code is printed)

Configuration (environment, else .latchkey/dev.env in the current directory, as npm run dev writes it):
  LATCHKEY_URL              the api, e.g. http://127.0.0.1:8080 (or --url)
  VAULT_TOKEN               a Vault token, sent as X-Vault-Token
  LATCHKEY_MANAGEMENT_KEY   or a latchkey management key, sent as Authorization: Bearer
Credentials are never taken from the command line (shell history) and never printed.
`;

/** A mistake of the caller's that the CLI itself detects: exit 1. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The exit code for an error thrown by a command. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return Exit.USAGE;
  if (err instanceof LatchkeyApiError) {
    if (err.status >= 400 && err.status < 500) return Exit.REFUSED;
    return Exit.UNAVAILABLE;
  }
  // Anything else happened locally (a file that cannot be read or written): not the api's doing.
  return Exit.USAGE;
}

/**
 * One line (or one JSON object) on stderr. Only the api's error fields are shown: LatchkeyApiError is
 * built from the api's secret-free error body, never from the request (so never the Vault token).
 * Any other error shows its message only; the CLI's own messages name no secret.
 */
export function describeError(err: unknown, json: boolean): string {
  if (err instanceof LatchkeyApiError) {
    if (json) return JSON.stringify({ error: { status: err.status, code: err.code, message: err.message, requestId: err.requestId, details: err.details } });
    const rid = err.requestId ? ` (request ${err.requestId})` : '';
    const status = err.status ? `HTTP ${err.status} ` : '';
    const details = err.details !== undefined ? `\n  details: ${JSON.stringify(err.details)}` : '';
    const hint = err.status === 0 ? ' (is the api running and LATCHKEY_URL right?)' : '';
    return `error: ${status}${err.code}: ${err.message}${rid}${hint}${details}`;
  }
  const message = err instanceof Error ? err.message : String(err);
  const code = err instanceof UsageError ? 'USAGE' : 'ERROR';
  return json ? JSON.stringify({ error: { code, message } }) : `error: ${message}`;
}

export type Cell = string | number | boolean | null | undefined;

function cell(v: Cell): string {
  if (v === null || v === undefined || v === '') return '-';
  return String(v);
}

/** Plain aligned columns for people; no borders, so the output greps and cuts well. */
export function table(headers: string[], rows: Cell[][]): string {
  const text = rows.map((r) => r.map(cell));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((r) => (r[i] ?? '').length)));
  const line = (cols: string[]) => cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(headers.map((h) => h.toUpperCase())), ...text.map(line)].join('\n') + '\n';
}

/** "field: value" lines for one record. */
export function fields(entries: [string, Cell | string[]][]): string {
  const w = Math.max(...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `${(k + ':').padEnd(w + 1)} ${Array.isArray(v) ? (v.length ? v.join(', ') : '-') : cell(v)}`).join('\n') + '\n';
}

/**
 * The one error the client throws. It is built only from the api's error body (designed to hold no
 * secret: see docs/security.md) and the response status — never from the request, so the caller's
 * X-Vault-Token, management key, a minted key or a private key cannot end up in a log line that
 * prints it, its stack or its JSON.
 */
export class LatchkeyApiError extends Error {
  override readonly name = 'LatchkeyApiError';
  /** HTTP status; 0 when no response arrived (network error, aborted). */
  readonly status: number;
  /** The api's machine-readable code (libs/common's closed list), or NETWORK_ERROR / BAD_RESPONSE from the client itself. */
  readonly code: string;
  /** The api's request id (X-Request-Id), for support; null when there was no response. */
  readonly requestId: string | null;
  /** The api's `details` (invalid field names for VALIDATION_FAILED, or e.g. {successorKeyId}). */
  readonly details?: unknown;

  constructor(fields: { status: number; code: string; message: string; requestId: string | null; details?: unknown }) {
    super(fields.message);
    this.status = fields.status;
    this.code = fields.code;
    this.requestId = fields.requestId;
    if (fields.details !== undefined) this.details = fields.details;
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, status: this.status, code: this.code, message: this.message, requestId: this.requestId, details: this.details };
  }
}

interface ErrorBody {
  error?: { code?: unknown; message?: unknown; requestId?: unknown; details?: unknown };
}

/** The error for a non-2xx answer whose body openapi-fetch already parsed (or did not, when it was not JSON). */
export function apiErrorFrom(response: Response, body: unknown): LatchkeyApiError {
  const e = (typeof body === 'object' && body !== null ? (body as ErrorBody).error : undefined) ?? {};
  const requestId = typeof e.requestId === 'string' ? e.requestId : response.headers.get('x-request-id');
  // A proxy in front of the api may answer with HTML: only the status is kept, never the body text.
  const code = typeof e.code === 'string' ? e.code : 'BAD_RESPONSE';
  const message = typeof e.message === 'string' ? e.message : `HTTP ${response.status}`;
  return new LatchkeyApiError({ status: response.status, code, message, requestId, details: e.details });
}

/**
 * A request that got no answer. The underlying error is not kept as `cause`: fetch errors describe the
 * connection, but a custom fetch (or a future runtime) might attach the request, and with it its headers.
 */
export function networkError(err: unknown): LatchkeyApiError {
  const aborted = err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
  const reason = err instanceof Error && err.cause instanceof Error && typeof (err.cause as NodeJS.ErrnoException).code === 'string'
    ? (err.cause as NodeJS.ErrnoException).code
    : err instanceof Error ? err.name : 'error';
  return new LatchkeyApiError({ status: 0, code: aborted ? 'ABORTED' : 'NETWORK_ERROR', message: `request failed: ${reason}`, requestId: null });
}

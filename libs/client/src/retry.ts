/** Bounds on retrying a 503: the api answers 503 + Retry-After when Vault or Redis is unavailable. */
export interface RetryOptions {
  /** Attempts in all, the first included (default 3; 1 disables retrying). */
  maxAttempts?: number;
  /** Total time spent waiting between attempts (default 10 000 ms). A Retry-After that would exceed it is not waited for: the 503 is returned. */
  maxTotalWaitMs?: number;
}

export type FetchFn = (input: Request) => Promise<Response>;

/** Retry-After as milliseconds (delta-seconds or HTTP-date), null when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | null {
  if (value === null) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // HTTP-dates (all three formats) start with the day's name; Date.parse alone would also take "-1" or "1.5".
  if (!/^[A-Za-z]{3}/.test(v)) return null;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal.reason as Error);
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Wraps fetch so a 503 carrying Retry-After is retried after that delay, within both bounds. Only a 503
 * with Retry-After is retried: the api sets it when it did nothing (Vault or Redis unreachable), so a
 * replay is safe; a mint additionally carries its Idempotency-Key. A 503 without Retry-After (e.g. an api
 * shutting down) and every other status are returned at once.
 */
export function retrying503(inner: FetchFn, options: RetryOptions = {}): FetchFn {
  const maxAttempts = Math.max(1, Math.floor(options.maxAttempts ?? 3));
  const maxTotalWaitMs = Math.max(0, options.maxTotalWaitMs ?? 10_000);
  return async (request) => {
    let waited = 0;
    for (let attempt = 1; ; attempt++) {
      // Each attempt sends a clone: a body stream can be read only once.
      const res = await inner(attempt < maxAttempts ? request.clone() : request);
      if (res.status !== 503 || attempt >= maxAttempts) return res;
      const delay = retryAfterMs(res.headers.get('retry-after'));
      if (delay === null || waited + delay > maxTotalWaitMs) return res;
      // The 503's body is not read: release its connection before waiting.
      await res.body?.cancel().catch(() => undefined);
      await sleep(delay, request.signal);
      waited += delay;
    }
  };
}

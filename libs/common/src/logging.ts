import type { LoggerOptions } from 'pino';
import { REDACT_PATHS, redactText } from './redact';

function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactText(value);
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    return { type: value.name, message: redactText(value.message), stack: value.stack ? redactText(value.stack) : undefined, code: (value as { code?: unknown }).code };
  }
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  // Leave class instances (Fastify request/reply…) to pino's serializers.
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrub(v, depth + 1);
  return out;
}

/**
 * pino options shared by api and worker: JSON lines, secrets redacted both by
 * field path and by shape in every string (messages, error messages, stacks),
 * so a secret that slips into free text still never reaches the log.
 */
export function pinoOptions(level: string, name: string): LoggerOptions {
  return {
    name,
    level,
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    formatters: { level: (label) => ({ level: label }) },
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    hooks: {
      logMethod(args, method) {
        // pino's log methods take (obj?, msg?, ...interp); scrub every argument.
        method.apply(this, args.map((a) => scrub(a)) as Parameters<typeof method>);
      },
    },
    serializers: {
      err: (e: unknown) => scrub(e),
      // Fastify's request line ("incoming request") carries the URL, where a client may have put a key
      // (GET /v1/keys/<key> by mistake, ?cursor=<token>): same fields as Fastify's own serializer, URL redacted.
      req: (r: { method?: string; url?: string; host?: string; ip?: string; socket?: { remotePort?: number } }) => ({
        method: r.method,
        url: typeof r.url === 'string' ? redactText(r.url) : r.url,
        host: r.host,
        remoteAddress: r.ip,
        remotePort: r.socket?.remotePort,
      }),
    },
  };
}

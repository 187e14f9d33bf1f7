import { randomBytes } from 'node:crypto';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import type { Bindings, ChildLoggerOptions } from 'pino';

/*
 * What the HTTP layer does on every request of the verify hot path
 * (POST /v1/keys/verify, /v1/auth and its sub-paths): a request id, the
 * request logger, and the optional access log. Each of these ran once per
 * verify and showed up in --cpu-prof; each is now a constant or a counter.
 */

/** Hot-path routes: their requests log warnings and errors only (route logLevel 'warn'). */
export function isHotPath(url: string | undefined): boolean {
  return url !== undefined && (url.startsWith('/v1/auth') || url.startsWith('/v1/keys/verify'));
}

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Request ids: a caller's sane X-Request-Id is kept (traces join up across
 * gateways); otherwise a per-process random prefix and a counter. Unique per
 * process and, with 72 random bits, across processes; a UUID per request cost
 * a crypto call and a 36-character format on every verify.
 */
export function requestIdGenerator(): (req: { headers: Record<string, string | string[] | undefined> }) => string {
  const prefix = `${randomBytes(9).toString('base64url')}-`;
  let seq = 0;
  return (req) => {
    const h = req.headers['x-request-id'];
    return typeof h === 'string' && REQUEST_ID_RE.test(h) ? h : prefix + (++seq).toString(36);
  };
}

/**
 * Fastify's childLoggerFactory. Other routes get a pino child per request (bound to
 * the request id, at the route's level). Hot-path requests share one child built
 * once at 'warn': a child per request cost a measurable share of a verify, and the
 * parent logger (at LOG_LEVEL, info by default) would write "incoming request" and
 * "request completed" for every verify.
 */
export function childLoggerFactory(parent: FastifyBaseLogger) {
  const hot = parent.child({}, { level: levelAtLeast(parent.level, 'warn') });
  return (logger: FastifyBaseLogger, bindings: Bindings, opts: ChildLoggerOptions, rawReq: { url?: string }): FastifyBaseLogger =>
    isHotPath(rawReq.url) ? hot : logger.child(bindings, opts);
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** The quieter of two pino levels (a LOG_LEVEL of error or silent stays that). */
function levelAtLeast(level: string, floor: string): string {
  return LEVELS.indexOf(level) > LEVELS.indexOf(floor) ? level : floor;
}

const kVerdict = Symbol('latchkey.verdict');
type Verdict = { code?: string; keyId?: string | null };
type WithVerdict = FastifyReply & { [kVerdict]?: Verdict };

function hooksOf<T>(existing: T | T[] | undefined, added: T): T[] {
  return existing === undefined ? [added] : Array.isArray(existing) ? [...existing, added] : [existing, added];
}

function headerText(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/**
 * LATCHKEY_ACCESS_LOG=verify: one line per hot-path request, written when the
 * response has gone (method, route pattern, status, verdict or error code,
 * key id, latency in ms, client address). Never the key, never the raw URL (a
 * client may put a key in a forward-auth sub-path). Written at info through its
 * own logger, so it appears even when LOG_LEVEL is warn or error (asking for it is
 * explicit), but not when LOG_LEVEL is silent. With the setting off, the hot
 * routes get no hook at all. Must be installed before the hot routes are registered.
 */
export function installAccessLog(fastify: FastifyInstance, parent: FastifyBaseLogger): void {
  const access = parent.child({}, { level: parent.level === 'silent' ? 'silent' : 'info' });
  // The verdict (POST verify) or error body, before it is serialised.
  const capture = (_req: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, p: unknown) => void) => {
    const p = payload as { code?: unknown; keyId?: unknown; error?: { code?: unknown } } | null;
    if (p && typeof p === 'object') {
      const code = typeof p.code === 'string' ? p.code : typeof p.error?.code === 'string' ? p.error.code : undefined;
      (reply as WithVerdict)[kVerdict] = { code, keyId: typeof p.keyId === 'string' ? p.keyId : null };
    }
    done(null, payload);
  };
  const write = (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const v = (reply as WithVerdict)[kVerdict];
    // Forward auth answers with headers only.
    const code = v?.code ?? headerText(reply.getHeader('x-latchkey-code')) ?? (reply.statusCode === 204 ? 'VALID' : undefined);
    const keyId = v ? v.keyId : (headerText(reply.getHeader('x-latchkey-key-id')) ?? null);
    access.info(
      { reqId: req.id, method: req.method, route: req.routeOptions.url, status: reply.statusCode, code, keyId, ms: Math.round(reply.elapsedTime * 1000) / 1000, ip: req.ip },
      'verify',
    );
    done();
  };
  fastify.addHook('onRoute', (route: RouteOptions) => {
    if (!isHotPath(route.url)) return;
    route.preSerialization = hooksOf(route.preSerialization, capture as never);
    route.onResponse = hooksOf(route.onResponse, write as never);
  });
}

import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode } from '@latchkey/common';
import { sendError } from './error-filter';

interface KnownPath {
  re: RegExp;
  /** Static segments: the most specific matching paths name the resource (/v1/keys/verify, not /v1/keys/:keyId). */
  specificity: number;
  methods: Set<string>;
}

function patternOf(url: string): RegExp {
  const body = url
    .split('/')
    .map((seg) => (seg === '*' ? '.*' : seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${body}/?$`);
}

/**
 * A request for a path that exists with another method is answered 405 with an
 * Allow header (RFC 9110), not 404. Must be installed before any route is
 * registered (it learns them through onRoute). Returns the check as a
 * preHandler for the not-found handler only: matched routes (the verify hot
 * path above all) pay nothing for it, and a request with a body is answered
 * after parsing, so a malformed or oversized body stays a 400/413.
 */
export interface MethodNotAllowed {
  /** The not-found handler's preHandler: answers 405 with Allow when the path exists with other methods. */
  preHandler: (req: FastifyRequest, reply: FastifyReply, done: () => void) => void;
  /** The Allow value for a request whose path exists with other methods, else null (for errors raised before the preHandler). */
  allowFor: (req: FastifyRequest) => string | null;
}

export function answerMethodNotAllowed(fastify: FastifyInstance): MethodNotAllowed {
  const known = new Map<string, KnownPath>();
  fastify.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const specificity = route.url.split('/').filter((seg) => seg && seg !== '*' && !seg.startsWith(':')).length;
    const entry = known.get(route.url) ?? { re: patternOf(route.url), specificity, methods: new Set<string>() };
    for (const m of methods) entry.methods.add(m.toUpperCase());
    known.set(route.url, entry);
  });
  const allowFor = (req: FastifyRequest): string | null => {
    const path = (req.url.split('?')[0] ?? '').replace(/\/{2,}/g, '/');
    const matching = [...known.values()].filter((k) => k.re.test(path));
    const best = Math.max(...matching.map((k) => k.specificity));
    const allowed = new Set<string>();
    for (const k of matching) if (k.specificity === best) k.methods.forEach((m) => allowed.add(m));
    if (allowed.size === 0 || allowed.has(req.method)) return null;
    return [...allowed].sort().join(', ');
  };
  const preHandler = (req: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    const allow = allowFor(req);
    if (allow === null) return done();
    sendMethodNotAllowed(req, reply, allow);
  };
  return { preHandler, allowFor };
}

export function sendMethodNotAllowed(req: FastifyRequest, reply: FastifyReply, allow: string): void {
  void reply.header('Allow', allow);
  sendError(reply, {
    status: 405,
    body: { error: { code: ErrorCode.METHOD_NOT_ALLOWED, message: `${req.method} is not allowed here (allowed: ${allow})`, requestId: String(req.id) } },
  });
}

/**
 * The FastifyAdapter whose not-found handler (set by Nest at init) runs the
 * given preHandler first: Fastify lets only that handler's own hooks skip
 * every matched route.
 */
export class NotFoundHookedAdapter extends FastifyAdapter {
  private notFoundPreHandler?: (req: FastifyRequest, reply: FastifyReply, done: () => void) => void;

  beforeNotFound(preHandler: (req: FastifyRequest, reply: FastifyReply, done: () => void) => void): void {
    this.notFoundPreHandler = preHandler;
  }

  override setNotFoundHandler(handler: Parameters<FastifyAdapter['setNotFoundHandler']>[0]): ReturnType<FastifyAdapter['setNotFoundHandler']> {
    const preHandler = this.notFoundPreHandler;
    if (!preHandler) return super.setNotFoundHandler(handler);
    return this.getInstance().setNotFoundHandler({ preHandler }, handler as never) as ReturnType<FastifyAdapter['setNotFoundHandler']>;
  }
}

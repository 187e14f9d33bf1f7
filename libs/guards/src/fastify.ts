import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LatchkeyGuardOptions, LatchkeyVerdict, LatchkeyVerifier } from './core';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verdict of the key that passed the latchkey guard (null on routes it does not guard). */
    latchkey: LatchkeyVerdict | null;
  }
  interface FastifyContextConfig {
    /** Per-route permissions (added to the plugin's), or false to leave the route unguarded. */
    latchkey?: { permissions?: string[] } | false;
  }
}

export type LatchkeyFastifyOptions = { verifier: LatchkeyVerifier } | LatchkeyGuardOptions;

/**
 * Fastify plugin: an onRequest hook guarding every route of the context it is registered in (register it
 * inside a scoped plugin to guard only some routes). Route config `latchkey: { permissions }` adds
 * requirements; `latchkey: false` leaves a route open. Not encapsulated (skip-override, what fastify-plugin
 * sets), so it guards the routes of the context that registers it.
 */
export function latchkeyFastify(fastify: FastifyInstance, opts: LatchkeyFastifyOptions, done: (err?: Error) => void): void {
  const owned = !('verifier' in opts);
  const verifier = 'verifier' in opts ? opts.verifier : new LatchkeyVerifier(opts);
  fastify.decorateRequest('latchkey', null);
  if (owned) fastify.addHook('onClose', (_i, next) => (verifier.close(), next()));
  fastify.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const config = req.routeOptions.config?.latchkey;
    if (config === false) return;
    const decision = await verifier.check({ headers: req.headers, ip: req.ip }, config?.permissions ?? []);
    void reply.headers(decision.headers);
    if (decision.allowed) {
      req.latchkey = decision.verdict;
      return;
    }
    // Returning the reply ends the request here: no handler runs.
    return reply.code(decision.status).send(decision.body);
  });
  done();
}
(latchkeyFastify as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
(latchkeyFastify as unknown as Record<symbol, string>)[Symbol.for('fastify.display-name')] = 'latchkey-guard';

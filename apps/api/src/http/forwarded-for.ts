import { Logger } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { AppConfig } from '@latchkey/config';

/** At most one warning line per this interval, however many such requests arrive. */
export const FORWARDED_FOR_WARNING_INTERVAL_MS = 10 * 60_000;

/**
 * Without LATCHKEY_TRUST_PROXY latchkey ignores X-Forwarded-For (rightly: anyone can send it), so behind a
 * proxy every request seems to come from the proxy's own address, and CIDR-bound keys are checked against
 * that address — they fail, or, when the proxy sits inside a key's CIDRs, pass for any client. The
 * header's arrival is the sign of a proxy nobody told latchkey about: say so, loudly but rarely.
 *
 * Returns the per-request check for the onRequest hook that every request already runs (one header look-up
 * on the hot path), or null when a trusted proxy is configured and there is nothing to watch for.
 */
export function forwardedForWarning(config: AppConfig, logger = new Logger('TrustProxy')): ((req: FastifyRequest) => void) | null {
  if (config.http.trustProxy) return null;
  let nextAt = 0;
  let unreported = 0;
  return (req) => {
    if (req.headers['x-forwarded-for'] === undefined) return;
    unreported++;
    const now = Date.now();
    if (now < nextAt) return;
    nextAt = now + FORWARDED_FOR_WARNING_INTERVAL_MS;
    // The peer's address helps the operator fill in the setting; the header's value (client-controlled) is not logged.
    logger.warn(
      `${unreported} request(s) arrived with X-Forwarded-For (latest from ${req.socket.remoteAddress ?? 'unknown'}) but LATCHKEY_TRUST_PROXY is not set: ` +
        "the header is ignored and CIDR checks see the proxy's address, not the client's. Set LATCHKEY_TRUST_PROXY to your proxies' addresses " +
        '(see docs/gateways.md). Repeated at most every 10 minutes.',
    );
    unreported = 0;
  };
}

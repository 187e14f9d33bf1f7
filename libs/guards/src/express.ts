import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { LatchkeyGuardOptions, LatchkeyVerdict, LatchkeyVerifier } from './core';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The verdict of the key that passed the latchkey guard. */
      latchkey?: LatchkeyVerdict;
    }
  }
}

/**
 * Express middleware: `app.use(latchkeyExpress({ verifier }))` for everything after it, or per route with
 * `latchkeyExpress({ verifier, permissions: ['orders-write'] })`. `permissions` are added to the verifier's own.
 */
export function latchkeyExpress(opts: ({ verifier: LatchkeyVerifier } | LatchkeyGuardOptions) & { permissions?: string[] }): RequestHandler {
  const verifier = 'verifier' in opts ? opts.verifier : new LatchkeyVerifier(opts);
  const permissions = 'verifier' in opts ? (opts.permissions ?? []) : [];
  return (req: Request, res: Response, next: NextFunction) => {
    verifier.check({ headers: req.headers, ip: req.ip }, permissions).then((decision) => {
      res.set(decision.headers);
      if (decision.allowed) {
        req.latchkey = decision.verdict;
        next();
        return;
      }
      res.status(decision.status).send(decision.body);
    }, next);
  };
}

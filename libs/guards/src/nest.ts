import { CanActivate, ExecutionContext, HttpException, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { GuardDecision, LatchkeyVerifier } from './core';

/** Metadata key of @LatchkeyPermissions. */
export const LATCHKEY_PERMISSIONS = 'latchkey:permissions';

/** Permissions (policies) the key must carry for this handler or controller (added to the verifier's own). */
export const LatchkeyPermissions = (...permissions: string[]) => SetMetadata(LATCHKEY_PERMISSIONS, permissions);

/**
 * NestJS guard (Express or Fastify platform). Use with `new LatchkeyGuard(verifier, reflector)` in
 * useGlobalGuards, or provide LatchkeyVerifier and list it in @UseGuards. A refusal is thrown as an
 * HttpException carrying forward auth's body; its headers (WWW-Authenticate, Retry-After, RateLimit) are set
 * on the response first, so Nest's default exception filter answers exactly what forward auth would.
 */
@Injectable()
export class LatchkeyGuard implements CanActivate {
  constructor(
    private readonly verifier: LatchkeyVerifier,
    private readonly reflector: Reflector,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const req = http.getRequest<{ headers: Record<string, string | string[] | undefined>; ip?: string; latchkey?: unknown }>();
    const res = http.getResponse<unknown>();
    const permissions = [
      ...(this.reflector.get<string[] | undefined>(LATCHKEY_PERMISSIONS, context.getClass()) ?? []),
      ...(this.reflector.get<string[] | undefined>(LATCHKEY_PERMISSIONS, context.getHandler()) ?? []),
    ];
    const decision = await this.verifier.check({ headers: req.headers, ip: req.ip }, permissions);
    setHeaders(res, decision);
    if (decision.allowed) {
      req.latchkey = decision.verdict;
      return true;
    }
    throw new HttpException(JSON.parse(decision.body) as object, decision.status);
  }
}

/** Express's res.setHeader, Fastify's reply.header: whichever the platform gives. */
function setHeaders(res: unknown, decision: GuardDecision): void {
  const r = res as { header?: (k: string, v: string) => unknown; setHeader?: (k: string, v: string) => unknown };
  for (const [k, v] of Object.entries(decision.headers)) {
    // The exception filter sets its own content type for the JSON body.
    if (k === 'Content-Type') continue;
    if (typeof r.setHeader === 'function') r.setHeader(k, v);
    else r.header?.(k, v);
  }
}

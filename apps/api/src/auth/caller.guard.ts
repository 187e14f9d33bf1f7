import { CanActivate, createParamDecorator, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { AuthzService, Principal } from '@latchkey/authz';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { decodeKey } from '@latchkey/keys';

type WithPrincipal = FastifyRequest & { principal?: Principal };

/**
 * Admin endpoints: the caller presents a Vault token (`X-Vault-Token`) or a
 * latchkey management key (`Authorization: Bearer lk_…`), which is itself a
 * Vault token. Either way the token is resolved once (cached) to a principal;
 * what it may do is decided per operation by Vault policies.
 */
@Injectable()
export class CallerGuard implements CanActivate {
  constructor(
    private readonly authz: AuthzService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const req = ctx.switchToHttp().getRequest<WithPrincipal>();
    const vaultToken = req.headers['x-vault-token'];
    const auth = req.headers.authorization;
    if (typeof vaultToken === 'string' && vaultToken.length > 0 && vaultToken.length <= 1024) {
      req.principal = await this.authz.authenticate(vaultToken, false);
      return true;
    }
    if (typeof auth === 'string') {
      const m = /^Bearer\s+(\S+)$/i.exec(auth);
      const decoded = m ? decodeKey(m[1], this.config.keyPrefix) : null;
      if (!decoded?.ok) throw new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'Authorization must be "Bearer <latchkey key>"');
      req.principal = await this.authz.authenticate(decoded.token, true);
      return true;
    }
    throw new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'Present a Vault token (X-Vault-Token) or a management key (Authorization: Bearer)');
  }
}

/** The authenticated caller of an admin endpoint. */
export const Caller = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const p = ctx.switchToHttp().getRequest<WithPrincipal>().principal;
  if (!p) throw new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'not authenticated');
  return p;
});

/** The request id, for audit records. */
export const RequestId = createParamDecorator((_: unknown, ctx: ExecutionContext): string => String(ctx.switchToHttp().getRequest<FastifyRequest>().id));

/** The raw bearer value for self-service endpoints (the key itself). */
export const BearerKey = createParamDecorator((_: unknown, ctx: ExecutionContext): string => {
  const auth = ctx.switchToHttp().getRequest<FastifyRequest>().headers.authorization;
  const m = typeof auth === 'string' ? /^Bearer\s+(\S+)$/i.exec(auth) : null;
  if (!m) throw new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'Authorization: Bearer <your key> is required');
  return m[1];
});

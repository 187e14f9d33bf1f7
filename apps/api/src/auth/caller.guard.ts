import { CanActivate, createParamDecorator, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { AuthzService, bindingAccepts, Principal } from '@latchkey/authz';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { APP_CONFIG, AppConfig } from '@latchkey/config';
import { decodeKey, ipInCidrs, normaliseCidr } from '@latchkey/keys';
import { ClientIdentity, ClientIdentityResolver } from './client-identity';

type WithPrincipal = FastifyRequest & { principal?: Principal };
const BEARER_RE = /^Bearer\s+(\S+)$/i;

/**
 * Bindings everywhere: a token bound to CIDRs, or a key bound to a client certificate, is held to them on
 * every route where it authenticates, exactly as verify holds it. Vault's own CIDR check would only ever see
 * latchkey's address, so it proves nothing here.
 */
export async function requireBindings(principal: Principal, client: ClientIdentity): Promise<void> {
  if (principal.boundCidrs.length) {
    const cidrs = principal.boundCidrs.map((c) => normaliseCidr(c)).filter((c): c is string => c !== null);
    if (!client.ip || !ipInCidrs(client.ip, cidrs)) {
      throw new LatchkeyError(ErrorCode.FORBIDDEN_IP, 'This credential may not be used from your address');
    }
  }
  const bound = principal.key?.certBinding;
  if (bound) {
    const presented = await client.presentedCertSerial();
    if (presented === null) throw new LatchkeyError(ErrorCode.CERT_REQUIRED, 'This key is bound to a client certificate; present it');
    // The bound certificate or a renewal of it (same lineage, same or later generation).
    if (!bindingAccepts(bound, presented)) throw new LatchkeyError(ErrorCode.CERT_MISMATCH, 'This key is bound to another client certificate');
  }
}

/** Authenticate the request's credential to a principal, then hold it to its bindings: one path for every guard. */
@Injectable()
abstract class CredentialGuard implements CanActivate {
  constructor(
    protected readonly authz: AuthzService,
    @Inject(APP_CONFIG) protected readonly config: AppConfig,
    private readonly identity: ClientIdentityResolver,
  ) {}

  protected abstract authenticate(req: WithPrincipal): Promise<Principal>;

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const req = ctx.switchToHttp().getRequest<WithPrincipal>();
    req.principal = await this.authenticate(req);
    await requireBindings(req.principal, this.identity.of(req));
    return true;
  }
}

/**
 * Admin endpoints: the caller presents a Vault token (`X-Vault-Token`) or a
 * latchkey management key (`Authorization: Bearer lk_…`), which is itself a
 * Vault token. Either way the token is resolved once (cached, budgeted) to a
 * principal and held to its bindings; what it may do is decided per operation
 * by Vault policies.
 */
@Injectable()
export class CallerGuard extends CredentialGuard {
  protected authenticate(req: WithPrincipal): Promise<Principal> {
    return authenticateCaller(this.authz, this.config, req);
  }
}

/** An admin caller's credential (Vault token or management key) as a principal; bindings are the caller's to check. */
export function authenticateCaller(authz: AuthzService, config: AppConfig, req: FastifyRequest): Promise<Principal> {
  const vaultToken = req.headers['x-vault-token'];
  if (typeof vaultToken === 'string' && vaultToken.length > 0 && vaultToken.length <= 1024) return authz.authenticate(vaultToken, false);
  if (typeof req.headers.authorization === 'string') return authenticateKey(authz, config, req.headers.authorization);
  throw new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'Present a Vault token (X-Vault-Token) or a management key (Authorization: Bearer)');
}

/**
 * Self-service endpoints: the holder authenticates with the key itself
 * (`Authorization: Bearer lk_…`), held to the key's bindings like everywhere else.
 */
@Injectable()
export class KeyHolderGuard extends CredentialGuard {
  protected authenticate(req: WithPrincipal): Promise<Principal> {
    const auth = req.headers.authorization;
    if (typeof auth !== 'string') throw new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'Authorization: Bearer <your key> is required');
    return authenticateKey(this.authz, this.config, auth);
  }
}

/** A Bearer credential must be a latchkey key: a token minted through a latchkey role, whatever its metadata says. */
async function authenticateKey(authz: AuthzService, config: AppConfig, header: string): Promise<Principal> {
  const m = BEARER_RE.exec(header);
  const decoded = m ? decodeKey(m[1], config.keyPrefix) : null;
  if (!decoded?.ok) throw new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'Authorization must be "Bearer <latchkey key>"');
  const principal = await authz.authenticate(decoded.token, true);
  if (!principal.key) throw new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'The credential is not a latchkey key');
  return principal;
}

/** The authenticated caller of an admin or self-service endpoint. */
export const Caller = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const p = ctx.switchToHttp().getRequest<WithPrincipal>().principal;
  if (!p) throw new LatchkeyError(ErrorCode.UNAUTHENTICATED, 'not authenticated');
  return p;
});

/** The request id, for audit records. */
export const RequestId = createParamDecorator((_: unknown, ctx: ExecutionContext): string => String(ctx.switchToHttp().getRequest<FastifyRequest>().id));

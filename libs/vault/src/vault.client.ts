import { setTimeout as delay } from 'node:timers/promises';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { VaultTokenSource } from './token-source';
import { HotLookupTransport, VaultRedirectError } from './vault.hot-lookup';
import { VaultMethod, VaultRequest, VaultTransport } from './vault.transport';
import type {
  PkiCertRead,
  PkiIssued,
  TokenCreateParams,
  TokenLookup,
  TokenRole,
  TokenRoleWrite,
  VaultHealth,
  VaultResponse,
} from './vault.types';

export type OwnRequest = Omit<VaultRequest, 'token'>;

/**
 * Typed Vault operations latchkey needs. Calls act with latchkey's own
 * identity unless a caller token is passed explicitly.
 */
export class VaultClient {
  constructor(
    readonly transport: VaultTransport,
    private readonly tokens: VaultTokenSource,
    /** Serves lookupToken (the verify hot path) when given; see HotLookupTransport for why it exists. */
    private readonly hot?: HotLookupTransport,
  ) {}

  /** A call with latchkey's own token; one retry with a fresh token if Vault denies it (rotated file, expired AppRole token). */
  async call<T = VaultResponse>(req: OwnRequest): Promise<T> {
    try {
      return await this.transport.request<T>({ ...req, token: await this.tokens.token() });
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === ErrorCode.VAULT_PERMISSION_DENIED && this.canRefresh()) {
        this.tokens.invalidate();
        return this.transport.request<T>({ ...req, token: await this.tokens.token() });
      }
      throw err;
    }
  }

  private canRefresh(): boolean {
    return this.tokens.constructor.name !== 'StaticTokenSource';
  }

  /** A call made with a caller's token (authorization checks, self-service). */
  callAs<T = VaultResponse>(token: string, req: OwnRequest): Promise<T> {
    return this.transport.request<T>({ ...req, token });
  }

  // --- health ---------------------------------------------------------------

  health(timeoutMs?: number): Promise<VaultHealth> {
    return this.transport.request<VaultHealth>({
      method: 'GET',
      path: 'sys/health',
      operation: 'health',
      timeoutMs,
      noRetry: true,
      acceptStatus: [429, 472, 473, 501, 503],
    });
  }

  // --- tokens ---------------------------------------------------------------

  /** Mint through a token role. With wrapTtl, Vault returns only wrap_info. */
  createToken(role: string, params: TokenCreateParams, wrapTtl?: string): Promise<VaultResponse> {
    return this.call({
      method: 'POST',
      path: `auth/token/create/${encodeURIComponent(role)}`,
      body: params,
      wrapTtl,
      operation: 'token create',
    });
  }

  /** Look a token up by value: POST with the token in the body, never in the URL. */
  async lookupToken(token: string, timeoutMs?: number): Promise<TokenLookup> {
    if (!token) {
      // An empty token makes Vault look up the *caller's* token.
      throw new LatchkeyError(ErrorCode.BAD_REQUEST, 'empty token');
    }
    if (this.hot) {
      try {
        return await this.hotLookup(token, timeoutMs);
      } catch (err) {
        if (!(err instanceof VaultRedirectError)) throw err;
        // A standby that redirects instead of forwarding: node-vault follows redirects.
      }
    }
    const res = await this.call<VaultResponse<TokenLookup>>({
      method: 'POST',
      path: 'auth/token/lookup',
      body: { token },
      operation: 'token lookup', readOnly: true,
      timeoutMs,
    });
    return res.data as TokenLookup;
  }

  /**
   * Like `call`: one retry with a fresh own token on 403, except for Vault's 403 "bad token", which is
   * about the token looked up (unknown, expired, revoked), not about ours: a flood of unknown keys must
   * not become a flood of AppRole logins.
   */
  private async hotLookup(token: string, timeoutMs?: number): Promise<TokenLookup> {
    const hot = this.hot!;
    try {
      return (await hot.lookup(token, await this.tokens.token(), timeoutMs)).data as TokenLookup;
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === ErrorCode.VAULT_PERMISSION_DENIED && !/bad token/i.test(err.message) && this.canRefresh()) {
        this.tokens.invalidate();
        return (await hot.lookup(token, await this.tokens.token(), timeoutMs)).data as TokenLookup;
      }
      throw err;
    }
  }

  /**
   * A POST on a hot path other than verify's lookup (the token endpoint's `transit/sign`): on the lean
   * keep-alive transport when there is one, with the same retry on a stale own token as `call`; a
   * redirecting standby falls back to the general transport, which follows redirects.
   */
  async hotPost<T>(path: string, body: object, operation: string): Promise<VaultResponse<T>> {
    const hot = this.hot;
    if (!hot) return this.call<VaultResponse<T>>({ method: 'POST', path, body, operation, readOnly: true });
    try {
      return await hot.post<T>(path, body, await this.tokens.token(), operation);
    } catch (err) {
      if (err instanceof VaultRedirectError) return this.call<VaultResponse<T>>({ method: 'POST', path, body, operation, readOnly: true });
      if (err instanceof LatchkeyError && err.code === ErrorCode.VAULT_PERMISSION_DENIED && this.canRefresh()) {
        this.tokens.invalidate();
        return hot.post<T>(path, body, await this.tokens.token(), operation);
      }
      throw err;
    }
  }

  /**
   * Look a token up by accessor. While another request is revoking the token, Vault answers 403
   * "permission denied" (the accessor still resolves, the token no longer does), then 400 "invalid
   * accessor" once the revocation is done. So a 403 is asked again shortly; one that persists is a
   * real policy problem and is reported as one.
   */
  async lookupAccessor(accessor: string): Promise<TokenLookup> {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.call<VaultResponse<TokenLookup>>({
          method: 'POST',
          path: 'auth/token/lookup-accessor',
          body: { accessor },
          operation: 'token lookup-accessor', readOnly: true,
        });
        return res.data as TokenLookup;
      } catch (err) {
        if (attempt < 4 && err instanceof LatchkeyError && err.code === ErrorCode.VAULT_PERMISSION_DENIED) {
          await delay(25 * attempt);
          continue;
        }
        throw err;
      }
    }
  }

  async renewAccessor(accessor: string, increment?: string): Promise<VaultResponse> {
    return this.call({
      method: 'POST',
      path: 'auth/token/renew-accessor',
      body: increment ? { accessor, increment } : { accessor },
      operation: 'token renew-accessor',
    });
  }

  /**
   * Revoke by accessor. Returns false when Vault did not know the accessor (already revoked or
   * expired). Idempotent also under concurrency: while another request is revoking the same token,
   * Vault answers 400 "token not found" instead of its usual 200 with a "No token found" warning.
   */
  async revokeAccessor(accessor: string): Promise<boolean> {
    let res: VaultResponse | undefined;
    try {
      res = await this.call<VaultResponse | undefined>({
        method: 'POST',
        path: 'auth/token/revoke-accessor',
        body: { accessor },
        operation: 'token revoke-accessor',
      });
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === ErrorCode.VAULT_BAD_REQUEST && /token not found|invalid accessor/i.test(err.message)) return false;
      throw err;
    }
    return !(res?.warnings ?? []).some((w) => /no token found/i.test(w));
  }

  async listAccessors(): Promise<string[]> {
    const res = await this.call<VaultResponse<{ keys: string[] }>>({
      method: 'LIST',
      path: 'auth/token/accessors',
      operation: 'token list-accessors',
    });
    return res.data?.keys ?? [];
  }

  // --- token roles ------------------------------------------------------------

  async writeRole(name: string, role: TokenRoleWrite): Promise<void> {
    await this.call({ method: 'POST', path: `auth/token/roles/${encodeURIComponent(name)}`, body: role, operation: 'token role write' });
  }

  async readRole(name: string): Promise<TokenRole | null> {
    try {
      const res = await this.call<VaultResponse<TokenRole>>({
        method: 'GET',
        path: `auth/token/roles/${encodeURIComponent(name)}`,
        operation: 'token role read',
      });
      return res.data;
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === ErrorCode.VAULT_NOT_FOUND) return null;
      throw err;
    }
  }

  async deleteRole(name: string): Promise<void> {
    await this.call({ method: 'DELETE', path: `auth/token/roles/${encodeURIComponent(name)}`, operation: 'token role delete' });
  }

  async listRoles(): Promise<string[]> {
    try {
      const res = await this.call<VaultResponse<{ keys: string[] }>>({ method: 'LIST', path: 'auth/token/roles', operation: 'token role list' });
      return res.data?.keys ?? [];
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === ErrorCode.VAULT_NOT_FOUND) return [];
      throw err;
    }
  }

  /** Names of the ACL policies Vault has (LIST sys/policies/acl). */
  async listPolicies(): Promise<string[]> {
    const res = await this.call<VaultResponse<{ keys: string[] }>>({ method: 'LIST', path: 'sys/policies/acl', operation: 'policy list' });
    return res.data?.keys ?? [];
  }

  // --- authorization ------------------------------------------------------------

  /** Capabilities of a caller's token on each path (`sys/capabilities-self`, allowed by Vault's default policy). */
  async capabilitiesSelf(token: string, paths: string[]): Promise<Record<string, string[]>> {
    const res = await this.callAs<Record<string, unknown> & VaultResponse<Record<string, string[]>>>(token, {
      method: 'POST',
      path: 'sys/capabilities-self',
      body: { paths },
      operation: 'capabilities-self', readOnly: true,
    });
    return capabilitiesOf(res, paths);
  }

  /**
   * Capabilities of the token behind an accessor on each path (`sys/capabilities-accessor`, asked with
   * latchkey's own token). Unlike capabilities-self it does not need the caller's token to carry Vault's
   * `default` policy, which keys do not (profiles set token_no_default_policy). 400 "invalid accessor" when
   * the token is gone.
   */
  async capabilitiesAccessor(accessor: string, paths: string[]): Promise<Record<string, string[]>> {
    const res = await this.call<Record<string, unknown> & VaultResponse<Record<string, string[]>>>({
      method: 'POST',
      path: 'sys/capabilities-accessor',
      body: { accessor, paths },
      operation: 'capabilities-accessor', readOnly: true,
    });
    return capabilitiesOf(res, paths);
  }

  // --- KV v2 ------------------------------------------------------------------

  async kvWrite(mount: string, path: string, data: Record<string, unknown>): Promise<{ version: number }> {
    const res = await this.call<VaultResponse<{ version: number }>>({
      method: 'POST',
      path: `${mount}/data/${path}`,
      body: { data },
      operation: 'kv write',
    });
    return { version: res.data?.version ?? 0 };
  }

  async kvRead<T = Record<string, unknown>>(mount: string, path: string): Promise<T | null> {
    try {
      const res = await this.call<VaultResponse<{ data: T }>>({ method: 'GET', path: `${mount}/data/${path}`, operation: 'kv read' });
      return res.data?.data ?? null;
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === ErrorCode.VAULT_NOT_FOUND) return null;
      throw err;
    }
  }

  // --- PKI --------------------------------------------------------------------

  async pkiIssue(mount: string, role: string, params: Record<string, unknown>): Promise<PkiIssued> {
    const res = await this.call<VaultResponse<PkiIssued>>({ method: 'POST', path: `${mount}/issue/${role}`, body: params, operation: 'pki issue' });
    return res.data as PkiIssued;
  }

  async pkiSign(mount: string, role: string, params: Record<string, unknown>): Promise<PkiIssued> {
    const res = await this.call<VaultResponse<PkiIssued>>({ method: 'POST', path: `${mount}/sign/${role}`, body: params, operation: 'pki sign' });
    return res.data as PkiIssued;
  }

  async pkiRevoke(mount: string, serial: string): Promise<{ revocation_time: number }> {
    const res = await this.call<VaultResponse<{ revocation_time: number }>>({
      method: 'POST',
      path: `${mount}/revoke`,
      body: { serial_number: serial },
      operation: 'pki revoke',
    });
    return res.data ?? { revocation_time: 0 };
  }

  async pkiReadCert(mount: string, serial: string): Promise<PkiCertRead | null> {
    try {
      const res = await this.call<VaultResponse<PkiCertRead>>({ method: 'GET', path: `${mount}/cert/${serial}`, operation: 'pki read cert' });
      return res.data;
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === ErrorCode.VAULT_NOT_FOUND) return null;
      throw err;
    }
  }

  // --- response wrapping --------------------------------------------------------

  /** Unwrap with the wrapping token itself (it is single-use). */
  unwrap<T = VaultResponse>(wrapToken: string): Promise<T> {
    return this.transport.request<T>({ method: 'POST', path: 'sys/wrapping/unwrap', token: wrapToken, body: {}, operation: 'unwrap' });
  }

  /** Generic call for bootstrap and rarely-used endpoints. */
  raw<T = VaultResponse>(method: VaultMethod, path: string, body?: object, extra: Partial<OwnRequest> = {}): Promise<T> {
    return this.call<T>({ method, path, body, operation: extra.operation ?? path.split('/').slice(0, 2).join('/'), ...extra });
  }

  // --- PKI (certificates lifecycle) ------------------------------------------------

  /** Serials (colon hex) of every certificate the mount stored, CA certificates included. */
  async pkiListCerts(mount: string): Promise<string[]> {
    try {
      const res = await this.call<VaultResponse<{ keys: string[] }>>({ method: 'LIST', path: `${mount}/certs`, operation: 'pki list certs' });
      return res.data?.keys ?? [];
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === ErrorCode.VAULT_NOT_FOUND) return []; // nothing issued yet
      throw err;
    }
  }

  /** A certificate and its revocation state, with its own (short) timeout for the verify path. */
  async pkiCertStatus(mount: string, serial: string, timeoutMs?: number): Promise<PkiCertRead | null> {
    try {
      const res = await this.call<VaultResponse<PkiCertRead>>({ method: 'GET', path: `${mount}/cert/${serial}`, operation: 'pki read cert', timeoutMs });
      return res.data;
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === ErrorCode.VAULT_NOT_FOUND) return null;
      throw err;
    }
  }

  /** The issuing CA chain as one PEM bundle (`cert/ca_chain`: JSON, unlike `ca_chain`, which is raw PEM). */
  async pkiCaChain(mount: string): Promise<string> {
    const res = await this.call<VaultResponse<{ ca_chain?: string; certificate?: string }>>({ method: 'GET', path: `${mount}/cert/ca_chain`, operation: 'pki ca chain' });
    return res.data?.ca_chain || res.data?.certificate || '';
  }

  /** The current CRL of the default issuer, PEM (`cert/crl`). */
  async pkiCrl(mount: string): Promise<string> {
    const res = await this.call<VaultResponse<{ certificate?: string }>>({ method: 'GET', path: `${mount}/cert/crl`, operation: 'pki crl' });
    return res.data?.certificate ?? '';
  }
}

/** Vault answers capabilities per path, and for a single path also as `capabilities`. */
function capabilitiesOf(res: Record<string, unknown> & VaultResponse<Record<string, string[]>>, paths: string[]): Record<string, string[]> {
  const data = (res.data ?? res) as Record<string, unknown>;
  const out: Record<string, string[]> = {};
  for (const p of paths) {
    const caps = data[p] ?? (paths.length === 1 ? data.capabilities : undefined);
    out[p] = Array.isArray(caps) ? (caps as string[]) : [];
  }
  return out;
}

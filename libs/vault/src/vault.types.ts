/** The parts of Vault/OpenBao responses latchkey uses, typed once here. */

export interface VaultHealth {
  initialized: boolean;
  sealed: boolean;
  standby: boolean;
  version?: string;
}

export interface VaultAuthInfo {
  client_token: string;
  accessor: string;
  policies: string[];
  token_policies?: string[];
  metadata: Record<string, string> | null;
  lease_duration: number;
  renewable: boolean;
  token_type: string;
  orphan: boolean;
  num_uses?: number;
}

export interface VaultWrapInfo {
  token: string;
  accessor: string;
  ttl: number;
  creation_time: string;
  creation_path: string;
  wrapped_accessor?: string;
}

export interface VaultResponse<D = unknown> {
  request_id?: string;
  data: D | null;
  auth: VaultAuthInfo | null;
  wrap_info: VaultWrapInfo | null;
  warnings: string[] | null;
  lease_duration?: number;
  renewable?: boolean;
}

/** `auth/token/lookup` and `lookup-accessor` data. */
export interface TokenLookup {
  accessor: string;
  /** Blank for lookup-accessor. */
  id: string;
  policies: string[];
  /** Policies from the token's identity entity and groups (Vault adds them at request time). */
  identity_policies?: string[];
  meta: Record<string, string> | null;
  display_name: string;
  num_uses: number;
  orphan: boolean;
  creation_time: number;
  creation_ttl: number;
  expire_time: string | null;
  explicit_max_ttl: number;
  ttl: number;
  type: string;
  path?: string;
  role?: string;
  period?: number;
  renewable?: boolean;
  bound_cidrs?: string[];
  issue_time?: string;
}

/** Token role as read from `auth/token/roles/:name`. */
export interface TokenRole {
  name: string;
  allowed_policies: string[];
  disallowed_policies: string[];
  orphan: boolean;
  renewable: boolean;
  token_type: string;
  token_explicit_max_ttl: number;
  token_period: number;
  token_num_uses: number;
  token_bound_cidrs: string[];
  token_no_default_policy: boolean;
  path_suffix: string;
}

export interface TokenRoleWrite {
  allowed_policies: string[];
  orphan: boolean;
  renewable: boolean;
  token_type: 'service';
  token_explicit_max_ttl: number;
  token_period?: number;
  token_num_uses?: number;
  token_bound_cidrs?: string[];
  token_no_default_policy?: boolean;
}

export interface TokenCreateParams {
  policies?: string[];
  meta?: Record<string, string>;
  ttl?: string;
  explicit_max_ttl?: string;
  display_name?: string;
  num_uses?: number;
  renewable?: boolean;
  no_default_policy?: boolean;
}

export interface PkiIssued {
  certificate: string;
  issuing_ca: string;
  ca_chain?: string[];
  private_key?: string;
  private_key_type?: string;
  serial_number: string;
  expiration: number;
}

export interface PkiCertRead {
  certificate: string;
  revocation_time: number;
  revocation_time_rfc3339?: string;
}

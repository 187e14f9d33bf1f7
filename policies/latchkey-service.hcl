# latchkey's own identity (api and worker). Grants exactly what latchkey does in Vault.
# Role names and mounts assume the defaults (LATCHKEY_ROLE_PREFIX=latchkey-,
# PKI_MOUNT=pki_latchkey, KV_MOUNT=latchkey-kv, TRANSIT_MOUNT=latchkey-transit,
# TOKEN_SIGNING_KEY=latchkey-tokens); adjust the paths if you change them.

# Profiles are token roles named latchkey-<profile>[-c<cidr hash>].
path "auth/token/roles/latchkey-*" {
  capabilities = ["create", "read", "update", "delete"]
}
path "auth/token/roles" {
  capabilities = ["list"]
}
# Mint keys through those roles only.
path "auth/token/create/latchkey-*" {
  capabilities = ["create", "update"]
}
# Verify, inspect, renew and revoke keys.
path "auth/token/lookup" {
  capabilities = ["update"]
}
path "auth/token/lookup-accessor" {
  capabilities = ["update"]
}
path "auth/token/renew-accessor" {
  capabilities = ["update"]
}
path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}
# Index rebuild and reconciliation list every accessor (Vault requires sudo here).
path "auth/token/accessors" {
  capabilities = ["list", "sudo"]
}
# Its own token (AppRole renewal).
path "auth/token/renew-self" {
  capabilities = ["update"]
}
# PKI: issue, sign, revoke, read, list.
path "pki_latchkey/issue/latchkey-*" {
  capabilities = ["create", "update"]
}
path "pki_latchkey/sign/latchkey-*" {
  capabilities = ["create", "update"]
}
path "pki_latchkey/revoke" {
  capabilities = ["create", "update"]
}
path "pki_latchkey/cert/*" {
  capabilities = ["read"]
}
path "pki_latchkey/certs" {
  capabilities = ["list"]
}
path "pki_latchkey/certs/revoked" {
  capabilities = ["list"]
}
path "pki_latchkey/ca_chain" {
  capabilities = ["read"]
}
path "pki_latchkey/crl/*" {
  capabilities = ["read"]
}
# Secret delivery and profile metadata (KV v2).
path "latchkey-kv/data/*" {
  capabilities = ["create", "read", "update", "delete"]
}
path "latchkey-kv/metadata/*" {
  capabilities = ["read", "list", "delete"]
}
# Hash values for comparison with the audit log.
path "sys/audit-hash/latchkey" {
  capabilities = ["update"]
}
# Warn when a profile names a policy Vault does not have (names only, never the policies' text).
path "sys/policies/acl" {
  capabilities = ["list"]
}
# Authorization: what a caller's token may do on latchkey's virtual paths, asked by accessor
# (keys carry no `default` policy, so they cannot ask capabilities-self themselves).
path "sys/capabilities-accessor" {
  capabilities = ["update"]
}
# Token exchange: sign access tokens with the Transit key (the private key never leaves Vault), read its
# public versions for the JWKS, and rotate it on schedule (worker).
path "latchkey-transit/sign/latchkey-tokens" {
  capabilities = ["update"]
}
path "latchkey-transit/keys/latchkey-tokens" {
  capabilities = ["read"]
}
path "latchkey-transit/keys/latchkey-tokens/rotate" {
  capabilities = ["update"]
}

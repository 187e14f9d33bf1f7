# Platform operators and CI: manage every app's keys and certs, profiles, and read the audit trail.
# latchkey checks these virtual paths with sys/capabilities-accessor; Vault itself serves nothing there.
path "latchkey/apps/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
path "latchkey/profiles/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
path "latchkey/audit" {
  capabilities = ["read"]
}
# Introspect access tokens and keys (RFC 7662, POST /oauth2/introspect).
path "latchkey/oauth2/introspect" {
  capabilities = ["update"]
}

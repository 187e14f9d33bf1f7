# Manager of a single app ({{app}}): its keys and certs only. Written by
# `npm run bootstrap -- --app-manager {{app}} [--profiles a,b]` as policy latchkey-app-{{app}}.
path "latchkey/apps/{{app}}/keys" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
path "latchkey/apps/{{app}}/certs" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
# The app's own audit events (GET /v1/audit/events?appId={{app}}): admin actions on its keys and
# Vault requests made with them. Not latchkey/audit, which is every app's trail.
path "latchkey/apps/{{app}}/audit" {
  capabilities = ["read"]
}
path "latchkey/profiles/*" {
  capabilities = ["read"]
}
# The profiles this app's keys may be minted from (a profile decides the policies
# a key carries, so minting from one is a right of its own): one block per profile
# given with --profiles (default: default).
{{profile_blocks}}
# Lets app {{app}} read the secrets latchkey delivers to it (Vault Agent templates).
path "latchkey-kv/data/delivery/{{app}}/*" {
  capabilities = ["read"]
}

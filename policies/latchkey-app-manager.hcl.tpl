# Manager of a single app ({{app}}): its keys and certs only. Written by
# `npm run bootstrap -- --app-manager {{app}}` as policy latchkey-app-{{app}}.
path "latchkey/apps/{{app}}/keys" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
path "latchkey/apps/{{app}}/certs" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
path "latchkey/profiles/*" {
  capabilities = ["read"]
}
# The profiles this app's keys may be minted from (a profile decides the policies
# a key carries, so minting from one is a right of its own). Add lines as needed.
path "latchkey/profiles/default/keys" {
  capabilities = ["create"]
}

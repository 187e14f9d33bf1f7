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

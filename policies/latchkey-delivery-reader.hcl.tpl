# Lets app {{app}} read the secrets latchkey delivers to it (Vault Agent templates).
path "latchkey-kv/data/delivery/{{app}}/*" {
  capabilities = ["read"]
}

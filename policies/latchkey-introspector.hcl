# Resource servers and gateways that introspect access tokens and keys (RFC 7662, POST /oauth2/introspect)
# instead of verifying JWTs offline. Nothing else: no key, certificate or profile administration.
path "latchkey/oauth2/introspect" {
  capabilities = ["update"]
}

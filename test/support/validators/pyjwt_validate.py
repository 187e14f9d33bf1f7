# Validates an access token with PyJWT (PyPI), independent of latchkey's code: reads the JWKS over HTTP.
# argv: token jwks_url issuer audience. Prints {"ok": true, "payload": ...} or {"ok": false, "error": ...}.
import json
import sys

import jwt

token, jwks_url, issuer, audience = sys.argv[1:5]
try:
    client = jwt.PyJWKClient(jwks_url, cache_keys=False)
    key = client.get_signing_key_from_jwt(token)
    header = jwt.get_unverified_header(token)
    if header.get("typ", "").lower() not in ("at+jwt", "application/at+jwt"):
        raise jwt.InvalidTokenError("typ is not at+jwt")
    payload = jwt.decode(token, key.key, algorithms=["ES256", "EdDSA"], issuer=issuer, audience=audience,
                         options={"require": ["exp", "iat", "iss", "sub", "aud", "jti"]})
    print(json.dumps({"ok": True, "payload": payload}))
except Exception as e:  # noqa: BLE001 - the test reads the error text
    print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))

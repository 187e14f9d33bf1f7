// Validates an access token with `jose` (npm), independent of latchkey's code: reads the JWKS over HTTP.
// argv: token jwksUrl issuer audience. Prints {"ok":true,"payload":…,"header":…} or {"ok":false,"error":…}.
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [token, jwksUrl, issuer, audience] = process.argv.slice(2);
try {
  const jwks = createRemoteJWKSet(new URL(jwksUrl));
  const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer, audience, typ: 'at+jwt', algorithms: ['ES256', 'EdDSA'] });
  process.stdout.write(JSON.stringify({ ok: true, payload, header: protectedHeader }));
} catch (err) {
  process.stdout.write(JSON.stringify({ ok: false, error: `${err.code ?? err.name}: ${err.message}` }));
}

import { randomBytes } from 'node:crypto';
import { loadConfig } from '@latchkey/config';
import { createVaultClient } from '@latchkey/vault';
import { TokenKeyring } from './keyring';
import { AccessTokenClaims, verifyJwt } from './jwt';

/**
 * The keyring against the test stack's real OpenBao, on Transit keys of its own: batched signing (one
 * Transit call per 64 tokens of one turn), both algorithms verified by the offline checker, and the
 * overlap of versions across a rotation.
 */
describe('TokenKeyring (real OpenBao Transit)', () => {
  const base = { ...process.env, LATCHKEY_PORT: '0', LATCHKEY_ISSUER: 'http://issuer.test', JWKS_MAX_AGE: '1s' };
  const made: Array<{ vault: ReturnType<typeof createVaultClient>['client']; path: string }> = [];
  const keyring = async (alg: 'ES256' | 'EdDSA') => {
    const name = `kr-${randomBytes(4).toString('hex')}`;
    const config = loadConfig({ ...base, TOKEN_SIGNING_KEY: name, TOKEN_ALG: alg });
    const vault = createVaultClient(config).client;
    const path = `${config.tokens.transitMount}/keys/${name}`;
    await vault.call({ method: 'POST', path, body: { type: alg === 'ES256' ? 'ecdsa-p256' : 'ed25519' }, operation: 'test key create' });
    made.push({ vault, path });
    return { kr: new TokenKeyring(vault, config.tokens), vault, config, path };
  };
  afterAll(async () => {
    for (const { vault, path } of made) {
      await vault.call({ method: 'POST', path: `${path}/config`, body: { deletion_allowed: true }, operation: 'test key config' }).catch(() => undefined);
      await vault.call({ method: 'DELETE', path, operation: 'test key delete' }).catch(() => undefined);
    }
  });
  const claims = (i: number): AccessTokenClaims => {
    const now = Math.floor(Date.now() / 1000);
    return { iss: 'http://issuer.test', sub: `key${i}`, client_id: `key${i}`, aud: 'http://issuer.test', exp: now + 60, iat: now, jti: `j${i}`, scope: 'a', app: 'app' };
  };

  it.each(['ES256', 'EdDSA'] as const)('%s: signs the tokens of one turn in batches of 64, each one valid and its own', async (alg) => {
    const { kr, vault } = await keyring(alg);
    const calls: number[] = [];
    const real = vault.hotPost.bind(vault);
    vault.hotPost = (async (path: string, body: { batch_input: unknown[] }, op: string) => {
      calls.push(body.batch_input.length);
      return real(path, body, op);
    }) as typeof vault.hotPost;
    await kr.ensure();
    const tokens = await Promise.all(Array.from({ length: 150 }, (_, i) => kr.sign(claims(i))));
    expect(calls).toEqual([64, 64, 22]);
    tokens.forEach((t, i) => {
      const r = verifyJwt(t, { alg, issuer: 'http://issuer.test', audiences: ['http://issuer.test'], keyFor: (kid) => kr.keyFor(kid), nowSeconds: Math.floor(Date.now() / 1000) });
      expect(r.ok && r.claims.sub).toBe(`key${i}`);
    });
  });

  it('publishes a new version at once, signs with it only after one refresh plus JWKS_MAX_AGE, and keeps the old one published', async () => {
    const { kr } = await keyring('ES256');
    await kr.ensure();
    const v1 = kr.signer().kid;
    const v2 = (await kr.rotate(), kr.kidOf(2));
    expect(kr.jwks().keys.map((k) => k.kid)).toEqual([v1, v2]);
    expect(kr.signer().kid).toBe(v1);
    const header = (t: string) => JSON.parse(Buffer.from(t.split('.')[0], 'base64url').toString()).kid as string;
    expect(header(await kr.sign(claims(1)))).toBe(v1);
    // JWKS_MAX_AGE 1 s, refresh 250 ms: the new version signs 1.25 s after its creation.
    await new Promise((r) => setTimeout(r, 1400));
    expect(header(await kr.sign(claims(2)))).toBe(v2);
    // TOKEN_MAX_TTL (1 h) has not passed since: tokens of v1 still verify offline.
    expect(kr.jwks().keys.map((k) => k.kid)).toEqual([v1, v2]);
    expect(kr.published(Date.now() + 3600_000 + 60_000 + 5_000).map((v) => v.kid)).toEqual([v2]);
  });
});

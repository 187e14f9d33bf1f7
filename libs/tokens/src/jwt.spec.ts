import { generateKeyPairSync, sign } from 'node:crypto';
import { b64url, looksLikeJwt, signingInput, verifyJwt, VerifyJwtOptions } from './jwt';

/** verifyJwt's refusals, each for the one reason it names, with a key made here (Transit signs in production). */
describe('verifyJwt', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const now = 1_800_000_000;
  const good = { iss: 'https://iss', sub: 'k', client_id: 'k', aud: 'https://api', exp: now + 60, iat: now, jti: 'j', scope: 'a b', app: 'app' };
  const header = { alg: 'ES256', typ: 'at+jwt', kid: 'k.v1' };
  const make = (h: object = header, c: object = good) => {
    const input = signingInput(h as never, c);
    return `${input}.${b64url(sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }))}`;
  };
  const o: VerifyJwtOptions = { alg: 'ES256', issuer: 'https://iss', audiences: ['https://api'], keyFor: (kid) => (kid === 'k.v1' ? publicKey : undefined), nowSeconds: now };
  const reason = (t: string, opts = o) => {
    const r = verifyJwt(t, opts);
    return r.ok ? 'ok' : r.reason;
  };

  it('accepts a well-formed token and returns its claims', () => {
    const r = verifyJwt(make(), o);
    expect(r.ok && r.claims).toEqual(good);
  });

  it.each([
    ['alg', make({ ...header, alg: 'ES384' })],
    // alg none as usually sent (empty signature) fails on shape, with a signature on alg.
    ['malformed', `${b64url(JSON.stringify({ ...header, alg: 'none' }))}.${b64url(JSON.stringify(good))}.`],
    ['alg', `${b64url(JSON.stringify({ ...header, alg: 'none' }))}.${b64url(JSON.stringify(good))}.AAAA`],
    ['typ', make({ ...header, typ: 'JWT' })],
    ['kid', make({ ...header, kid: 'k.v9' })],
    ['iss', make(header, { ...good, iss: 'https://other' })],
    ['aud', make(header, { ...good, aud: ['https://elsewhere'] })],
    ['expired', make(header, { ...good, exp: now - 31 })],
    ['not_yet_valid', make(header, { ...good, nbf: now + 31 })],
    ['claims', make(header, { ...good, scope: 7 })],
    ['claims', make(header, { ...good, cnf: { 'x5t#S256': 1 } })],
    ['malformed', 'a.b'],
    ['malformed', 'eyJ!.e30.AA'],
  ])('refuses for %s', (why, token) => {
    expect(reason(token)).toBe(why);
  });

  it('refuses a signature over other bytes, and tolerates 30 s of clock skew', () => {
    const [h, , s] = make().split('.');
    expect(reason(`${h}.${b64url(JSON.stringify({ ...good, scope: 'a b admin' }))}.${s}`)).toBe('signature');
    expect(reason(make(header, { ...good, exp: now - 29 }))).toBe('ok');
    expect(reason(make(header, { ...good, aud: ['x', 'https://api'] }))).toBe('ok');
  });

  it('tells JWTs from keys without parsing', () => {
    expect(looksLikeJwt(make())).toBe(true);
    expect(looksLikeJwt('lk_abc')).toBe(false);
    expect(looksLikeJwt('eyJabc.def')).toBe(false);
    expect(looksLikeJwt(`eyJ${'a'.repeat(5000)}.b.c`)).toBe(false);
  });
});

import fc from 'fast-check';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { inputCausedVaultError } from './certs.service';
import { hostHasEmptyLabel, normalizeCommonName, normalizeIp, normalizeUri, removeDotSegments, uriOwnershipKey } from './names';

describe('certificate name normalisation', () => {
  it.each([
    // [variant, canonical] — every variant must claim the same name as its canonical form.
    ['PAYMENTS-API', 'payments-api'],
    ['Payments-Api.', 'payments-api'],
    ['payments-api', 'payments-api'],
  ])('common name %s is %s', (variant, canonical) => {
    expect(normalizeCommonName(variant)).toBe(canonical);
  });

  it('IDNs become punycode', () => {
    expect(normalizeCommonName('BÜcher.example')).toBe('xn--bcher-kva.example');
  });

  it.each([
    ['spiffe://example.org/ns/prod/sa/x/../payments', 'spiffe://example.org/ns/prod/sa/payments'],
    ['spiffe://example.org/ns/prod/sa/p%61yments', 'spiffe://example.org/ns/prod/sa/payments'],
    ['SPIFFE://EXAMPLE.ORG/ns/prod/sa/payments', 'spiffe://example.org/ns/prod/sa/payments'],
    ['spiffe://example.org./ns/prod/sa/payments', 'spiffe://example.org/ns/prod/sa/payments'],
    ['spiffe://example.org/ns/./prod/sa/payments', 'spiffe://example.org/ns/prod/sa/payments'],
    ['spiffe://example.org/ns/%2e%2E/ns/prod/sa/payments', 'spiffe://example.org/ns/prod/sa/payments'],
    ['spiffe://example.org/a%2fb', 'spiffe://example.org/a%2Fb'],
    ['spiffe://example.org/%7Euser', 'spiffe://example.org/~user'],
    ['URN:ISBN:0451450523', 'urn:isbn:0451450523'],
    ['urn:ISBN:%30451450523', 'urn:isbn:0451450523'],
    ['urn:example:a%2fb', 'urn:example:a%2Fb'],
    // URNs are opaque: no dot-segment removal, and the NSS keeps its case.
    ['urn:example:a/../B', 'urn:example:a/../B'],
  ])('URI %s is %s', (variant, canonical) => {
    expect(normalizeUri(variant)).toBe(canonical);
  });

  it('rejects malformed percent-encoding', () => {
    for (const u of ['spiffe://example.org/%zz', 'spiffe://example.org/a%', 'urn:x:%', 'urn:x:%4']) expect(normalizeUri(u)).toBeNull();
  });

  it('URN r-, q- and f-components do not make a different owner (RFC 8141)', () => {
    expect(uriOwnershipKey('urn:example:a#frag')).toBe('urn:example:a');
    expect(uriOwnershipKey('urn:example:a?=q')).toBe('urn:example:a');
    expect(uriOwnershipKey('URN:Example:a')).toBe('urn:example:a');
    expect(uriOwnershipKey('spiffe://example.org/x/../a')).toBe('spiffe://example.org/a');
  });

  it.each([
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['2001:DB8::0:1', '2001:db8::1'],
    ['10.0.0.1', '10.0.0.1'],
  ])('IP %s is %s', (variant, canonical) => {
    expect(normalizeIp(variant)).toBe(canonical);
  });

  it('refuses IP forms that are not written out in full or carry a zone', () => {
    for (const ip of ['0x7f.1', '2130706433', '127.1', '0127.0.0.1', 'fe80::1%eth0', '10.0.0.300', 'x']) expect(normalizeIp(ip)).toBeNull();
  });

  it('finds the empty host labels Vault would answer 500 to', () => {
    expect(hostHasEmptyLabel('spiffe://example.org./x')).toBe(true);
    expect(hostHasEmptyLabel('spiffe://example..org/x')).toBe(true);
    expect(hostHasEmptyLabel('spiffe://.example.org/x')).toBe(true);
    expect(hostHasEmptyLabel('spiffe://example.org/x')).toBe(false);
    expect(hostHasEmptyLabel('urn:x:a..b')).toBe(false);
  });

  it('removes dot segments as RFC 3986 5.2.4 does', () => {
    expect(removeDotSegments('/a/b/c/./../../g')).toBe('/a/g');
    expect(removeDotSegments('/../a')).toBe('/a');
    expect(removeDotSegments('/a/..')).toBe('/');
  });

  const segment = fc.stringMatching(/^([A-Za-z0-9._~-]|%[0-9A-Fa-f]{2}){1,8}$/);
  const spiffe = fc
    .tuple(fc.stringMatching(/^[A-Za-z0-9-]{1,8}(\.[A-Za-z0-9-]{1,8}){0,2}\.?$/), fc.array(fc.oneof(segment, fc.constantFrom('.', '..')), { maxLength: 6 }))
    .map(([host, segs]) => `spiffe://${host}${segs.map((s) => `/${s}`).join('')}`);
  const urn = fc.tuple(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9-]{0,8}$/), fc.array(segment, { minLength: 1, maxLength: 4 })).map(([nid, s]) => `urn:${nid}:${s.join(':')}`);

  it('normalising is idempotent', () => {
    fc.assert(fc.property(fc.oneof(spiffe, urn), (u) => {
      const once = normalizeUri(u);
      expect(once).not.toBeNull();
      expect(normalizeUri(once as string)).toBe(once);
    }));
    fc.assert(fc.property(fc.string({ maxLength: 40 }), (cn) => expect(normalizeCommonName(normalizeCommonName(cn))).toBe(normalizeCommonName(cn))));
  });

  it('case changes and encoding unreserved characters never change the owner of a name', () => {
    fc.assert(fc.property(spiffe, fc.integer({ min: 0, max: 1000 }), (u, seed) => {
      // Encode one unreserved path character and uppercase scheme and host: the same identity.
      const [scheme, rest] = u.split('://');
      const slash = rest.indexOf('/');
      const host = slash < 0 ? rest : rest.slice(0, slash);
      const path = slash < 0 ? '' : rest.slice(slash);
      const at = path.length ? seed % path.length : -1;
      const ch = at >= 0 ? path[at] : '';
      const enc = at >= 0 && /[A-Za-z0-9]/.test(ch) && path[at - 1] !== '%' && path[at - 2] !== '%' ? `${path.slice(0, at)}%${ch.charCodeAt(0).toString(16)}${path.slice(at + 1)}` : path;
      expect(uriOwnershipKey(`${scheme.toUpperCase()}://${host.toUpperCase()}${enc}`)).toBe(uriOwnershipKey(u));
    }));
  });
});

describe('Vault 500s caused by input', () => {
  it('become a 400 when Vault says it could not parse what it built, and stay 503 otherwise', () => {
    const parse = new LatchkeyError(ErrorCode.VAULT_UNAVAILABLE, 'Vault pki issue: 1 error occurred: * unable to parse created certificate: x509: cannot parse URI "spiffe://a./x": invalid domain', { details: { vaultStatus: 500 }, retryAfter: 2 });
    expect((inputCausedVaultError(parse) as LatchkeyError).code).toBe(ErrorCode.VALIDATION_FAILED);
    const outage = new LatchkeyError(ErrorCode.VAULT_UNAVAILABLE, 'Vault pki issue: internal error', { details: { vaultStatus: 500 }, retryAfter: 2 });
    expect(inputCausedVaultError(outage)).toBe(outage);
    const down = new LatchkeyError(ErrorCode.VAULT_UNAVAILABLE, 'Vault pki issue: unreachable (ECONNREFUSED)', { retryAfter: 2 });
    expect(inputCausedVaultError(down)).toBe(down);
  });
});

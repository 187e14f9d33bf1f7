import { CachedKey, cacheKey, NO_EXPIRY, VerifyCache } from './verify-cache';

function entry(keyId: string, over: Partial<CachedKey> = {}): CachedKey {
  return { kind: 'key', keyId, appId: 'app', name: 'n', policies: [], meta: {}, cert: null, cidrs: null, expiresAtMs: NO_EXPIRY, profile: 'p', limits: null, credits: null, lineage: keyId, createdAtMs: 0, ...over };
}

describe('VerifyCache', () => {
  const opts = { max: 100, maxStalenessMs: 60_000, negativeTtlMs: 30_000 };

  it('keys the cache by 128 bits of SHA-256 as a flat 16-char string', () => {
    const h = cacheKey('lk_1abc_000000');
    expect(h).toHaveLength(16);
    expect(Buffer.from(h, 'latin1')).toEqual(require('node:crypto').createHash('sha256').update('lk_1abc_000000').digest().subarray(0, 16));
    expect(cacheKey('lk_1abd_000000')).not.toBe(h);
  });

  it('revokes by key id, and a tombstone stops a lookup that started before the revocation', () => {
    const cache = new VerifyCache(opts);
    const started = Date.now();
    expect(cache.setKey('h1', entry('acc1'), started)).toBe(true);
    expect(cache.get('h1')).toMatchObject({ keyId: 'acc1' });
    cache.revoke('acc1');
    expect(cache.get('h1')).toBeUndefined();
    expect(cache.setKey('h1', entry('acc1'), started)).toBe(false);
    expect(cache.get('h1')).toBeUndefined();
  });

  it('revokes every hash a key id is cached under, and forgets the index when entries leave', () => {
    const cache = new VerifyCache(opts);
    cache.setKey('h1', entry('acc1'), Date.now());
    cache.setKey('h2', entry('acc1'), Date.now());
    cache.setKey('h3', entry('acc2'), Date.now());
    cache.revoke('acc1');
    expect([cache.get('h1'), cache.get('h2')]).toEqual([undefined, undefined]);
    expect(cache.get('h3')).toMatchObject({ keyId: 'acc2' });

    const small = new VerifyCache({ ...opts, max: 1 });
    small.setKey('a', entry('accA'), Date.now());
    small.setKey('b', entry('accB'), Date.now()); // evicts a
    small.revoke('accA'); // nothing left to drop, must not touch b
    expect(small.get('b')).toMatchObject({ keyId: 'accB' });
  });

  it('does not cache a key past its own expiry, and remembers unknown hashes with one shared entry', () => {
    const cache = new VerifyCache(opts);
    expect(cache.setKey('old', entry('acc', { expiresAtMs: Date.now() - 1 }), Date.now())).toBe(true);
    expect(cache.get('old')).toBeUndefined();
    cache.setUnknown('u1');
    cache.setUnknown('u2');
    expect(cache.get('u1')).toEqual({ kind: 'unknown' });
    expect(cache.get('u1')).toBe(cache.get('u2'));
  });

  it('remembers keys in their grace period until they are revoked or the cache is cleared', () => {
    const cache = new VerifyCache(opts);
    const revokeAt = Date.now() + 60_000;
    expect(cache.revokeAtOf('k1')).toBe(0);
    cache.markRotating('k1', revokeAt);
    cache.markRotating('k2', revokeAt);
    expect([cache.revokeAtOf('k1'), cache.revokeAtOf('k2'), cache.revokeAtOf('k3')]).toEqual([revokeAt, revokeAt, 0]);
    cache.revoke('k1');
    expect(cache.revokeAtOf('k1')).toBe(0);
    cache.clear();
    expect(cache.revokeAtOf('k2')).toBe(0);
  });
});

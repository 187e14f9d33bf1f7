import { VAULT_STAMP, bullPrefix, checkStamp, legacyBullPrefix, unstamped } from './jobs';

describe('job stamps (Vault cluster id)', () => {
  const own = '23c26cfd-7958-44ab-6e72-95f13cedc622';

  it('accepts only its own cluster id', () => {
    expect(checkStamp({ keyId: 'k', [VAULT_STAMP]: own }, own)).toEqual({ ok: true });
    expect(checkStamp({ keyId: 'k', [VAULT_STAMP]: 'other' }, own)).toEqual({ ok: false, reason: 'foreign', stamp: 'other' });
  });

  it('treats a missing, empty or non-string stamp, or data that is not an object, as unstamped', () => {
    for (const data of [{ keyId: 'k' }, { [VAULT_STAMP]: '' }, { [VAULT_STAMP]: 42 }, null, 'x', undefined]) {
      expect(checkStamp(data, own)).toEqual({ ok: false, reason: 'unstamped' });
    }
  });

  it('hands handlers the payload without the stamp', () => {
    expect(unstamped({ keyId: 'k', appId: 'a', [VAULT_STAMP]: own })).toEqual({ keyId: 'k', appId: 'a' });
  });

  it('namespaces queues by Redis prefix and cluster id, apart from where older versions enqueued', () => {
    expect(bullPrefix('latchkey', own)).toBe(`latchkey:bull:${own}`);
    expect(legacyBullPrefix('latchkey')).toBe('latchkey:bull');
    // Keys of the two never overlap: the legacy queue names are fixed words, never a UUID.
    expect(bullPrefix('{lk}', own).startsWith('{lk}:')).toBe(true);
  });
});

import { signatureOf, signWebhook, verifyWebhook } from './signing';

describe('webhook signing', () => {
  const secret = 'whsec-test';
  const body = '{"type":"key.rotated","wrapToken":"x"}';

  it('signs t.<body> with HMAC-SHA256 and verifies its own signature', () => {
    const header = signWebhook(secret, body, 1_700_000_000);
    expect(header).toBe(`t=1700000000,v1=${signatureOf(secret, 1_700_000_000, body)}`);
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifyWebhook(secret, header, body, 300, 1_700_000_100)).toBe(true);
  });

  it('rejects another secret, a changed body, an old timestamp and garbage', () => {
    const header = signWebhook(secret, body, 1_700_000_000);
    expect(verifyWebhook('other', header, body, 300, 1_700_000_000)).toBe(false);
    expect(verifyWebhook(secret, header, body + ' ', 300, 1_700_000_000)).toBe(false);
    expect(verifyWebhook(secret, header, body, 300, 1_700_000_301)).toBe(false);
    expect(verifyWebhook(secret, undefined, body)).toBe(false);
    expect(verifyWebhook(secret, 't=abc,v1=zz', body)).toBe(false);
    expect(verifyWebhook(secret, 't=1700000000,v1=00', body, 300, 1_700_000_000)).toBe(false);
  });

  it('accepts any of several v1 signatures (secret roll-over)', () => {
    const good = signatureOf(secret, 1_700_000_000, body);
    expect(verifyWebhook(secret, `t=1700000000,v1=${'0'.repeat(64)},v1=${good}`, body, 300, 1_700_000_000)).toBe(true);
  });
});

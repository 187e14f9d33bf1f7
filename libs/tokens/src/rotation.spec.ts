import { loadConfig } from '@latchkey/config';
import { schedules } from '@latchkey/jobs';
import { rotationCheckEveryMs, rotationDue, rotationOverlapMs } from './rotation';

describe('token signing key rotation: when', () => {
  const DAY = 86_400_000;
  const now = Date.parse('2025-06-01T12:00:00Z');

  it('is due once the newest version is rotateEvery old, not a millisecond before', () => {
    expect(rotationDue(now - 30 * DAY, 30 * DAY, now)).toBe(true);
    expect(rotationDue(now - 30 * DAY - 1, 30 * DAY, now)).toBe(true);
    expect(rotationDue(now - 30 * DAY + 1, 30 * DAY, now)).toBe(false);
    expect(rotationDue(now - 1000, 4000, now)).toBe(false);
  });

  it('is not due again right after a rotation: the new version is the newest (a retry, a restart or a second worker does nothing)', () => {
    const rotatedAt = now - 5;
    expect(rotationDue(rotatedAt, 30 * DAY, now)).toBe(false);
  });

  it('is never due when rotation is off or the age is unknown', () => {
    expect(rotationDue(now - 365 * DAY, 0, now)).toBe(false);
    expect(rotationDue(0, 30 * DAY, now)).toBe(false);
    expect(rotationDue(Number.NaN, 30 * DAY, now)).toBe(false);
  });

  it("counts the period from Vault's creation time: a version dated ahead of this clock makes the next rotation late, never repeated", () => {
    expect(rotationDue(now + 10_000, 4000, now)).toBe(false);
  });

  it('checks min(1h, rotateEvery/4), at least every second; 0 turns the scheduler off', () => {
    expect(rotationCheckEveryMs(30 * DAY)).toBe(3_600_000);
    expect(rotationCheckEveryMs(2 * 3_600_000)).toBe(1_800_000);
    expect(rotationCheckEveryMs(4000)).toBe(1000);
    expect(rotationCheckEveryMs(1000)).toBe(1000);
    expect(rotationCheckEveryMs(0)).toBe(0);
  });

  it('registers the tokens-rotate-check scheduler from TOKEN_KEY_ROTATE_EVERY (default 30d, 0 = off)', () => {
    const env = { VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_TOKEN: 't', LATCHKEY_PORT: '0' };
    const spec = (extra: NodeJS.ProcessEnv) => schedules(loadConfig({ ...env, ...extra })).find((s) => s.id === 'tokens-rotate-check');
    expect(spec({})).toEqual({ id: 'tokens-rotate-check', job: 'tokens-rotate-check', everyMs: 3_600_000 });
    expect(spec({ TOKEN_KEY_ROTATE_EVERY: '4s' })?.everyMs).toBe(1000);
    expect(spec({ TOKEN_KEY_ROTATE_EVERY: '0' })?.everyMs).toBe(0);
    expect(() => loadConfig({ ...env, TOKEN_KEY_ROTATE_EVERY: 'monthly' })).toThrow(/TOKEN_KEY_ROTATE_EVERY/);
  });

  it('overlap: the old version stays published JWKS_MAX_AGE + TOKEN_MAX_TTL + 1 min after a rotation', () => {
    expect(rotationOverlapMs(5 * 60_000, 3600)).toBe(66 * 60_000);
  });
});

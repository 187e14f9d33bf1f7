import { parseTimeBound } from './events';

describe('parseTimeBound', () => {
  const now = Date.parse('2026-12-01T12:00:00Z');

  it('reads durations as that long before now', () => {
    expect(parseTimeBound('1h', now)).toBe(now - 3_600_000);
    expect(parseTimeBound('15m', now)).toBe(now - 900_000);
    expect(parseTimeBound('1h30m', now)).toBe(now - 5_400_000);
    expect(parseTimeBound('2d', now)).toBe(now - 2 * 86_400_000);
    expect(parseTimeBound('1w', now)).toBe(now - 604_800_000);
    expect(parseTimeBound('0s', now)).toBe(now);
  });

  it('reads absolute ISO 8601 times', () => {
    expect(parseTimeBound('2026-11-27T00:00:00Z', now)).toBe(Date.parse('2026-11-27T00:00:00Z'));
    expect(parseTimeBound('2026-11-27T00:00:00.123+01:00', now)).toBe(Date.parse('2026-11-27T00:00:00.123+01:00'));
    expect(parseTimeBound('2026-11-27', now)).toBe(Date.parse('2026-11-27'));
  });

  it('refuses anything else', () => {
    for (const v of ['', 'yesterday', '1y', '-1h', '1.5h', 'h', '15', ' 1h', '1h ', '2026-13-45T99:00:00Z', 'now', '1ms', '1234567h']) expect([v, parseTimeBound(v, now)]).toEqual([v, null]);
  });
});

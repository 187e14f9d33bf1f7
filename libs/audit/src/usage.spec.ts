import { hourlyDays, hourlySeries } from './usage';

describe('hourly usage series', () => {
  const now = Date.parse('2026-12-01T01:30:00.000Z');

  it('covers exactly `hours` hours, oldest first, ending with the current hour, zero-filled', () => {
    const s = hourlySeries(now, 3, {});
    expect(s.map((e) => e.hour)).toEqual(['2026-11-30T23:00:00.000Z', '2026-12-01T00:00:00.000Z', '2026-12-01T01:00:00.000Z']);
    expect(s[0]).toEqual({ hour: '2026-11-30T23:00:00.000Z', valid: 0, refused: 0, refusedByCode: {} });
  });

  it('reads the days the range touches, and places each field in its day and hour', () => {
    expect(hourlyDays(now, 3)).toEqual(['2026-11-30', '2026-12-01']);
    expect(hourlyDays(now, 1)).toEqual(['2026-12-01']);
    expect(hourlyDays(now, 168)).toHaveLength(8);
    const s = hourlySeries(now, 3, {
      '2026-11-30': { '23|VALID': '5', '23|FORBIDDEN_IP': '2', '22|VALID': '99' },
      '2026-12-01': { '01|VALID': '1', '01|RATE_LIMITED': '3', '01|FORBIDDEN_IP': '1', '05|VALID': '7', junk: '4' },
    });
    expect(s).toEqual([
      { hour: '2026-11-30T23:00:00.000Z', valid: 5, refused: 2, refusedByCode: { FORBIDDEN_IP: 2 } },
      { hour: '2026-12-01T00:00:00.000Z', valid: 0, refused: 0, refusedByCode: {} },
      { hour: '2026-12-01T01:00:00.000Z', valid: 1, refused: 4, refusedByCode: { RATE_LIMITED: 3, FORBIDDEN_IP: 1 } },
    ]);
  });
});

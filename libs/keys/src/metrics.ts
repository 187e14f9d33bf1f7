import { Gauge, register } from 'prom-client';
import { withScrapeDeadline } from '@latchkey/common';
import type { KeyIndex } from './key-index';

/** Windows of the keys-nearing-expiry gauge (label `within`), cumulative: 7d includes 1d includes 1h. */
export const EXPIRY_WINDOWS: ReadonlyArray<readonly [string, number]> = [
  ['1h', 3600_000],
  ['1d', 86_400_000],
  ['7d', 7 * 86_400_000],
];

/**
 * Active keys whose expiry falls within the next hour / day / week, counted in
 * the expiry index (the sorted set the expiry sweep walks) when /metrics is
 * scraped: one ZCOUNT per window, so the value is current on every worker
 * rather than only on the one that last held the sweep's lease. Keys already
 * past their expiry but not yet swept are not counted (the sweep owns those).
 */
export function registerKeyExpiryGauge(index: KeyIndex): void {
  if (register.getSingleMetric('latchkey_keys_expiring')) return;
  new Gauge({
    name: 'latchkey_keys_expiring',
    help: 'Active keys that expire within the window (within: 1h, 1d, 7d; cumulative; shared by all workers: aggregate with max)',
    labelNames: ['within'],
    async collect() {
      this.reset();
      const now = Date.now();
      try {
        const counts = await withScrapeDeadline(Promise.all(EXPIRY_WINDOWS.map(([, ms]) => index.countExpiring(now, now + ms))));
        EXPIRY_WINDOWS.forEach(([within], i) => this.set({ within }, counts[i]));
      } catch {
        // Redis away: no sample in this scrape (the queue gauges and readiness say why).
      }
    },
  });
}

import { register } from 'prom-client';
import { enableProcessMetrics, withScrapeDeadline } from './metrics';

describe('process metrics', () => {
  it('registers prom-client default metrics once, prefixed, with event-loop lag and GC durations', async () => {
    enableProcessMetrics();
    enableProcessMetrics(); // a second module instance in the same process must not throw "already registered"
    const text = await register.metrics();
    for (const family of [
      'latchkey_process_resident_memory_bytes',
      'latchkey_process_cpu_seconds_total',
      'latchkey_nodejs_heap_size_used_bytes',
      'latchkey_nodejs_eventloop_lag_p99_seconds',
      'latchkey_nodejs_gc_duration_seconds',
    ]) {
      expect(text).toContain(`# TYPE ${family} `);
    }
    // Unprefixed defaults would collide with another library's registry in the same process.
    expect(text).not.toMatch(/^# TYPE process_/m);
  });
});

describe('withScrapeDeadline', () => {
  it('passes the answer through', async () => {
    await expect(withScrapeDeadline(Promise.resolve(3))).resolves.toBe(3);
  });
  it('gives up on a read that never answers, so a scrape is never held by it', async () => {
    await expect(withScrapeDeadline(new Promise(() => undefined), 5)).rejects.toThrow(/no answer within 5 ms/);
  });
});

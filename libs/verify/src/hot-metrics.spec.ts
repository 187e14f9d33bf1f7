import { Histogram, register } from 'prom-client';
import { BatchedHistogram, batchedCounter } from './hot-metrics';

describe('hot-path metrics', () => {
  afterEach(() => register.clear());

  it('a batched counter exports what it counted, per label value, at every scrape', async () => {
    const c = batchedCounter('t_hot_total', 'help', 'code', ['A', 'B'] as const);
    c.A.inc();
    c.A.inc();
    let text = await register.getSingleMetricAsString('t_hot_total');
    expect(text).toContain('t_hot_total{code="A"} 2');
    expect(text).toContain('t_hot_total{code="B"} 0');
    c.B.inc();
    text = await register.getSingleMetricAsString('t_hot_total');
    expect(text).toContain('t_hot_total{code="A"} 2');
    expect(text).toContain('t_hot_total{code="B"} 1');
  });

  it('a batched histogram exports exactly what a prom-client histogram exports for the same observations', async () => {
    const bounds = [0.001, 0.01, 0.1];
    const hot = new BatchedHistogram('t_hot_seconds', 'help', 'route', bounds, ['a', 'b'] as const);
    const ref = new Histogram({ name: 't_ref_seconds', help: 'help', labelNames: ['route'], buckets: bounds });
    for (const [route, v] of [['a', 0.0005], ['a', 0.001], ['a', 0.05], ['a', 3], ['b', 0.002]] as const) {
      hot.child(route).observe(v);
      ref.labels(route).observe(v);
    }
    const hotText = await register.getSingleMetricAsString('t_hot_seconds');
    const refText = (await register.getSingleMetricAsString('t_ref_seconds')).replaceAll('t_ref_seconds', 't_hot_seconds');
    expect(hotText).toBe(refText);
  });
});

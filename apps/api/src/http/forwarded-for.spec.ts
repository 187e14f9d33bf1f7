import type { Logger } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { AppConfig } from '@latchkey/config';
import { FORWARDED_FOR_WARNING_INTERVAL_MS, forwardedForWarning } from './forwarded-for';

const configWith = (trustProxy: AppConfig['http']['trustProxy']) => ({ http: { trustProxy } }) as AppConfig;
const request = (xff?: string) => ({ headers: xff === undefined ? {} : { 'x-forwarded-for': xff }, socket: { remoteAddress: '10.0.0.7' } }) as unknown as FastifyRequest;

describe('forwardedForWarning', () => {
  afterEach(() => jest.useRealTimers());

  it('watches nothing when a trusted proxy is configured', () => {
    expect(forwardedForWarning(configWith({ addresses: ['10.0.0.7'] }))).toBeNull();
    expect(forwardedForWarning(configWith({ hops: 1 }))).toBeNull();
  });

  it('warns at the first X-Forwarded-For, then at most once per interval with the count, never with the header value', () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const lines: string[] = [];
    const watch = forwardedForWarning(configWith(null), { warn: (m: string) => lines.push(m) } as unknown as Logger)!;
    watch(request());
    expect(lines).toHaveLength(0);
    watch(request('203.0.113.9'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^1 request\(s\) .*latest from 10\.0\.0\.7/);
    for (let i = 0; i < 5; i++) watch(request('203.0.113.9'));
    expect(lines).toHaveLength(1);
    jest.setSystemTime(1_000_000 + FORWARDED_FOR_WARNING_INTERVAL_MS);
    watch(request('203.0.113.9'));
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^6 request\(s\)/);
    expect(lines.join('\n')).not.toContain('203.0.113.9');
  });
});

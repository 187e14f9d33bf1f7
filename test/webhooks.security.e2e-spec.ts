import { RunningApi, startApi } from './support/app';
import { call } from './support/http';
import { operatorToken } from './support/keys';
import { uniqueId } from './support/stack';

/**
 * Webhook URLs are chosen by app managers and called from inside the
 * deployment: by default they may only reach public addresses (SSRF).
 * The delivery-time check is in libs/delivery/src/delivery.int-spec.ts.
 */
const REFUSED = [
  'http://127.0.0.1:9/hook',
  'http://169.254.169.254/latest/meta-data/',
  'http://[::1]/hook',
  'http://[::ffff:127.0.0.1]/hook',
  'http://2130706433/hook',
  'http://0x7f.1/hook',
  'http://10.0.0.1/hook',
  'http://100.64.0.1/hook',
  'http://[fd00::1]/hook',
  'http://0.0.0.0/hook',
  'http://localhost:9/hook',
];

describe('webhook URLs: SSRF', () => {
  let strict: RunningApi;
  let allowing: RunningApi;
  let op: string;

  beforeAll(async () => {
    [strict, allowing, { token: op }] = await Promise.all([
      startApi({ WEBHOOK_ALLOW_HTTP: 'true' }),
      startApi({ WEBHOOK_ALLOW_HTTP: 'true', WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8,::1/128,169.254.169.254/32' }),
      operatorToken(),
    ]);
  });
  afterAll(async () => {
    await Promise.all([strict?.close(), allowing?.close()]);
  });

  it('refuses loopback, link-local, private and other internal destinations by default, in any spelling', async () => {
    const appId = uniqueId('app');
    for (const url of REFUSED) {
      const res = await call(strict.url, 'PUT', `/v1/apps/${appId}/webhook`, { token: op, body: { url } });
      expect({ url, status: res.status, code: res.body.error?.code }).toEqual({ url, status: 400, code: 'WEBHOOK_URL_NOT_ALLOWED' });
    }
    expect((await call(strict.url, 'GET', `/v1/apps/${appId}/webhook`, { token: op })).status).toBe(404);
  });

  it('allows the ranges the operator lists, and only those', async () => {
    const appId = uniqueId('app');
    for (const url of ['http://127.0.0.1:9/hook', 'http://169.254.169.254/latest/meta-data/', 'http://[::1]/hook', 'http://[::ffff:127.0.0.1]/hook', 'http://localhost:9/hook']) {
      const res = await call(allowing.url, 'PUT', `/v1/apps/${appId}/webhook`, { token: op, body: { url } });
      expect({ url, status: res.status }).toEqual({ url, status: 200 });
    }
    for (const url of ['http://10.0.0.1/hook', 'http://169.254.169.253/']) {
      const res = await call(allowing.url, 'PUT', `/v1/apps/${appId}/webhook`, { token: op, body: { url } });
      expect({ url, status: res.status, code: res.body.error?.code }).toEqual({ url, status: 400, code: 'WEBHOOK_URL_NOT_ALLOWED' });
    }
  });
});

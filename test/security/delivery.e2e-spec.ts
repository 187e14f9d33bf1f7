import { decodeKey } from '@latchkey/keys';
import { RunningApi, startApi } from '../support/app';
import { auditEvents, call } from '../support/http';
import { appManagerToken, mintKey } from '../support/keys';
import { rootVault, uniqueId } from '../support/stack';
import { webhookReceiver } from '../support/webhook';

/**
 * Delivery cannot hand a key to someone who could not mint it (same class as issue 10, finding 1, found by
 * the re-review): setting an app's webhook is a right of its own, and keys carrying latchkey's own policies
 * are delivered to Vault KV only. Rotation keeps the old token's policies, `default` included.
 */

const rootToken = (): string => process.env.VAULT_TOKEN!;

describe('security: delivery and rotation never widen who holds a key', () => {
  let api: RunningApi;
  let url: string;

  beforeAll(async () => {
    api = await startApi({ LATCHKEY_GRANTABLE_OWN_POLICIES: 'latchkey-operator', WEBHOOK_ALLOW_HTTP: 'true', WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' });
    url = api.url;
  });
  afterAll(async () => {
    await api?.close();
  });

  it("does not let an app's manager set or remove its webhook (it would receive every rotated key of the app)", async () => {
    const appId = uniqueId('app');
    const manager = await appManagerToken(appId);
    const receiver = await webhookReceiver();
    try {
      const put = await call(url, 'PUT', `/v1/apps/${appId}/webhook`, { token: manager.token, body: { url: receiver.url } });
      expect([put.status, put.body?.error?.code]).toEqual([403, 'FORBIDDEN']);
      expect((await call(url, 'DELETE', `/v1/apps/${appId}/webhook`, { token: manager.token })).status).toBe(403);
      expect((await call(url, 'PUT', `/v1/apps/${appId}/webhook`, { token: rootToken(), body: { url: receiver.url } })).status).toBe(200);
    } finally {
      await receiver.close();
    }
  });

  it('delivers a rotated key carrying latchkey policies to Vault KV only, never to the webhook', async () => {
    const appId = uniqueId('app');
    const receiver = await webhookReceiver();
    try {
      expect((await call(url, 'PUT', `/v1/apps/${appId}/webhook`, { token: rootToken(), body: { url: receiver.url } })).status).toBe(200);
      const name = uniqueId('ops');
      const body = { ttl: '1h', maxTtl: '24h', selfService: { rotate: true } };
      expect((await call(url, 'PUT', `/v1/profiles/${name}`, { token: rootToken(), body: { ...body, allowedPolicies: ['latchkey-operator'] } })).status).toBe(201);
      const plain = uniqueId('plain');
      expect((await call(url, 'PUT', `/v1/profiles/${plain}`, { token: rootToken(), body: { ...body, allowedPolicies: ['orders-read'] } })).status).toBe(201);
      const mgmt = await mintKey(url, rootToken(), { appId, profile: name, name: 'ci' });
      const ordinary = await mintKey(url, rootToken(), { appId, profile: plain, name: 'svc' });
      const rotatedMgmt = await call(url, 'POST', '/v1/keys/self/rotate', { bearer: mgmt.key, body: { grace: '1m' } });
      const rotatedPlain = await call(url, 'POST', '/v1/keys/self/rotate', { bearer: ordinary.key, body: { grace: '1m' } });
      expect([rotatedMgmt.status, rotatedPlain.status]).toEqual([201, 201]);
      const events = await auditEvents(url, rootToken(), `appId=${appId}&type=admin.key.self-rotate`);
      const detail = (keyId: string) => events.find((e: { keyId: string }) => e.keyId === keyId)?.detail as string;
      expect(detail(mgmt.keyId)).toMatch(/kv only \(carries latchkey policies\)/);
      expect(detail(ordinary.keyId)).toMatch(/webhook queued/);
      // The KV copy is there for the app's delivery readers.
      expect(await rootVault().kvRead<{ keyId: string }>('latchkey-kv', `delivery/${appId}/ci`)).toMatchObject({ keyId: rotatedMgmt.body.keyId });
    } finally {
      await receiver.close();
    }
  });

  it('keeps Vault’s default policy on a successor when the profile lists it', async () => {
    const name = uniqueId('def');
    expect((await call(url, 'PUT', `/v1/profiles/${name}`, { token: rootToken(), body: { allowedPolicies: ['default', 'orders-read'], ttl: '1h', maxTtl: '24h' } })).status).toBe(201);
    const key = await mintKey(url, rootToken(), { appId: uniqueId('app'), profile: name, name: 'k' });
    const rotated = await call(url, 'POST', `/v1/keys/${key.keyId}/rotate`, { token: rootToken(), body: { grace: '1m' } });
    expect(rotated.status).toBe(201);
    const d = decodeKey(rotated.body.key);
    if (!d.ok) throw new Error('not a key');
    expect((await rootVault().lookupToken(d.token)).policies.sort()).toEqual(['default', 'orders-read']);
  });
});

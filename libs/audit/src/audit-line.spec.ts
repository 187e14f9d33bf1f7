import { dedupBucket, dedupMember, isKeyUse, parseAuditLine, streamFields } from './audit-line';

/** Shaped like OpenBao 2.7 file-audit lines (hmac_accessor=false). */
const keyUseResponse = {
  time: '2026-11-27T17:57:24.176035965Z',
  type: 'response',
  auth: {
    client_token: 'hmac-sha256:95098d026bb3771a119bb8bef30c9e94bfc669f64719740970055365538f83c1',
    accessor: '3lTOdawux4vMZahsGaKtHGjk',
    display_name: 'token-orders-orders-prod',
    policies: ['default', 'orders-read'],
    metadata: { latchkey_app: 'orders', latchkey_name: 'orders-prod', latchkey_profile: 'default', owner: 'team-orders' },
    token_type: 'service',
  },
  request: {
    id: '7bb43fef-4e21-9593-ad6b-b4db3d2f1ef6',
    operation: 'read',
    mount_point: 'auth/token/',
    client_token: 'hmac-sha256:95098d026bb3771a119bb8bef30c9e94bfc669f64719740970055365538f83c1',
    path: 'auth/token/lookup-self',
    data: { token: 'hmac-sha256:aaaa', secret_field: 'hmac-sha256:bbbb' },
    remote_address: '10.1.2.3',
    remote_port: 44082,
  },
  response: { data: { id: 'hmac-sha256:cccc' } },
};

describe('parseAuditLine', () => {
  it('keeps ids, path, caller and latchkey metadata, never bodies or HMACs', () => {
    const r = parseAuditLine(JSON.stringify(keyUseResponse));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.event).toEqual({
      kind: 'response',
      requestId: '7bb43fef-4e21-9593-ad6b-b4db3d2f1ef6',
      time: '2026-11-27T17:57:24.176035965Z',
      timeMs: Date.parse('2026-11-27T17:57:24.176Z'),
      operation: 'read',
      path: 'auth/token/lookup-self',
      mount: 'auth/token/',
      remoteAddress: '10.1.2.3',
      accessor: '3lTOdawux4vMZahsGaKtHGjk',
      displayName: 'token-orders-orders-prod',
      policies: ['default', 'orders-read'],
      tokenType: 'service',
      appId: 'orders',
      keyName: 'orders-prod',
      profile: 'default',
    });
    expect(isKeyUse(r.event)).toBe(true);
    expect(JSON.stringify(streamFields(r.event))).not.toMatch(/hmac-sha256/);
  });

  it('skips malformed input with a reason, never throws', () => {
    expect(parseAuditLine('')).toEqual({ ok: false, reason: 'empty' });
    expect(parseAuditLine('   ')).toEqual({ ok: false, reason: 'empty' });
    expect(parseAuditLine('{"time":"2026-')).toEqual({ ok: false, reason: 'json' });
    expect(parseAuditLine('not json at all')).toEqual({ ok: false, reason: 'json' });
    expect(parseAuditLine('[1,2]')).toEqual({ ok: false, reason: 'shape' });
    expect(parseAuditLine('null')).toEqual({ ok: false, reason: 'shape' });
    expect(parseAuditLine(JSON.stringify({ ...keyUseResponse, type: 'other' }))).toEqual({ ok: false, reason: 'shape' });
    expect(parseAuditLine(JSON.stringify({ ...keyUseResponse, request: { id: 42, path: 'x' } }))).toEqual({ ok: false, reason: 'shape' });
    expect(parseAuditLine(JSON.stringify({ ...keyUseResponse, request: 'x' }))).toEqual({ ok: false, reason: 'shape' });
    expect(parseAuditLine(JSON.stringify({ ...keyUseResponse, time: 42 }))).toEqual({ ok: false, reason: 'shape' });
  });

  it('tolerates missing optional parts (unauthenticated requests)', () => {
    const line = JSON.stringify({ time: '2026-11-27T17:57:28Z', type: 'request', auth: { token_type: 'default' }, request: { id: 'abc-1', operation: 'update', path: 'sys/wrapping/unwrap' }, error: 'wrapping token is not valid or does not exist' });
    const r = parseAuditLine(line);
    expect(r.ok && r.event).toMatchObject({ kind: 'request', requestId: 'abc-1', path: 'sys/wrapping/unwrap', error: 'wrapping token is not valid or does not exist' });
    expect(r.ok && isKeyUse(r.event)).toBe(false);
    expect(r.ok && streamFields(r.event)).toEqual(expect.arrayContaining(['outcome', 'failure']));
  });

  it('names internal requests without a request id (dev-mode mounts) by a hash of the line', () => {
    const line = JSON.stringify({ time: '2026-11-27T17:32:18.519Z', type: 'request', auth: { token_type: 'service' }, request: { operation: 'update', path: 'sys/mounts/secret' } });
    const a = parseAuditLine(line);
    const b = parseAuditLine(line);
    expect(a.ok && a.event.requestId).toMatch(/^line-[0-9a-f]{24}$/);
    expect(a.ok && b.ok && a.event.requestId === b.event.requestId).toBe(true);
  });

  it('does not treat an HMAC-ed accessor (hmac_accessor=true) as a key id', () => {
    const line = JSON.stringify({ ...keyUseResponse, auth: { ...keyUseResponse.auth, accessor: 'hmac-sha256:0123456789abcdef' } });
    const r = parseAuditLine(line);
    expect(r.ok && r.event.accessor).toBeUndefined();
    expect(r.ok && isKeyUse(r.event)).toBe(false);
  });

  it('redacts anything token-shaped that Vault left in clear (errors, paths)', () => {
    const secret = 's.' + 'AbCdEfGhIjKlMnOpQrStUvWx';
    const line = JSON.stringify({ ...keyUseResponse, request: { ...keyUseResponse.request, path: `auth/token/lookup/${secret}` }, error: `permission denied for ${secret}` });
    const r = parseAuditLine(line);
    expect(r.ok).toBe(true);
    expect(JSON.stringify(r)).not.toContain(secret);
    expect(r.ok && r.event.path).toBe('auth/token/lookup/[REDACTED TOKEN]');
  });

  it('truncates over-long strings', () => {
    const r = parseAuditLine(JSON.stringify({ ...keyUseResponse, error: 'x'.repeat(10_000) }));
    expect(r.ok && r.event.error?.length).toBe(1024);
  });

  it('dedup key: request id + type, bucketed by the hour of Vault time', () => {
    const r = parseAuditLine(JSON.stringify(keyUseResponse));
    const q = parseAuditLine(JSON.stringify({ ...keyUseResponse, type: 'request' }));
    if (!r.ok || !q.ok) throw new Error('parse');
    expect(dedupMember(r.event)).toBe('7bb43fef-4e21-9593-ad6b-b4db3d2f1ef6|s');
    expect(dedupMember(q.event)).toBe('7bb43fef-4e21-9593-ad6b-b4db3d2f1ef6|q');
    expect(dedupBucket(r.event)).toBe('2026112717');
  });

  it('stream fields carry source=vault, type=vault.<kind> and the key id for key uses', () => {
    const r = parseAuditLine(JSON.stringify(keyUseResponse));
    if (!r.ok) throw new Error('parse');
    const f = streamFields(r.event);
    const m = Object.fromEntries(Array.from({ length: f.length / 2 }, (_, i) => [f[2 * i], f[2 * i + 1]]));
    expect(m).toMatchObject({ source: 'vault', type: 'vault.response', keyId: '3lTOdawux4vMZahsGaKtHGjk', appId: 'orders', outcome: 'success', remoteAddress: '10.1.2.3' });
  });
});

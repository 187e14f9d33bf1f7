import fc from 'fast-check';
import type { TokenLookup } from '@latchkey/vault';
import { keyIdentity, profileOfRole } from './key-identity';

const lookup = (over: Partial<TokenLookup>): TokenLookup => ({
  accessor: 'A'.repeat(24),
  id: '',
  policies: ['default'],
  meta: { latchkey_app: 'billing', latchkey_profile: 'orders', latchkey_name: 'k' },
  display_name: 'token',
  num_uses: 0,
  orphan: true,
  creation_time: 0,
  creation_ttl: 3600,
  expire_time: null,
  explicit_max_ttl: 0,
  ttl: 3600,
  type: 'service',
  role: 'latchkey-orders',
  path: 'auth/token/create/latchkey-orders',
  ...over,
});

describe('profileOfRole', () => {
  it.each([
    ['latchkey-orders', { profile: 'orders', derived: false }],
    ['latchkey-orders-c0123456789', { profile: 'orders', derived: true }],
    ['latchkey-rvq-cfoo-c0123456789', { profile: 'rvq-cfoo', derived: true }],
    ['latchkey-rvq-cfoo', { profile: 'rvq-cfoo', derived: false }],
    ['other-orders', null],
    ['latchkey-', null],
    ['latchkey-Orders', null],
    ['latchkey--c0123456789', null],
  ])('%s → %j', (role, expected) => {
    expect(profileOfRole(role, 'latchkey-')).toEqual(expected);
  });

  it('gives every derived role exactly the profile it was made for', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,30}$/), fc.stringMatching(/^[0-9a-f]{10}$/), (profile, hash) => {
        fc.pre(!/-c[0-9a-f]{10}$/.test(profile));
        expect(profileOfRole(`latchkey-${profile}-c${hash}`, 'latchkey-')).toEqual({ profile, derived: true });
        expect(profileOfRole(`latchkey-${profile}`, 'latchkey-')).toEqual({ profile, derived: false });
      }),
    );
  });
});

describe('keyIdentity', () => {
  it('accepts a service token created through the latchkey role of the profile its metadata names', () => {
    expect(keyIdentity(lookup({}), 'latchkey-')).toEqual({ appId: 'billing', profile: 'orders', name: 'k', role: 'latchkey-orders', certSerial: null, certBinding: null });
    expect(keyIdentity(lookup({ role: 'latchkey-orders-c0123456789', path: 'auth/token/create/latchkey-orders-c0123456789' }), 'latchkey-')?.profile).toBe('orders');
  });

  it.each<[string, Partial<TokenLookup>]>([
    ['no role (auth/token/create)', { role: undefined, path: 'auth/token/create' }],
    ['no role (create-orphan)', { role: undefined, path: 'auth/token/create-orphan' }],
    ['a role that is not latchkey’s', { role: 'evil', path: 'auth/token/create/evil' }],
    ['a latchkey role of another profile', { role: 'latchkey-management', path: 'auth/token/create/latchkey-management' }],
    ['a path that does not match the role', { path: 'auth/token/create' }],
    ['a batch token', { type: 'batch' }],
    ['no latchkey_app', { meta: { latchkey_profile: 'orders' } }],
    ['no metadata', { meta: null }],
  ])('refuses %s', (_what, over) => {
    expect(keyIdentity(lookup(over), 'latchkey-')).toBeNull();
  });
});

import { randomBytes } from 'node:crypto';
import { Test, TestingModule } from '@nestjs/testing';
import { Redis } from 'ioredis';
import type { Principal } from '@latchkey/authz';
import { ConfigModule, loadConfig } from '@latchkey/config';
import { REDIS, RedisModule } from '@latchkey/redis';
import { RevocationModule } from '@latchkey/revocation';
import { VaultClient, VaultModule } from '@latchkey/vault';
import { CertIndex } from './cert-index';
import { CertVerifier } from './cert-verifier';
import { CertsModule } from './certs.module';
import { CertsService } from './certs.service';

/** CertsService against the real OpenBao PKI and Redis of the test stack, with its own Redis prefix. */
describe('CertsService (real OpenBao + Redis)', () => {
  const prefix = `lkcert${randomBytes(3).toString('hex')}`;
  let mod: TestingModule;
  let certs: CertsService;
  let index: CertIndex;
  let verifier: CertVerifier;
  let redis: Redis;
  let root: Principal;

  beforeAll(async () => {
    const config = loadConfig({ ...process.env, REDIS_PREFIX: prefix });
    mod = await Test.createTestingModule({ imports: [ConfigModule.forRoot(config), VaultModule, RedisModule, RevocationModule, CertsModule] }).compile();
    await mod.init();
    certs = mod.get(CertsService);
    index = mod.get(CertIndex);
    verifier = mod.get(CertVerifier);
    redis = mod.get(REDIS);
    const token = process.env.VAULT_TOKEN!;
    // Authorization asks Vault by accessor: the principal carries the root token's real one.
    const { accessor } = await mod.get(VaultClient).lookupToken(token);
    root = { token, accessor, displayName: 'root', policies: ['root'], identityPolicies: [], viaKey: false, key: null, boundCidrs: [] };
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    await mod.close();
  });

  it('rebuilds the index from Vault alone: app, subject, SANs, lifetime and revocation come back', async () => {
    const appId = `app-${randomBytes(3).toString('hex')}`;
    const a = await certs.issue(root, { appId, commonName: `${appId}-a`, uriSans: [`spiffe://example.org/${appId}`], ipSans: ['10.1.1.1'], ttl: '1h', autoRenew: true });
    const b = await certs.issue(root, { appId, commonName: `${appId}-b`, ttl: '1h' });
    await certs.revoke(root, b.record.serial);

    const keys = await redis.keys(`${prefix}:*`);
    await redis.del(...keys);
    expect(await index.get(a.record.serial)).toBeNull();

    const out = await certs.rebuildIndex();
    expect(out.indexed).toBeGreaterThanOrEqual(2);
    const ra = await index.get(a.record.serial);
    expect(ra).toMatchObject({ serial: a.record.serial, appId, commonName: `${appId}-a`, uriSans: [`spiffe://example.org/${appId}`], ipSans: ['10.1.1.1'], notAfter: a.record.notAfter, revoked: false });
    expect(await index.get(b.record.serial)).toMatchObject({ appId, revoked: true });
    expect((await index.list(appId, 10)).items.map((r) => r.serial)).toEqual([a.record.serial]);
    // Ownership of names is restored as well.
    expect((await index.claimSubject('someone-else', `${appId}-A.`, [])).taken).toEqual([`${appId}-a`]);

    // The rebuilt record carries no secret: only what the certificate shows.
    expect(JSON.stringify(ra)).not.toMatch(/PRIVATE KEY/);
    expect(verifier.isKnownRevoked(b.record.serial)).toBe(true);
  });

  it('claims written before normalisation are found under their normalised names after the migration', async () => {
    const owner = `app-${randomBytes(3).toString('hex')}`;
    const tag = randomBytes(3).toString('hex');
    // What the old code stored: exact strings.
    await redis.set(`${prefix}:certs:owner:cn:LEGACY-${tag}`, owner);
    await redis.set(`${prefix}:certs:owner:uri:spiffe://example.org/${tag}/x/../payments`, owner);
    await redis.del(`${prefix}:certs:owner-normalised-v1`);
    expect(await index.migrateLegacyClaims()).toBeGreaterThanOrEqual(2);
    const other = await index.claimSubject('someone-else', `legacy-${tag}`, [`spiffe://example.org/${tag}/payments`]);
    expect(other.taken).toEqual([`legacy-${tag}`, `spiffe://example.org/${tag}/payments`]);
    // The owner still has them, permanently.
    const mine = await index.claimSubject(owner, `Legacy-${tag}.`, [`spiffe://example.org/${tag}/p%61yments`]);
    expect(mine).toEqual({ taken: [], claimed: [] });
  });

  it('a claim is provisional until confirmed, released on failure, and a confirmed claim survives a release', async () => {
    const [a, b] = [`app-${randomBytes(3).toString('hex')}`, `app-${randomBytes(3).toString('hex')}`];
    const cn = `name-${randomBytes(3).toString('hex')}`;
    const first = await index.claimSubject(a, cn, []);
    expect(first.claimed).toEqual([['cn', cn]]);
    expect(await redis.pttl(`${prefix}:certs:owner:cn:${cn}`)).toBeGreaterThan(0);
    await index.releaseSubject(a, first.claimed);
    expect((await index.claimSubject(b, cn, [])).taken).toEqual([]);
    await index.releaseSubject(b, [['cn', cn]]);
    const again = await index.claimSubject(a, cn, []);
    expect(await index.confirmSubject(a, cn, [])).toEqual([]);
    await index.releaseSubject(a, again.claimed);
    expect((await index.claimSubject(b, cn, [])).taken).toEqual([cn]);
  });

  it('resolves a certificate missing from the index from Vault, and revocation done directly in Vault is noticed', async () => {
    const appId = `app-${randomBytes(3).toString('hex')}`;
    const c = await certs.issue(root, { appId, commonName: `${appId}-x`, ttl: '1h' });
    await redis.del(`${prefix}:cert:${c.record.serial}`);
    // Revoked behind latchkey's back, straight in Vault.
    await mod.get(VaultClient).pkiRevoke('pki_latchkey', c.record.serial);
    const got = await certs.get(root, c.record.serial.replace(/:/g, ''));
    expect(got.record).toMatchObject({ serial: c.record.serial, appId, revoked: true });
    expect(got.live?.revoked).toBe(true);
    expect(verifier.isKnownRevoked(c.record.serial)).toBe(true);
    expect((await verifier.verifyPem(c.certificate)).code).toBe('REVOKED');
  });
});

import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { certFacts, lineageFromSans, lineageUrn, parseSubjectAltName } from './cert-info';
import { renewAtOf } from './cert-index';
import { windowCode } from './cert-verifier';
import { CsrError, describeKey, inspectCsr, keyWeakness } from './csr';
import { normalizeSerial } from './serial';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-certs-unit-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A CSR for a key made with node's crypto, built by the openssl CLI (as a client would). */
function csrFor(keyPem: string, subj: string): string {
  const keyFile = path.join(dir, `k${Math.random().toString(36).slice(2)}.pem`);
  fs.writeFileSync(keyFile, keyPem, { mode: 0o600 });
  return execFileSync('openssl', ['req', '-new', '-key', keyFile, '-subj', subj], { encoding: 'utf8' });
}

const pkcs8 = (k: { privateKey: { export(o: object): string | Buffer } }) => k.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

describe('serial numbers', () => {
  it.each([
    ['46:7e:73:32', '46:7e:73:32'],
    ['46-7E-73-32', '46:7e:73:32'],
    ['467E7332', '46:7e:73:32'],
    ['67E7332', '06:7e:73:32'],
    [' 07:c4 ', '07:c4'],
    ['7:c4', '07:c4'],
  ])('normalises %j to Vault colon hex', (input, out) => expect(normalizeSerial(input)).toBe(out));

  it.each(['', 'zz', '46::7e', '46:7e:', '../etc', '46:7e73', 'a'.repeat(81)])('refuses %j', (input) => expect(normalizeSerial(input)).toBeNull());
});

describe('CSR inspection', () => {
  it('reads CN and key of EC, RSA and Ed25519 requests', () => {
    const ec = inspectCsr(csrFor(pkcs8(generateKeyPairSync('ec', { namedCurve: 'P-256' })), '/CN=orders-api/O=Orders'));
    expect(ec.commonNames).toEqual(['orders-api']);
    expect(describeKey(ec.publicKey)).toBe('ec-P-256');
    expect(keyWeakness(ec.publicKey, 2048)).toBeNull();

    const rsa = inspectCsr(csrFor(pkcs8(generateKeyPairSync('rsa', { modulusLength: 2048 })), '/CN=rsa client'));
    expect(rsa.commonNames).toEqual(['rsa client']);
    expect(describeKey(rsa.publicKey)).toBe('rsa-2048');
    expect(keyWeakness(rsa.publicKey, 2048)).toBeNull();
    expect(keyWeakness(rsa.publicKey, 3072)).toMatch(/at least 3072/);

    const ed = inspectCsr(csrFor(pkcs8(generateKeyPairSync('ed25519')), '/CN=ed'));
    expect(describeKey(ed.publicKey)).toBe('ed25519');
    expect(keyWeakness(ed.publicKey, 2048)).toBeNull();
  });

  it('flags weak or unsupported keys', () => {
    const rsa1024 = inspectCsr(csrFor(pkcs8(generateKeyPairSync('rsa', { modulusLength: 1024 })), '/CN=weak'));
    expect(keyWeakness(rsa1024.publicKey, 2048)).toMatch(/at least 2048 bits \(got 1024\)/);
    const p224 = inspectCsr(csrFor(pkcs8(generateKeyPairSync('ec', { namedCurve: 'secp224r1' })), '/CN=p224'));
    expect(keyWeakness(p224.publicKey, 2048)).toMatch(/P-256, P-384 or P-521/);
    const k1 = inspectCsr(csrFor(pkcs8(generateKeyPairSync('ec', { namedCurve: 'secp256k1' })), '/CN=k1'));
    expect(keyWeakness(k1.publicKey, 2048)).toMatch(/secp256k1/);
  });

  it('reports every CN and none when there is none', () => {
    const key = pkcs8(generateKeyPairSync('ec', { namedCurve: 'P-256' }));
    expect(inspectCsr(csrFor(key, '/CN=a/CN=b')).commonNames).toEqual(['a', 'b']);
    expect(inspectCsr(csrFor(key, '/O=no-cn')).commonNames).toEqual([]);
  });

  it('rejects what is not a well-formed request', () => {
    const good = csrFor(pkcs8(generateKeyPairSync('ec', { namedCurve: 'P-256' })), '/CN=x');
    expect(() => inspectCsr('hello')).toThrow(CsrError);
    expect(() => inspectCsr('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----')).toThrow(CsrError);
    const body = good.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    const der = Buffer.from(body, 'base64');
    const truncated = der.subarray(0, der.length - 20).toString('base64');
    expect(() => inspectCsr(`-----BEGIN CERTIFICATE REQUEST-----\n${truncated}\n-----END CERTIFICATE REQUEST-----`)).toThrow(CsrError);
    // The parser reads the first element only; bytes after it are refused here, as Vault would.
    const trailing = Buffer.concat([der, Buffer.from([0x05, 0x00])]).toString('base64');
    expect(() => inspectCsr(`-----BEGIN CERTIFICATE REQUEST-----\n${trailing}\n-----END CERTIFICATE REQUEST-----`)).toThrow('not a DER SEQUENCE');
    // A CN that is not a directory string (here a NumericString) is refused, not read as its hex.
    const numeric = Buffer.from(der);
    const cn = numeric.indexOf(Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03]));
    numeric[cn + 5] = 0x12;
    expect(() => inspectCsr(`-----BEGIN CERTIFICATE REQUEST-----\n${numeric.toString('base64')}\n-----END CERTIFICATE REQUEST-----`)).toThrow('unsupported string type in subject');
    for (let i = 0; i < 200; i++) {
      const copy = Buffer.from(der);
      copy[Math.floor(Math.random() * copy.length)] ^= 1 << Math.floor(Math.random() * 8);
      try {
        inspectCsr(`-----BEGIN CERTIFICATE REQUEST-----\n${copy.toString('base64')}\n-----END CERTIFICATE REQUEST-----`);
      } catch (err) {
        expect(err).toBeInstanceOf(CsrError);
      }
    }
  });
});

describe('certificate facts', () => {
  it('parses node subjectAltName strings, quoted values included', () => {
    expect(parseSubjectAltName('DNS:orders-api, IP Address:10.0.0.1, URI:spiffe://x/y, URI:urn:latchkey:app:orders')).toEqual({
      dns: ['orders-api'],
      ip: ['10.0.0.1'],
      uri: ['spiffe://x/y', 'urn:latchkey:app:orders'],
    });
    expect(parseSubjectAltName('URI:"urn:a:b,c", DNS:x')).toEqual({ dns: ['x'], ip: [], uri: ['urn:a:b,c'] });
    expect(parseSubjectAltName(undefined)).toEqual({ dns: [], ip: [], uri: [] });
  });

  it('derives serial, CN, app and SANs from a certificate', () => {
    const keyFile = path.join(dir, 'self.key');
    fs.writeFileSync(keyFile, pkcs8(generateKeyPairSync('ec', { namedCurve: 'P-256' })));
    const pem = execFileSync(
      'openssl',
      ['req', '-x509', '-new', '-key', keyFile, '-subj', '/CN=svc', '-days', '1', '-set_serial', '0x07c44a', '-addext', 'subjectAltName=URI:urn:latchkey:app:orders,URI:spiffe://td/svc,IP:10.1.2.3'],
      { encoding: 'utf8' },
    );
    const f = certFacts(new X509Certificate(pem));
    expect(f).toMatchObject({ serial: '07:c4:4a', commonName: 'svc', appId: 'orders', uriSans: ['spiffe://td/svc'], ipSans: ['10.1.2.3'], keyType: 'ec-P-256' });
    // No lineage URN: a lineage of its own.
    expect(f.lineage).toEqual({ lineage: '07:c4:4a', generation: 0 });
  });

  it('reads the renewal lineage a certificate states, and no lineage from a malformed or doubled one', () => {
    const urn = lineageUrn({ lineage: '0a:bc:de', generation: 3 });
    expect(urn).toBe('urn:latchkey:lineage:0abcde:3');
    expect(lineageFromSans('ff:01', ['spiffe://td/svc', urn])).toEqual({ lineage: '0a:bc:de', generation: 3 });
    expect(lineageFromSans('ff:01', [])).toEqual({ lineage: 'ff:01', generation: 0 });
    expect(lineageFromSans('ff:01', ['urn:latchkey:lineage:0abcde'])).toBeNull();
    expect(lineageFromSans('ff:01', ['urn:latchkey:lineage:0ABCDE:1'])).toBeNull();
    expect(lineageFromSans('ff:01', [urn, 'urn:latchkey:lineage:0abcde:4'])).toBeNull();
    // Latchkey's own URNs never show among the certificate's URI SANs.
    const keyFile = path.join(dir, 'lineage.key');
    fs.writeFileSync(keyFile, pkcs8(generateKeyPairSync('ec', { namedCurve: 'P-256' })));
    const pem = execFileSync('openssl', ['req', '-x509', '-new', '-key', keyFile, '-subj', '/CN=svc', '-days', '1', '-set_serial', '0x07c44b', '-addext', `subjectAltName=URI:urn:latchkey:app:orders,URI:${urn}`], { encoding: 'utf8' });
    const f = certFacts(new X509Certificate(pem));
    expect(f).toMatchObject({ uriSans: [], lineage: { lineage: '0a:bc:de', generation: 3 } });
  });

  it('computes renewAt at two thirds of the lifetime and the validity window', () => {
    expect(renewAtOf('2026-01-01T00:00:00.000Z', '2026-01-04T00:00:00.000Z')).toBe('2026-01-03T00:00:00.000Z');
    expect(windowCode(1000, 2000, 999)).toBe('NOT_YET_VALID');
    expect(windowCode(1000, 2000, 1500)).toBeNull();
    expect(windowCode(1000, 2000, 2000)).toBe('EXPIRED');
  });
});

/**
 * Property-based fuzzing (fast-check) of every parser that faces untrusted bytes:
 * key format, CIDR lists, X-Forwarded-For resolution, XFCC, PEM/CSR and audit
 * log lines. Each parser must never crash (only its documented domain outcome),
 * never leave an unhandled rejection, and never accept a malformed key.
 * Default: 5 000 cases per property; LATCHKEY_RELIABILITY_HEAVY=1: 100 000.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import { isIP } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import Fastify, { FastifyInstance } from 'fastify';
import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { decodeKey, encodeKey } from '../../libs/keys/src/format';
import { cidrWithin, ipInCidrs, normaliseCidr, normaliseCidrs } from '../../libs/keys/src/cidr';
import { clientAddress, ipAllowed, parseCidrs } from '../../libs/verify/src/verify-cache';
import { clientCertFromXfcc, parseXfcc } from '../../libs/certs/src/xfcc';
import { csrDer, CsrError, describeKey, inspectCsr, keyWeakness } from '../../libs/certs/src/csr';
import { certFacts, parseOneCert, parsePemBundle, parseSubjectAltName } from '../../libs/certs/src/cert-info';
import { CERT_VERIFY_CODES, CertVerifier } from '../../libs/certs/src/cert-verifier';
import { parseAuditLine, streamFields } from '../../libs/audit/src/audit-line';
import { HEAVY, recordFigure } from './report';

const RUNS = HEAVY ? 100_000 : 5_000;
jest.setTimeout(HEAVY ? 3_600_000 : 120_000);

const B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const b62 = (min: number, max: number) => fc.string({ unit: fc.constantFrom(...B62), minLength: min, maxLength: max });
const printable = (min: number, max: number) => fc.string({ unit: 'binary-ascii', minLength: min, maxLength: max }).filter((s) => /^[\x20-\x7e]+$/.test(s));

/** Unhandled rejections seen while this file runs (must stay 0). */
let unhandled = 0;
const onUnhandled = () => void unhandled++;
beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(() => process.off('unhandledRejection', onUnhandled));

/** Per-parser tally: cases run and failing properties (each with its counterexample). */
const tally = new Map<string, { cases: number; failures: string[]; notes: string[] }>();
function row(name: string) {
  let t = tally.get(name);
  if (!t) tally.set(name, (t = { cases: 0, failures: [], notes: [] }));
  return t;
}

async function check<T>(parser: string, label: string, prop: fc.IPropertyWithHooks<T> | fc.IAsyncPropertyWithHooks<T>, runs = RUNS): Promise<void> {
  const r = await fc.check(prop as fc.IRawProperty<T>, { numRuns: runs });
  const t = row(parser);
  t.cases += r.numRuns;
  if (r.failed) t.failures.push(`${label}: ${fc.stringify(r.counterexample)} → ${String((r.errorInstance as Error)?.message ?? r.errorInstance).slice(0, 300)}`);
}

function report(parser: string, injects: string): void {
  const t = row(parser);
  const pass = t.failures.length === 0 && unhandled === 0;
  recordFigure({
    test: `fuzz: ${parser}`,
    injects,
    figure: `${t.cases} cases, ${t.failures.length} failures, ${unhandled} unhandled rejections${t.notes.length ? `; ${t.notes.join('; ')}` : ''}`,
    target: `0 failures (${HEAVY ? '>= 100k' : '5k'} cases per property)`,
    pass,
  });
  if (!pass) throw new Error(`${parser} fuzz failures:\n${t.failures.join('\n')}`);
}

/** One random edit of a string: replace, insert, delete, swap, truncate, duplicate a slice. */
const mutation = (alphabet: string) =>
  fc.tuple(fc.nat(5), fc.nat(), fc.nat(), fc.constantFrom(...alphabet));
function mutate(s: string, [op, i, j, c]: [number, number, number, string]): string {
  const at = s.length ? i % s.length : 0;
  switch (op) {
    case 0:
      return s.slice(0, at) + c + s.slice(at + 1);
    case 1:
      return s.slice(0, at) + c + s.slice(at);
    case 2:
      return s.slice(0, at) + s.slice(at + 1);
    case 3:
      return at + 1 < s.length ? s.slice(0, at) + s[at + 1] + s[at] + s.slice(at + 2) : s;
    case 4:
      return s.slice(0, at);
    default: {
      const len = 1 + (j % 16);
      return s.slice(0, at) + s.slice(at, at + len) + s.slice(at);
    }
  }
}
const mutations = (alphabet: string) => fc.array(mutation(alphabet), { minLength: 1, maxLength: 4 });

describe('parser fuzzing', () => {
  it('key format: decodeKey never throws and accepts only exact encodeKey spellings', async () => {
    const P = 'key format';
    // Anything at all (non-strings, unicode, long strings).
    await check(P, 'any input', fc.property(fc.oneof(fc.anything(), fc.string({ unit: 'binary', maxLength: 800 })), (input) => {
      const r = decodeKey(input);
      if (r.ok) expect(encodeKey(r.token)).toBe(input);
    }));
    // Real keys, mutated: an accepted mutant must be the exact spelling of its own token.
    let acceptedMutants = 0;
    await check(P, 'mutated keys', fc.property(printable(1, 120), mutations(`${B62}_-. \u00e9`), (token, ms) => {
      const key = encodeKey(token);
      const bad = ms.reduce((s, m) => mutate(s, m), key);
      const r = decodeKey(bad);
      if (r.ok) {
        expect(encodeKey(r.token)).toBe(bad);
        if (bad !== key) acceptedMutants++;
      }
      expect(decodeKey(key)).toEqual({ ok: true, token });
    }));
    row(P).notes.push(`${acceptedMutants} mutated keys accepted`);
    if (acceptedMutants > 0) row(P).failures.push(`${acceptedMutants} mutated keys passed the checksum`);
    // Random strings of the key's exact shape: only a checksum collision (p ≈ 2^-32) may pass.
    let acceptedRandom = 0;
    await check(P, 'random key-shaped strings', fc.property(b62(20, 200), b62(6, 6), (body, sum) => {
      const s = `lk_1${body}_${sum}`;
      const r = decodeKey(s);
      if (r.ok) {
        acceptedRandom++;
        expect(encodeKey(r.token)).toBe(s);
      }
    }));
    row(P).notes.push(`${acceptedRandom} random key-shaped strings accepted`);
    if (acceptedRandom > 0) row(P).failures.push(`${acceptedRandom} random strings accepted`);
    report(P, 'random values, mutated real keys (replace/insert/delete/swap/truncate), random key-shaped strings');
  });

  const cidrText = fc.oneof(
    fc.tuple(fc.oneof(fc.ipV4(), fc.ipV4Extended(), fc.ipV6(), fc.ipV4().map((a) => `::ffff:${a}`)), fc.integer({ min: -3, max: 140 })).map(([a, b]) => `${a}/${b}`),
    fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended()),
    fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF.:/% x-'), maxLength: 70 }),
    fc.string({ unit: 'binary', maxLength: 80 }),
  );

  it('CIDR lists: never throw on garbage; normalised output re-parses to itself', async () => {
    const P = 'CIDR lists';
    await check(P, 'normaliseCidr', fc.property(fc.oneof(cidrText, fc.anything()), (c) => {
      const n = normaliseCidr(c as string);
      if (n !== null) expect(normaliseCidr(n)).toBe(n);
    }));
    await check(P, 'normaliseCidrs', fc.property(fc.array(cidrText, { maxLength: 8 }), (cs) => {
      const r = normaliseCidrs(cs);
      if (r.ok) {
        for (const c of r.cidrs) expect(normaliseCidr(c)).toBe(c);
        expect([...new Set(r.cidrs)].sort()).toEqual(r.cidrs);
        expect(normaliseCidrs(r.cidrs)).toEqual(r);
      } else expect(r.invalid.length).toBeGreaterThan(0);
    }));
    await check(P, 'ipInCidrs / cidrWithin', fc.property(fc.oneof(fc.ipV4(), fc.ipV6(), cidrText), fc.array(cidrText, { maxLength: 6 }), cidrText, (ip, cs, other) => {
      expect(typeof ipInCidrs(ip, cs)).toBe('boolean');
      for (const c of cs) expect(typeof cidrWithin(c, other)).toBe('boolean');
      // A normalised CIDR lies within itself.
      const n = normaliseCidr(other);
      if (n) expect(cidrWithin(n, n)).toBe(true);
    }));
    report(P, 'random/garbage CIDR text, IPv4/IPv6/IPv4-mapped/extended IPv4 with random prefix lengths');
  });

  describe('X-Forwarded-For', () => {
    const configs: Array<{ name: string; trustProxy: number | string[] | false }> = [
      { name: 'hops=1', trustProxy: 1 },
      { name: 'hops=2', trustProxy: 2 },
      { name: 'list', trustProxy: ['127.0.0.1', '10.0.0.0/8', '::1'] },
      { name: 'off', trustProxy: false },
    ];
    const apps: FastifyInstance[] = [];
    beforeAll(async () => {
      for (const c of configs) {
        const app = Fastify({ trustProxy: c.trustProxy, logger: false });
        app.get('/', async (req) => ({ ip: req.ip }));
        await app.ready();
        apps.push(app);
      }
    });
    afterAll(async () => Promise.all(apps.map((a) => a.close())));

    const entry = fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended(), fc.constantFrom('unknown', '', ' ', '_hidden', '1.2.3.4:80', '[::1]', '0x7f.1', '127.1'), fc.string({ unit: fc.constantFrom(...'0123456789abcdef.:[]% ,;"xyz'), maxLength: 40 }));
    const xff = fc.oneof(
      fc.array(entry, { maxLength: 6 }).map((a) => a.join(', ')),
      fc.array(entry, { minLength: 1, maxLength: 6 }).map((a) => a.join(',')),
      fc.array(fc.array(entry, { maxLength: 3 }).map((a) => a.join(',')), { minLength: 1, maxLength: 3 }),
      fc.string({ unit: 'binary-ascii', maxLength: 120 }).map((s) => s.replace(/[\r\n\0]/g, '')),
    );

    it('request.ip is the socket or an XFF entry; verify only ever sees a valid IP or "unknown"; with trust off XFF changes nothing', async () => {
      const P = 'X-Forwarded-For';
      let rawNonIp = 0;
      await check(P, 'fastify trustProxy', fc.asyncProperty(fc.nat(configs.length - 1), fc.constantFrom('127.0.0.1', '10.1.2.3', '192.0.2.7', '::1'), xff, async (ci, socket, header) => {
        const res = await apps[ci].inject({ method: 'GET', url: '/', remoteAddress: socket, headers: { 'x-forwarded-for': header } });
        expect(res.statusCode).toBe(200);
        const ip = (res.json() as { ip: string }).ip;
        const entries = (Array.isArray(header) ? header.join(',') : header).split(',');
        if (configs[ci].trustProxy === false) expect(ip).toBe(socket);
        else if (configs[ci].name === 'list' && socket === '192.0.2.7') expect(ip).toBe(socket); // untrusted peer
        // No invented value: an entry as given, modulo the whitespace trimming of proxy-addr and of HTTP
        // header values, which strip spaces and tabs only (found by this test: "\v\t," resolves to "\v").
        else expect(ip === socket || entries.some((e) => e === ip || e.trim() === ip || e.replace(/^[ \t]+|[ \t]+$/g, '') === ip)).toBe(true);
        if (isIP(ip) === 0) rawNonIp++;
        const c = clientAddress(ip);
        expect(c === undefined || isIP(c) !== 0).toBe(true);
      }));
      row(P).notes.push(`Fastify resolved ${rawNonIp} non-address values (trusted proxy's garbage), all mapped to "unknown" by clientAddress`);
      await check(P, 'ipAllowed / parseCidrs', fc.property(fc.oneof(entry, fc.constant(undefined)), fc.array(cidrText, { maxLength: 6 }), (ip, cs) => {
        const parsed = parseCidrs(cs);
        const allowed = ipAllowed(ip, parsed);
        expect(typeof allowed).toBe('boolean');
        // The hot path's pre-parsed matcher agrees with the plain one.
        expect(allowed).toBe(ip === undefined ? false : ipInCidrs(ip, cs));
      }));
      report(P, 'random XFF values and arrays (IPs, garbage, ports, brackets) from trusted/untrusted sockets under hops=1, hops=2, address list, off; ipAllowed/parseCidrs garbage');
    });
  });

  describe('certificates', () => {
    let dir: string;
    const pems: { ca: string; leaf: string; csrs: string[] } = { ca: '', leaf: '', csrs: [] };
    let verifier: CertVerifier;

    beforeAll(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-fuzz-'));
      const f = (n: string) => path.join(dir, n);
      const writeKey = (name: string, k: ReturnType<typeof generateKeyPairSync>) => fs.writeFileSync(f(name), k.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
      writeKey('ca.key', generateKeyPairSync('ec', { namedCurve: 'P-256' }));
      writeKey('ec.key', generateKeyPairSync('ec', { namedCurve: 'P-256' }));
      writeKey('rsa.key', generateKeyPairSync('rsa', { modulusLength: 2048 }));
      writeKey('ed.key', generateKeyPairSync('ed25519'));
      writeKey('p224.key', generateKeyPairSync('ec', { namedCurve: 'P-224' }));
      const ossl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      ossl('req', '-x509', '-key', f('ca.key'), '-subj', '/CN=fuzz CA', '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', f('ca.pem'));
      for (const k of ['ec', 'rsa', 'ed', 'p224']) {
        ossl('req', '-new', '-key', f(`${k}.key`), '-subj', `/CN=fuzz-${k}/O=latchkey`, '-out', f(`${k}.csr`));
        pems.csrs.push(fs.readFileSync(f(`${k}.csr`), 'utf8'));
      }
      fs.writeFileSync(f('ext.cnf'), 'subjectAltName=URI:urn:latchkey:app:fuzz,URI:spiffe://example.org/fuzz,DNS:fuzz.example,IP:10.0.0.1\nextendedKeyUsage=clientAuth\n');
      ossl('x509', '-req', '-in', f('ec.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', f('ext.cnf'), '-out', f('leaf.pem'));
      pems.ca = fs.readFileSync(f('ca.pem'), 'utf8');
      pems.leaf = fs.readFileSync(f('leaf.pem'), 'utf8');
      const ca = new X509Certificate(pems.ca);
      // Pure parsing paths only: the CA store and Vault are in-memory fakes (no Vault call is under test here).
      verifier = new CertVerifier(
        { pkiCertStatus: async () => ({ revocation_time: 0 }) } as never,
        { issuers: async () => [ca], refreshAfterMiss: async () => false } as never,
        { onRevoked: () => () => undefined, onResync: () => () => undefined } as never,
        { certs: { maxTtlSeconds: 3600 }, verify: { cacheMax: 1000, maxStalenessMs: 1000, negativeTtlMs: 1000 }, vault: { timeoutMs: 1000, pkiMount: 'pki' } } as never,
      );
    });
    afterAll(() => {
      verifier?.onModuleDestroy();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    /** A PEM block with its DER mutated (flip/insert/delete/truncate bytes), or its text mutated. */
    const derOf = (pem: string) => Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
    const wrap = (label: string, der: Buffer) => `-----BEGIN ${label}-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END ${label}-----\n`;
    const byteEdits = fc.array(fc.tuple(fc.nat(3), fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 6 });
    function mutateDer(der: Buffer, edits: Array<[number, number, number]>): Buffer {
      let b = Buffer.from(der);
      for (const [op, i, v] of edits) {
        const at = i % Math.max(1, b.length);
        if (op === 0) b[at] = v;
        else if (op === 1) b = Buffer.concat([b.subarray(0, at), Buffer.from([v]), b.subarray(at)]);
        else if (op === 2) b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
        else b = b.subarray(0, at);
      }
      return b;
    }
    const pemInput = (label: string, sources: () => string[]) =>
      fc.oneof(
        fc.tuple(fc.nat(), byteEdits).map(([k, e]) => { const s = sources(); return wrap(label, mutateDer(derOf(s[k % s.length]), e)); }),
        fc.tuple(fc.nat(), mutations(`${B62}+/=-\n `)).map(([k, ms]) => { const s = sources(); return ms.reduce((x, m) => mutate(x, m), s[k % s.length]); }),
        fc.uint8Array({ maxLength: 600 }).map((u) => wrap(label, Buffer.from(u))),
        fc.string({ unit: 'binary', maxLength: 400 }),
      );

    it('PEM/CSR: only domain errors, never a crash', async () => {
      const P = 'PEM/CSR';
      const minRsa = 2048;
      await check(P, 'inspectCsr', fc.property(pemInput('CERTIFICATE REQUEST', () => pems.csrs), (pem) => {
        try {
          csrDer(pem);
          const info = inspectCsr(pem);
          expect(Array.isArray(info.commonNames)).toBe(true);
          expect(typeof describeKey(info.publicKey)).toBe('string');
          const w = keyWeakness(info.publicKey, minRsa);
          expect(w === null || typeof w === 'string').toBe(true);
        } catch (err) {
          if (!(err instanceof CsrError)) throw new Error(`not a CsrError: ${(err as Error)?.stack ?? String(err)}`);
        }
      }));
      // The real CSRs still parse, and P-224 is refused by the key check.
      for (const c of pems.csrs) expect(inspectCsr(c).commonNames.length).toBe(1);
      await check(P, 'parseOneCert / certFacts / parseSubjectAltName', fc.property(pemInput('CERTIFICATE', () => [pems.leaf, pems.ca]), fc.string({ maxLength: 200 }), (pem, san) => {
        const cert = parseOneCert(pem);
        if (cert) {
          const facts = certFacts(cert);
          expect(typeof facts.serial).toBe('string');
        }
        parseSubjectAltName(san);
        try {
          parsePemBundle(pem);
        } catch (err) {
          // Documented to throw node's X509 parse error; it only reads Vault's own CA chain, and CaStore catches it.
          if (typeof (err as Error)?.message !== 'string') throw err; // (node's errors come from another realm than jest's Error)
        }
      }));
      const codes = new Map<string, number>();
      await check(P, 'CertVerifier.verifyPem / verifyXfcc', fc.asyncProperty(pemInput('CERTIFICATE', () => [pems.leaf, pems.ca]), fc.boolean(), async (pem, asXfcc) => {
        try {
          const r = asXfcc ? await verifier.verifyXfcc(`Cert="${encodeURIComponent(pem)}"`) : await verifier.verifyPem(pem);
          expect(CERT_VERIFY_CODES).toContain(r.code);
          codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
        } catch (err) {
          if (!(asXfcc && err instanceof LatchkeyError && err.code === ErrorCode.VALIDATION_FAILED)) throw err;
        }
      }), Math.max(1000, RUNS / 2));
      // The unmutated leaf verifies (the fakes are wired right), so the mutants were judged for real.
      expect((await verifier.verifyPem(pems.leaf)).code).toBe('VALID');
      row(P).notes.push(`verify verdicts ${JSON.stringify(Object.fromEntries(codes))}`);
      report(P, 'mutated DER/PEM of real CSRs (EC, RSA, Ed25519, P-224) and certificates made with openssl, random bytes and text');
    });

    it('XFCC: parse errors are VALIDATION_FAILED, nothing else', async () => {
      const P = 'XFCC';
      const real = `By=spiffe://example.org/envoy;Hash=${'a'.repeat(64)};Cert="${encodeURIComponent(pems.leaf)}";Subject="CN=fuzz";URI=spiffe://example.org/fuzz;DNS=fuzz.example`;
      const structured = fc
        .array(fc.array(fc.tuple(fc.constantFrom('By', 'Hash', 'Cert', 'Chain', 'Subject', 'URI', 'DNS', 'x', 'cert', ''), fc.string({ unit: fc.constantFrom(...'abc%25=";,\\ 09AF'), maxLength: 30 }), fc.boolean()), { maxLength: 5 }), { minLength: 1, maxLength: 4 })
        .map((els) => els.map((pairs) => pairs.map(([k, v, q]) => `${k}=${q ? `"${v.replace(/"/g, '\\"')}"` : v}`).join(';')).join(','));
      const input = fc.oneof(
        structured,
        mutations('";,=\\% aA0').map((ms) => ms.reduce((x, m) => mutate(x, m), real)),
        fc.string({ unit: 'binary', maxLength: 300 }),
        fc.string({ unit: fc.constantFrom(...'=;,"\\ %Aa0'), maxLength: 60 }),
        fc.anything(),
      );
      const domain = (fn: () => unknown) => {
        try {
          fn();
        } catch (err) {
          if (!(err instanceof LatchkeyError && err.code === ErrorCode.VALIDATION_FAILED)) throw new Error(`not VALIDATION_FAILED: ${(err as Error)?.stack ?? String(err)}`);
        }
      };
      await check(P, 'parseXfcc / clientCertFromXfcc', fc.property(input, (v) => {
        domain(() => {
          const els = parseXfcc(v as string);
          expect(els.length).toBeGreaterThan(0);
          for (const e of els) expect(Array.isArray(e.uri) && Array.isArray(e.dns)).toBe(true);
        });
        domain(() => clientCertFromXfcc(v as string));
      }));
      expect(clientCertFromXfcc(real).cert).toBe(pems.leaf);
      report(P, 'structured random XFCC (quoting, escapes, repeated keys), mutated real values, random text and values');
    });
  });

  it('audit log lines: skip-and-count, never throw', async () => {
    const P = 'audit log lines';
    const auditPath = process.env.AUDIT_LOG_PATH;
    const realLines = auditPath && fs.existsSync(auditPath) ? fs.readFileSync(auditPath, 'utf8').split('\n').filter((l) => l.startsWith('{')).slice(0, 200) : [];
    if (realLines.length === 0) {
      // Shape of an OpenBao 2.x response line, in case the stack's log is still empty.
      realLines.push(JSON.stringify({ type: 'response', time: '2026-01-01T00:00:00.000Z', auth: { accessor: 'abcdefghijklmnopqrstuvwx', display_name: 'token', policies: ['default'], metadata: { latchkey_app: 'a' }, token_type: 'service' }, request: { id: '8b9e6a3f-0000-4000-8000-000000000000', operation: 'update', mount_point: 'auth/token/', path: 'auth/token/lookup', remote_address: '127.0.0.1' }, response: {} }));
    }
    const shaped = fc.record({
      type: fc.oneof(fc.constantFrom('request', 'response'), fc.anything()),
      time: fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.anything()),
      request: fc.oneof(fc.record({ id: fc.anything(), path: fc.anything(), operation: fc.anything(), mount_point: fc.anything(), remote_address: fc.anything() }, { requiredKeys: [] }), fc.anything()),
      auth: fc.oneof(fc.record({ accessor: fc.anything(), policies: fc.anything(), metadata: fc.dictionary(fc.string(), fc.anything()), display_name: fc.anything() }, { requiredKeys: [] }), fc.anything()),
      error: fc.anything(),
    }, { requiredKeys: [] });
    const line = fc.oneof(
      fc.json(),
      shaped.map((o) => JSON.stringify(o) ?? ''),
      fc.tuple(fc.nat(), mutations('{}[]":,\\ 0a')).map(([k, ms]) => ms.reduce((x, m) => mutate(x, m), realLines[k % realLines.length])),
      fc.string({ unit: 'binary', maxLength: 300 }),
    );
    const reasons = new Map<string, number>();
    await check(P, 'parseAuditLine', fc.property(line, (l) => {
      const r = parseAuditLine(l);
      if (r.ok) {
        for (const f of streamFields(r.event)) expect(typeof f).toBe('string');
        reasons.set('ok', (reasons.get('ok') ?? 0) + 1);
      } else {
        expect(['empty', 'json', 'shape']).toContain(r.reason);
        reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
      }
    }));
    for (const l of realLines) expect(parseAuditLine(l).ok).toBe(true);
    row(P).notes.push(`outcomes ${JSON.stringify(Object.fromEntries(reasons))}`);
    report(P, `random JSON, audit-shaped objects with random field types, mutated real OpenBao lines (${realLines.length}), random text`);
  });
});

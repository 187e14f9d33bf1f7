import { ErrorCode, LatchkeyError } from '@latchkey/common';
import { clientCertFromXfcc, parseXfcc } from './xfcc';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUB8RK\n-----END CERTIFICATE-----\n';
const enc = (s: string) => encodeURIComponent(s);

function rejects(value: string, re?: RegExp): void {
  let err: unknown;
  try {
    parseXfcc(value);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(LatchkeyError);
  expect((err as LatchkeyError).code).toBe(ErrorCode.VALIDATION_FAILED);
  if (re) expect((err as LatchkeyError).message).toMatch(re);
}

describe('XFCC parsing (Envoy X-Forwarded-Client-Cert)', () => {
  it('parses the example from the Envoy documentation', () => {
    const v =
      'By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com';
    expect(parseXfcc(v)).toEqual([
      {
        by: 'http://frontend.lyft.com',
        hash: '468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688',
        subject: '/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client',
        uri: ['http://testclient.lyft.com'],
        dns: [],
      },
    ]);
  });

  it('splits multiple elements on commas outside quotes', () => {
    const v = 'By=spiffe://a/x;URI=spiffe://a/client,By=spiffe://b/y;Subject="CN=hop, O=b";URI=spiffe://b/proxy';
    const els = parseXfcc(v);
    expect(els).toHaveLength(2);
    expect(els[0]).toMatchObject({ by: 'spiffe://a/x', uri: ['spiffe://a/client'] });
    expect(els[1]).toMatchObject({ by: 'spiffe://b/y', subject: 'CN=hop, O=b', uri: ['spiffe://b/proxy'] });
  });

  it('unescapes quoted values with escaped quotes, semicolons and equals signs', () => {
    const [el] = parseXfcc('Subject="CN=\\"quoted\\" name; O=x=y";DNS=a.example;DNS="b.example"');
    expect(el.subject).toBe('CN="quoted" name; O=x=y');
    expect(el.dns).toEqual(['a.example', 'b.example']);
  });

  it('URL-decodes Cert and Chain (quoted or not) and treats keys case-insensitively', () => {
    const [a] = parseXfcc(`Hash=${'a'.repeat(64)};Cert="${enc(PEM)}";Chain=${enc(PEM + PEM)}`);
    expect(a.cert).toBe(PEM);
    expect(a.chain).toBe(PEM + PEM);
    const [b] = parseXfcc(`cert=${enc(PEM)};uri=urn:x:y;UnknownKey=ignored`);
    expect(b.cert).toBe(PEM);
    expect(b.uri).toEqual(['urn:x:y']);
  });

  it('picks the first element that carries a Cert', () => {
    const v = `By=spiffe://a/x;URI=spiffe://a/noCert,By=spiffe://b/y;Cert="${enc(PEM)}",Cert=${enc(PEM.replace('B8RK', 'XXXX'))}`;
    const picked = clientCertFromXfcc(v);
    expect(picked.index).toBe(1);
    expect(picked.cert).toBe(PEM);
  });

  it('rejects a value without any Cert field with a validation error (400), not a crash', () => {
    expect(() => clientCertFromXfcc('By=spiffe://a/x;Hash=' + 'b'.repeat(64) + ';URI=spiffe://a/c')).toThrow(/no element carries a Cert/);
    try {
      clientCertFromXfcc('By=x');
    } catch (err) {
      expect((err as LatchkeyError).code).toBe(ErrorCode.VALIDATION_FAILED);
    }
  });

  it.each([
    ['', /empty/],
    ['   ', /empty/],
    ['Cert', /key=value/],
    ['=value', /invalid key/],
    ['Subject="unterminated', /unterminated/],
    ['Subject="x"garbage', /after quoted value/],
    ['By=a,', /trailing comma/],
    ['By=a,,By=b', /key=value|invalid key/],
    ['Hash=nothex', /Hash/],
    ['Cert=%E0%A4%A', /URL-encoded/],
    ['By=a"b', /contains "/],
    ['By=a=b', /contains =/],
    ['Bad Key=1', /invalid key/],
  ])('rejects malformed input %j', (v, re) => rejects(v, re));

  it('bounds the size and number of elements', () => {
    rejects('By=' + 'a'.repeat(70_000), /longer than/);
    rejects(Array.from({ length: 40 }, (_, i) => `By=h${i}`).join(','), /more than/);
  });

  it('never throws anything but a validation error on arbitrary input', () => {
    const alphabet = ['a', '=', ';', ',', '"', '\\', ' ', '%', 'Cert', 'By', 'URI', '%0A', 'Hash'];
    for (let i = 0; i < 3000; i++) {
      const n = 1 + Math.floor(Math.random() * 12);
      const v = Array.from({ length: n }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join('');
      try {
        parseXfcc(v);
      } catch (err) {
        expect(err).toBeInstanceOf(LatchkeyError);
      }
    }
  });
});

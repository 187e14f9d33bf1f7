import { nonPublicRange, refusedAddress, refusedForPlainHttp, resolveWebhookHost, WebhookAddressPolicy } from './webhook-address';

const strict: WebhookAddressPolicy = { allowPrivate: false, allowedCidrs: [] };

describe('webhook address classifier', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['169.254.169.254', 'linkLocal'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fc00::1', 'uniqueLocal'],
    ['fd12:3456::1', 'uniqueLocal'],
    ['fe80::1', 'linkLocal'],
    ['ff02::1', 'multicast'],
    // IPv4-mapped IPv6 is judged as the IPv4 address it carries.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:169.254.169.254', 'linkLocal'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:100.64.0.1', 'carrierGradeNat'],
    ['[::ffff:127.0.0.1]', 'loopback'],
    // Other ways to carry an IPv4 address inside IPv6.
    ['::7f00:1', 'ipv4Compatible'],
    ['2002:7f00:1::', '6to4'],
    ['64:ff9b::7f00:1', 'rfc6052'],
    ['2001::1', 'teredo'],
  ])('%s is %s', (address, range) => {
    expect(nonPublicRange(address)).toBe(range);
    expect(refusedAddress(address, strict)).toMatch(/is a /);
  });

  it.each(['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('%s is public', (address) => {
    expect(nonPublicRange(address)).toBeNull();
    expect(refusedAddress(address, strict)).toBeNull();
  });

  it('WEBHOOK_ALLOW_PRIVATE allows everything, WEBHOOK_ALLOWED_CIDRS only its ranges', () => {
    expect(refusedAddress('127.0.0.1', { allowPrivate: true, allowedCidrs: [] })).toBeNull();
    const cidrs: WebhookAddressPolicy = { allowPrivate: false, allowedCidrs: ['10.20.0.0/16', 'fd00::/8'] };
    expect(refusedAddress('10.20.3.4', cidrs)).toBeNull();
    expect(refusedAddress('::ffff:10.20.3.4', cidrs)).toBeNull();
    expect(refusedAddress('fd01::1', cidrs)).toBeNull();
    expect(refusedAddress('10.21.0.1', cidrs)).toMatch(/private/);
    expect(refusedAddress('127.0.0.1', cidrs)).toMatch(/loopback/);
  });

  it('refuses what is not an address', () => {
    expect(refusedAddress('example.org', strict)).toMatch(/not an IP address/);
  });

  it.each([
    'http://127.0.0.1:8080/',
    'http://2130706433/',
    'http://0x7f.1/',
    'http://0177.0.0.1/',
    'http://127.1/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::1]/',
    'http://169.254.169.254/latest/meta-data/',
    'http://0/',
    'https://[fe80::1]/',
  ])('URL literal %s is refused (WHATWG parsing makes decimal, octal and hex IPv4 canonical)', async (url) => {
    const where = await resolveWebhookHost(new URL(url).hostname, strict);
    expect(where).toHaveProperty('refused');
  });

  it('a name is judged by what it resolves to', async () => {
    expect(await resolveWebhookHost('localhost', strict)).toHaveProperty('refused');
    expect(await resolveWebhookHost('localhost', { allowPrivate: false, allowedCidrs: ['127.0.0.0/8', '::1/128'] })).toHaveProperty('addresses');
    expect(await resolveWebhookHost('no-such-host.invalid', strict)).toHaveProperty('refused');
  });
});

describe('plain http restricted to loopback (WEBHOOK_ALLOW_HTTP=loopback)', () => {
  it('accepts loopback addresses only, every one of them', () => {
    expect(refusedForPlainHttp([{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }, { address: '::ffff:127.0.0.1', family: 6 }])).toBeNull();
    for (const address of ['10.0.0.1', '93.184.216.34', '169.254.169.254', '2606:4700::1111', 'fd00::1']) {
      expect(refusedForPlainHttp([{ address: '127.0.0.1', family: 4 }, { address, family: address.includes(':') ? 6 : 4 }])).toMatch(/loopback addresses only/);
    }
  });
});

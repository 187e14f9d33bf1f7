import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Where webhooks may go. Webhook URLs are chosen by app managers, and the
 * worker POSTs from inside the deployment: without this, a webhook could reach
 * the cloud metadata service, Vault, Redis or anything else on the internal
 * network (SSRF). Only global unicast addresses are allowed, unless the
 * operator allows private ones (WEBHOOK_ALLOW_PRIVATE) or some ranges
 * (WEBHOOK_ALLOWED_CIDRS).
 */
export interface WebhookAddressPolicy {
  allowPrivate: boolean;
  /** Canonical CIDRs allowed even though they are not global unicast. */
  allowedCidrs: string[];
}

/** ipaddr.js does not single this one out: IPv4-compatible IPv6 (::a.b.c.d, deprecated) still reaches the embedded IPv4 on some stacks. */
const IPV4_COMPATIBLE = ipaddr.parseCIDR('::/96');

/**
 * Why an address is not global unicast (ipaddr.js's range name, e.g.
 * "loopback", "private", "linkLocal", "carrierGradeNat", "uniqueLocal",
 * "6to4"), or null if it is. IPv4-mapped IPv6 is judged as the IPv4 address.
 * Throws on what is not an IP address.
 */
export function nonPublicRange(address: string): string | null {
  const addr = ipaddr.process(address.replace(/^\[|\]$/g, ''));
  const range = addr.range();
  if (range !== 'unicast') return range;
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).match(IPV4_COMPATIBLE as [ipaddr.IPv6, number])) return 'ipv4Compatible';
  return null;
}

/** Null when the policy lets a webhook connect to `address`, else the reason. */
export function refusedAddress(address: string, policy: WebhookAddressPolicy): string | null {
  let range: string | null;
  try {
    range = nonPublicRange(address);
  } catch {
    return `${address.slice(0, 60)} is not an IP address`;
  }
  if (range === null || policy.allowPrivate) return null;
  const addr = ipaddr.process(address.replace(/^\[|\]$/g, ''));
  for (const cidr of policy.allowedCidrs) {
    const [net, bits] = ipaddr.parseCIDR(cidr);
    if (net.kind() === addr.kind() && addr.match(net, bits)) return null;
  }
  return `${addr.toString()} is a ${range} address`;
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/**
 * Resolve a URL host (WHATWG form: IPv4 literals already canonical, IPv6 in
 * brackets) and check every address; all must be allowed, or the host is
 * refused (a name with one internal address among public ones is still a way in).
 */
export async function resolveWebhookHost(hostname: string, policy: WebhookAddressPolicy): Promise<{ addresses: ResolvedAddress[] } | { refused: string }> {
  const host = hostname.replace(/^\[|\]$/g, '');
  let addresses: ResolvedAddress[];
  if (isIP(host)) {
    addresses = [{ address: host, family: isIP(host) as 4 | 6 }];
  } else {
    try {
      addresses = (await dnsLookup(host, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family as 4 | 6 }));
    } catch (err) {
      return { refused: `${host.slice(0, 100)} does not resolve (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
    }
    if (!addresses.length) return { refused: `${host.slice(0, 100)} does not resolve` };
  }
  for (const a of addresses) {
    const why = refusedAddress(a.address, policy);
    if (why) return { refused: `${host.slice(0, 100)}: ${why}` };
  }
  return { addresses };
}

/**
 * WEBHOOK_ALLOW_HTTP=loopback (what `npm run dev` sets): plain http only to a receiver on this machine, where
 * nobody on the network can read the wrapping token on its way. Null when every address is loopback, else why not.
 */
export function refusedForPlainHttp(addresses: ResolvedAddress[]): string | null {
  for (const a of addresses) {
    let range: string | null;
    try {
      range = nonPublicRange(a.address);
    } catch {
      return `${a.address.slice(0, 60)} is not an IP address`;
    }
    if (range !== 'loopback') return `plain http is allowed to loopback addresses only (WEBHOOK_ALLOW_HTTP=loopback), not ${a.address.slice(0, 60)}`;
  }
  return null;
}

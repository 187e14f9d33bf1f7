import ipaddr from 'ipaddr.js';
import { createHash } from 'node:crypto';

/**
 * Normalise a CIDR (or a bare address, taken as a host route) to canonical
 * text: "10.1.2.3/8" → "10.0.0.0/8", "::ffff:10.0.0.1/128" → "10.0.0.1/32".
 * Returns null for anything ipaddr.js cannot parse.
 */
export function normaliseCidr(input: string): string | null {
  if (typeof input !== 'string' || input.length > 64) return null;
  const text = input.trim();
  try {
    let [addr, bits] = text.includes('/') ? ipaddr.parseCIDR(text) : [ipaddr.parse(text), -1];
    if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
      addr = (addr as ipaddr.IPv6).toIPv4Address();
      bits = bits === -1 ? -1 : bits - 96;
      if (bits !== -1 && bits < 0) return null;
    }
    if (bits === -1) bits = addr.kind() === 'ipv4' ? 32 : 128;
    const network = addr.kind() === 'ipv4'
      ? ipaddr.IPv4.networkAddressFromCIDR(`${addr.toString()}/${bits}`)
      : ipaddr.IPv6.networkAddressFromCIDR(`${addr.toString()}/${bits}`);
    return `${network.toString()}/${bits}`;
  } catch {
    return null;
  }
}

/** Sorted, de-duplicated canonical CIDRs; throws with the bad entries listed. */
export function normaliseCidrs(inputs: string[]): { ok: true; cidrs: string[] } | { ok: false; invalid: string[] } {
  const out = new Set<string>();
  const invalid: string[] = [];
  for (const c of inputs) {
    const n = normaliseCidr(c);
    if (n) out.add(n);
    else invalid.push(String(c).slice(0, 64));
  }
  return invalid.length ? { ok: false, invalid } : { ok: true, cidrs: [...out].sort() };
}

/** True when `inner` lies entirely within `outer` (same family); false when either does not parse. */
export function cidrWithin(inner: string, outer: string): boolean {
  try {
    const [ia, ib] = ipaddr.parseCIDR(inner);
    const [oa, ob] = ipaddr.parseCIDR(outer);
    if (ia.kind() !== oa.kind() || ib < ob) return false;
    return ia.match(oa, ob);
  } catch {
    // e.g. a hand-edited profile CIDR: "not within" fails closed (the mint is refused), never a 500.
    return false;
  }
}

/** Short, stable hash of a normalised CIDR set, naming its derived token role. */
export function cidrSetHash(cidrs: string[]): string {
  return createHash('sha256').update([...cidrs].sort().join(',')).digest('hex').slice(0, 10);
}

/** Does the address (any textual form) fall in one of the CIDRs? IPv4-mapped IPv6 is compared as IPv4. */
export function ipInCidrs(ip: string, cidrs: string[]): boolean {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.process(ip);
  } catch {
    return false;
  }
  for (const c of cidrs) {
    try {
      const [net, bits] = ipaddr.parseCIDR(c);
      if (net.kind() === addr.kind() && addr.match(net, bits)) return true;
    } catch {
      // skip entries that do not parse
    }
  }
  return false;
}

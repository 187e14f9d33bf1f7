import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import ipaddr from 'ipaddr.js';

/**
 * Canonical forms of certificate names, so that name ownership (one app per
 * name, see CertIndex.claimSubject) compares what a relying party would treat
 * as the same identity, not the exact bytes a client sent.
 *
 * Node's WHATWG `URL` is not enough here: for non-special schemes such as
 * spiffe:// it resolves `.`/`..` segments (also `%2e%2e`) but neither lowercases
 * the host nor strips its trailing dot nor decodes `%61`; for urn: the whole
 * rest is an opaque path it leaves untouched. So this module does RFC 3986
 * section 6.2.2 itself.
 */

const UNRESERVED_RE = /^[A-Za-z0-9\-._~]$/;

/** Decode percent-encoded unreserved characters and uppercase the hex of the rest; null on a malformed escape. */
export function normalizePercentEncoding(s: string): string | null {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c !== '%') {
      out += c;
      continue;
    }
    const hex = s.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return null;
    const ch = String.fromCharCode(parseInt(hex, 16));
    out += UNRESERVED_RE.test(ch) ? ch : `%${hex.toUpperCase()}`;
    i += 2;
  }
  return out;
}

/** RFC 3986 section 5.2.4 (remove_dot_segments) on an absolute path. */
export function removeDotSegments(path: string): string {
  const input = path.split('/');
  const out: string[] = [];
  // input[0] is the empty string before the leading slash.
  for (let i = 1; i < input.length; i++) {
    const seg = input[i];
    const last = i === input.length - 1;
    if (seg === '.') {
      if (last) out.push('');
    } else if (seg === '..') {
      out.pop();
      if (last) out.push('');
    } else {
      out.push(seg);
    }
  }
  return out.length ? `/${out.join('/')}` : '';
}

/** A DNS name or CN compared case-insensitively, with one trailing dot dropped and IDNs in punycode. */
export function normalizeDnsName(name: string): string {
  let n = name.trim();
  if (n.endsWith('.') && n.length > 1) n = n.slice(0, -1);
  // domainToASCII returns '' for what is not a domain (e.g. a CN with spaces): lowercase is then the best we can do.
  const ascii = /[^\x00-\x7f]/.test(n) ? domainToASCII(n) : '';
  return (ascii || n).toLowerCase();
}

/** The claim key of a common name. */
export function normalizeCommonName(cn: string): string {
  return normalizeDnsName(cn);
}

/**
 * A SPIFFE ID or URN in canonical form: scheme (and URN NID) lowercased,
 * percent-encoding normalised, and for spiffe:// the host lowercased without a
 * trailing dot and the path without `.`/`..` segments. Other URIs get the
 * generic treatment (scheme case and percent-encoding only). Null when the
 * percent-encoding is malformed.
 */
export function normalizeUri(uri: string): string | null {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s.exec(uri.trim());
  if (!m) return null;
  const scheme = m[1].toLowerCase();
  const rest = normalizePercentEncoding(m[2]);
  if (rest === null) return null;
  if (scheme === 'urn') {
    const nid = /^([^:]*)(:.*)?$/s.exec(rest) as RegExpExecArray;
    return `urn:${nid[1].toLowerCase()}${nid[2] ?? ''}`;
  }
  if (rest.startsWith('//')) {
    const auth = /^\/\/([^/?#]*)([^?#]*)(.*)$/s.exec(rest) as RegExpExecArray;
    let host = auth[1].toLowerCase();
    if (host.endsWith('.') && host.length > 1) host = host.slice(0, -1);
    return `${scheme}://${host}${removeDotSegments(auth[2])}${auth[3]}`;
  }
  return `${scheme}:${rest}`;
}

/**
 * The part of a URI SAN that ownership compares. RFC 8141 section 3: URNs are
 * equivalent regardless of their r-, q- and f-components (`?+…`, `?=…`, `#…`),
 * so `urn:x:a#b` must not escape an owner of `urn:x:a`.
 */
export function uriOwnershipKey(uri: string): string {
  const n = normalizeUri(uri) ?? uri;
  return n.startsWith('urn:') ? n.replace(/[?#].*$/s, '') : n;
}

/** An IP address in canonical form (IPv4-mapped IPv6 as the IPv4 address, as X.509 encodes it); null if not an address. */
export function normalizeIp(ip: string): string | null {
  // isIP refuses inet_aton forms (0x7f.1, 2130706433) that ipaddr.js accepts; a zone index means nothing in a certificate.
  if (isIP(ip) === 0 || ip.includes('%')) return null;
  return ipaddr.process(ip).toString();
}

/** Host labels Go's x509 parser accepts in a URI SAN (no empty label): Vault answers 500 after signing otherwise. */
export function hostHasEmptyLabel(uri: string): boolean {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(uri);
  if (!m) return false;
  const host = m[1].replace(/:\d*$/, '');
  return host.split('.').some((l) => l === '');
}

/**
 * Certificate serial numbers. Vault names them in lowercase colon hex
 * (`1f:2a:…`); URLs and tools also use plain hex (`1F2A…`, openssl) or
 * hyphens. Everything is normalised to Vault's form, which is also the form
 * latchkey stores, publishes on the revocation channel and answers with.
 */
const PLAIN_RE = /^[0-9a-fA-F]{2,80}$/;
const SEPARATED_RE = /^[0-9a-fA-F]{1,2}([:-][0-9a-fA-F]{1,2}){0,39}$/;

/** Vault's colon-hex form, or null when the input is not a serial. */
export function normalizeSerial(input: string): string | null {
  if (typeof input !== 'string') return null;
  const s = input.trim();
  let hex: string;
  if (PLAIN_RE.test(s)) hex = s.length % 2 ? `0${s}` : s;
  else if (SEPARATED_RE.test(s)) hex = s.split(/[:-]/).map((b) => b.padStart(2, '0')).join('');
  else return null;
  return hex.toLowerCase().match(/../g)!.join(':');
}

/**
 * The serial of a parsed certificate (node gives uppercase hex without
 * separators, with a leading zero byte stripped or kept as DER encoded it).
 */
export function serialOfX509(serialNumber: string): string {
  return normalizeSerial(serialNumber) ?? serialNumber.toLowerCase();
}

/** Compact hex for Redis members and metrics labels. */
export function plainSerial(colon: string): string {
  return colon.replace(/:/g, '');
}

import { ErrorCode, LatchkeyError } from '@latchkey/common';

/** One element of an Envoy `X-Forwarded-Client-Cert` value: what one proxy saw of its client's certificate. */
export interface XfccElement {
  by?: string;
  hash?: string;
  /** URL-decoded PEM of the client certificate. */
  cert?: string;
  /** URL-decoded PEM of the client's chain. */
  chain?: string;
  subject?: string;
  uri: string[];
  dns: string[];
}

const MAX_LENGTH = 64 * 1024;
const MAX_ELEMENTS = 32;
const KEY_RE = /^[A-Za-z]{1,32}$/;

function malformed(why: string): LatchkeyError {
  return new LatchkeyError(ErrorCode.VALIDATION_FAILED, `xfcc: ${why}`);
}

function urlDecode(key: string, v: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    throw malformed(`${key} is not URL-encoded`);
  }
}

/**
 * Parse an Envoy X-Forwarded-Client-Cert value
 * (https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_conn_man/headers#x-forwarded-client-cert):
 * elements separated by `,`, key=value pairs by `;`, values optionally in
 * double quotes with `\"` escapes (required when they contain `,;=`). Keys are
 * case-insensitive; `URI` and `DNS` may repeat; `Cert` and `Chain` are
 * URL-encoded PEM. Unknown keys are ignored (Envoy may add more). Anything
 * that does not follow this grammar throws VALIDATION_FAILED (a 400, never a 500).
 */
export function parseXfcc(value: string): XfccElement[] {
  if (typeof value !== 'string' || value.trim() === '') throw malformed('empty value');
  if (value.length > MAX_LENGTH) throw malformed(`longer than ${MAX_LENGTH} characters`);
  const elements: XfccElement[] = [];
  let el: XfccElement = { uri: [], dns: [] };
  let pairs = 0;
  let i = 0;
  const n = value.length;
  const skipSpaces = () => {
    while (i < n && (value[i] === ' ' || value[i] === '\t')) i++;
  };
  for (;;) {
    skipSpaces();
    const eq = value.indexOf('=', i);
    if (eq < 0) throw malformed(`expected key=value at offset ${i}`);
    const key = value.slice(i, eq).trim();
    if (!KEY_RE.test(key)) throw malformed(`invalid key at offset ${i}`);
    i = eq + 1;
    let raw = '';
    if (value[i] === '"') {
      i++;
      let closed = false;
      while (i < n) {
        const c = value[i];
        if (c === '\\' && i + 1 < n) {
          raw += value[i + 1];
          i += 2;
        } else if (c === '"') {
          i++;
          closed = true;
          break;
        } else {
          raw += c;
          i++;
        }
      }
      if (!closed) throw malformed(`unterminated quoted value for ${key}`);
      skipSpaces();
      if (i < n && value[i] !== ';' && value[i] !== ',') throw malformed(`unexpected character after quoted value of ${key}`);
    } else {
      const start = i;
      while (i < n && value[i] !== ';' && value[i] !== ',') {
        if (value[i] === '"' || value[i] === '=') throw malformed(`unquoted value of ${key} contains ${value[i]}`);
        i++;
      }
      raw = value.slice(start, i).trim();
    }
    assign(el, key, raw);
    pairs++;
    if (i >= n) break;
    const sep = value[i++];
    if (sep === ',') {
      elements.push(el);
      if (elements.length >= MAX_ELEMENTS) throw malformed(`more than ${MAX_ELEMENTS} elements`);
      el = { uri: [], dns: [] };
      pairs = 0;
      skipSpaces();
      if (i >= n) throw malformed('trailing comma');
    } else {
      skipSpaces();
      if (i >= n) break; // a trailing ';' is tolerated
    }
  }
  if (pairs === 0) throw malformed('empty element');
  elements.push(el);
  return elements;
}

function assign(el: XfccElement, key: string, raw: string): void {
  switch (key.toLowerCase()) {
    case 'by':
      el.by = raw;
      break;
    case 'hash':
      if (!/^[0-9a-fA-F]{64}$/.test(raw)) throw malformed('Hash must be 64 hex characters (SHA-256)');
      el.hash = raw.toLowerCase();
      break;
    case 'cert':
      el.cert = urlDecode('Cert', raw);
      break;
    case 'chain':
      el.chain = urlDecode('Chain', raw);
      break;
    case 'subject':
      el.subject = raw;
      break;
    case 'uri':
      el.uri.push(raw);
      break;
    case 'dns':
      el.dns.push(raw);
      break;
    default:
    // Unknown keys are ignored: Envoy may add fields in later versions.
  }
}

/**
 * The element to authenticate: the first one carrying a certificate. With
 * Envoy's APPEND_FORWARD each proxy appends what it saw, so the first element
 * describes the original client.
 */
export function clientCertFromXfcc(value: string): { element: XfccElement; index: number; cert: string } {
  const elements = parseXfcc(value);
  const index = elements.findIndex((e) => e.cert !== undefined && e.cert !== '');
  if (index < 0) {
    throw malformed('no element carries a Cert field (configure Envoy with set_current_client_cert_details: { cert: true })');
  }
  return { element: elements[index], index, cert: elements[index].cert as string };
}

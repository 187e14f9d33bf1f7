/**
 * Central secret redaction. Used by the logger (pino `redact` paths for
 * structured fields, plus a string scrubber for free text such as error
 * messages and stack traces) so that no key, Vault token, wrapping token or
 * private key reaches a log line, whatever code path produced it.
 */

/** Structured fields that always hold secrets. */
export const REDACT_PATHS: string[] = [
  'req.headers.authorization',
  'req.headers["x-vault-token"]',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.key',
  '*.token',
  '*.client_token',
  '*.clientToken',
  '*.secret_id',
  '*.secretId',
  '*.wrapToken',
  '*.wrap_token',
  '*.privateKey',
  '*.private_key',
  '*.password',
];

const PATTERNS: Array<[RegExp, string]> = [
  // PEM private keys (any algorithm, encrypted or not).
  [/-----BEGIN ([A-Z ]+ )?PRIVATE KEY-----[\s\S]*?-----END ([A-Z ]+ )?PRIVATE KEY-----/g, '[REDACTED PRIVATE KEY]'],
  // Vault/OpenBao tokens: legacy s./b./r., HashiCorp hvs./hvb./hvr.; treated as opaque after the prefix.
  [/\b(?:hv[sbr]|[sbr])\.[A-Za-z0-9_-]{20,}(?:\.[A-Za-z0-9_-]+)?/g, '[REDACTED TOKEN]'],
  // latchkey keys: <prefix>_<body>_<checksum>. Prefix is configurable, so match the shape.
  [/\b[a-z][a-z0-9]{0,15}_[A-Za-z0-9]{20,}_[A-Za-z0-9]{6}\b/g, '[REDACTED KEY]'],
  // Bearer / X-Vault-Token values echoed in free text.
  [/(bearer\s+)[^\s"',]+/gi, '$1[REDACTED]'],
  [/(x-vault-token["']?\s*[:=]\s*["']?)[^\s"',]+/gi, '$1[REDACTED]'],
];

/** Replace anything secret-shaped in free text. */
export function redactText(text: string): string {
  let out = text;
  for (const [re, repl] of PATTERNS) out = out.replace(re, repl);
  return out;
}

/**
 * Does free text hold something shaped like a secret itself (a private key, a Vault token, a latchkey key)?
 * For input that latchkey stores and shows to others, such as a revocation reason. Words like "bearer" alone
 * are not secrets.
 */
export function containsSecret(text: string): boolean {
  return PATTERNS.slice(0, 3).some(([re]) => new RegExp(re.source, re.flags.replace('g', '')).test(text));
}

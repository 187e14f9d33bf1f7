import { ErrorCode, LatchkeyError, redactText } from '@latchkey/common';

/**
 * Turn whatever node-vault/axios threw into a LatchkeyError that is safe to log
 * and to show. The original error is deliberately NOT kept as `cause`: axios
 * errors carry the request config (body with tokens, X-Vault-Token header).
 */
export function mapVaultError(err: unknown, operation: string): LatchkeyError {
  if (err instanceof LatchkeyError) return err;
  const e = err as { response?: { statusCode?: number; body?: unknown }; code?: string; message?: string };

  const status = e?.response?.statusCode;
  if (typeof status === 'number') {
    const vaultMessage = firstVaultError(e.response?.body) ?? `status ${status}`;
    const msg = `Vault ${operation}: ${vaultMessage}`;
    const details = { vaultStatus: status };
    if (status === 400) return new LatchkeyError(ErrorCode.VAULT_BAD_REQUEST, msg, { details });
    if (status === 403) return new LatchkeyError(ErrorCode.VAULT_PERMISSION_DENIED, msg, { details });
    if (status === 404) return new LatchkeyError(ErrorCode.VAULT_NOT_FOUND, msg, { details });
    if (status === 503 && /seal/i.test(vaultMessage)) {
      return new LatchkeyError(ErrorCode.VAULT_SEALED, msg, { details, retryAfter: 5 });
    }
    // A Vault 5xx is the server failing, not the request: e.g. 500 "internal error" when no audit
    // device can write (Vault refuses what it cannot audit) or storage fails. Retryable: 503.
    if (status === 429 || status === 412 || status >= 500) {
      return new LatchkeyError(ErrorCode.VAULT_UNAVAILABLE, msg, { details, retryAfter: 2 });
    }
    return new LatchkeyError(ErrorCode.VAULT_ERROR, msg, { details });
  }

  const code = e?.code;
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT' || code === 'ERR_CANCELED' || code === 'ESOCKETTIMEDOUT') {
    return new LatchkeyError(ErrorCode.VAULT_TIMEOUT, `Vault ${operation}: timed out`, { retryAfter: 2 });
  }
  if (
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'ENOTFOUND' ||
    code === 'EHOSTUNREACH' ||
    code === 'EAI_AGAIN' ||
    code === 'EPIPE' ||
    code === 'ERR_SOCKET_CLOSED'
  ) {
    return new LatchkeyError(ErrorCode.VAULT_UNAVAILABLE, `Vault ${operation}: unreachable (${code})`, { retryAfter: 2 });
  }
  return new LatchkeyError(ErrorCode.VAULT_ERROR, `Vault ${operation}: ${redactText(String(e?.message ?? 'unknown error'))}`);
}

function firstVaultError(body: unknown): string | undefined {
  const errors = (body as { errors?: unknown })?.errors;
  if (!Array.isArray(errors) || errors.length === 0) return undefined;
  // Vault wraps multierrors as "1 error occurred:\n\t* msg\n\n"; keep the messages only.
  const text = errors
    .map((m) => String(m))
    .join('; ')
    .replace(/\d+ errors? occurred:/g, '')
    .replace(/\s*\n\t\*\s*/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return redactText(text).slice(0, 500);
}

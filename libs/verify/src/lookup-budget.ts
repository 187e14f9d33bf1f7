import { ErrorCode, LatchkeyError, TokenBucket } from '@latchkey/common';

/** Kept here too: verify's callers import it from this lib. */
export { TokenBucket };

/**
 * Verify had to ask Vault about a key it has not cached but the lookup budget
 * is spent: no verdict (fail closed), answered 503 with Retry-After like a
 * Vault outage. Not NOT_FOUND: the key may well be valid, and a gateway must
 * not tell a real client its key is unknown.
 */
export class LookupBudgetExhaustedError extends LatchkeyError {
  constructor() {
    super(ErrorCode.VAULT_UNAVAILABLE, 'verify cannot ask Vault now (lookup budget exhausted); retry shortly', { retryAfter: 1 });
  }
}

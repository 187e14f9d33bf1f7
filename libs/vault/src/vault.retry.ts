import { setTimeout as delay } from 'node:timers/promises';
import { Counter, register } from 'prom-client';

/**
 * Retries of Vault calls that Vault certainly did not perform, within the call's own timeout: what a
 * client of a raft cluster meets while a node is sealed or while the cluster elects a new leader (see
 * docs/vault-notes.md, "HA / raft cluster"). Anything that may have been performed is never retried here.
 */

const retries = (() => {
  const name = 'latchkey_vault_retries_total';
  return (
    (register.getSingleMetric(name) as Counter<'operation' | 'reason'> | undefined) ??
    new Counter({ name, help: 'Vault calls asked again because Vault certainly did not perform them (sealed node, election, refused connection)', labelNames: ['operation', 'reason'] })
  );
})();

/** Statuses and messages a node answers with before routing the request anywhere (measured on OpenBao 2.7). */
const NOT_PERFORMED_5XX = /vault is sealed|local node not active|active cluster node not found|node is not active|standby/i;
const KV_UPGRADING = /waiting for the primary to upgrade from non-versioned to versioned data/i;
/** The connection was never made: nothing was sent. */
const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/** The connection broke before an answer: the request may have been written and performed. Safe for reads only. */
const BROKEN_BEFORE_ANSWER = new Set(['ECONNRESET', 'EPIPE', 'ERR_SOCKET_CLOSED']);

function vaultErrorText(body: unknown): string {
  const errors = (body as { errors?: unknown } | undefined)?.errors;
  return Array.isArray(errors) ? errors.map(String).join('; ') : '';
}

/**
 * Why an attempt may be asked again (a metric label), or undefined when it must not be. `readOnly`: the call
 * changes nothing in Vault (GET, LIST, lookups, capabilities, transit sign), so a broken connection is
 * safe to retry too. Timeouts are never retried: the call's budget is spent, and a write may have landed.
 */
export function retryReason(err: unknown, readOnly: boolean): string | undefined {
  const e = err as { response?: { statusCode?: number; body?: unknown }; code?: string; message?: string } | undefined;
  const status = e?.response?.statusCode;
  if (typeof status === 'number') {
    const text = vaultErrorText(e?.response?.body);
    if ((status === 503 || status === 500) && NOT_PERFORMED_5XX.test(text)) return /sealed/i.test(text) ? 'sealed' : 'no_active_node';
    // A KV v2 mount just created answers this while it upgrades its storage layout; a standby answers it
    // until it has seen the upgrade through raft. The backend refused the request before doing anything.
    if (status === 400 && KV_UPGRADING.test(text)) return 'kv_upgrading';
    return undefined;
  }
  const code = e?.code;
  if (code && NEVER_CONNECTED.has(code)) return 'refused';
  if (readOnly && ((code && BROKEN_BEFORE_ANSWER.has(code)) || /socket hang up/i.test(String(e?.message ?? '')))) return 'reset';
  return undefined;
}

/** 50, 100, 200, 400, 800, 1000, 1000… ms, with up to 20 % jitter so that many callers do not retry in step. */
export function backoffMs(attempt: number): number {
  const base = Math.min(50 * 2 ** (attempt - 1), 1000);
  return Math.round(base * (1 + Math.random() * 0.2));
}

/**
 * Run `attempt(remainingMs)` until it succeeds, fails for a reason not retried, or the budget (`timeoutMs`,
 * the call's whole timeout) would run out before the next attempt. The last error is thrown as is.
 */
export async function withVaultRetry<T>(operation: string, timeoutMs: number, readOnly: boolean, attempt: (remainingMs: number) => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let n = 1; ; n++) {
    try {
      return await attempt(Math.max(1, deadline - Date.now()));
    } catch (err) {
      const reason = retryReason(err, readOnly);
      const wait = backoffMs(n);
      // Leave the next attempt a useful slice of the budget (a loopback Vault answers in a few ms).
      if (!reason || Date.now() + wait + 25 >= deadline) throw err;
      retries.inc({ operation, reason });
      await delay(wait);
    }
  }
}

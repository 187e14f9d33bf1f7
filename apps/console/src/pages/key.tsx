import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { call, get, KeyDetail, KeyUsage, seg } from '../api';
import { UsageChart } from '../chart';
import { href } from '../router';
import { Dialog, duration, ErrorBox, ForgetButton, FormActions, KV, List, Notice, PeriodSelect, SecretField, StateBadge, THead, Time, useAction, useFocusHeading, useLoad, usePoll, Warnings } from '../ui';
import { AuditTable } from './audit';

/** How often the key page re-reads usage while it is open (the API's own freshness is a few seconds). */
const USAGE_POLL_MS = 5000;

/** One key: live state from Vault, limits and credits, its rotation lineage, usage, its events, and the actions. */
export function KeyPage({ keyId }: { keyId: string }) {
  const h1 = useRef<HTMLHeadingElement>(null);
  const key = useLoad(() => get<KeyDetail>(`/v1/keys/${seg(keyId)}`), [keyId]);
  useFocusHeading(h1, [keyId, key.data?.keyId]);
  const [action, setAction] = useState<'renew' | 'rotate' | 'revoke' | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const k = key.data;
  const done = (msg: string) => {
    setAction(null);
    setNotice(msg);
    key.reload();
  };
  return (
    <main id="main">
      <p class="crumbs">
        {k && (
          <>
            <a href={href(['apps', k.appId, 'keys'])}>{k.appId}</a> › key
          </>
        )}
      </p>
      <h1 ref={h1} tabIndex={-1}>
        {k ? k.name : 'Key'} <span class="mono small">{keyId}</span> {k && <StateBadge state={k.state} />}
      </h1>
      <ErrorBox error={key.error} />
      {notice && <Notice kind="ok">{notice}</Notice>}
      {k && (
        <>
          <div class="toolbar">
            <button type="button" onClick={() => setAction('renew')} disabled={k.state === 'revoked' || k.state === 'expired'}>
              Renew
            </button>
            <button type="button" onClick={() => setAction('rotate')} disabled={k.state !== 'active'}>
              Rotate
            </button>
            <button type="button" class="danger" onClick={() => setAction('revoke')} disabled={k.state === 'revoked' || k.state === 'expired'}>
              Revoke…
            </button>
          </div>
          <div class="grid2">
            <section aria-labelledby="live-h">
              <h2 id="live-h">Live state (Vault)</h2>
              {k.live ? (
                <KV
                  items={[
                    ['TTL left', <Countdown expiresAt={k.live.expiresAt} ttlSeconds={k.live.ttlSeconds} renewable={k.live.renewable} />],
                    ['Expires', <Time iso={k.live.expiresAt} />],
                    ['Policies', <List values={k.live.policies} />],
                    ['Bound CIDRs', <List values={k.live.boundCidrs} empty="any address" />],
                    ['Uses left', k.live.numUsesLeft ? String(k.live.numUsesLeft) : 'unlimited'],
                  ]}
                />
              ) : (
                <p class="muted">Vault no longer knows this token ({k.state}).</p>
              )}
            </section>
            <section aria-labelledby="rec-h">
              <h2 id="rec-h">Key</h2>
              <KV
                items={[
                  ['App', <a href={href(['apps', k.appId, 'keys'])}>{k.appId}</a>],
                  ['Profile', k.profile],
                  ['Created', <Time iso={k.createdAt} />],
                  ['CIDRs', <List values={k.cidrs} empty="any address" />],
                  ['Certificate binding', k.certSerial ? <a href={href(['certs', k.certSerial])}>{k.certSerial} (and its renewals)</a> : <span class="muted">none</span>],
                  ['Next rotation', <Time iso={k.nextRotationAt} />],
                  ...(k.revokeAt ? ([['Revoked at the end of grace', <Time iso={k.revokeAt} />]] as Array<[string, ComponentChildren]>) : []),
                  ...(k.revokedAt
                    ? ([
                        ['Revoked', <Time iso={k.revokedAt} />],
                        ['Revoked by', k.revokedBy ? `${k.revokedBy.name ?? ''} (${k.revokedBy.actor})` : '—'],
                        ['Reason', k.revokeReason ?? '—'],
                      ] as Array<[string, ComponentChildren]>)
                    : []),
                  ['Metadata', <Meta meta={k.meta} />],
                ]}
              />
            </section>
          </div>
          {(k.limits?.length || k.credits) && (
            <section aria-labelledby="limits-h">
              <h2 id="limits-h">Limits and credits</h2>
              {k.limits?.length ? (
                <div class="table-wrap" tabIndex={0} role="region" aria-label="Limits">
                  <table>
                    <THead cols={['Limit', 'Allowed', 'Window', 'Mode', 'Remaining', 'Resets']} />
                    <tbody>
                      {k.limits.map((l) => (
                        <tr key={l.name}>
                          <td>{l.name}</td>
                          <td>{l.limit}</td>
                          <td>{l.window}</td>
                          <td>{l.mode}</td>
                          <td>{l.remaining}</td>
                          <td>
                            <Time iso={l.resetAt} />
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              ) : null}
              {k.credits && (
                <>
                  <p>
                    Credits: <strong>{k.credits.balance}</strong> left
                    {k.credits.refill ? `, refilled to ${k.credits.refill.amount} every ${String(k.credits.refill.every)}` : ''}.
                  </p>
                  {(k.state === 'active' || k.state === 'rotating') && <CreditsForm keyId={k.keyId} onDone={done} />}
                </>
              )}
            </section>
          )}
          <Lineage k={k} />
          <KeyUsagePanel keyId={keyId} />
          <section aria-labelledby="events-h">
            <h2 id="events-h">Events of this key</h2>
            <AuditTable key={keyId} appId={k.appId} keyId={keyId} compact />
          </section>
          <RenewDialog k={k} open={action === 'renew'} onClose={() => setAction(null)} onDone={done} />
          <RotateDialog k={k} open={action === 'rotate'} onClose={() => setAction(null)} onDone={done} />
          <RevokeDialog k={k} open={action === 'revoke'} onClose={() => setAction(null)} onDone={done} />
        </>
      )}
    </main>
  );
}

function Meta({ meta }: { meta: Record<string, unknown> }) {
  const entries = Object.entries(meta ?? {});
  if (!entries.length) return <span class="muted">none</span>;
  return (
    <ul class="plain">
      {entries.map(([k, v]) => (
        <li key={k}>
          <code>{k}</code> = <span>{typeof v === 'string' ? v : JSON.stringify(v)}</span>
        </li>
      ))}
    </ul>
  );
}

/** Rotation lineage: predecessors (followed back a few generations, while their records are kept) and the successor. */
function Lineage({ k }: { k: KeyDetail }) {
  const chain = useLoad(async () => {
    const before: KeyDetail[] = [];
    let prev = k.previousKeyId;
    for (let i = 0; prev && i < 5; i++) {
      try {
        const p = await get<KeyDetail>(`/v1/keys/${seg(prev)}`);
        before.push(p);
        prev = p.previousKeyId;
      } catch {
        break;
      }
    }
    return before;
  }, [k.keyId, k.previousKeyId]);
  if (!k.previousKeyId && !k.successorKeyId) return null;
  return (
    <section aria-labelledby="lineage-h">
      <h2 id="lineage-h">Rotation lineage</h2>
      <ol class="lineage">
        {[...(chain.data ?? [])].reverse().map((p) => (
          <li key={p.keyId}>
            <a href={href(['keys', p.keyId])}>{p.keyId}</a> <StateBadge state={p.state} /> <span class="small muted">created <Time iso={p.createdAt} relative={false} /></span>
          </li>
        ))}
        <li aria-current="true">
          <strong class="mono">{k.keyId}</strong> <StateBadge state={k.state} /> (this key)
        </li>
        {k.successorKeyId && (
          <li>
            <a href={href(['keys', k.successorKeyId])}>{k.successorKeyId}</a> (successor)
          </li>
        )}
      </ol>
    </section>
  );
}

function KeyUsagePanel({ keyId }: { keyId: string }) {
  const [hours, setHours] = useState(24);
  const usage = useLoad(() => get<KeyUsage>(`/v1/keys/${seg(keyId)}/usage`, { hours }), [keyId, hours]);
  usePoll(usage.reload, USAGE_POLL_MS);
  const u = usage.data;
  return (
    <section aria-labelledby="usage-h">
      <h2 id="usage-h">Usage</h2>
      <PeriodSelect id="usage-hours" hours={hours} onChange={setHours} />
      {usage.error !== undefined && !u && <ErrorBox error={usage.error} />}
      {u && (
        <>
          <KV
            items={[
              ['Last used', <Time iso={u.lastUsedAt} />],
              ['Last address', u.lastIp ? <code>{u.lastIp}</code> : <span class="muted">—</span>],
              ['Verifications', `${u.verify.count} (${u.verify.failures} refused)`],
              ['Direct Vault requests', `${u.vault.count} (${u.vault.errors} errors)`],
            ]}
          />
          {u.hourly ? <UsageChart title="Verifications per hour" hourly={u.hourly} /> : <p class="muted">This api does not report hourly usage.</p>}
          <p class="small muted">Counts lag by up to {u.freshnessSeconds}s; this view refreshes every {USAGE_POLL_MS / 1000}s.</p>
        </>
      )}
    </section>
  );
}

function RenewDialog({ k, open, onClose, onDone }: { k: KeyDetail; open: boolean; onClose: () => void; onDone: (m: string) => void }) {
  const [increment, setIncrement] = useState('');
  const { busy, error, setError, run } = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      const res = await call<KeyDetail>('POST', `/v1/keys/${seg(k.keyId)}/renew`, { body: increment.trim() ? { increment: increment.trim() } : {} });
      onDone(`Renewed: expires ${res.body.expiresAt ? new Date(res.body.expiresAt).toLocaleString() : 'never'}.`);
    });
  };
  return (
    <Dialog open={open} title={`Renew ${k.name}`} onClose={() => (setError(undefined), onClose())}>
      <form onSubmit={submit}>
        <div class="field">
          <label for="renew-increment">Increment (optional, e.g. 24h; capped by the profile's maximum)</label>
          <input id="renew-increment" value={increment} onInput={(e) => setIncrement((e.currentTarget as HTMLInputElement).value)} />
        </div>
        <ErrorBox error={error} />
        <FormActions disabled={busy} onCancel={onClose}>Renew</FormActions>
      </form>
    </Dialog>
  );
}

function RotateDialog({ k, open, onClose, onDone }: { k: KeyDetail; open: boolean; onClose: () => void; onDone: (m: string) => void }) {
  // Empty: the profile's rotation grace (the API's default); "0s" would revoke the old key at once.
  const [grace, setGrace] = useState('');
  const [deliver, setDeliver] = useState(true);
  const { busy, error, setError, run } = useAction();
  const [result, setResult] = useState<KeyDetail | null>(null);
  const close = () => {
    const r = result;
    setResult(null);
    setError(undefined);
    if (r) onDone(`Rotated: the successor is ${r.keyId}; this key is revoked ${r.previousKeyRevokeAt ? new Date(r.previousKeyRevokeAt).toLocaleString() : 'at the end of grace'}.`);
    else onClose();
  };
  const submit = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      const body: Record<string, unknown> = { deliver };
      if (grace.trim()) body.grace = grace.trim();
      setResult((await call<KeyDetail>('POST', `/v1/keys/${seg(k.keyId)}/rotate`, { body })).body);
    });
  };
  return (
    <Dialog open={open} title={result ? 'Key rotated' : `Rotate ${k.name}`} onClose={close} dismissable={!result}>
      {result ? (
        <div>
          <Warnings warnings={result.warnings} />
          {result.key && (
            <>
              <Notice kind="warn">The new key is shown once. Copy it now.</Notice>
              <SecretField id="rotated-key" label={`New key (${result.keyId})`} value={result.key} />
            </>
          )}
          <p>
            The old key keeps working until <Time iso={result.previousKeyRevokeAt} />.
          </p>
          <ForgetButton onClick={close} />
        </div>
      ) : (
        <form onSubmit={submit}>
          <div class="field">
            <label for="rotate-grace">Grace period: the old key keeps working this long (e.g. 1h; empty: the profile's; 0s: revoke it now)</label>
            <input id="rotate-grace" value={grace} placeholder="the profile's grace" onInput={(e) => setGrace((e.currentTarget as HTMLInputElement).value)} />
          </div>
          <div class="field check">
            <input id="rotate-deliver" type="checkbox" checked={deliver} onChange={(e) => setDeliver((e.currentTarget as HTMLInputElement).checked)} />
            <label for="rotate-deliver">Deliver the new key to the app (KV and webhook, when configured)</label>
          </div>
          <ErrorBox error={error} />
          <FormActions disabled={busy} onCancel={close}>Rotate</FormActions>
        </form>
      )}
    </Dialog>
  );
}

function RevokeDialog({ k, open, onClose, onDone }: { k: KeyDetail; open: boolean; onClose: () => void; onDone: (m: string) => void }) {
  const [reason, setReason] = useState('');
  const { busy, error, setError, run } = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      await call('DELETE', `/v1/keys/${seg(k.keyId)}`, { query: { reason: reason.trim() || undefined } });
      setReason('');
      onDone(`Key ${k.keyId} revoked.`);
    });
  };
  return (
    <Dialog open={open} title={`Revoke ${k.name}?`} onClose={() => (setError(undefined), onClose())}>
      <form onSubmit={submit}>
        <p>
          Key <code>{k.keyId}</code> of <strong>{k.appId}</strong> stops working at once, everywhere. This cannot be undone.
        </p>
        <div class="field">
          <label for="revoke-reason">Reason (optional, kept with the key)</label>
          <input id="revoke-reason" value={reason} maxLength={200} onInput={(e) => setReason((e.currentTarget as HTMLInputElement).value)} />
        </div>
        <ErrorBox error={error} />
        <FormActions kind="danger" disabled={busy} onCancel={onClose}>Revoke the key</FormActions>
      </form>
    </Dialog>
  );
}

/** Set or add to a key's credits (PATCH /v1/keys/{keyId}/credits; needs update on the key's app). */
function CreditsForm({ keyId, onDone }: { keyId: string; onDone: (m: string) => void }) {
  const [mode, setMode] = useState<'add' | 'set'>('add');
  const [amount, setAmount] = useState('');
  const [error, setError] = useState<unknown>();
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    const n = Number(amount);
    if (!Number.isInteger(n)) return setError(new Error('The amount must be a whole number'));
    try {
      const res = await call<{ balance: number }>('PATCH', `/v1/keys/${seg(keyId)}/credits`, { body: { [mode]: n } });
      setAmount('');
      onDone(`Credits: the balance is now ${res.body.balance}.`);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form class="filters" aria-label="adjust credits" onSubmit={submit}>
      <div class="field">
        <label for="credits-mode">Change</label>
        <select id="credits-mode" value={mode} onChange={(e) => setMode((e.currentTarget as HTMLSelectElement).value as 'add' | 'set')}>
          <option value="add">add (negative takes away)</option>
          <option value="set">set the balance to</option>
        </select>
      </div>
      <div class="field">
        <label for="credits-amount">Amount</label>
        <input id="credits-amount" inputMode="numeric" value={amount} onInput={(e) => setAmount((e.currentTarget as HTMLInputElement).value)} required />
      </div>
      <button type="submit">Apply</button>
      <ErrorBox error={error} />
    </form>
  );
}

/** Vault's TTL, counted down live from the expiry Vault reported (the page itself is read once). */
function Countdown({ expiresAt, ttlSeconds, renewable }: { expiresAt: string | null; ttlSeconds: number; renewable: boolean }) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  const left = expiresAt ? Math.max(0, Math.floor((Date.parse(expiresAt) - now) / 1000)) : ttlSeconds;
  return (
    <span>
      {expiresAt ? duration(left) : 'no expiry'}
      {renewable ? '' : ' (not renewable)'}
    </span>
  );
}

import { useState } from 'preact/hooks';
import { ApiError, call, get, Key, newIdempotencyKey, Profile, seg } from '../api';
import { href } from '../router';
import { Dialog, ErrorBox, ForgetButton, FormActions, Notice, Pager, SecretField, splitList, StateBadge, THead, Time, useFields, useLoad, usePager, Warnings } from '../ui';

type MintResult = Key & { key?: string; wrapToken?: string; wrapTtl?: string };

/** An app's keys: filter by profile, state and name, page through them, mint, and the kill switch. */
export function AppKeys({ appId }: { appId: string }) {
  const [profile, setProfile] = useState('');
  const [state, setState] = useState('');
  const [nameFilter, setNameFilter] = useState('');
  const pager = usePager(`${appId}|${profile}|${state}`);
  const keys = useLoad(
    () => get<{ items: Key[]; nextCursor: string | null }>('/v1/keys', { appId, profile, state, limit: 25, cursor: pager.cursor }),
    [appId, profile, state, pager.cursor],
  );
  const profiles = useLoad(() => get<{ items: Profile[] }>('/v1/profiles'), []);
  const [minting, setMinting] = useState(false);
  const [killing, setKilling] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const shown = (keys.data?.items ?? []).filter((k) => !nameFilter || k.name.toLowerCase().includes(nameFilter.toLowerCase()));
  return (
    <section aria-labelledby="keys-h">
      <h2 id="keys-h">Keys</h2>
      <div class="toolbar">
        <button type="button" class="primary" onClick={() => setMinting(true)}>
          Mint a key
        </button>
        <button type="button" class="danger" onClick={() => setKilling(true)}>
          Revoke all keys…
        </button>
      </div>
      {notice && <Notice kind="ok">{notice}</Notice>}
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="filter keys">
        <div class="field">
          <label for="f-profile">Profile</label>
          <select id="f-profile" value={profile} onChange={(e) => setProfile((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">any</option>
            {(profiles.data?.items ?? []).map((p) => (
              <option key={p.name} value={p.name}>
                {p.name}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="f-state">State</label>
          <select id="f-state" value={state} onChange={(e) => setState((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">active and rotating</option>
            <option value="active">active</option>
            <option value="rotating">rotating</option>
            <option value="revoked">revoked (30 days)</option>
            <option value="expired">expired (30 days)</option>
          </select>
        </div>
        <div class="field">
          <label for="f-name">Name contains (this page)</label>
          <input id="f-name" value={nameFilter} onInput={(e) => setNameFilter((e.currentTarget as HTMLInputElement).value)} />
        </div>
      </form>
      <ErrorBox error={keys.error} />
      {keys.loading && <p aria-live="polite">Loading…</p>}
      {keys.data && (
        <>
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Keys">
            <table>
              <caption class="sr-only">Keys of {appId}</caption>
              <THead cols={['Name', 'Key id', 'Profile', 'State', 'Created', 'Expires']} />
              <tbody>
                {shown.length === 0 && (
                  <tr>
                    <td colSpan={6}>No keys.</td>
                  </tr>
                )}
                {shown.map((k) => (
                  <tr key={k.keyId}>
                    <td>
                      <a href={href(['keys', k.keyId])}>{k.name}</a>
                    </td>
                    <td class="mono">{k.keyId}</td>
                    <td>{k.profile}</td>
                    <td>
                      <StateBadge state={k.state} />
                    </td>
                    <td>
                      <Time iso={k.createdAt} relative={false} />
                    </td>
                    <td>
                      <Time iso={k.expiresAt} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pager label="keys" page={pager.page} nextCursor={keys.data.nextCursor} onNext={pager.next} onPrev={pager.prev} />
        </>
      )}
      <MintDialog
        appId={appId}
        open={minting}
        profiles={profiles.data?.items ?? []}
        profilesLoading={profiles.loading}
        profilesError={profiles.error}
        onClose={() => (setMinting(false), keys.reload())}
      />
      <RevokeAllDialog
        appId={appId}
        open={killing}
        onClose={(n) => {
          setKilling(false);
          if (n !== undefined) {
            setNotice(`${n} key(s) of ${appId} revoked.`);
            keys.reload();
          }
        }}
      />
    </section>
  );
}

/** Mint: the key (or its wrapping token) is shown once in this dialog, with a copy button; closing drops it. */
function MintDialog({
  appId,
  open,
  profiles,
  profilesLoading,
  profilesError,
  onClose,
}: {
  appId: string;
  open: boolean;
  profiles: Profile[];
  profilesLoading: boolean;
  profilesError: unknown;
  onClose: () => void;
}) {
  const blank = { profile: '', name: '', ttl: '', cidrs: '', meta: '', certSerial: '', wrap: false, wrapTtl: '1h' };
  const { f: form, bind: set, reset } = useFields(blank);
  // One Idempotency-Key per mint form: a retry after a lost answer (or a double submit) replays the same
  // mint instead of creating a second key. A new one is drawn only after a success.
  const [idem, setIdem] = useState(newIdempotencyKey);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<MintResult | null>(null);
  const close = () => {
    setResult(null);
    setError(undefined);
    reset();
    onClose();
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    const meta: Record<string, string> = {};
    for (const line of form.meta.split('\n')) {
      const t = line.trim();
      if (!t) continue;
      const i = t.indexOf('=');
      if (i <= 0) return setError(new Error(`Metadata line "${t}" is not key=value`));
      meta[t.slice(0, i).trim()] = t.slice(i + 1).trim();
    }
    const profile = form.profile || profiles[0]?.name;
    if (!profile) return setError(new Error('Choose a profile'));
    const body: Record<string, unknown> = { appId, profile, name: form.name };
    if (form.certSerial.trim()) body.certSerial = form.certSerial.trim();
    if (form.ttl.trim()) body.ttl = form.ttl.trim();
    if (form.cidrs.trim()) body.cidrs = splitList(form.cidrs);
    if (Object.keys(meta).length) body.meta = meta;
    if (form.wrap) body.wrapTtl = form.wrapTtl.trim() || '1h';
    if (busy) return;
    setBusy(true);
    try {
      const res = await call<MintResult>('POST', '/v1/keys', { body, headers: { 'idempotency-key': idem } });
      setResult(res.body);
      setIdem(newIdempotencyKey());
    } catch (err) {
      // A 4xx means nothing was minted: the corrected form is a new request. Otherwise (no answer, 503) the
      // outcome is unknown, and the retry must carry the same key.
      if (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.code !== 'IDEMPOTENCY_CONFLICT') setIdem(newIdempotencyKey());
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open={open} title={result ? 'Key minted' : `Mint a key for ${appId}`} onClose={close} dismissable={!result}>
      {result ? (
        <div>
          <Warnings warnings={result.warnings} />
          {result.key && (
            <>
              <Notice kind="warn">This key is shown once. Copy it now; latchkey cannot show it again.</Notice>
              <SecretField id="minted-key" label={`Key ${result.name} (${result.keyId})`} value={result.key} />
            </>
          )}
          {result.wrapToken && (
            <>
              <Notice kind="warn">
                This wrapping token is shown once and works once, for {result.wrapTtl}. The holder unwraps it with <code>POST /v1/keys/unwrap</code>.
              </Notice>
              <SecretField id="wrap-token" label="Wrapping token" value={result.wrapToken} />
            </>
          )}
          <p>
            <a href={href(['keys', result.keyId])} onClick={() => close()}>
              Open key {result.keyId}
            </a>
          </p>
          <ForgetButton onClick={close} />
        </div>
      ) : (
        <form onSubmit={(e) => void submit(e)}>
          {profilesLoading && !profiles.length ? (
            <p aria-live="polite">Loading profiles…</p>
          ) : profiles.length ? (
            <div class="field">
              <label for="mint-profile">Profile</label>
              <select id="mint-profile" required value={form.profile || profiles[0]?.name || ''} onChange={set('profile')}>
                {profiles.map((p) => (
                  <option key={p.name} value={p.name}>
                    {p.name} (ttl {p.ttl}, max {p.maxTtl})
                  </option>
                ))}
              </select>
            </div>
          ) : (
            <>
              {/* Without read on the profiles the list is unknown: the person names the profile they may mint from. */}
              <ErrorBox error={profilesError} />
              <div class="field">
                <label for="mint-profile">Profile</label>
                <input id="mint-profile" required value={form.profile} onInput={set('profile')} autocomplete="off" />
              </div>
            </>
          )}
          <div class="field">
            <label for="mint-name">Name</label>
            <input id="mint-name" required maxLength={128} value={form.name} onInput={set('name')} autocomplete="off" />
          </div>
          <div class="field">
            <label for="mint-ttl">TTL (optional, e.g. 720h or 30d)</label>
            <input id="mint-ttl" value={form.ttl} onInput={set('ttl')} autocomplete="off" />
          </div>
          <div class="field">
            <label for="mint-cidrs">Allowed client CIDRs (optional, comma or space separated)</label>
            <input id="mint-cidrs" value={form.cidrs} onInput={set('cidrs')} autocomplete="off" />
          </div>
          <div class="field">
            <label for="mint-meta">Metadata (optional, one key=value per line)</label>
            <textarea id="mint-meta" rows={3} value={form.meta} onInput={set('meta')} />
          </div>
          <div class="field">
            <label for="mint-cert">Bind to a client certificate (optional: its serial; the key then works only with it and its renewals)</label>
            <input id="mint-cert" value={form.certSerial} onInput={set('certSerial')} autocomplete="off" />
          </div>
          <div class="field check">
            <input id="mint-wrap" type="checkbox" checked={form.wrap} onChange={set('wrap')} />
            <label for="mint-wrap">Response-wrap the key (hand over a single-use wrapping token instead of the key)</label>
          </div>
          {form.wrap && (
            <div class="field">
              <label for="mint-wrap-ttl">Wrapping token TTL</label>
              <input id="mint-wrap-ttl" value={form.wrapTtl} onInput={set('wrapTtl')} />
            </div>
          )}
          <ErrorBox error={error} />
          <FormActions disabled={busy || (profilesLoading && !profiles.length)} onCancel={close}>{busy ? 'Minting…' : 'Mint'}</FormActions>
        </form>
      )}
    </Dialog>
  );
}

/** The kill switch: revokes every key of the app, after the app id is typed to confirm it. */
function RevokeAllDialog({ appId, open, onClose }: { appId: string; open: boolean; onClose: (revoked?: number) => void }) {
  const [typed, setTyped] = useState('');
  const [reason, setReason] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const close = (n?: number) => {
    setTyped('');
    setReason('');
    setError(undefined);
    onClose(n);
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    if (typed !== appId) return;
    setBusy(true);
    try {
      const res = await call<{ revoked: number }>('POST', `/v1/apps/${seg(appId)}/keys/revoke-all`, { query: { reason: reason.trim() || undefined } });
      close(res.body.revoked);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open={open} title={`Revoke every key of ${appId}`} onClose={() => close()}>
      <form onSubmit={(e) => void submit(e)}>
        <Notice kind="warn">Every active key of this app stops working at once, on every latchkey instance. This cannot be undone.</Notice>
        <div class="field">
          <label for="kill-confirm">
            Type the app id <code>{appId}</code> to confirm
          </label>
          <input id="kill-confirm" value={typed} onInput={(e) => setTyped((e.currentTarget as HTMLInputElement).value)} autocomplete="off" spellcheck={false} />
        </div>
        <div class="field">
          <label for="kill-reason">Reason (optional, kept with each key)</label>
          <input id="kill-reason" value={reason} maxLength={200} onInput={(e) => setReason((e.currentTarget as HTMLInputElement).value)} />
        </div>
        <ErrorBox error={error} />
        <FormActions kind="danger" disabled={typed !== appId || busy} onCancel={() => close()}>Revoke all keys of {appId}</FormActions>
      </form>
    </Dialog>
  );
}

import { useRef, useState } from 'preact/hooks';
import { ApiError, call, get, Profile, seg } from '../api';
import { href, navigate } from '../router';
import { ErrorBox, KV, List, Notice, THead, useFocusHeading, useLoad, Warnings } from '../ui';

const PROFILE_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** Profiles: everyone who may read them sees them; editing needs update on latchkey/profiles/<name> (operators). */
export function ProfilesPage() {
  const h1 = useRef<HTMLHeadingElement>(null);
  useFocusHeading(h1, []);
  const profiles = useLoad(() => get<{ items: Profile[] }>('/v1/profiles'), []);
  return (
    <main id="main">
      <h1 ref={h1} tabIndex={-1}>
        Profiles
      </h1>
      <p class="muted">A profile is the template keys are minted from: policies, lifetimes, rotation, limits.</p>
      <p>
        <a class="button" href={href(['profiles', '+new'])}>
          New profile
        </a>
      </p>
      <ErrorBox error={profiles.error} />
      {profiles.data && (
        <div class="table-wrap" tabIndex={0} role="region" aria-label="Profiles">
          <table>
            <caption class="sr-only">Profiles</caption>
            <THead cols={['Name', 'Policies', 'TTL / max', 'Rotation', 'Limits']} />
            <tbody>
              {profiles.data.items.map((p) => (
                <tr key={p.name}>
                  <td>
                    <a href={href(['profiles', p.name])}>{p.name}</a>
                  </td>
                  <td>
                    <List values={p.allowedPolicies} />
                  </td>
                  <td>
                    {p.ttl} / {p.maxTtl}
                  </td>
                  <td>{p.rotation ? `every ${String(p.rotation.every)}, grace ${String(p.rotation.grace ?? '0s')}` : 'manual'}</td>
                  <td>{p.limits.length ? p.limits.map((l) => `${l.limit}/${l.window}`).join(', ') : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </main>
  );
}

/** The writable fields of a profile (PUT /v1/profiles/{name}), from what GET returns. */
function toDto(p: Profile): Record<string, unknown> {
  return {
    allowedPolicies: p.allowedPolicies,
    ttl: p.ttl,
    maxTtl: p.maxTtl,
    period: p.period,
    numUses: p.numUses,
    cidrs: p.cidrs,
    rotation: p.rotation,
    selfService: p.selfService,
    limits: p.limits,
    credits: p.credits,
    keyCredits: p.keyCredits,
    tokenTtl: p.tokenTtl,
  };
}

const NEW_PROFILE = { allowedPolicies: [], ttl: '720h', maxTtl: '2160h', cidrs: [], rotation: null, limits: [] };

/** View one profile and edit it as JSON; the API validates it and answers field by field. */
export function ProfilePage({ name }: { name: string }) {
  const isNew = name === '+new';
  const h1 = useRef<HTMLHeadingElement>(null);
  useFocusHeading(h1, [name]);
  const profile = useLoad(() => (isNew ? Promise.resolve(null) : get<Profile>(`/v1/profiles/${seg(name)}`)), [name]);
  const [text, setText] = useState<string | null>(null);
  const [newName, setNewName] = useState('');
  const [error, setError] = useState<unknown>();
  const [saved, setSaved] = useState<Profile | null>(null);
  const p = profile.data;
  const current = text ?? JSON.stringify(p ? toDto(p) : NEW_PROFILE, null, 2);
  const save = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setSaved(null);
    const target = isNew ? newName.trim() : name;
    if (!PROFILE_NAME_RE.test(target)) return setError(new ApiError(400, 'VALIDATION_FAILED', 'A profile name is 1-63 of a-z 0-9 _ -'));
    let body: unknown;
    try {
      body = JSON.parse(current);
    } catch (err) {
      return setError(new ApiError(400, 'INVALID_JSON', `The settings are not valid JSON: ${(err as Error).message}`));
    }
    try {
      if (isNew) {
        // PUT creates or replaces: a "new" profile must not silently overwrite one of the same name.
        const exists = await call('GET', `/v1/profiles/${seg(target)}`).then(
          () => true,
          (err: unknown) => {
            if (err instanceof ApiError && err.status === 404) return false;
            throw err;
          },
        );
        if (exists) return setError(new ApiError(409, 'PROFILE_EXISTS', `A profile named ${target} exists: open it to edit it`));
      }
      const res = await call<Profile>('PUT', `/v1/profiles/${seg(target)}`, { body });
      setSaved(res.body);
      setText(null);
      if (isNew) navigate(href(['profiles', target]));
      else profile.reload();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <main id="main">
      <p class="crumbs">
        <a href={href(['profiles'])}>Profiles</a> ›
      </p>
      <h1 ref={h1} tabIndex={-1}>
        {isNew ? 'New profile' : `Profile ${name}`}
      </h1>
      <ErrorBox error={profile.error} />
      {p && (
        <KV
          items={[
            ['Vault token role', <code>{p.role}</code>],
            ['Policies', <List values={p.allowedPolicies} />],
            ['TTL', `${p.ttl} (max ${p.maxTtl})`],
            ['CIDRs', <List values={p.cidrs} empty="any address" />],
            ['Rotation', p.rotation ? `every ${String(p.rotation.every)}, grace ${String(p.rotation.grace ?? '0s')}` : 'manual'],
            ['Self-service', `renew ${p.selfService.renew ? 'yes' : 'no'}, rotate ${p.selfService.rotate ? 'yes' : 'no'}`],
          ]}
        />
      )}
      <Warnings warnings={saved?.warnings ?? p?.warnings} />
      {saved && <Notice kind="ok">Saved.</Notice>}
      {(p || isNew) && (
        <form onSubmit={(e) => void save(e)}>
          {isNew && (
            <div class="field">
              <label for="profile-name">Name</label>
              <input id="profile-name" value={newName} onInput={(e) => setNewName((e.currentTarget as HTMLInputElement).value)} required />
            </div>
          )}
          <div class="field">
            <label for="profile-json">Settings (JSON, as PUT /v1/profiles/{'{name}'} takes them)</label>
            <textarea id="profile-json" class="mono" rows={18} spellcheck={false} value={current} onInput={(e) => setText((e.currentTarget as HTMLTextAreaElement).value)} />
          </div>
          <ErrorBox error={error} />
          <div class="actions">
            <button type="submit" class="primary">
              Save
            </button>
            <button type="button" onClick={() => setText(null)} disabled={text === null}>
              Discard changes
            </button>
          </div>
        </form>
      )}
    </main>
  );
}

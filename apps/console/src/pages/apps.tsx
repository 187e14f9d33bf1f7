import { useRef, useState } from 'preact/hooks';
import { AppEntry, get } from '../api';
import { href, navigate } from '../router';
import { ErrorBox, Pager, useFocusHeading, useLoad, usePager } from '../ui';

const APP_ID_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** The apps this person may see (GET /v1/apps filters by their Vault capabilities), and a way to open one by name. */
export function AppsPage() {
  const h1 = useRef<HTMLHeadingElement>(null);
  useFocusHeading(h1, []);
  const pager = usePager('apps');
  const { data, error, loading } = useLoad(() => get<{ items: AppEntry[]; nextCursor: string | null }>('/v1/apps', { limit: 50, cursor: pager.cursor }), [pager.cursor]);
  const [name, setName] = useState('');
  const [nameError, setNameError] = useState<string | null>(null);
  const open = (e: Event) => {
    e.preventDefault();
    const n = name.trim();
    if (!APP_ID_RE.test(n)) return setNameError('An app id is 1-63 of a-z 0-9 _ -, starting with a letter or digit.');
    setNameError(null);
    navigate(href(['apps', n, 'keys']));
  };
  return (
    <main id="main">
      <h1 ref={h1} tabIndex={-1}>
        Apps
      </h1>
      <p class="muted">Apps you may read keys or certificates of. An app appears once it has a key, a certificate or a webhook.</p>
      <ErrorBox error={error} />
      {loading && <p aria-live="polite">Loading…</p>}
      {data && (
        <>
          {data.items.length === 0 ? (
            <p>No app on this page that your policies let you read.</p>
          ) : (
            <ul class="cards" aria-label="apps">
              {data.items.map((a) => (
                <li key={a.appId} class="card">
                  <h2>
                    <a href={href(['apps', a.appId, 'keys'])}>{a.appId}</a>
                  </h2>
                  <p class="small muted">
                    keys: {a.keys.length ? a.keys.join(', ') : 'none'} · certificates: {a.certs.length ? a.certs.join(', ') : 'none'}
                  </p>
                  <p class="links">
                    <a href={href(['apps', a.appId, 'keys'])}>Keys</a> <a href={href(['apps', a.appId, 'usage'])}>Usage</a>{' '}
                    <a href={href(['apps', a.appId, 'certs'])}>Certificates</a> <a href={href(['apps', a.appId, 'audit'])}>Audit</a>{' '}
                    <a href={href(['apps', a.appId, 'delivery'])}>Delivery</a>
                  </p>
                </li>
              ))}
            </ul>
          )}
          <Pager label="apps" page={pager.page} nextCursor={data.nextCursor} onNext={pager.next} onPrev={pager.prev} />
        </>
      )}
      <form class="inline-form" onSubmit={open}>
        <div class="field">
          <label for="open-app">Open an app by id (e.g. to mint its first key)</label>
          <div class="row">
            <input id="open-app" value={name} onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} aria-describedby="open-app-error" autocomplete="off" />
            <button type="submit">Open</button>
          </div>
          <p id="open-app-error" class="field-error" aria-live="polite">
            {nameError}
          </p>
        </div>
      </form>
    </main>
  );
}

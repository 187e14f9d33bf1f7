import { useRef, useState } from 'preact/hooks';
import { ApiError, call, clearSessionEndedReason, sessionEndedReason, signIn } from '../api';
import { ErrorBox, Notice, useFocusHeading } from '../ui';

/**
 * Sign-in: the person pastes a Vault token or a management key. It is checked with one API call before
 * the console opens; it stays in memory (or this tab's sessionStorage when asked), never in a cookie.
 */
export function SignIn() {
  const [secret, setSecret] = useState('');
  const [keep, setKeep] = useState(false);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useFocusHeading(input, []);
  const ended = sessionEndedReason;
  const submit = async (e: Event) => {
    e.preventDefault();
    const s = secret.trim();
    if (!s) return setError(new ApiError(400, 'MISSING', 'Paste a Vault token or a management key'));
    setBusy(true);
    setError(undefined);
    try {
      // Any authenticated call proves the credential; the app list is what the console shows first anyway.
      await call('GET', '/v1/apps', { query: { limit: 1 }, as: s });
      clearSessionEndedReason();
      setSecret('');
      // A link opened while signed out (#/keys/…) is shown after sign-in; otherwise the apps.
      if (!location.hash || location.hash === '#/' || location.hash === '#') location.hash = '#/apps';
      signIn(s, keep);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="signin">
      <h1>
        Sign in to latchkey
      </h1>
      {ended && <Notice kind="warn">Your session ended ({ended}). Sign in again.</Notice>}
      <form onSubmit={(e) => void submit(e)}>
        <div class="field">
          <label for="credential">Vault token or management key</label>
          <input
            id="credential"
            ref={input}
            name="credential"
            // A credential, not a password: a password field makes browsers offer to save (and sync) it.
            // The characters are masked by CSS instead (.masked).
            type="text"
            class="masked mono"
            autocomplete="off"
            autocapitalize="off"
            aria-describedby="signin-help"
            spellcheck={false}
            required
            value={secret}
            onInput={(e) => setSecret((e.currentTarget as HTMLInputElement).value)}
          />
        </div>
        <div class="field check">
          <input id="keep" type="checkbox" checked={keep} onChange={(e) => setKeep((e.currentTarget as HTMLInputElement).checked)} />
          <label for="keep">Keep me signed in in this tab (sessionStorage, cleared when the tab closes)</label>
        </div>
        <ErrorBox error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <p id="signin-help" class="muted small">
        What you see and can do follows your Vault policies: the console calls the same REST API as curl, with your credential
        (<code>X-Vault-Token</code>, or <code>Authorization: Bearer</code> for a management key). Nothing is stored in a cookie.
      </p>
    </main>
  );
}

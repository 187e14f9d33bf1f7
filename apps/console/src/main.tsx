import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { credentialKind, endSession, onSessionChange, restoreSession, signedIn, signOut } from './api';
import { href, Route, useRoute } from './router';
import { useFocusHeading } from './ui';
import { AppDelivery } from './pages/app-delivery';
import { AppKeys } from './pages/app-keys';
import { AppUsagePanel } from './pages/app-usage';
import { AppsPage } from './pages/apps';
import { AuditPage, AuditTable } from './pages/audit';
import { AppCerts, CertPage } from './pages/certs';
import { KeyPage } from './pages/key';
import { ProfilePage, ProfilesPage } from './pages/profiles';
import { SignIn } from './pages/signin';

/** Sign out after this long without a key press, click or navigation: a console left open is a credential left out. */
const IDLE_MS = 30 * 60_000;

function useSession(): boolean {
  const [, force] = useState(0);
  useEffect(() => onSessionChange(() => force((x) => x + 1)), []);
  useEffect(() => {
    const idle = () => signedIn() && endSession(`no activity for ${IDLE_MS / 60_000} minutes`);
    let timer = setTimeout(idle, IDLE_MS);
    const bump = () => {
      clearTimeout(timer);
      timer = setTimeout(idle, IDLE_MS);
    };
    const events = ['keydown', 'pointerdown', 'hashchange'];
    events.forEach((e) => window.addEventListener(e, bump, { passive: true }));
    return () => {
      clearTimeout(timer);
      events.forEach((e) => window.removeEventListener(e, bump));
    };
  }, []);
  return signedIn();
}

const APP_TABS: Array<[string, string]> = [
  ['keys', 'Keys'],
  ['usage', 'Usage'],
  ['certs', 'Certificates'],
  ['audit', 'Audit'],
  ['delivery', 'Delivery'],
];

function AppPage({ appId, tab }: { appId: string; tab: string }) {
  const h1 = useRef<HTMLHeadingElement>(null);
  useFocusHeading(h1, [appId, tab]);
  return (
    <main id="main">
      <p class="crumbs">
        <a href={href(['apps'])}>Apps</a> ›
      </p>
      <h1 ref={h1} tabIndex={-1}>
        App <span class="mono">{appId}</span>
      </h1>
      <nav class="tabs" aria-label={`${appId} sections`}>
        {APP_TABS.map(([id, label]) => (
          <a key={id} href={href(['apps', appId, id])} aria-current={tab === id ? 'page' : undefined}>
            {label}
          </a>
        ))}
      </nav>
      {tab === 'keys' && <AppKeys key={tab} appId={appId} />}
      {tab === 'usage' && <AppUsagePanel key={tab} appId={appId} />}
      {tab === 'certs' && <AppCerts key={tab} appId={appId} />}
      {tab === 'delivery' && <AppDelivery key={tab} appId={appId} />}
      {tab === 'audit' && (
        <section aria-labelledby="audit-h">
          <h2 id="audit-h">Audit events</h2>
          <AuditTable appId={appId} />
        </section>
      )}
    </main>
  );
}

function NotFound() {
  return (
    <main id="main">
      <h1>Not found</h1>
      <p>
        <a href={href(['apps'])}>Back to the apps</a>
      </p>
    </main>
  );
}

function Page({ route }: { route: Route }) {
  const [a, b, c] = route.parts;
  if (!a || a === 'apps') {
    if (!b) return <AppsPage />;
    // `key`: a page for another id is a new component, so nothing of the previous id's state survives.
    return <AppPage key={b} appId={b} tab={APP_TABS.some(([id]) => id === c) ? c : 'keys'} />;
  }
  if (a === 'keys' && b) return <KeyPage key={b} keyId={b} />;
  if (a === 'certs' && b) return <CertPage key={b} serial={b} />;
  if (a === 'audit') return <AuditPage />;
  if (a === 'profiles') return b ? <ProfilePage key={b} name={b} /> : <ProfilesPage />;
  return <NotFound />;
}

function Console() {
  const inSession = useSession();
  const route = useRoute();
  if (!inSession) return <SignIn />;
  const section = route.parts[0] ?? 'apps';
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.querySelector<HTMLElement>('h1')?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={href(['apps'])}>
          latchkey
        </a>
        <nav aria-label="main">
          <a href={href(['apps'])} aria-current={section === 'apps' || section === 'keys' || section === 'certs' ? 'page' : undefined}>
            Apps
          </a>
          <a href={href(['audit'])} aria-current={section === 'audit' ? 'page' : undefined}>
            Audit
          </a>
          <a href={href(['profiles'])} aria-current={section === 'profiles' ? 'page' : undefined}>
            Profiles
          </a>
        </nav>
        <span class="who small">signed in with a {credentialKind()}</span>
        <button type="button" onClick={() => (signOut(), (location.hash = '#/'))}>
          Sign out
        </button>
      </header>
      <Page route={route} />
    </>
  );
}

restoreSession();
render(<Console />, document.getElementById('root')!);

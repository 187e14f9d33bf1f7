import { useEffect, useState } from 'preact/hooks';

/**
 * Hash routes (#/apps/orders/keys): the api serves one index.html, and no route ever reaches the
 * server, so a URL shared from the console carries no secret and no server state.
 */
export interface Route {
  parts: string[];
  query: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#\/?/, '');
  const [p, q = ''] = raw.split('?', 2);
  const parts = p
    .split('/')
    .filter(Boolean)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
  return { parts, query: new URLSearchParams(q) };
}

export function href(parts: string[], query?: Record<string, string | undefined>): string {
  const path = parts.map((p) => encodeURIComponent(p)).join('/');
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v) sp.set(k, v);
  const qs = sp.toString();
  return `#/${path}${qs ? `?${qs}` : ''}`;
}

export function navigate(to: string): void {
  if (location.hash === to) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = to;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseHash(location.hash));
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

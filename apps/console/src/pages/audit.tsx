import { useRef, useState } from 'preact/hooks';
import { AuditEvent, get } from '../api';
import { href } from '../router';
import { ErrorBox, Pager, THead, Time, useFields, useFocusHeading, useLoad, usePager } from '../ui';

/** Events shown on a key's page: its latest ones. */
const COMPACT_EVENTS = 20;

type Filters = {
  appId: string;
  keyId: string;
  type: string;
  source: string;
  since: string;
};

/** Audit events with filters. Without an app, it needs read on latchkey/audit; an app team reads its own app's events. */
export function AuditPage({ appId }: { appId?: string }) {
  const h1 = useRef<HTMLHeadingElement>(null);
  useFocusHeading(h1, [appId]);
  return (
    <main id="main">
      {!appId && (
        <h1 ref={h1} tabIndex={-1}>
          Audit events
        </h1>
      )}
      <AuditTable appId={appId} />
    </main>
  );
}

export function AuditTable({ appId, keyId, compact = false }: { appId?: string; keyId?: string; compact?: boolean }) {
  const { f: draft, bind: set } = useFields<Filters>({ appId: appId ?? '', keyId: keyId ?? '', type: '', source: '', since: compact ? '7d' : '24h' });
  const [filters, setFilters] = useState<Filters>(draft);
  const pager = usePager(JSON.stringify(filters));
  const events = useLoad(async () => {
    const query = { appId: filters.appId, keyId: filters.keyId, type: filters.type, source: filters.source, since: filters.since };
    if (!compact) return get<{ items: AuditEvent[]; nextCursor: string | null }>('/v1/audit/events', { ...query, cursor: pager.cursor, limit: 50 });
    // The API answers oldest first; a key's page wants its latest events: read through to the end (bounded)
    // and keep the last ones, newest first.
    let items: AuditEvent[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 10; i++) {
      const page = await get<{ items: AuditEvent[]; nextCursor: string | null }>('/v1/audit/events', { ...query, cursor, limit: 200 });
      items = [...items, ...page.items].slice(-COMPACT_EVENTS);
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    return { items: items.reverse(), nextCursor: null };
  }, [JSON.stringify(filters), pager.cursor]);
  return (
    <div>
      {!compact && <p class="small muted">Oldest first within the period; pages follow with Next.</p>}
      {!compact && (
        <form
          class="filters"
          aria-label="filter events"
          onSubmit={(e) => {
            e.preventDefault();
            setFilters(draft);
          }}
        >
          {!appId && (
            <div class="field">
              <label for="a-app">App</label>
              <input id="a-app" value={draft.appId} onInput={set('appId')} placeholder="all apps" />
            </div>
          )}
          <div class="field">
            <label for="a-key">Key id</label>
            <input id="a-key" value={draft.keyId} onInput={set('keyId')} />
          </div>
          <div class="field">
            <label for="a-type">Type (exact or prefix*)</label>
            <input id="a-type" value={draft.type} onInput={set('type')} placeholder="admin.*" />
          </div>
          <div class="field">
            <label for="a-source">Source</label>
            <select id="a-source" value={draft.source} onChange={set('source')}>
              <option value="">both</option>
              <option value="latchkey">latchkey (admin actions)</option>
              <option value="vault">vault (audit log)</option>
            </select>
          </div>
          <div class="field">
            <label for="a-since">Since (15m, 24h, 7d or a time)</label>
            <input id="a-since" value={draft.since} onInput={set('since')} />
          </div>
          <button type="submit">Apply</button>
        </form>
      )}
      <ErrorBox error={events.error} />
      {events.loading && <p aria-live="polite">Loading…</p>}
      {events.data && (
        <>
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Audit events">
            <table class="events">
              <caption class={compact ? 'small muted' : 'sr-only'}>{compact ? `Latest ${COMPACT_EVENTS} events of the last 7 days, newest first` : 'Audit events, oldest first'}</caption>
              <THead cols={['Time', 'Type', 'App', 'Key', 'Details']} />
              <tbody>
                {events.data.items.length === 0 && (
                  <tr>
                    <td colSpan={5}>{events.data.nextCursor ? 'No matching events on this page; later ones may follow (Next).' : pager.page > 1 ? 'No more events.' : 'No events in this period.'}</td>
                  </tr>
                )}
                {events.data.items.map((ev) => {
                  const e = ev as AuditEvent & Record<string, unknown>;
                  const rest = Object.entries(e).filter(([k]) => !['id', 'time', 'type', 'appId', 'keyId', 'source'].includes(k));
                  return (
                    <tr key={e.id}>
                      <td>
                        <Time iso={String(e.time)} relative={false} />
                      </td>
                      <td>
                        <code>{e.type}</code>
                      </td>
                      <td>{typeof e.appId === 'string' ? <a href={href(['apps', e.appId, 'keys'])}>{e.appId}</a> : '—'}</td>
                      <td class="mono">{typeof e.keyId === 'string' ? <a href={href(['keys', e.keyId])}>{e.keyId}</a> : '—'}</td>
                      <td class="small">
                        {rest.map(([k, v]) => (
                          <span key={k} class="kvpair">
                            {k}={typeof v === 'string' ? v : JSON.stringify(v)}{' '}
                          </span>
                        ))}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          {!compact && <Pager label="events" page={pager.page} nextCursor={events.data.nextCursor} onNext={pager.next} onPrev={pager.prev} />}
        </>
      )}
    </div>
  );
}

import type { ComponentChildren, RefObject } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api';

/** A failed call: the API's code and message (never a credential: the API redacts, and we show only these). */
export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const e = error instanceof ApiError ? error : null;
  const details = e && Array.isArray(e.details) ? (e.details as Array<{ field: string; problems: string[] }>) : [];
  return (
    <div class="alert error" role="alert">
      <strong>{e ? e.code : 'Error'}</strong>: {e ? e.message : String((error as Error)?.message ?? error)}
      {details.length > 0 && (
        <ul>
          {details.map((d) => (
            <li key={d.field}>
              <code>{d.field}</code>: {d.problems.join('; ')}
            </li>
          ))}
        </ul>
      )}
      {e?.requestId && <div class="muted small">request id {e.requestId}</div>}
    </div>
  );
}

/**
 * A notice. Screen readers announce a live region reliably only when it was already in the page before its
 * text changed, so the text is also put into one permanent polite region (#announcer, in index.html).
 */
export function Notice({ children, kind = 'info' }: { children: ComponentChildren; kind?: 'info' | 'warn' | 'ok' }) {
  const ref = useRef<HTMLDivElement>(null);
  const said = useRef('');
  useEffect(() => {
    // Every render (a poll re-renders the page) but announced only when the text changed.
    const text = ref.current?.textContent ?? '';
    const live = document.getElementById('announcer');
    if (live && text !== said.current) live.textContent = said.current = text;
  });
  return (
    <div ref={ref} class={`alert ${kind}`}>
      {children}
    </div>
  );
}

export function Warnings({ warnings }: { warnings?: string[] }) {
  if (!warnings?.length) return null;
  return (
    <div class="alert warn" role="status">
      <strong>Warnings</strong>
      <ul>
        {warnings.map((w) => (
          <li key={w}>{w}</li>
        ))}
      </ul>
    </div>
  );
}

/**
 * Load data for a page; `reload` re-runs it. When the inputs (`deps`) change, the previous data is dropped at
 * once, so nothing of another key or app is ever shown under the new one; a reload (a poll, or after an action)
 * keeps the data on screen while it runs, and keeps it if the reload fails (the error is shown beside it).
 */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data: T | undefined; error: unknown; loading: boolean; reload: () => void } {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({ data: undefined, error: undefined, loading: true });
  const [tick, setTick] = useState(0);
  const depsKey = JSON.stringify(deps);
  const lastDeps = useRef(depsKey);
  useEffect(() => {
    let live = true;
    const same = lastDeps.current === depsKey;
    lastDeps.current = depsKey;
    setState((s) => ({ data: same ? s.data : undefined, error: same ? s.error : undefined, loading: true }));
    load().then(
      (data) => live && setState({ data, error: undefined, loading: false }),
      (error: unknown) => live && setState((s) => ({ data: same ? s.data : undefined, error, loading: false })),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [depsKey, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

export function Time({ iso, relative = true }: { iso?: string | null; relative?: boolean }) {
  if (!iso) return <span class="muted">—</span>;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return <span>{iso}</span>;
  return (
    <time dateTime={iso} title={d.toISOString()}>
      {d.toLocaleString()}
      {relative && <span class="muted small"> ({ago(d.getTime())})</span>}
    </time>
  );
}

export function ago(ms: number): string {
  const diff = ms - Date.now();
  const abs = Math.abs(diff);
  const units: Array<[number, string]> = [
    [86400_000, 'd'],
    [3600_000, 'h'],
    [60_000, 'm'],
    [1000, 's'],
  ];
  for (const [u, name] of units) {
    if (abs >= u || name === 's') {
      const n = Math.floor(abs / u);
      return diff >= 0 ? `in ${n}${name}` : `${n}${name} ago`;
    }
  }
  return '';
}

export function duration(seconds: number): string {
  if (seconds <= 0) return '0s';
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return [d && `${d}d`, h && `${h}h`, m && `${m}m`, !d && !h && s && `${s}s`].filter(Boolean).join(' ') || '0s';
}

export function StateBadge({ state }: { state: string }) {
  return <span class={`badge state-${state}`}>{state}</span>;
}

/**
 * A modal built on <dialog>: the browser traps focus inside it, Escape closes it (unless it holds a secret
 * shown once: `dismissable={false}` makes the person press its own button), and focus returns to the
 * control that opened it — or, when that control is gone or disabled (a revoked key's Revoke button), to
 * the page heading.
 */
export function Dialog({ open, title, onClose, children, dismissable = true }: { open: boolean; title: string; onClose: () => void; children: ComponentChildren; dismissable?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  const opener = useRef<Element | null>(null);
  const isOpen = useRef(open);
  isOpen.current = open;
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) {
      opener.current = document.activeElement;
      d.showModal();
    } else if (!open && d.open) {
      d.close();
    }
    if (!open && opener.current) {
      const back = opener.current;
      opener.current = null;
      // After the re-render that follows the action: the opener may be gone or disabled by then.
      setTimeout(() => {
        const usable = back instanceof HTMLElement && back.isConnected && !(back as HTMLButtonElement).disabled;
        (usable ? back : document.querySelector<HTMLElement>('main h1[tabindex]'))?.focus();
      }, 0);
    }
  }, [open]);
  const id = `dlg-${title.replace(/\W+/g, '-').toLowerCase()}`;
  return (
    <dialog
      ref={ref}
      aria-labelledby={id}
      // Only a close the browser made (a form method=dialog, or Escape when allowed) reports back; closing
      // because `open` turned false must not call onClose a second time.
      onClose={() => isOpen.current && onClose()}
      onCancel={(e) => {
        e.preventDefault();
        if (dismissable) onClose();
      }}
    >
      {open && (
        <div class="dialog-body">
          <h2 id={id}>{title}</h2>
          {children}
        </div>
      )}
    </dialog>
  );
}

/**
 * A secret shown once: read-only, selectable, with a copy button. The value lives only in this
 * component's props; closing the dialog that holds it drops it.
 */
export function SecretField({ label, value, id }: { label: string; value: string; id: string }) {
  const [copied, setCopied] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setCopied('Copied to the clipboard.');
    } catch {
      input.current?.select();
      setCopied('Copy was refused by the browser: the text is selected, press Ctrl+C.');
    }
  };
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <div class="row">
        <input id={id} ref={input} class="secret mono" readOnly value={value} spellcheck={false} autocomplete="off" onFocus={(e) => (e.currentTarget as HTMLInputElement).select()} />
        <button type="button" onClick={() => void copy()}>
          Copy
        </button>
      </div>
      <p class="small" aria-live="polite">
        {copied}
      </p>
    </div>
  );
}

/** Offer text as a file download (a PEM): built in memory, never stored. */
export function downloadText(filename: string, text: string, type = 'application/x-pem-file'): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Cursor pagination: a stack of cursors so "Previous" works with the API's forward-only cursors. */
export function usePager(resetKey: string): { cursor: string | undefined; page: number; next: (c: string) => void; prev: () => void } {
  const [stack, setStack] = useState<Array<string | undefined>>([undefined]);
  useEffect(() => setStack([undefined]), [resetKey]);
  return {
    cursor: stack[stack.length - 1],
    page: stack.length,
    next: (c) => setStack((s) => [...s, c]),
    prev: () => setStack((s) => (s.length > 1 ? s.slice(0, -1) : s)),
  };
}

export function Pager({ page, nextCursor, onNext, onPrev, label }: { page: number; nextCursor: string | null | undefined; onNext: (c: string) => void; onPrev: () => void; label: string }) {
  return (
    <nav class="pager" aria-label={`${label} pages`}>
      <button type="button" onClick={onPrev} disabled={page <= 1}>
        Previous
      </button>
      <span aria-live="polite">Page {page}</span>
      <button type="button" onClick={() => nextCursor && onNext(nextCursor)} disabled={!nextCursor}>
        Next
      </button>
    </nav>
  );
}

/** Move focus to the page heading after navigation, so screen readers and keyboard users start there. */
export function useFocusHeading(ref: RefObject<HTMLElement | null>, deps: unknown[]): void {
  useEffect(() => {
    ref.current?.focus();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
}

export function KV({ items }: { items: Array<[string, ComponentChildren]> }) {
  return (
    <dl class="kv">
      {items.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

export function List({ values, empty = '—' }: { values?: string[] | null; empty?: string }) {
  if (!values?.length) return <span class="muted">{empty}</span>;
  return (
    <span>
      {values.map((v, i) => (
        <span key={v}>
          {i > 0 && ', '}
          <code>{v}</code>
        </span>
      ))}
    </span>
  );
}

/** Split "a, b\nc" into trimmed non-empty items. */
export function splitList(s: string): string[] {
  return s
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);
}

/**
 * A form's buttons: submit (primary, or danger for destructive ones) and Cancel. `cancelFirst` puts the
 * initial focus on Cancel, so an Enter too many never confirms a destructive action.
 */
export function FormActions({ children, kind = 'primary', disabled, onCancel, cancelFirst = false }: { children: ComponentChildren; kind?: 'primary' | 'danger'; disabled?: boolean; onCancel: () => void; cancelFirst?: boolean }) {
  return (
    <div class="actions">
      <button type="submit" class={kind} disabled={disabled}>
        {children}
      </button>
      <button type="button" onClick={onCancel} autoFocus={cancelFirst}>
        Cancel
      </button>
    </div>
  );
}

/** A table head of column headers. */
export function THead({ cols }: { cols: string[] }) {
  return (
    <thead>
      <tr>
        {cols.map((c) => (
          <th scope="col" key={c}>
            {c}
          </th>
        ))}
      </tr>
    </thead>
  );
}

/** The period of a usage chart. */
export function PeriodSelect({ id, hours, onChange }: { id: string; hours: number; onChange: (h: number) => void }) {
  return (
    <div class="field inline">
      <label for={id}>Period</label>
      <select id={id} value={String(hours)} onChange={(e) => onChange(Number((e.currentTarget as HTMLSelectElement).value))}>
        <option value="6">6 hours</option>
        <option value="24">24 hours</option>
        <option value="72">3 days</option>
        <option value="168">7 days</option>
      </select>
    </div>
  );
}

/** Re-run a load every `ms` while the component is shown (a reload keeps the data on screen meanwhile). */
export function usePoll(reload: () => void, ms: number): void {
  const latest = useRef(reload);
  latest.current = reload;
  useEffect(() => {
    const t = setInterval(() => latest.current(), ms);
    return () => clearInterval(t);
  }, [ms]);
}

/**
 * An action behind a form (renew, rotate, revoke…): one run at a time (a double submit is ignored),
 * `busy` while it runs, and its error kept for ErrorBox.
 */
export function useAction(): { busy: boolean; error: unknown; setError: (e: unknown) => void; run: (fn: () => Promise<void>) => Promise<void> } {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const running = useRef(false);
  const run = async (fn: () => Promise<void>) => {
    if (running.current) return;
    running.current = true;
    setBusy(true);
    setError(undefined);
    try {
      await fn();
    } catch (err) {
      setError(err);
    } finally {
      running.current = false;
      setBusy(false);
    }
  };
  return { busy, error, setError, run };
}

/** Closes a dialog that showed a secret once; the secret goes with it. */
export function ForgetButton({ onClick }: { onClick: () => void }) {
  return (
    <button type="button" class="primary" onClick={onClick}>
      Done (forget the secret)
    </button>
  );
}

/**
 * A form's fields, with an input handler per field: `bind('name')` for `onInput`/`onChange` (a checkbox
 * gives its checked state, anything else its value), and `reset` back to the initial values.
 */
export function useFields<T extends Record<string, string | boolean>>(initial: T): { f: T; bind: (k: keyof T) => (e: Event) => void; setF: (f: T) => void; reset: () => void } {
  const [f, setF] = useState(initial);
  const bind = (k: keyof T) => (e: Event) => {
    const t = e.currentTarget as HTMLInputElement;
    const v = t.type === 'checkbox' ? t.checked : t.value;
    setF((prev) => ({ ...prev, [k]: v }));
  };
  return { f, bind, setF, reset: () => setF(initial) };
}

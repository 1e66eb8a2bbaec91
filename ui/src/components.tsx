import type { ComponentChildren, ComponentType } from 'preact';
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { fmtValue } from './api';

/** useAsync runs load whenever deps change and keeps the latest result. */
export function useAsync<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]) {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  // A layout effect starts the request right after the first render instead of after paint.
  useLayoutEffect(() => {
    const ac = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    load(ac.signal).then(
      (data) => !ac.signal.aborted && setState({ data, loading: false }),
      (error) => !ac.signal.aborted && setState({ error, loading: false }),
    );
    return () => ac.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** useInterval calls fn every ms milliseconds while active. */
export function useInterval(fn: () => void, ms: number, active: boolean) {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    if (!active) return;
    const id = setInterval(() => ref.current(), ms);
    return () => clearInterval(id);
  }, [ms, active]);
}

const STATE_CLASS: Record<string, string> = {
  SUCCEEDED: 'ok',
  CACHED: 'ok',
  FAILED: 'bad',
  CANCELED: 'bad',
  CANCELLED: 'bad',
  CANCELING: 'warn',
  RUNNING: 'run',
  PENDING: 'wait',
  QUEUED: 'wait',
  SKIPPED: 'skip',
  PAUSED: 'wait',
};

export function stateClass(state?: string) {
  return STATE_CLASS[state ?? ''] ?? 'unknown';
}

export function StateBadge({ state }: { state?: string }) {
  const s = state && state !== 'RUNTIME_STATE_UNSPECIFIED' ? state : 'UNKNOWN';
  return <span class={`badge st-${stateClass(s)}`} data-state={s}>{s}</span>;
}

export function ErrorBox({ error, what }: { error?: Error | null; what?: string }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      {what ? `${what}: ` : ''}
      {error.message}
    </div>
  );
}

export function Loading({ what = 'Loading' }: { what?: string }) {
  return <p class="muted" aria-busy="true">{what}…</p>;
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="muted empty">{children}</p>;
}

export function Page({ title, actions, children }: { title: ComponentChildren; actions?: ComponentChildren; children: ComponentChildren }) {
  return (
    <section class="page">
      <header class="page-head">
        <h1>{title}</h1>
        <div class="actions">{actions}</div>
      </header>
      {children}
    </section>
  );
}

export function Tabs<K extends string>({ tabs, active, onChange, label }: { tabs: [K, string][]; active: K; onChange: (k: K) => void; label: string }) {
  const onKey = (e: KeyboardEvent) => {
    const i = tabs.findIndex(([k]) => k === active);
    if (e.key === 'ArrowRight') onChange(tabs[(i + 1) % tabs.length][0]);
    else if (e.key === 'ArrowLeft') onChange(tabs[(i - 1 + tabs.length) % tabs.length][0]);
    else return;
    e.preventDefault();
  };
  return (
    <div class="tabs" role="tablist" aria-label={label} onKeyDown={onKey}>
      {tabs.map(([k, text]) => (
        <button type="button" role="tab" key={k} id={`tab-${k}`} aria-selected={k === active} tabIndex={k === active ? 0 : -1} class={k === active ? 'tab active' : 'tab'} onClick={() => onChange(k)}>
          {text}
        </button>
      ))}
    </div>
  );
}

export function KV({ data, label }: { data: Record<string, unknown> | undefined; label: string }) {
  const entries = Object.entries(data ?? {});
  if (!entries.length) return <Empty>No {label.toLowerCase()}.</Empty>;
  return (
    <table class="kv" aria-label={label}>
      <tbody>
        {entries.map(([k, v]) => (
          <tr key={k}>
            <th scope="row">{k}</th>
            <td>
              <code>{fmtValue(v)}</code>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Pager drives token paging: a stack of tokens lets the user go back. */
export function usePager(pageSize = 20) {
  const [size, setSize] = useState(pageSize);
  const [tokens, setTokens] = useState<string[]>(['']);
  const token = tokens[tokens.length - 1];
  return {
    size,
    token,
    page: tokens.length,
    reset: () => setTokens(['']),
    setSize: (n: number) => {
      setSize(n);
      setTokens(['']);
    },
    next: (t: string) => setTokens((ts) => [...ts, t]),
    prev: () => setTokens((ts) => (ts.length > 1 ? ts.slice(0, -1) : ts)),
  };
}

export function Pager({ pager, next, total }: { pager: ReturnType<typeof usePager>; next: string; total: number }) {
  return (
    <nav class="pager" aria-label="Pages">
      <label>
        Rows per page{' '}
        <select value={pager.size} onChange={(e) => pager.setSize(Number((e.target as HTMLSelectElement).value))}>
          {[10, 20, 50, 100].map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
      </label>
      <span class="muted">
        page {pager.page}
        {total ? ` · ${total} total` : ''}
      </span>
      <button type="button" disabled={pager.page <= 1} onClick={pager.prev}>
        ‹ Previous
      </button>
      <button type="button" disabled={!next} onClick={() => pager.next(next)}>
        Next ›
      </button>
    </nav>
  );
}

/** SortHeader is a column header that toggles its sort field. */
export function SortHeader({ field, label, sort, setSort }: { field: string; label: string; sort: string; setSort: (s: string) => void }) {
  const [f, dir] = sort.split(' ');
  const active = f === field;
  const aria = active ? (dir === 'desc' ? 'descending' : 'ascending') : 'none';
  return (
    <th scope="col" aria-sort={aria}>
      <button type="button" class="linklike" onClick={() => setSort(active && dir === 'desc' ? `${field} asc` : `${field} desc`)}>
        {label}
        {active ? (dir === 'desc' ? ' ▼' : ' ▲') : ''}
      </button>
    </th>
  );
}

/** useAction wraps a button's async action with busy and error state. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  const run = async (fn: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await fn();
    } catch (e) {
      setError(e as Error);
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run, setError };
}

/**
 * lazyPage loads a page's code on first use, so the first screen (the run list) does not wait
 * for the graph layout, chart and Markdown libraries.
 */
export function lazyPage<P extends object>(load: () => Promise<ComponentType<P>>): ComponentType<P> {
  let loaded: ComponentType<P> | null = null;
  let pending: Promise<ComponentType<P>> | null = null;
  return function LazyPage(props: P) {
    const [, setDone] = useState(0);
    const [error, setError] = useState<Error | null>(null);
    useEffect(() => {
      if (loaded) return;
      pending ??= load();
      pending.then(
        (c) => {
          loaded = c;
          setDone(1);
        },
        (e) => {
          pending = null;
          setError(e);
        },
      );
    }, []);
    if (error) return <ErrorBox error={error} what="Loading this page (try reloading)" />;
    if (!loaded) return <Loading />;
    const C = loaded;
    return <C {...props} />;
  };
}

export function Json({ value }: { value: unknown }) {
  return <pre class="json">{JSON.stringify(value, null, 2)}</pre>;
}

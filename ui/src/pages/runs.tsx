import { useLayoutEffect, useState } from 'preact/hooks';
import type { Dict, Predicate } from '../api';
import { fmtDuration, fmtTime, get, isTerminal, list, listAll, post, runLink } from '../api';
import { Empty, ErrorBox, Loading, Page, Pager, SortHeader, StateBadge, useAction, useAsync, useInterval, usePager } from '../components';
import { navigate, useLocation } from '../router';

const STATES = ['', 'PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'SKIPPED', 'CANCELING', 'CANCELED', 'PAUSED'];

let firstRender = true;

/** useExperiments loads every experiment once per page, for names and pickers. */
export function useExperiments() {
  return useAsync(() => listAll('experiments', 'experiments'), []);
}

export function RunList() {
  const { query } = useLocation();
  const experiment = query.get('experiment') ?? '';
  const recurring = query.get('recurring') ?? '';
  const pager = usePager();
  const [sort, setSortState] = useState('created_at desc');
  // A page token is only valid for the sort it was issued with: start again from page one.
  const setSort = (v: string) => {
    setSortState(v);
    pager.reset();
  };
  const [q, setQ] = useState('');
  const [state, setState] = useState('');
  const [archived, setArchived] = useState(false);
  const [selected, setSelected] = useState<string[]>([]);
  const exps = useExperiments();
  const expName = (id: string) => exps.data?.find((e) => e.experiment_id === id)?.display_name ?? '';
  const preds: Predicate[] = [{ key: 'storage_state', operation: archived ? 'EQUALS' : 'NOT_EQUALS', string_value: 'ARCHIVED' }];
  if (q) preds.push({ key: 'display_name', operation: 'IS_SUBSTRING', string_value: q });
  if (state) preds.push({ key: 'state', operation: 'EQUALS', string_value: state });
  if (recurring) preds.push({ key: 'recurring_run_id', operation: 'EQUALS', string_value: recurring });
  const r = useAsync(
    (signal) => list('runs', 'runs', { page_size: pager.size, page_token: pager.token, sort_by: sort, predicates: preds, extra: { experiment_id: experiment } }, signal),
    [pager.size, pager.token, sort, q, state, archived, experiment, recurring],
  );
  useLayoutEffect(() => {
    if (r.data && firstRender) {
      firstRender = false;
      performance.mark('kfp-box:run-list-rendered');
    }
  }, [r.data]);
  useInterval(r.reload, 3000, !!r.data?.items.some((x) => !isTerminal(x.state)));
  const act = useAction();
  const bulk = (verb: string) =>
    act.run(async () => {
      await Promise.all(selected.map((id) => post(`runs/${encodeURIComponent(id)}:${verb}`)));
      setSelected([]);
      r.reload();
    });
  const toggle = (id: string, on: boolean) => setSelected((s) => (on ? [...s, id] : s.filter((x) => x !== id)));
  const items = r.data?.items ?? [];
  return (
    <Page
      title={experiment ? <>Runs of experiment {expName(experiment) || experiment}</> : 'Runs'}
      actions={
        <a class="button primary" href={`/runs/new${experiment ? `?experiment=${encodeURIComponent(experiment)}` : ''}`}>
          Create run
        </a>
      }
    >
      <div class="toolbar" role="search">
        <label>
          Filter by name{' '}
          <input
            type="search"
            value={q}
            onInput={(e) => {
              setQ((e.target as HTMLInputElement).value);
              pager.reset();
            }}
          />
        </label>
        <label>
          State{' '}
          <select
            value={state}
            onChange={(e) => {
              setState((e.target as HTMLSelectElement).value);
              pager.reset();
            }}
          >
            {STATES.map((s) => (
              <option key={s} value={s}>
                {s || 'any'}
              </option>
            ))}
          </select>
        </label>
        <label class="check">
          <input
            type="checkbox"
            checked={archived}
            onChange={(e) => {
              setArchived((e.target as HTMLInputElement).checked);
              setSelected([]);
              pager.reset();
            }}
          />{' '}
          Show archived
        </label>
        {(experiment || recurring) && <a href="/runs">All runs</a>}
      </div>
      <div class="toolbar" aria-label="Actions on selected runs">
        <span class="muted">{selected.length} selected</span>
        <button type="button" disabled={selected.length < 2} onClick={() => navigate(`/compare?runs=${selected.map(encodeURIComponent).join(',')}`)}>
          Compare
        </button>
        <button type="button" disabled={selected.length !== 1} onClick={() => navigate(`/runs/new?clone=${encodeURIComponent(selected[0])}`)}>
          Clone
        </button>
        <button type="button" disabled={!selected.length || act.busy} onClick={() => bulk('retry')}>
          Retry
        </button>
        <button type="button" disabled={!selected.length || act.busy} onClick={() => bulk('terminate')}>
          Terminate
        </button>
        <button type="button" disabled={!selected.length || act.busy} onClick={() => bulk(archived ? 'unarchive' : 'archive')}>
          {archived ? 'Restore' : 'Archive'}
        </button>
      </div>
      <ErrorBox error={r.error ?? act.error} />
      {r.loading && !r.data && <Loading what="Loading runs" />}
      <div data-testid="run-list" data-loaded={r.data ? 'true' : 'false'}>
        {r.data && !items.length && <Empty>No runs match.</Empty>}
        {items.length > 0 && (
          <table class="grid" aria-label="Runs">
            <thead>
              <tr>
                <th scope="col">
                  <input
                    type="checkbox"
                    aria-label="Select all runs on this page"
                    checked={items.length > 0 && items.every((x) => selected.includes(x.run_id))}
                    onChange={(e) => setSelected((e.target as HTMLInputElement).checked ? items.map((x) => x.run_id) : [])}
                  />
                </th>
                <SortHeader field="display_name" label="Name" sort={sort} setSort={setSort} />
                <th scope="col">State</th>
                <th scope="col">Duration</th>
                <th scope="col">Experiment</th>
                <SortHeader field="created_at" label="Created" sort={sort} setSort={setSort} />
                <th scope="col">Recurring</th>
              </tr>
            </thead>
            <tbody>
              {items.map((x: Dict) => (
                <tr key={x.run_id} data-run-id={x.run_id}>
                  <td>
                    <input type="checkbox" aria-label={`Select run ${x.display_name}`} checked={selected.includes(x.run_id)} onChange={(e) => toggle(x.run_id, (e.target as HTMLInputElement).checked)} />
                  </td>
                  <td>
                    <a href={runLink(x.run_id)}>{x.display_name || x.run_id}</a>
                    {x.imported_from && (
                      <span class="tag imported" title={`imported from ${x.imported_from.server} (run ${x.imported_from.run_id})`}>
                        {' '}imported
                      </span>
                    )}
                  </td>
                  <td>
                    <StateBadge state={x.state} />
                  </td>
                  <td>{fmtDuration(x.created_at, x.finished_at)}</td>
                  <td>
                    <a href={`/runs?experiment=${encodeURIComponent(x.experiment_id ?? '')}`}>{expName(x.experiment_id) || x.experiment_id}</a>
                  </td>
                  <td>{fmtTime(x.created_at)}</td>
                  <td>{x.recurring_run_id ? <a href="/recurring">yes</a> : ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
      {r.data && <Pager pager={pager} next={r.data.next_page_token} total={r.data.total_size} />}
    </Page>
  );
}

/** getRun fetches a run. */
export const getRun = (id: string, signal?: AbortSignal) => get(`runs/${encodeURIComponent(id)}`, signal);

import { useState } from 'preact/hooks';
import { fmtTime, list, post } from '../api';
import { Empty, ErrorBox, Loading, Page, Pager, SortHeader, useAction, useAsync, usePager } from '../components';
import { navigate } from '../router';

export function ExperimentList() {
  const pager = usePager();
  const [sort, setSortState] = useState('created_at desc');
  // A page token is only valid for the sort it was issued with: start again from page one.
  const setSort = (v: string) => {
    setSortState(v);
    pager.reset();
  };
  const [archived, setArchived] = useState(false);
  const [creating, setCreating] = useState(false);
  const [name, setName] = useState('');
  const [desc, setDesc] = useState('');
  const act = useAction();
  const r = useAsync(
    (signal) =>
      list('experiments', 'experiments', {
        page_size: pager.size,
        page_token: pager.token,
        sort_by: sort,
        predicates: [{ key: 'storage_state', operation: archived ? 'EQUALS' : 'NOT_EQUALS', string_value: 'ARCHIVED' }],
      }, signal),
    [pager.size, pager.token, sort, archived],
  );
  const create = (e: Event) => {
    e.preventDefault();
    act.run(async () => {
      const x = await post('experiments', { display_name: name, description: desc });
      setCreating(false);
      setName('');
      setDesc('');
      navigate(`/runs?experiment=${encodeURIComponent(x.experiment_id)}`);
    });
  };
  const toggle = (id: string, isArchived: boolean) => act.run(async () => {
    await post(`experiments/${encodeURIComponent(id)}:${isArchived ? 'unarchive' : 'archive'}`);
    r.reload();
  });
  return (
    <Page
      title="Experiments"
      actions={
        <button type="button" class="primary" onClick={() => setCreating((c) => !c)} aria-expanded={creating}>
          New experiment
        </button>
      }
    >
      {creating && (
        <form class="card form" onSubmit={create} aria-label="New experiment">
          <label>
            Name
            <input type="text" required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
          </label>
          <label>
            Description
            <input type="text" value={desc} onInput={(e) => setDesc((e.target as HTMLInputElement).value)} />
          </label>
          <button type="submit" class="primary" disabled={act.busy}>
            Create
          </button>
        </form>
      )}
      <div class="toolbar">
        <label class="check">
          <input
            type="checkbox"
            checked={archived}
            onChange={(e) => {
              setArchived((e.target as HTMLInputElement).checked);
              pager.reset();
            }}
          />{' '}
          Show archived
        </label>
      </div>
      <ErrorBox error={r.error ?? act.error} />
      {r.loading && !r.data && <Loading />}
      {r.data && !r.data.items.length && <Empty>{archived ? 'No archived experiments.' : 'No experiments.'}</Empty>}
      {r.data && r.data.items.length > 0 && (
        <table class="grid" aria-label="Experiments" data-testid="experiment-list">
          <thead>
            <tr>
              <SortHeader field="display_name" label="Name" sort={sort} setSort={setSort} />
              <th scope="col">Description</th>
              <SortHeader field="created_at" label="Created" sort={sort} setSort={setSort} />
              <SortHeader field="last_run_created_at" label="Last run" sort={sort} setSort={setSort} />
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {r.data.items.map((x) => {
              const isArchived = x.storage_state === 'ARCHIVED';
              return (
                <tr key={x.experiment_id}>
                  <td>
                    <a href={`/runs?experiment=${encodeURIComponent(x.experiment_id)}`}>{x.display_name}</a>
                  </td>
                  <td>{x.description}</td>
                  <td>{fmtTime(x.created_at)}</td>
                  <td>{fmtTime(x.last_run_created_at)}</td>
                  <td>
                    <button type="button" class="small" disabled={act.busy} onClick={() => toggle(x.experiment_id, isArchived)} aria-label={`${isArchived ? 'Restore' : 'Archive'} experiment ${x.display_name}`}>
                      {isArchived ? 'Restore' : 'Archive'}
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {r.data && <Pager pager={pager} next={r.data.next_page_token} total={r.data.total_size} />}
    </Page>
  );
}

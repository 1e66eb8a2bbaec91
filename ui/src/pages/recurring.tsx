import type { Dict } from '../api';
import { fmtTime, list, post } from '../api';
import { Empty, ErrorBox, Loading, Page, Pager, useAction, useAsync, usePager } from '../components';

function describeTrigger(t: Dict | undefined): string {
  if (t?.cron_schedule) return `cron ${t.cron_schedule.cron}`;
  if (t?.periodic_schedule) return `every ${t.periodic_schedule.interval_second} s`;
  return '';
}

export function RecurringList() {
  const pager = usePager();
  const r = useAsync((signal) => list('recurringruns', 'recurringRuns', { page_size: pager.size, page_token: pager.token, sort_by: 'created_at desc' }, signal), [pager.size, pager.token]);
  const act = useAction();
  const set = (id: string, verb: 'enable' | 'disable' | 'delete') =>
    act.run(async () => {
      if (verb === 'delete') {
        if (!confirm('Delete this recurring run? Runs it started are kept.')) return;
        const res = await fetch(`/apis/v2beta1/recurringruns/${encodeURIComponent(id)}`, { method: 'DELETE' });
        if (!res.ok) throw new Error(`delete failed: ${res.status}`);
      } else await post(`recurringruns/${encodeURIComponent(id)}:${verb}`);
      r.reload();
    });
  return (
    <Page
      title="Recurring runs"
      actions={
        <a class="button primary" href="/runs/new">
          Create run
        </a>
      }
    >
      <p class="muted">Create a recurring run from the run form by choosing “Recurring”.</p>
      <ErrorBox error={r.error ?? act.error} />
      {r.loading && !r.data && <Loading />}
      {r.data && !r.data.items.length && <Empty>No recurring runs.</Empty>}
      {r.data && r.data.items.length > 0 && (
        <table class="grid" aria-label="Recurring runs" data-testid="recurring-list">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Trigger</th>
              <th scope="col">Status</th>
              <th scope="col">Max concurrency</th>
              <th scope="col">Created</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {r.data.items.map((x) => {
              const enabled = x.status === 'ENABLED' || (!x.status && x.mode === 'ENABLE');
              return (
                <tr key={x.recurring_run_id}>
                  <td>{x.display_name}</td>
                  <td>
                    <code>{describeTrigger(x.trigger)}</code>
                  </td>
                  <td>
                    <span class={`badge ${enabled ? 'st-ok' : 'st-skip'}`}>{enabled ? 'enabled' : 'disabled'}</span>
                  </td>
                  <td>{x.max_concurrency}</td>
                  <td>{fmtTime(x.created_at)}</td>
                  <td>
                    <button type="button" class="small" disabled={act.busy} onClick={() => set(x.recurring_run_id, enabled ? 'disable' : 'enable')} aria-label={`${enabled ? 'Disable' : 'Enable'} ${x.display_name}`}>
                      {enabled ? 'Disable' : 'Enable'}
                    </button>{' '}
                    <a class="button small" href={`/runs?recurring=${encodeURIComponent(x.recurring_run_id)}`} aria-label={`Runs of ${x.display_name}`}>
                      Runs
                    </a>{' '}
                    <button type="button" class="small danger" disabled={act.busy} onClick={() => set(x.recurring_run_id, 'delete')} aria-label={`Delete ${x.display_name}`}>
                      Delete
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

import type { Dict } from '../api';
import { fmtBytes, fmtValue, get } from '../api';
import { Empty, ErrorBox, Loading, Page, useAsync, useInterval } from '../components';

/** optional fetches an extension endpoint; a 404 means the server does not offer it. */
async function optional(path: string, signal: AbortSignal): Promise<Dict | null> {
  try {
    return await get(path, signal);
  } catch (e: any) {
    if (e?.status === 404 || e?.status === 501) return null;
    throw e;
  }
}

const isBytesKey = (k: string) => /bytes|_size$|^size$|memory|capacity|used|free|total/i.test(k) && !/percent|ratio|count|util/i.test(k);

function Value({ k, v }: { k: string; v: unknown }) {
  if (typeof v === 'number' && isBytesKey(k) && v > 4096) return <>{fmtBytes(v)}</>;
  if (typeof v === 'string' && /^\d+$/.test(v) && isBytesKey(k) && Number(v) > 4096) return <>{fmtBytes(v)}</>;
  if (typeof v === 'boolean') return <span class={`badge ${v ? 'st-ok' : 'st-bad'}`}>{v ? 'yes' : 'no'}</span>;
  return <code>{fmtValue(v)}</code>;
}

function Section({ title, data }: { title: string; data: Dict }) {
  const scalars = Object.entries(data).filter(([, v]) => v === null || typeof v !== 'object');
  const nested = Object.entries(data).filter(([, v]) => v !== null && typeof v === 'object');
  return (
    <section class="card">
      <h2>{title}</h2>
      {scalars.length > 0 && (
        <table class="kv" aria-label={title}>
          <tbody>
            {scalars.map(([k, v]) => (
              <tr key={k}>
                <th scope="row">{k}</th>
                <td>
                  <Value k={k} v={v} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {nested.map(([k, v]) =>
        Array.isArray(v) ? <ListTable key={k} title={k} rows={v} /> : <Section key={k} title={k} data={v as Dict} />,
      )}
    </section>
  );
}

function ListTable({ title, rows }: { title: string; rows: unknown[] }) {
  if (!rows.length) return <Empty>No {title}.</Empty>;
  if (rows.some((r) => r === null || typeof r !== 'object')) return <p>{title}: {rows.map((r) => fmtValue(r)).join(', ')}</p>;
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r as Dict)))];
  return (
    <table class="grid" aria-label={title}>
      <caption>{title}</caption>
      <thead>
        <tr>
          {cols.map((c) => (
            <th scope="col" key={c}>
              {c}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((r, i) => (
          <tr key={i}>
            {cols.map((c) => (
              <td key={c}>
                <Value k={c} v={(r as Dict)[c]} />
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function pct(v: unknown): number | null {
  const n = Number(v);
  return isFinite(n) ? Math.max(0, Math.min(100, n <= 1 && n > 0 && !Number.isInteger(n) ? n * 100 : n)) : null;
}

function GPUs({ data }: { data: Dict | null }) {
  if (data === null) return <Empty>This server does not report GPUs.</Empty>;
  const gpus: Dict[] = data.gpus ?? data.devices ?? (Array.isArray(data) ? data : []);
  if (!gpus.length) return <Empty>No GPUs{data.unavailable_reason ? `: ${data.unavailable_reason}` : ' found on this machine'}.</Empty>;
  return (
    <table class="grid" aria-label="GPUs" data-testid="gpu-list">
      <thead>
        <tr>
          <th scope="col">#</th>
          <th scope="col">Model</th>
          <th scope="col">UUID</th>
          <th scope="col">Utilization</th>
          <th scope="col">Memory</th>
          <th scope="col">Health</th>
          <th scope="col">Assigned to</th>
        </tr>
      </thead>
      <tbody>
        {gpus.map((g, i) => {
          const util = pct(g.utilization_percent ?? g.utilization_gpu ?? g.utilization);
          const used = g.memory_used_bytes ?? g.memory_used;
          const total = g.memory_total_bytes ?? g.memory_total;
          const lease = g.assigned_to ?? g.assigned;
          return (
            <tr key={g.uuid ?? i}>
              <td>{g.index ?? i}</td>
              <td>{g.name ?? g.model}</td>
              <td>
                <code>{g.uuid}</code>
              </td>
              <td>
                {util !== null && (
                  <>
                    <meter min={0} max={100} value={util} aria-label={`GPU ${g.index ?? i} utilization`} /> {util.toFixed(0)}%
                  </>
                )}
              </td>
              <td>{used !== undefined && total !== undefined ? `${fmtBytes(used)} / ${fmtBytes(total)}` : ''}</td>
              <td>{g.healthy === false ? <span class="badge st-bad">{g.health_reason || 'unhealthy'}</span> : <span class="badge st-ok">healthy</span>}</td>
              <td>
                <Lease lease={lease} />
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

/** Lease shows who holds a GPU: a run link when the holder names a run. */
function Lease({ lease }: { lease: unknown }) {
  if (!lease) return <span class="muted">free</span>;
  if (typeof lease === 'object') {
    const l = lease as Dict;
    return l.run_id ? <a href={`/runs/${encodeURIComponent(l.run_id)}`}>{l.task_name ?? l.task_id ?? l.run_id}</a> : <>{fmtValue(l)}</>;
  }
  const s = String(lease);
  const run = /^([0-9a-f]{8}-[0-9a-f-]{27})(?:[/:](.*))?$/i.exec(s);
  return run ? <a href={`/runs/${encodeURIComponent(run[1])}`}>{run[2] || run[1]}</a> : <code>{s}</code>;
}

export function SystemPage() {
  const sys = useAsync((s) => optional('system', s), []);
  const gpus = useAsync((s) => optional('gpus', s), []);
  const health = useAsync((s) => optional('healthz', s), []);
  useInterval(() => {
    sys.reload();
    gpus.reload();
  }, 5000, true);
  return (
    <Page title="System">
      <ErrorBox error={sys.error ?? gpus.error ?? health.error} />
      <section class="card" data-testid="system-health">
        <h2>Server</h2>
        {health.data ? (
          <p>
            API healthy{health.data.tag_name ? `, version ${health.data.tag_name}` : ''}
            {health.data.commit_sha && health.data.commit_sha !== health.data.tag_name ? ` (commit ${String(health.data.commit_sha).slice(0, 12)})` : ''}
          </p>
        ) : health.loading ? (
          <Loading />
        ) : (
          <p>Health endpoint unavailable.</p>
        )}
      </section>
      <section class="card">
        <h2>GPUs</h2>
        {gpus.data === undefined ? <Loading /> : <GPUs data={gpus.data} />}
      </section>
      {sys.data === undefined && sys.loading && <Loading />}
      {sys.data === null && <Empty>This server does not report runtime and storage status.</Empty>}
      {sys.data && <Section title="Runtime and storage" data={sys.data} />}
    </Page>
  );
}

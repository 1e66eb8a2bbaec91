import type { Dict } from '../api';
import { fmtDuration, fmtValue, get, runLink } from '../api';
import { artifactName, artifactTask, artifactType, runArtifacts, scalarMetrics } from '../artifacts';
import { BarChart } from '../charts';
import { Empty, ErrorBox, Loading, Page, StateBadge, useAsync } from '../components';
import { useLocation } from '../router';

interface Loaded {
  run: Dict;
  metrics: Record<string, number>; // "task/artifact/metric" -> value
}

async function load(id: string, signal: AbortSignal): Promise<Loaded> {
  const run = await get(`runs/${encodeURIComponent(id)}`, signal);
  const arts = (await runArtifacts(id, signal)) ?? [];
  const metrics: Record<string, number> = {};
  for (const a of arts) {
    if (!artifactType(a).endsWith('.Metrics')) continue;
    const prefix = [artifactTask(a), artifactName(a)].filter(Boolean).join('/');
    for (const [k, v] of Object.entries(scalarMetrics(a))) metrics[prefix ? `${prefix}/${k}` : k] = v;
  }
  return { run, metrics };
}

export function Compare() {
  const { query } = useLocation();
  const ids = (query.get('runs') ?? '').split(',').filter(Boolean);
  const r = useAsync((signal) => Promise.all(ids.map((id) => load(id, signal))), [ids.join(',')]);
  if (ids.length < 2) return <Page title="Compare runs">{<Empty>Select two or more runs on the Runs page and press Compare.</Empty>}</Page>;
  if (r.error) return <Page title="Compare runs">{<ErrorBox error={r.error} />}</Page>;
  if (!r.data) return <Page title="Compare runs">{<Loading />}</Page>;
  const runs = r.data;
  const paramNames = [...new Set(runs.flatMap((x) => Object.keys(x.run.runtime_config?.parameters ?? {})))].sort();
  const metricNames = [...new Set(runs.flatMap((x) => Object.keys(x.metrics)))].sort();
  const names = runs.map((x) => x.run.display_name ?? x.run.run_id);
  const header = (
    <thead>
      <tr>
        <th scope="col">
          <span class="sr-only">Name</span>
        </th>
        {runs.map((x) => (
          <th scope="col" key={x.run.run_id}>
            <a href={runLink(x.run.run_id)}>{x.run.display_name}</a>
          </th>
        ))}
      </tr>
    </thead>
  );
  return (
    <Page title="Compare runs">
      <h2>Overview</h2>
      <table class="grid compare" aria-label="Run overview" data-testid="compare-overview">
        {header}
        <tbody>
          <tr>
            <th scope="row">State</th>
            {runs.map((x) => (
              <td key={x.run.run_id}>
                <StateBadge state={x.run.state} />
              </td>
            ))}
          </tr>
          <tr>
            <th scope="row">Duration</th>
            {runs.map((x) => (
              <td key={x.run.run_id}>{fmtDuration(x.run.created_at, x.run.finished_at)}</td>
            ))}
          </tr>
        </tbody>
      </table>
      <h2>Parameters</h2>
      {!paramNames.length ? (
        <Empty>These runs have no parameters.</Empty>
      ) : (
        <table class="grid compare" aria-label="Parameters" data-testid="compare-params">
          {header}
          <tbody>
            {paramNames.map((p) => {
              const vals = runs.map((x) => fmtValue(x.run.runtime_config?.parameters?.[p]));
              const differs = new Set(vals).size > 1;
              return (
                <tr key={p} class={differs ? 'differs' : ''}>
                  <th scope="row">
                    {p}
                    {differs && <span class="sr-only"> (differs)</span>}
                  </th>
                  {vals.map((v, i) => (
                    <td key={i}>
                      <code>{v}</code>
                    </td>
                  ))}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <h2>Metrics</h2>
      {!metricNames.length ? (
        <Empty>No scalar metrics (system.Metrics artifacts) in these runs.</Empty>
      ) : (
        <>
          <table class="grid compare" aria-label="Metrics" data-testid="compare-metrics">
            {header}
            <tbody>
              {metricNames.map((m) => (
                <tr key={m}>
                  <th scope="row">{m}</th>
                  {runs.map((x) => (
                    <td key={x.run.run_id} class="num">
                      {x.metrics[m] ?? ''}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
          <div class="charts">
            {metricNames.slice(0, 12).map((m) => (
              <BarChart key={m} title={m} categories={names} values={runs.map((x) => x.metrics[m] ?? null)} />
            ))}
          </div>
        </>
      )}
    </Page>
  );
}

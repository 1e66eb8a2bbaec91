import { useMemo, useState } from 'preact/hooks';
import type { Dict } from '../api';
import { fmtDuration, fmtTime, fmtValue, get, isTerminal, post, unwrapSpec } from '../api';
import { ArtifactPreview, artifactId, artifactName, artifactTask, artifactType, runArtifacts } from '../artifacts';
import { LineChart } from '../charts';
import { Empty, ErrorBox, Json, KV, Loading, Page, StateBadge, Tabs, useAction, useAsync, useInterval } from '../components';
import { Graph, taskStates } from '../graph';
import { logsURL, stepMetrics, useLogs } from '../logs';
import { navigate } from '../router';
import { Breadcrumb } from './pipelines';

type RunTab = 'graph' | 'params' | 'artifacts' | 'logs' | 'json';

export function RunDetails({ id }: { id: string }) {
  const run = useAsync((s) => get(`runs/${encodeURIComponent(id)}`, s), [id]);
  const r = run.data;
  const live = !r || !isTerminal(r.state);
  useInterval(run.reload, 2000, !!r && live);
  // Version-based runs do not carry their spec; fetch it from the version.
  const ref = r?.pipeline_version_reference;
  const version = useAsync(
    async (s) => (!r?.pipeline_spec && ref?.pipeline_id && ref?.pipeline_version_id ? get(`pipelines/${encodeURIComponent(ref.pipeline_id)}/versions/${encodeURIComponent(ref.pipeline_version_id)}`, s) : undefined),
    [ref?.pipeline_id, ref?.pipeline_version_id, !!r?.pipeline_spec],
  );
  const spec = unwrapSpec(r?.pipeline_spec ?? version.data?.pipeline_spec);
  const details: Dict[] = r?.run_details?.task_details ?? [];
  const states = useMemo(() => taskStates(details), [r]);
  // GPU use per task, drawn on the graph: the number of GPUs a task holds or held.
  const gpuBadges = useMemo(() => {
    const out: Record<string, string> = {};
    for (const d of details) if (d.display_name && d.gpus?.length) out[d.display_name] = `${d.gpus.length} GPU`;
    return out;
  }, [r]);
  const finishedCount = details.filter((d) => isTerminal(d.state)).length;
  const artifacts = useAsync((s) => runArtifacts(id, s), [id, finishedCount, r?.state]);
  const [tab, setTab] = useState<RunTab>('graph');
  const [path, setPath] = useState<string[]>([]);
  const [selected, setSelected] = useState<string | undefined>();
  const act = useAction();
  const action = (verb: string) =>
    act.run(async () => {
      await post(`runs/${encodeURIComponent(id)}:${verb}`);
      run.reload();
    });
  if (run.error) return <Page title="Run">{<ErrorBox error={run.error} what={`Run ${id}`} />}</Page>;
  if (!r) return <Page title="Run">{<Loading />}</Page>;
  const archived = r.storage_state === 'ARCHIVED';
  return (
    <Page
      title={
        <>
          <a href="/runs">Runs</a> / {r.display_name}
        </>
      }
      actions={
        <>
          <button type="button" onClick={() => navigate(`/runs/new?clone=${encodeURIComponent(id)}`)}>
            Clone
          </button>
          <button type="button" disabled={act.busy || !!r.imported_from || (r.state !== 'FAILED' && r.state !== 'CANCELED')} onClick={() => action('retry')}>
            Retry
          </button>
          <button type="button" disabled={act.busy || isTerminal(r.state)} onClick={() => action('terminate')}>
            Terminate
          </button>
          <button type="button" disabled={act.busy} onClick={() => action(archived ? 'unarchive' : 'archive')}>
            {archived ? 'Restore' : 'Archive'}
          </button>
        </>
      }
    >
      <ErrorBox error={act.error} />
      <div class="summary" data-testid="run-summary" data-run-state={r.state}>
        <StateBadge state={r.state} />
        <span>Created {fmtTime(r.created_at)}</span>
        <span>Duration {fmtDuration(r.created_at, r.finished_at)}</span>
        {r.experiment_id && <a href={`/runs?experiment=${encodeURIComponent(r.experiment_id)}`}>Experiment</a>}
        {ref?.pipeline_id && <a href={`/pipelines/${encodeURIComponent(ref.pipeline_id)}/versions/${encodeURIComponent(ref.pipeline_version_id ?? '')}`}>Pipeline version</a>}
        {r.recurring_run_id && <a href="/recurring">Started by a recurring run</a>}
        {r.imported_from && (
          <span class="imported" data-testid="imported-from" title={`exported ${fmtTime(r.imported_from.exported_at)}, imported ${fmtTime(r.imported_from.imported_at)}`}>
            Imported from {r.imported_from.server} (run {r.imported_from.run_id})
          </span>
        )}
      </div>
      {r.error && <ErrorBox error={new Error(r.error.message ?? fmtValue(r.error))} what="Run error" />}
      <Tabs
        label="Run views"
        tabs={[
          ['graph', 'Graph'],
          ['params', 'Parameters'],
          ['artifacts', 'Artifacts'],
          ['logs', 'Logs'],
          ['json', 'Details'],
        ]}
        active={tab}
        onChange={setTab}
      />
      {tab === 'graph' && (
        <div class="split">
          <div class="grow">
            <Breadcrumb path={path} setPath={setPath} />
            {spec ? <Graph spec={spec} path={path} states={states} badges={gpuBadges} selected={selected} onSelect={(n) => setSelected(n.id)} onOpen={(n) => setPath([...path, n.id])} /> : version.error ? <ErrorBox error={version.error} /> : <Loading what="Loading the pipeline" />}
          </div>
          {selected && <TaskPanel run={r} name={selected} spec={spec} artifacts={artifacts.data ?? null} onClose={() => setSelected(undefined)} />}
        </div>
      )}
      {tab === 'params' && (
        <>
          <h2>Run parameters</h2>
          <KV data={r.runtime_config?.parameters} label="Parameters" />
          {r.runtime_config?.pipeline_root && (
            <p>
              Pipeline root <code>{r.runtime_config.pipeline_root}</code>
            </p>
          )}
        </>
      )}
      {tab === 'artifacts' && <ArtifactList artifacts={artifacts.data} error={artifacts.error} />}
      {tab === 'logs' && <RunLogs run={r} spec={spec} />}
      {tab === 'json' && <Json value={r} />}
    </Page>
  );
}

function ArtifactList({ artifacts, error }: { artifacts?: Dict[] | null; error?: Error }) {
  const [open, setOpen] = useState<string>('');
  if (error) return <ErrorBox error={error} what="Artifacts" />;
  if (artifacts === undefined) return <Loading />;
  if (artifacts === null) return <Empty>This server does not list artifacts.</Empty>;
  if (!artifacts.length) return <Empty>No artifacts yet.</Empty>;
  return (
    <ul class="artifact-list" aria-label="Artifacts">
      {artifacts.map((a) => {
        const aid = artifactId(a);
        return (
          <li key={aid}>
            <button type="button" class="linklike" aria-expanded={open === aid} onClick={() => setOpen(open === aid ? '' : aid)}>
              {artifactName(a)}
            </button>{' '}
            <span class="muted">
              {artifactType(a)} {artifactTask(a) && `· from ${artifactTask(a)}`}
            </span>{' '}
            <a href={`/artifacts/${encodeURIComponent(aid)}`} aria-label={`Open artifact ${artifactName(a)} on its own page`}>
              open
            </a>
            {open === aid && <ArtifactPreview artifact={a} />}
          </li>
        );
      })}
    </ul>
  );
}

type TaskTab = 'info' | 'io' | 'logs' | 'artifacts' | 'curves';

/** CacheReason explains a cache hit: which earlier run and task produced the reused outputs. */
function CacheReason({ t, enabled }: { t: Dict; enabled: boolean }) {
  const c = t.cache_source;
  if (!c) return <>{enabled ? 'not a cache hit' : 'caching disabled for this task'}</>;
  if (typeof c === 'string') return <>{c}</>;
  return (
    <>
      cache hit: outputs reused from{' '}
      {c.run_id ? (
        <a href={`/runs/${encodeURIComponent(c.run_id)}`}>
          task {c.task_name ?? c.task_id ?? ''} of run {String(c.run_id).slice(0, 8)}
        </a>
      ) : (
        `task ${c.task_name ?? c.task_id ?? c.execution_id ?? '?'}`
      )}
      {c.fingerprint && (
        <>
          {' '}
          with the same cache key <code title={c.fingerprint}>{String(c.fingerprint).slice(0, 12)}</code> (same component, inputs and image)
        </>
      )}
    </>
  );
}

function TaskPanel({ run, name, spec, artifacts, onClose }: { run: Dict; name: string; spec?: Dict; artifacts: Dict[] | null; onClose: () => void }) {
  const all: Dict[] = (run.run_details?.task_details ?? []).filter((d: Dict) => d.display_name === name);
  // Loop iterations share a name: let the user pick one; default to the latest.
  const [pick, setPick] = useState(0);
  const t: Dict | undefined = all[Math.min(pick, all.length - 1)] ?? undefined;
  const [tab, setTab] = useState<TaskTab>('info');
  const running = !!t && !isTerminal(t.state);
  const logs = useLogs(run.run_id, t?.task_id, running, `${t?.task_id}:${t?.state}`);
  const curves = useMemo(() => stepMetrics(logs.text), [logs.text]);
  const [search, setSearch] = useState('');
  const lines = useMemo(() => {
    const ls = logs.text.split('\n');
    if (!search) return ls;
    const s = search.toLowerCase();
    return ls.filter((l) => l.toLowerCase().includes(s));
  }, [logs.text, search]);
  const taskSpec = findTask(spec, name);
  const outputIds = new Set<string>(Object.values<Dict>(t?.outputs ?? {}).flatMap((o) => (o.artifact_ids ?? []).map(String)));
  const mine = (artifacts ?? []).filter((a) => (t && a.task_id === t.task_id) || artifactTask(a) === name || outputIds.has(artifactId(a)));
  const gpus: unknown[] = t?.gpus ?? t?.gpu_devices ?? [];
  return (
    <aside class="task-panel card" aria-label={`Task ${name}`} data-testid="task-panel">
      <header>
        <h2>{name}</h2>
        <button type="button" class="small" onClick={onClose} aria-label="Close task panel">
          ✕
        </button>
      </header>
      {!t && <Empty>This task has not started.</Empty>}
      {all.length > 1 && (
        <label>
          Iteration{' '}
          <select value={pick} onChange={(e) => setPick(Number((e.target as HTMLSelectElement).value))}>
            {all.map((d, i) => (
              <option key={d.task_id} value={i}>
                {i}: {d.state}
              </option>
            ))}
          </select>
        </label>
      )}
      <Tabs
        label="Task views"
        tabs={[
          ['info', 'Info'],
          ['io', 'Inputs/Outputs'],
          ['logs', 'Logs'],
          ['artifacts', `Artifacts${mine.length ? ` (${mine.length})` : ''}`],
          ['curves', 'Curves'],
        ]}
        active={tab}
        onChange={setTab}
      />
      {tab === 'info' && t && (
        <table class="kv" aria-label="Task information">
          <tbody>
            <tr>
              <th scope="row">State</th>
              <td>
                <StateBadge state={t.state} />
              </td>
            </tr>
            <tr>
              <th scope="row">Started</th>
              <td>{fmtTime(t.start_time ?? t.create_time)}</td>
            </tr>
            <tr>
              <th scope="row">Finished</th>
              <td>{fmtTime(t.end_time)}</td>
            </tr>
            <tr>
              <th scope="row">Duration</th>
              <td>{fmtDuration(t.start_time ?? t.create_time, t.end_time)}</td>
            </tr>
            <tr>
              <th scope="row">Cache</th>
              <td data-testid="cache-reason">
                <CacheReason t={t} enabled={taskSpec?.cachingOptions?.enableCache !== false} />
              </td>
            </tr>
            <tr>
              <th scope="row">GPUs</th>
              <td>{gpus.length ? gpus.map((g: any) => (typeof g === 'string' ? g : `${g.index ?? ''} ${g.name ?? ''} ${g.uuid ?? ''}`.trim())).join(', ') : 'none'}</td>
            </tr>
            {t.waiting && (
              <tr>
                <th scope="row">Waiting</th>
                <td>{t.waiting}</td>
              </tr>
            )}
            {Number(t.attempt) > 1 && (
              <tr>
                <th scope="row">Attempt</th>
                <td>{t.attempt}</td>
              </tr>
            )}
            <tr>
              <th scope="row">Task id</th>
              <td>
                <code>{t.task_id}</code>
              </td>
            </tr>
            {t.error && (
              <tr>
                <th scope="row">Error</th>
                <td class="error-text">{t.error.message ?? fmtValue(t.error)}</td>
              </tr>
            )}
          </tbody>
        </table>
      )}
      {tab === 'io' && (
        <>
          <h3>Inputs</h3>
          <KV data={{ ...ioValues(t?.inputs, taskSpec?.inputs, run), ...(t?.input_parameters ?? {}) }} label="Inputs" />
          <h3>Outputs</h3>
          <KV data={{ ...ioValues(t?.outputs), ...(t?.output_parameters ?? {}) }} label="Outputs" />
        </>
      )}
      {tab === 'logs' && (
        <div class="logs">
          <div class="toolbar">
            <label>
              Search logs{' '}
              <input type="search" value={search} onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
            </label>
            {search && <span class="muted">{lines.length} matching lines</span>}
            {logs.status === 'streaming' && <span class="badge st-run">live</span>}
            {t?.task_id && (
              <a href={logsURL(run.run_id, t.task_id, false)} download={`${name}.log`}>
                Download
              </a>
            )}
          </div>
          {logs.status === 'missing' && <Empty>{running ? 'No logs yet.' : 'No logs were kept for this task.'}</Empty>}
          {logs.status === 'error' && <ErrorBox error={new Error(logs.error)} what="Logs" />}
          {logs.status === 'loading' && !logs.text && <Loading />}
          <pre class="log" data-testid="task-logs" tabIndex={0} aria-label="Task log">
            {lines.join('\n')}
          </pre>
        </div>
      )}
      {tab === 'artifacts' && (artifacts === null ? <Empty>This server does not list artifacts.</Empty> : mine.length ? mine.map((a) => <ArtifactPreview key={artifactId(a)} artifact={a} />) : <Empty>No artifacts from this task.</Empty>)}
      {tab === 'curves' &&
        (curves.length ? (
          <div class="curves">
            {curves.map((c) => (
              <LineChart key={c.metric} title={c.metric} xLabel="step" yLabel={c.metric} series={[{ label: c.metric, x: c.x, y: c.y }]} width={380} height={200} />
            ))}
          </div>
        ) : (
          <Empty>No per-step metrics in this task's log (lines such as "step=3 loss=0.21" or {'{"step": 3, "loss": 0.21}'}).</Empty>
        ))}
    </aside>
  );
}

/** isContainerTask reports whether a task name is a container (or importer) task in the spec. */
function isContainerTask(spec: Dict | undefined, name: string): boolean {
  const s = unwrapSpec(spec);
  const t = findTask(s, name);
  const comp = t && s?.components?.[t.componentRef?.name];
  return !!comp && !comp.dag;
}

/** RunLogs searches the kept logs of every task of the run at once. */
function RunLogs({ run, spec }: { run: Dict; spec?: Dict }) {
  const tasks: Dict[] = (run.run_details?.task_details ?? []).filter((d: Dict) => isContainerTask(spec, d.display_name) && !['PENDING', 'SKIPPED', 'QUEUED'].includes(d.state));
  const key = tasks.map((t) => `${t.task_id}:${t.state}`).join(',');
  const logs = useAsync(
    (signal) =>
      Promise.all(
        tasks.map(async (t) => {
          const res = await fetch(logsURL(run.run_id, t.task_id, false), { signal });
          return { task: t, text: res.ok ? await res.text() : '' };
        }),
      ),
    [run.run_id, key],
  );
  const [search, setSearch] = useState('');
  const s = search.toLowerCase();
  const hits = (logs.data ?? []).map(({ task, text }) => ({
    task,
    lines: text
      .split('\n')
      .map((l, i) => [i + 1, l] as const)
      .filter(([, l]) => (s ? l.toLowerCase().includes(s) : l !== '')),
  }));
  const total = hits.reduce((n, h) => n + h.lines.length, 0);
  return (
    <div class="logs" data-testid="run-logs">
      <div class="toolbar">
        <label>
          Search all task logs <input type="search" value={search} onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
        </label>
        <span class="muted">
          {total} {s ? 'matching ' : ''}lines in {tasks.length} tasks
        </span>
      </div>
      <ErrorBox error={logs.error} what="Logs" />
      {logs.loading && !logs.data && <Loading />}
      {hits
        .filter((h) => h.lines.length)
        .map((h) => (
          <section key={h.task.task_id}>
            <h3>
              {h.task.display_name} <StateBadge state={h.task.state} />
            </h3>
            <pre class="log" tabIndex={0} aria-label={`Log of ${h.task.display_name}`}>
              {h.lines.slice(0, 2000).map(([n, l]) => `${String(n).padStart(5)}  ${l}\n`)}
            </pre>
          </section>
        ))}
      {logs.data && !total && <Empty>{s ? 'No log line matches.' : 'No logs yet.'}</Empty>}
    </div>
  );
}

/** findTask looks a task up by name in any DAG of the spec. */
function findTask(spec: Dict | undefined, name: string): Dict | undefined {
  const s = unwrapSpec(spec);
  if (!s) return undefined;
  const dags = [s.root?.dag, ...Object.values<Dict>(s.components ?? {}).map((c) => c.dag)];
  for (const d of dags) if (d?.tasks?.[name]) return d.tasks[name];
  return undefined;
}

/** ioValues flattens task inputs/outputs (parameter values or artifact ids) and the IR's bindings. */
function ioValues(io: Dict | undefined, specInputs?: Dict, run?: Dict): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries<Dict>(specInputs?.parameters ?? {})) {
    if (v.runtimeValue?.constant !== undefined) out[k] = v.runtimeValue.constant;
    else if (v.componentInputParameter) out[k] = run?.runtime_config?.parameters?.[v.componentInputParameter] ?? `← pipeline input ${v.componentInputParameter}`;
    else if (v.taskOutputParameter) out[k] = `← ${v.taskOutputParameter.producerTask}.${v.taskOutputParameter.outputParameterKey}`;
  }
  for (const [k, v] of Object.entries<Dict>(specInputs?.artifacts ?? {})) {
    if (v.taskOutputArtifact) out[k] = `← ${v.taskOutputArtifact.producerTask}.${v.taskOutputArtifact.outputArtifactKey}`;
    else if (v.componentInputArtifact) out[k] = `← pipeline input ${v.componentInputArtifact}`;
  }
  for (const [k, v] of Object.entries<any>(io ?? {})) {
    if (v && typeof v === 'object' && 'artifact_ids' in v) out[k] = `artifacts ${(v.artifact_ids ?? []).join(', ')}`;
    else if (k === 'parameters' && v && typeof v === 'object') Object.assign(out, v);
    else out[k] = v?.value ?? v;
  }
  return out;
}

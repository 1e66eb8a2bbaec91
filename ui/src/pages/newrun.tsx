import { useEffect, useState } from 'preact/hooks';
import type { Dict, ParamDef } from '../api';
import { get, listAll, post, rootParams, runLink, unwrapSpec } from '../api';
import { ErrorBox, Loading, Page, useAction, useAsync } from '../components';
import { Graph } from '../graph';
import { parseParam, toText } from '../parse';
import { navigate, useLocation } from '../router';
import { useExperiments } from './runs';

const TYPE_NAME: Record<string, string> = { STRING: 'string', NUMBER_INTEGER: 'integer', NUMBER_DOUBLE: 'number', BOOLEAN: 'boolean', LIST: 'JSON list', STRUCT: 'JSON object' };

function ParamField({ p, value, onChange }: { p: ParamDef; value: string; onChange: (v: string) => void }) {
  const id = `param-${p.name}`;
  const hint = (
    <span class="muted">
      {' '}
      ({TYPE_NAME[p.type] ?? p.type}
      {p.optional ? ', optional' : ''}
      {p.default !== undefined ? `, default ${JSON.stringify(p.default)}` : ''})
    </span>
  );
  if (p.type === 'BOOLEAN')
    return (
      <div class="field check">
        <input id={id} name={p.name} type="checkbox" checked={value === 'true'} onChange={(e) => onChange((e.target as HTMLInputElement).checked ? 'true' : 'false')} />
        <label for={id}>
          {p.name}
          {hint}
        </label>
      </div>
    );
  const common = { id, name: p.name, value, onInput: (e: Event) => onChange((e.target as HTMLInputElement).value), 'aria-describedby': p.description ? `${id}-desc` : undefined };
  return (
    <div class="field">
      <label for={id}>
        {p.name}
        {hint}
      </label>
      {p.type === 'LIST' || p.type === 'STRUCT' ? (
        <textarea {...common} rows={3} />
      ) : (
        <input {...common} type={p.type.startsWith('NUMBER') ? 'number' : 'text'} step={p.type === 'NUMBER_INTEGER' ? '1' : 'any'} required={!p.optional && p.default === undefined && p.type !== 'STRING'} />
      )}
      {p.description && (
        <small id={`${id}-desc`} class="muted">
          {p.description}
        </small>
      )}
    </div>
  );
}

export function NewRun() {
  const { query } = useLocation();
  const cloneId = query.get('clone') ?? '';
  const [pipelineId, setPipelineId] = useState(query.get('pipeline') ?? '');
  const [versionId, setVersionId] = useState(query.get('version') ?? '');
  const [experimentId, setExperimentId] = useState(query.get('experiment') ?? '');
  const [name, setName] = useState('');
  const [desc, setDesc] = useState('');
  const [values, setValues] = useState<Record<string, string>>({});
  const [recurring, setRecurring] = useState(false);
  const [trigger, setTrigger] = useState<'cron' | 'periodic'>('cron');
  const [cron, setCron] = useState('0 0 * * * *');
  const [interval, setIntervalSec] = useState('3600');
  const [maxConc, setMaxConc] = useState('1');
  const [catchup, setCatchup] = useState(false);

  const exps = useExperiments();
  const pipelines = useAsync(() => listAll('pipelines', 'pipelines', { sort_by: 'created_at desc' }, 500), []);
  const versions = useAsync(async (s) => (pipelineId ? (await get(`pipelines/${encodeURIComponent(pipelineId)}/versions?page_size=200&sort_by=created_at%20desc`, s)).pipeline_versions ?? [] : []), [pipelineId]);
  const clone = useAsync(async (s) => (cloneId ? get(`runs/${encodeURIComponent(cloneId)}`, s) : undefined), [cloneId]);
  const version = useAsync(async (s) => (pipelineId && versionId ? get(`pipelines/${encodeURIComponent(pipelineId)}/versions/${encodeURIComponent(versionId)}`, s) : undefined), [pipelineId, versionId]);

  // A clone starts from the source run's pipeline, experiment and parameters.
  useEffect(() => {
    const c = clone.data;
    if (!c) return;
    setName(`Clone of ${c.display_name ?? c.run_id}`);
    setDesc(c.description ?? '');
    if (c.experiment_id) setExperimentId(c.experiment_id);
    const ref = c.pipeline_version_reference;
    if (ref?.pipeline_id) setPipelineId(ref.pipeline_id);
    if (ref?.pipeline_version_id) setVersionId(ref.pipeline_version_id);
  }, [clone.data]);

  // Pick the newest version when a pipeline is chosen without one.
  useEffect(() => {
    const vs = versions.data as Dict[] | undefined;
    if (vs?.length && !vs.some((v) => v.pipeline_version_id === versionId)) setVersionId(vs[0].pipeline_version_id);
  }, [versions.data]);

  const inlineSpec = clone.data && !clone.data.pipeline_version_reference?.pipeline_id ? clone.data.pipeline_spec : undefined;
  const spec = inlineSpec ?? version.data?.pipeline_spec;
  const params = rootParams(spec);

  // Fill the form with defaults, or with the cloned run's values.
  useEffect(() => {
    const given: Dict = clone.data?.runtime_config?.parameters ?? {};
    const next: Record<string, string> = {};
    for (const p of params) {
      const v = p.name in given ? given[p.name] : p.default;
      next[p.name] = p.type === 'BOOLEAN' ? String(!!v) : toText(p, v);
    }
    setValues(next);
  }, [spec, clone.data]);

  useEffect(() => {
    if (!name && !cloneId && version.data) setName(`${unwrapSpec(spec)?.pipelineInfo?.name ?? 'run'} ${new Date().toISOString().slice(0, 19).replace('T', ' ')}`);
  }, [version.data]);

  const act = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    act.run(async () => {
      if (!spec) throw new Error('choose a pipeline and a version');
      const parameters: Dict = {};
      for (const p of params) {
        const v = parseParam(p, values[p.name] ?? '');
        if (v !== undefined) parameters[p.name] = v;
      }
      const source = inlineSpec ? { pipeline_spec: inlineSpec } : { pipeline_version_reference: { pipeline_id: pipelineId, pipeline_version_id: versionId } };
      const common = { display_name: name, description: desc, experiment_id: experimentId || undefined, runtime_config: { parameters }, ...source };
      if (!recurring) {
        const run = await post('runs', common);
        navigate(runLink(run.run_id));
        return;
      }
      const now = new Date().toISOString();
      const rr = {
        ...common,
        max_concurrency: String(Math.max(1, Number(maxConc) || 1)),
        no_catchup: !catchup,
        mode: 'ENABLE',
        trigger: trigger === 'cron' ? { cron_schedule: { cron, start_time: now } } : { periodic_schedule: { interval_second: String(Math.max(1, Number(interval) || 3600)), start_time: now } },
      };
      await post('recurringruns', rr);
      navigate('/recurring');
    });
  };
  const set = (k: string) => (v: string) => setValues((s) => ({ ...s, [k]: v }));
  return (
    <Page title={cloneId ? 'Clone run' : 'Create run'}>
      <ErrorBox error={clone.error ?? pipelines.error ?? versions.error ?? version.error} />
      <form class="form wide" onSubmit={submit} aria-label="New run">
        {!inlineSpec && (
          <div class="row">
            <div class="field">
              <label for="run-pipeline">Pipeline</label>
              <select
                id="run-pipeline"
                value={pipelineId}
                required
                onChange={(e) => {
                  setPipelineId((e.target as HTMLSelectElement).value);
                  setVersionId('');
                }}
              >
                <option value="">choose a pipeline…</option>
                {pipelines.data?.map((p) => (
                  <option key={p.pipeline_id} value={p.pipeline_id}>
                    {p.display_name || p.name}
                  </option>
                ))}
              </select>
            </div>
            <div class="field">
              <label for="run-version">Version</label>
              <select id="run-version" value={versionId} required onChange={(e) => setVersionId((e.target as HTMLSelectElement).value)}>
                {(versions.data as Dict[] | undefined)?.map((v) => (
                  <option key={v.pipeline_version_id} value={v.pipeline_version_id}>
                    {v.display_name || v.name}
                  </option>
                ))}
              </select>
            </div>
          </div>
        )}
        {inlineSpec && <p class="muted">This run was submitted with an inline pipeline spec; the clone reuses it.</p>}
        <div class="row">
          <div class="field">
            <label for="run-name">Run name</label>
            <input id="run-name" type="text" required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
          </div>
          <div class="field">
            <label for="run-experiment">Experiment</label>
            <select id="run-experiment" value={experimentId} onChange={(e) => setExperimentId((e.target as HTMLSelectElement).value)}>
              <option value="">Default</option>
              {exps.data
                ?.filter((x) => x.display_name !== 'Default' || x.experiment_id === experimentId)
                .map((x) => (
                  <option key={x.experiment_id} value={x.experiment_id}>
                    {x.display_name}
                  </option>
                ))}
            </select>
          </div>
        </div>
        <div class="field">
          <label for="run-desc">Description</label>
          <input id="run-desc" type="text" value={desc} onInput={(e) => setDesc((e.target as HTMLInputElement).value)} />
        </div>
        <fieldset>
          <legend>Parameters</legend>
          {spec === undefined && (version.loading || clone.loading) && <Loading />}
          {spec !== undefined && !params.length && <p class="muted">This pipeline takes no parameters.</p>}
          {params.map((p) => (
            <ParamField key={p.name} p={p} value={values[p.name] ?? ''} onChange={set(p.name)} />
          ))}
        </fieldset>
        <fieldset>
          <legend>Run type</legend>
          <div class="field check">
            <input id="run-once" type="radio" name="runtype" checked={!recurring} onChange={() => setRecurring(false)} />
            <label for="run-once">One-off</label>
            <input id="run-recurring" type="radio" name="runtype" checked={recurring} onChange={() => setRecurring(true)} />
            <label for="run-recurring">Recurring</label>
          </div>
          {recurring && (
            <>
              <div class="field check">
                <input id="trig-cron" type="radio" name="trigger" checked={trigger === 'cron'} onChange={() => setTrigger('cron')} />
                <label for="trig-cron">Cron</label>
                <input id="trig-periodic" type="radio" name="trigger" checked={trigger === 'periodic'} onChange={() => setTrigger('periodic')} />
                <label for="trig-periodic">Periodic</label>
              </div>
              {trigger === 'cron' ? (
                <div class="field">
                  <label for="rr-cron">
                    Cron expression <span class="muted">(6 fields, seconds first, e.g. 0 0 9 * * 1-5)</span>
                  </label>
                  <input id="rr-cron" type="text" value={cron} onInput={(e) => setCron((e.target as HTMLInputElement).value)} />
                </div>
              ) : (
                <div class="field">
                  <label for="rr-interval">Interval in seconds</label>
                  <input id="rr-interval" type="number" min="1" value={interval} onInput={(e) => setIntervalSec((e.target as HTMLInputElement).value)} />
                </div>
              )}
              <div class="row">
                <div class="field">
                  <label for="rr-conc">Maximum concurrent runs</label>
                  <input id="rr-conc" type="number" min="1" value={maxConc} onInput={(e) => setMaxConc((e.target as HTMLInputElement).value)} />
                </div>
                <div class="field check">
                  <input id="rr-catchup" type="checkbox" checked={catchup} onChange={(e) => setCatchup((e.target as HTMLInputElement).checked)} />
                  <label for="rr-catchup">Catch up missed runs</label>
                </div>
              </div>
            </>
          )}
        </fieldset>
        <ErrorBox error={act.error} what="Starting the run" />
        <button type="submit" class="primary" disabled={act.busy || !spec}>
          {act.busy ? 'Starting…' : recurring ? 'Create recurring run' : 'Start run'}
        </button>
      </form>
      {spec && (
        <details class="card">
          <summary>Pipeline graph</summary>
          <Graph spec={spec} path={[]} />
        </details>
      )}
    </Page>
  );
}

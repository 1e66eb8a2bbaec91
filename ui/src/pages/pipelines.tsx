import { useState } from 'preact/hooks';
import type { Dict } from '../api';
import { API, call, fmtTime, get, list, unwrapSpec } from '../api';
import { Empty, ErrorBox, Json, Loading, Page, Pager, SortHeader, Tabs, useAction, useAsync, usePager } from '../components';
import { Graph } from '../graph';
import { navigate } from '../router';

export function PipelineList() {
  const pager = usePager();
  const [sort, setSortState] = useState('created_at desc');
  // A page token is only valid for the sort it was issued with: start again from page one.
  const setSort = (v: string) => {
    setSortState(v);
    pager.reset();
  };
  const [q, setQ] = useState('');
  const [showUpload, setShowUpload] = useState(false);
  const r = useAsync(
    (signal) =>
      list('pipelines', 'pipelines', { page_size: pager.size, page_token: pager.token, sort_by: sort, predicates: q ? [{ key: 'display_name', operation: 'IS_SUBSTRING', string_value: q }] : [] }, signal),
    [pager.size, pager.token, sort, q],
  );
  return (
    <Page
      title="Pipelines"
      actions={
        <button type="button" class="primary" onClick={() => setShowUpload((s) => !s)} aria-expanded={showUpload}>
          Upload pipeline
        </button>
      }
    >
      {showUpload && <UploadForm onDone={(p) => navigate(`/pipelines/${encodeURIComponent(p.pipeline_id)}`)} />}
      <div class="toolbar">
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
      </div>
      <ErrorBox error={r.error} what="Listing pipelines" />
      {r.data && !r.data.items.length && <Empty>No pipelines yet. Upload a compiled pipeline YAML.</Empty>}
      {r.data && r.data.items.length > 0 && (
        <table class="grid" aria-label="Pipelines" data-testid="pipeline-list">
          <thead>
            <tr>
              <SortHeader field="display_name" label="Name" sort={sort} setSort={setSort} />
              <th scope="col">Description</th>
              <SortHeader field="created_at" label="Uploaded" sort={sort} setSort={setSort} />
            </tr>
          </thead>
          <tbody>
            {r.data.items.map((p) => (
              <tr key={p.pipeline_id}>
                <td>
                  <a href={`/pipelines/${encodeURIComponent(p.pipeline_id)}`}>{p.display_name || p.name}</a>
                </td>
                <td>{p.description}</td>
                <td>{fmtTime(p.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {r.loading && !r.data && <Loading />}
      {r.data && <Pager pager={pager} next={r.data.next_page_token} total={r.data.total_size} />}
    </Page>
  );
}

function UploadForm({ pipelineId, onDone }: { pipelineId?: string; onDone: (p: Dict) => void }) {
  const [name, setName] = useState('');
  const [desc, setDesc] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const act = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    if (!file) {
      act.setError(new Error('choose a pipeline file (.yaml, .yml, .json, .zip or .tar.gz)'));
      return;
    }
    act.run(async () => {
      const fd = new FormData();
      fd.append('uploadfile', file, file.name);
      const qs = new URLSearchParams();
      if (name) qs.set(pipelineId ? 'name' : 'display_name', name);
      if (!pipelineId && name) qs.set('name', name);
      if (desc) qs.set('description', desc);
      if (pipelineId) qs.set('pipelineid', pipelineId);
      const p = await call('POST', `${API}/pipelines/${pipelineId ? 'upload_version' : 'upload'}?${qs}`, fd);
      onDone(p);
    });
  };
  return (
    <form class="card form" onSubmit={submit} aria-label={pipelineId ? 'Upload a new version' : 'Upload a pipeline'}>
      <label>
        Pipeline file
        <input type="file" name="uploadfile" accept=".yaml,.yml,.json,.zip,.tgz,.gz" required onChange={(e) => setFile((e.target as HTMLInputElement).files?.[0] ?? null)} />
      </label>
      <label>
        {pipelineId ? 'Version name' : 'Pipeline name'} <span class="muted">(optional; defaults to the file's name)</span>
        <input type="text" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        Description
        <input type="text" value={desc} onInput={(e) => setDesc((e.target as HTMLInputElement).value)} />
      </label>
      <ErrorBox error={act.error} what="Upload" />
      <button type="submit" class="primary" disabled={act.busy}>
        {act.busy ? 'Uploading…' : 'Upload'}
      </button>
    </form>
  );
}

export function PipelineDetails({ id, versionId }: { id: string; versionId?: string }) {
  const p = useAsync((s) => get(`pipelines/${encodeURIComponent(id)}`, s), [id]);
  const [tick, setTick] = useState(0);
  const versions = useAsync((s) => list(`pipelines/${encodeURIComponent(id)}/versions`, 'pipeline_versions', { page_size: 100, sort_by: 'created_at desc' }, s), [id, tick]);
  const vid = versionId ?? versions.data?.items[0]?.pipeline_version_id;
  const v = useAsync(async (s) => (vid ? get(`pipelines/${encodeURIComponent(id)}/versions/${encodeURIComponent(vid)}`, s) : undefined), [id, vid]);
  const [tab, setTab] = useState<'graph' | 'ir'>('graph');
  const [path, setPath] = useState<string[]>([]);
  const [showUpload, setShowUpload] = useState(false);
  const del = useAction();
  const spec = unwrapSpec(v.data?.pipeline_spec);
  return (
    <Page
      title={
        <>
          <a href="/pipelines">Pipelines</a> / {p.data?.display_name ?? id}
        </>
      }
      actions={
        <>
          {vid && (
            <a class="button primary" href={`/runs/new?pipeline=${encodeURIComponent(id)}&version=${encodeURIComponent(vid)}`}>
              Create run
            </a>
          )}
          <button type="button" onClick={() => setShowUpload((s) => !s)} aria-expanded={showUpload}>
            Upload version
          </button>
          <button
            type="button"
            class="danger"
            disabled={del.busy}
            onClick={() =>
              confirm('Delete this pipeline and all its versions?') &&
              del.run(async () => {
                await call('DELETE', `pipelines/${encodeURIComponent(id)}?cascade=true`);
                navigate('/pipelines');
              })
            }
          >
            Delete
          </button>
        </>
      }
    >
      <ErrorBox error={p.error ?? del.error} />
      {p.data?.description && <p>{p.data.description}</p>}
      {showUpload && (
        <UploadForm
          pipelineId={id}
          onDone={(nv) => {
            setShowUpload(false);
            setTick((t) => t + 1);
            navigate(`/pipelines/${encodeURIComponent(id)}/versions/${encodeURIComponent(nv.pipeline_version_id)}`);
          }}
        />
      )}
      <div class="split">
        <aside class="versions" aria-label="Versions">
          <h2>Versions</h2>
          <ErrorBox error={versions.error} />
          <ul>
            {versions.data?.items.map((x) => (
              <li key={x.pipeline_version_id}>
                <a href={`/pipelines/${encodeURIComponent(id)}/versions/${encodeURIComponent(x.pipeline_version_id)}`} aria-current={x.pipeline_version_id === vid ? 'page' : undefined}>
                  {x.display_name || x.name}
                </a>
                <div class="muted small">{fmtTime(x.created_at)}</div>
              </li>
            ))}
          </ul>
        </aside>
        <div class="grow">
          <Tabs
            label="Version views"
            tabs={[
              ['graph', 'Graph'],
              ['ir', 'Pipeline spec (IR)'],
            ]}
            active={tab}
            onChange={setTab}
          />
          <ErrorBox error={v.error} />
          {!spec && v.loading && <Loading />}
          {spec && tab === 'graph' && (
            <>
              <Breadcrumb path={path} setPath={setPath} />
              <Graph spec={spec} path={path} onOpen={(n) => setPath([...path, n.id])} />
            </>
          )}
          {spec && tab === 'ir' && <Json value={v.data?.pipeline_spec} />}
        </div>
      </div>
    </Page>
  );
}

export function Breadcrumb({ path, setPath }: { path: string[]; setPath: (p: string[]) => void }) {
  if (!path.length) return null;
  return (
    <nav class="breadcrumb" aria-label="DAG path">
      <button type="button" class="linklike" onClick={() => setPath([])}>
        root
      </button>
      {path.map((p, i) => (
        <span key={i}>
          {' / '}
          <button type="button" class="linklike" onClick={() => setPath(path.slice(0, i + 1))} disabled={i === path.length - 1}>
            {p}
          </button>
        </span>
      ))}
    </nav>
  );
}

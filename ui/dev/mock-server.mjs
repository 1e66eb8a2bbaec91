#!/usr/bin/env node
// A small in-memory stand-in for kfp-box's HTTP API, for developing the UI without the real
// engine: `node dev/mock-server.mjs [port]` serves ui/dist and /apis/v2beta1 (pipelines,
// versions, experiments, runs whose tasks move PENDING -> RUNNING -> SUCCEEDED on a timer,
// logs, artifacts, recurring runs, system and GPUs). The committed browser tests run against
// the real binary; this only helps while kfp-box itself is being built.
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const port = Number(process.argv[2] || 8899);
const now = () => new Date().toISOString();

const db = { pipelines: [], versions: [], experiments: [], runs: [], recurring: [], artifacts: [], logs: {} };
db.experiments.push({ experiment_id: randomUUID(), display_name: 'Default', created_at: now(), storage_state: 'AVAILABLE' });

function listOf(items, url, key) {
  const q = url.searchParams;
  let xs = [...items];
  const filter = q.get('filter');
  if (filter) {
    for (const p of JSON.parse(filter).predicates ?? []) {
      const v = p.string_value ?? p.stringValue ?? p.int_value;
      const get = (x) => String(x[p.key] ?? '');
      const op = String(p.operation);
      xs = xs.filter((x) =>
        op === 'EQUALS' || op === '1' ? get(x) === String(v) : op === 'NOT_EQUALS' || op === '2' ? get(x) !== String(v) : op === 'IS_SUBSTRING' || op === '9' ? get(x).includes(String(v)) : true,
      );
    }
  }
  if (q.get('experiment_id')) xs = xs.filter((x) => x.experiment_id === q.get('experiment_id'));
  const [field, dir] = (q.get('sort_by') || 'created_at').split(' ');
  xs.sort((a, b) => String(a[field] ?? '').localeCompare(String(b[field] ?? '')) * (dir === 'desc' ? -1 : 1));
  const size = Number(q.get('page_size') || 20);
  const off = q.get('page_token') ? Number(Buffer.from(q.get('page_token'), 'base64').toString()) : 0;
  const page = xs.slice(off, off + size);
  const out = { total_size: xs.length };
  if (page.length) out[key] = page;
  if (off + size < xs.length) out.next_page_token = Buffer.from(String(off + size)).toString('base64');
  return out;
}

function specOf(run) {
  if (run.pipeline_spec) return run.pipeline_spec.root ? run.pipeline_spec : run.pipeline_spec.pipeline_spec;
  const v = db.versions.find((x) => x.pipeline_version_id === run.pipeline_version_reference?.pipeline_version_id);
  return v?.pipeline_spec;
}

function startRun(run) {
  const spec = specOf(run);
  const tasks = spec?.root?.dag?.tasks ?? {};
  run.run_details = { task_details: Object.keys(tasks).map((name) => ({ run_id: run.run_id, task_id: randomUUID(), display_name: name, state: 'PENDING', create_time: now() })) };
  run.state = 'RUNNING';
  const timer = setInterval(() => {
    if (run.state === 'CANCELING') {
      run.state = 'FAILED';
      run.finished_at = now();
      clearInterval(timer);
      return;
    }
    const td = run.run_details.task_details;
    const st = Object.fromEntries(td.map((t) => [t.display_name, t.state]));
    for (const t of td) {
      if (t.state === 'RUNNING') {
        t.state = 'SUCCEEDED';
        t.end_time = now();
        finishTask(run, t);
      } else if (t.state === 'PENDING' && (tasks[t.display_name].dependentTasks ?? []).every((d) => st[d] === 'SUCCEEDED')) {
        t.state = 'RUNNING';
        t.start_time = now();
        if (t.display_name === 'train') t.gpus = ['GPU-0000'];
      }
    }
    if (td.every((t) => t.state === 'SUCCEEDED')) {
      run.state = 'SUCCEEDED';
      run.finished_at = now();
      clearInterval(timer);
    }
  }, 400);
}

function addArtifact(run, task, name, type, body, metadata = {}) {
  const id = String(db.artifacts.length + 1);
  db.artifacts.push({ id, artifact_id: id, run_id: run.run_id, task_id: task.task_id, task_name: task.display_name, name, type, uri: `minio://mlpipeline/v2/artifacts/${run.run_id}/${task.display_name}/${name}`, size: body.length, metadata, body });
}

function finishTask(run, t) {
  const p = run.runtime_config?.parameters ?? {};
  const lines = [`starting ${t.display_name}`];
  if (t.display_name === 'train') {
    const steps = Number(p.steps ?? 3);
    let csv = 'step,loss\n';
    for (let i = 1; i <= steps; i++) {
      lines.push(`step=${i} loss=${Math.floor(1000 / i)} acc=${i * 20}`);
      csv += `${i},${Math.floor(1000 / i)}\n`;
    }
    addArtifact(run, t, 'report', 'system.Markdown', `# Report\n\nMessage: **${p.message}**, ${steps} steps.\n`);
    addArtifact(run, t, 'table', 'system.Dataset', csv);
    addArtifact(run, t, 'page', 'system.HTML', `<!doctype html><h1>HTML report</h1><p>${p.message}</p>`);
    addArtifact(run, t, 'plot', 'system.Artifact', Buffer.from('iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAGklEQVR42mNQTX6NFYkt9sKKGEY1jGoYvhoAmmw7EGiloUIAAAAASUVORK5CYII=', 'base64'));
    addArtifact(run, t, 'metrics', 'system.Metrics', '', { accuracy: 0.5 + steps / 20, loss: 1 / steps });
    addArtifact(run, t, 'classification', 'system.ClassificationMetrics', '', {
      confusionMatrix: { annotationSpecs: [{ displayName: 'cat' }, { displayName: 'dog' }], rows: [{ row: [40, 10] }, { row: [5, 45] }] },
      confidenceMetrics: [0, 0.1, 0.2, 0.5, 1].map((f, i) => ({ confidenceThreshold: 1 - f, falsePositiveRate: f, recall: [0, 0.6, 0.8, 0.95, 1][i] })),
    });
  }
  lines.push(`${t.display_name} done`);
  db.logs[t.task_id] = lines.join('\n') + '\n';
}

async function body(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks);
}

const json = (res, code, obj) => {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(obj));
};
const notFound = (res) => json(res, 404, { code: 5, message: 'not found' });

async function api(req, res, url) {
  const path = url.pathname.slice('/apis/v2beta1'.length);
  const m = (re) => path.match(re);
  let x;
  if (path === '/healthz') return json(res, 200, { multi_user: false, tag_name: 'mock' });
  if (path === '/pipelines/upload' || path === '/pipelines/upload_version') {
    const raw = await body(req);
    const form = await new Request('http://x/', { method: 'POST', headers: { 'content-type': req.headers['content-type'] }, body: raw }).formData();
    const file = form.get('uploadfile');
    const spec = YAML.parse(await file.text());
    const name = url.searchParams.get('name') || url.searchParams.get('display_name') || file.name;
    let pipeline;
    if (path.endsWith('upload_version')) pipeline = db.pipelines.find((p) => p.pipeline_id === url.searchParams.get('pipelineid'));
    else {
      if (db.pipelines.some((p) => p.name === name)) return json(res, 409, { error_message: 'pipeline exists' });
      pipeline = { pipeline_id: randomUUID(), name, display_name: url.searchParams.get('display_name') || name, description: url.searchParams.get('description') || '', created_at: now() };
      db.pipelines.push(pipeline);
    }
    const v = { pipeline_id: pipeline.pipeline_id, pipeline_version_id: randomUUID(), name, display_name: name, created_at: now(), pipeline_spec: spec };
    db.versions.push(v);
    return json(res, 200, path.endsWith('upload_version') ? v : pipeline);
  }
  if (path === '/pipelines') return json(res, 200, listOf(db.pipelines, url, 'pipelines'));
  if ((x = m(/^\/pipelines\/([^/]+)$/))) {
    const p = db.pipelines.find((p) => p.pipeline_id === x[1]);
    if (req.method === 'DELETE') {
      db.pipelines = db.pipelines.filter((q) => q !== p);
      return json(res, 200, {});
    }
    return p ? json(res, 200, p) : notFound(res);
  }
  if ((x = m(/^\/pipelines\/([^/]+)\/versions$/))) return json(res, 200, listOf(db.versions.filter((v) => v.pipeline_id === x[1]), url, 'pipeline_versions'));
  if ((x = m(/^\/pipelines\/([^/]+)\/versions\/([^/]+)$/))) {
    const v = db.versions.find((v) => v.pipeline_version_id === x[2]);
    return v ? json(res, 200, v) : notFound(res);
  }
  if (path === '/experiments' && req.method === 'POST') {
    const e = { ...JSON.parse(await body(req)), experiment_id: randomUUID(), created_at: now(), storage_state: 'AVAILABLE' };
    db.experiments.push(e);
    return json(res, 200, e);
  }
  if (path === '/experiments') return json(res, 200, listOf(db.experiments, url, 'experiments'));
  if ((x = m(/^\/experiments\/([^/:]+):(archive|unarchive)$/))) {
    const e = db.experiments.find((e) => e.experiment_id === x[1]);
    e.storage_state = x[2] === 'archive' ? 'ARCHIVED' : 'AVAILABLE';
    return json(res, 200, {});
  }
  if (path === '/runs' && req.method === 'POST') {
    const r = JSON.parse(await body(req));
    const run = { ...r, run_id: randomUUID(), experiment_id: r.experiment_id || db.experiments[0].experiment_id, created_at: now(), scheduled_at: now(), state: 'PENDING', storage_state: 'AVAILABLE' };
    db.runs.push(run);
    startRun(run);
    return json(res, 200, run);
  }
  if (path === '/runs') {
    const l = listOf(db.runs, url, 'runs');
    if (l.runs) l.runs = l.runs.map(({ run_details, ...r }) => r);
    return json(res, 200, l);
  }
  if ((x = m(/^\/runs\/([^/:]+)$/))) {
    const r = db.runs.find((r) => r.run_id === x[1]);
    return r ? json(res, 200, r) : notFound(res);
  }
  if ((x = m(/^\/runs\/([^/:]+):(archive|unarchive|terminate|retry)$/))) {
    const r = db.runs.find((r) => r.run_id === x[1]);
    if (x[2] === 'archive') r.storage_state = 'ARCHIVED';
    if (x[2] === 'unarchive') r.storage_state = 'AVAILABLE';
    if (x[2] === 'terminate' && r.state === 'RUNNING') r.state = 'CANCELING';
    return json(res, 200, {});
  }
  if ((x = m(/^\/runs\/([^/]+)\/artifacts$/))) return json(res, 200, { artifacts: db.artifacts.filter((a) => a.run_id === x[1]).map(({ body, ...a }) => a) });
  if ((x = m(/^\/runs\/([^/]+)\/tasks\/([^/]+)\/logs$/))) {
    const l = db.logs[x[2]];
    if (l === undefined) return notFound(res);
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
    return res.end(l);
  }
  if ((x = m(/^\/artifacts\/([^/:]+)$/))) {
    const a = db.artifacts.find((a) => a.id === x[1]);
    if (!a) return notFound(res);
    const { body, ...rest } = a;
    return json(res, 200, rest);
  }
  if ((x = m(/^\/artifacts\/([^/:]+):download$/))) {
    const a = db.artifacts.find((a) => a.id === x[1]);
    if (!a) return notFound(res);
    const buf = Buffer.from(a.body);
    const range = /bytes=(\d+)-(\d*)/.exec(req.headers.range ?? '');
    if (range) {
      const s = Number(range[1]);
      const e = Math.min(buf.length - 1, range[2] ? Number(range[2]) : buf.length - 1);
      res.writeHead(206, { 'Content-Range': `bytes ${s}-${e}/${buf.length}`, 'Content-Type': 'application/octet-stream' });
      return res.end(buf.subarray(s, e + 1));
    }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
    return res.end(buf);
  }
  if (path === '/recurringruns' && req.method === 'POST') {
    const r = { ...JSON.parse(await body(req)), recurring_run_id: randomUUID(), created_at: now(), status: 'ENABLED' };
    db.recurring.push(r);
    return json(res, 200, r);
  }
  if (path === '/recurringruns') return json(res, 200, listOf(db.recurring, url, 'recurringRuns'));
  if ((x = m(/^\/recurringruns\/([^/:]+):(enable|disable)$/))) {
    db.recurring.find((r) => r.recurring_run_id === x[1]).status = x[2] === 'enable' ? 'ENABLED' : 'DISABLED';
    return json(res, 200, {});
  }
  if ((x = m(/^\/recurringruns\/([^/:]+)$/)) && req.method === 'DELETE') {
    db.recurring = db.recurring.filter((r) => r.recurring_run_id !== x[1]);
    return json(res, 200, {});
  }
  if (path === '/system') return json(res, 200, { version: 'mock', runtime: { backend: 'host', containerd: { connected: false, reason: 'mock' } }, storage: { data_dir: '/tmp/mock', used_bytes: 123456789, free_bytes: 9876543210 } });
  if (path === '/gpus') return json(res, 200, { gpus: [{ index: 0, name: 'Mock A100', uuid: 'GPU-0000', utilization_gpu: 42, memory_used: 4e9, memory_total: 40e9, assigned: null }] });
  return notFound(res);
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };

createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  try {
    if (url.pathname.startsWith('/apis/v2beta1/')) return await api(req, res, url);
    let file = join(dist, url.pathname);
    if (!file.startsWith(dist) || !existsSync(file) || url.pathname === '/') file = join(dist, 'index.html');
    if (url.pathname.startsWith('/assets/') && !existsSync(join(dist, url.pathname))) return notFound(res);
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  } catch (e) {
    json(res, 500, { code: 13, message: String(e?.stack ?? e) });
  }
}).listen(port, '127.0.0.1', () => console.log(`mock kfp-box API and UI on http://127.0.0.1:${port}`));

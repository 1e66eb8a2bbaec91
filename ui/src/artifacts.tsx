// Artifact previews: Metrics, ClassificationMetrics (confusion matrix and ROC curve), HTML,
// Markdown, images, CSV tables and plain text, plus a download link for everything.
import { marked } from 'marked';
import { useMemo } from 'preact/hooks';
import type { Dict } from './api';
import { downloadURL, fmtBytes, get } from './api';
import { LineChart } from './charts';
import { Empty, ErrorBox, Loading, useAsync } from './components';
import { looksLikeCSV, parseCSV } from './parse';

export const artifactId = (a: Dict): string => String(a.artifact_id ?? a.id ?? '');
export const artifactType = (a: Dict): string => String(a.type?.schema_title ?? a.schema_title ?? a.type ?? a.artifact_type ?? '');
export const artifactName = (a: Dict): string => String(a.name ?? a.display_name ?? a.output_key ?? artifactId(a));
export const artifactTask = (a: Dict): string => String(a.task_name ?? a.producer_task ?? a.task_display_name ?? '');

// listingMissing remembers that the server has no artifact listing route, so that the run page
// asks once per page load rather than on every task completion.
let listingMissing = false;

/** Lists a run's artifacts; a server without the listing route yields null. */
export async function runArtifacts(runId: string, signal?: AbortSignal): Promise<Dict[] | null> {
  if (listingMissing) return null;
  try {
    const r = await get(`/apis/v2beta1/runs/${encodeURIComponent(runId)}/artifacts`, signal);
    return (r.artifacts ?? r.items ?? []) as Dict[];
  } catch (e: any) {
    // The run itself exists (the page loaded it), so a 404 here means the route is missing.
    if (e?.status === 404 || e?.status === 501) {
      listingMissing = true;
      return null;
    }
    throw e;
  }
}

/** Numeric scalar metrics of a system.Metrics artifact. */
export function scalarMetrics(a: Dict): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries<any>(a.metadata ?? {})) {
    const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
    if (k !== 'display_name' && isFinite(n)) out[k] = n;
  }
  return out;
}

type Kind = 'metrics' | 'classification' | 'html' | 'markdown' | 'image' | 'sniff';

function kindOf(a: Dict): Kind {
  const t = artifactType(a);
  if (t.endsWith('ClassificationMetrics')) return 'classification';
  if (t.endsWith('SlicedClassificationMetrics')) return 'classification';
  if (t.endsWith('.Metrics')) return 'metrics';
  if (t.endsWith('.HTML')) return 'html';
  if (t.endsWith('.Markdown')) return 'markdown';
  if (/\.(png|jpe?g|gif|webp|svg)$/i.test(String(a.uri ?? ''))) return 'image';
  return 'sniff';
}

export function ArtifactPreview({ artifact }: { artifact: Dict }) {
  const kind = kindOf(artifact);
  const id = artifactId(artifact);
  return (
    <div class="artifact-preview" data-kind={kind}>
      <div class="artifact-head">
        <strong>{artifactName(artifact)}</strong> <span class="muted">{artifactType(artifact)}</span>
        {artifact.size !== undefined && <span class="muted"> · {fmtBytes(artifact.size)}</span>}
        {id && (
          <a class="button small" href={downloadURL(id)} download={artifactName(artifact)}>
            Download
          </a>
        )}
      </div>
      {artifact.uri && (
        <p class="muted uri">
          <code>{artifact.uri}</code>
        </p>
      )}
      {kind === 'metrics' && <MetricsTable metrics={scalarMetrics(artifact)} />}
      {kind === 'classification' && <Classification meta={artifact.metadata ?? {}} />}
      {(kind === 'html' || kind === 'markdown') && id && <Document id={id} markdown={kind === 'markdown'} />}
      {kind === 'image' && id && <img class="preview-img" src={downloadURL(id)} alt={artifactName(artifact)} />}
      {kind === 'sniff' && id && <Sniffed id={id} name={artifactName(artifact)} />}
    </div>
  );
}

function MetricsTable({ metrics }: { metrics: Record<string, number> }) {
  const e = Object.entries(metrics);
  if (!e.length) return <Empty>No scalar metrics.</Empty>;
  return (
    <table class="grid" aria-label="Metrics">
      <thead>
        <tr>
          <th scope="col">Metric</th>
          <th scope="col">Value</th>
        </tr>
      </thead>
      <tbody>
        {e.map(([k, v]) => (
          <tr key={k}>
            <th scope="row">{k}</th>
            <td class="num">{v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Classification({ meta }: { meta: Dict }) {
  const cm = meta.confusionMatrix ?? meta.confusion_matrix;
  const labels: string[] = (cm?.annotationSpecs ?? cm?.annotation_specs ?? []).map((s: Dict) => s.displayName ?? s.display_name ?? '');
  const rows: number[][] = (cm?.rows ?? []).map((r: Dict) => r.row ?? r);
  const max = Math.max(1, ...rows.flat());
  const conf: Dict[] = meta.confidenceMetrics ?? meta.confidence_metrics ?? [];
  const roc = useMemo(() => {
    const pts = conf
      .map((c) => ({ x: Number(c.falsePositiveRate ?? c.false_positive_rate ?? 0), y: Number(c.recall ?? 0) }))
      .filter((p) => isFinite(p.x) && isFinite(p.y))
      .sort((a, b) => a.x - b.x || a.y - b.y);
    // uPlot needs unique x values: keep the best recall for each false positive rate.
    const byX = new Map<number, number>();
    for (const p of pts) byX.set(p.x, Math.max(byX.get(p.x) ?? 0, p.y));
    return [{ label: 'ROC', x: [...byX.keys()], y: [...byX.values()] }];
  }, [conf]);
  return (
    <div class="classification">
      {rows.length > 0 && (
        <table class="confusion" aria-label="Confusion matrix">
          <caption>Confusion matrix (rows: actual, columns: predicted)</caption>
          <thead>
            <tr>
              <td />
              {labels.map((l) => (
                <th scope="col" key={l}>
                  {l}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((r, i) => (
              <tr key={i}>
                <th scope="row">{labels[i] ?? i}</th>
                {r.map((v, j) => (
                  <td key={j} class="num" style={{ background: `rgba(37, 99, 235, ${(0.08 + (0.8 * v) / max).toFixed(2)})`, color: v / max > 0.55 ? '#fff' : undefined }}>
                    {v}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {roc[0].x.length > 1 && <LineChart title="ROC curve" xLabel="False positive rate" yLabel="True positive rate" series={roc} width={340} square />}
      {!rows.length && roc[0].x.length <= 1 && <Empty>No confusion matrix or ROC data in this artifact.</Empty>}
    </div>
  );
}

async function readHead(id: string, max = 256 * 1024): Promise<{ bytes: Uint8Array; truncated: boolean }> {
  const res = await fetch(downloadURL(id), { headers: { Range: `bytes=0-${max - 1}` } });
  if (!res.ok) throw new Error(`download failed: ${res.status} ${res.statusText}`);
  const buf = new Uint8Array(await res.arrayBuffer());
  const total = Number(res.headers.get('Content-Range')?.split('/')[1] ?? buf.byteLength);
  return { bytes: buf.slice(0, max), truncated: total > Math.min(buf.byteLength, max) };
}

const DOC_STYLE = '<style>body{font-family:system-ui,sans-serif;margin:12px;line-height:1.45;color:#111}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}pre{background:#f4f4f5;padding:8px}</style>';

function Document({ id, markdown }: { id: string; markdown: boolean }) {
  const r = useAsync(async () => {
    const { bytes } = await readHead(id, 2 * 1024 * 1024);
    const text = new TextDecoder().decode(bytes);
    return markdown ? DOC_STYLE + (await marked.parse(text)) : text;
  }, [id, markdown]);
  if (r.error) return <ErrorBox error={r.error} what="Preview" />;
  if (r.data === undefined) return <Loading />;
  // A sandbox without allow-scripts: the document renders but runs no code.
  return <iframe class="doc-frame" sandbox="" title={markdown ? 'Markdown preview' : 'HTML preview'} srcDoc={r.data} />;
}

function isImage(b: Uint8Array): string | null {
  if (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return 'png';
  if (b[0] === 0xff && b[1] === 0xd8) return 'jpeg';
  if (b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46) return 'gif';
  return null;
}

function isText(b: Uint8Array): boolean {
  const n = Math.min(b.length, 4096);
  for (let i = 0; i < n; i++) if (b[i] === 0) return false;
  return true;
}

function Sniffed({ id, name }: { id: string; name: string }) {
  const r = useAsync(() => readHead(id), [id]);
  if (r.error) return <ErrorBox error={r.error} what="Preview" />;
  if (!r.data) return <Loading />;
  const { bytes, truncated } = r.data;
  if (!bytes.length) return <Empty>Empty artifact.</Empty>;
  if (isImage(bytes)) return <img class="preview-img" src={downloadURL(id)} alt={name} />;
  if (!isText(bytes)) return <Empty>Binary content; use Download.</Empty>;
  const text = new TextDecoder().decode(bytes);
  if (looksLikeCSV(text) || /\.csv$/i.test(name)) {
    const rows = parseCSV(text, 101);
    const [head, ...body] = rows;
    return (
      <div class="table-wrap">
        <table class="grid csv" aria-label={`${name} (CSV)`}>
          <thead>
            <tr>
              {head.map((h, i) => (
                <th scope="col" key={i}>
                  {h}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {body.slice(0, 100).map((r, i) => (
              <tr key={i}>
                {r.map((v, j) => (
                  <td key={j}>{v}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
        {(truncated || body.length > 100) && <p class="muted">Showing the first rows only.</p>}
      </div>
    );
  }
  return (
    <pre class="text-preview">
      {text}
      {truncated ? '\n…' : ''}
    </pre>
  );
}

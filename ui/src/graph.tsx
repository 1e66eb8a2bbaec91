// The pipeline graph: nodes and edges derived from the IR (one DAG level at a time, sub-DAGs
// open on click like KFP's UI), laid out by dagre and drawn as SVG.
import dagre from '@dagrejs/dagre';
import { useMemo } from 'preact/hooks';
import type { Dict } from './api';
import { unwrapSpec } from './api';
import { stateClass } from './components';

export interface GNode {
  id: string; // task name within its DAG
  label: string;
  component: string;
  kind: 'task' | 'dag' | 'loop' | 'condition' | 'importer';
  deps: string[];
  condition?: string;
}

/** dagAt returns the DAG reached by following task names from the root. */
export function dagAt(spec: Dict | undefined, path: string[]): Dict | undefined {
  const s = unwrapSpec(spec);
  let dag = s?.root?.dag;
  for (const name of path) {
    const ref = dag?.tasks?.[name]?.componentRef?.name;
    dag = ref ? s?.components?.[ref]?.dag : undefined;
  }
  return dag;
}

export function graphNodes(spec: Dict | undefined, path: string[]): GNode[] {
  const s = unwrapSpec(spec);
  const dag = dagAt(s, path);
  const tasks: Dict = dag?.tasks ?? {};
  const executors: Dict = s?.deploymentSpec?.executors ?? {};
  return Object.entries(tasks).map(([name, t]: [string, Dict]) => {
    const comp = s?.components?.[t.componentRef?.name] ?? {};
    const deps = new Set<string>(t.dependentTasks ?? []);
    for (const group of [t.inputs?.parameters, t.inputs?.artifacts]) {
      for (const v of Object.values<Dict>(group ?? {})) {
        const p = v.taskOutputParameter?.producerTask ?? v.taskOutputArtifact?.producerTask;
        if (p) deps.add(p);
      }
    }
    let kind: GNode['kind'] = 'task';
    if (comp.dag) {
      if (t.parameterIterator || t.artifactIterator || t.iteratorPolicy) kind = 'loop';
      else if (t.triggerPolicy?.condition || name.startsWith('condition-')) kind = 'condition';
      else kind = 'dag';
    } else if (executors[comp.executorLabel]?.importer) kind = 'importer';
    return {
      id: name,
      label: t.taskInfo?.name ?? name,
      component: t.componentRef?.name ?? '',
      kind,
      deps: [...deps].filter((d) => d in tasks),
      condition: t.triggerPolicy?.condition,
    };
  });
}

const RANK: Record<string, number> = { FAILED: 6, RUNNING: 5, CANCELING: 4, PENDING: 3, QUEUED: 3, CANCELED: 2, SUCCEEDED: 1, CACHED: 1, SKIPPED: 0 };

/** taskStates maps a task name to one state, folding loop iterations (worst state wins). */
export function taskStates(details: Dict[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of details ?? []) {
    const name = d.display_name;
    if (!name) continue;
    const st = d.cache_source || d.cached ? (d.state === 'SUCCEEDED' ? 'CACHED' : d.state) : d.state;
    if (!(name in out) || (RANK[st] ?? 0) > (RANK[out[name]] ?? 0)) out[name] = st;
  }
  return out;
}

interface Layout {
  width: number;
  height: number;
  nodes: { n: GNode; x: number; y: number; w: number; h: number }[];
  edges: { from: string; to: string; points: { x: number; y: number }[] }[];
}

function layout(nodes: GNode[]): Layout {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'TB', nodesep: 30, ranksep: 50, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.id, { width: Math.min(280, Math.max(150, n.label.length * 7.5 + 48)), height: 46 });
  for (const n of nodes) for (const d of n.deps) g.setEdge(d, n.id);
  dagre.layout(g);
  const gl = g.graph();
  return {
    width: gl.width ?? 200,
    height: gl.height ?? 100,
    nodes: nodes.map((n) => {
      const l = g.node(n.id);
      return { n, x: l.x, y: l.y, w: l.width, h: l.height };
    }),
    edges: g.edges().map((e) => ({ from: e.v, to: e.w, points: g.edge(e).points ?? [] })),
  };
}

const KIND_MARK: Record<GNode['kind'], string> = { task: '', dag: '▸ ', loop: '↻ ', condition: '◇ ', importer: '⇣ ' };

export function Graph({
  spec,
  path,
  states,
  badges,
  selected,
  onSelect,
  onOpen,
}: {
  spec: Dict | undefined;
  path: string[];
  states?: Record<string, string>;
  /** badges maps a task name to a short note drawn on its node (for example its GPUs). */
  badges?: Record<string, string>;
  selected?: string;
  onSelect?: (n: GNode) => void;
  onOpen?: (n: GNode) => void;
}) {
  const nodes = useMemo(() => graphNodes(spec, path), [spec, path.join('/')]);
  const l = useMemo(() => layout(nodes), [nodes]);
  if (!nodes.length) return <p class="muted">This DAG has no tasks.</p>;
  const activate = (n: GNode) => {
    if (n.kind !== 'task' && n.kind !== 'importer' && onOpen) onOpen(n);
    else onSelect?.(n);
  };
  return (
    <div class="graph" data-testid="graph">
      <svg width={l.width} height={l.height} viewBox={`0 0 ${l.width} ${l.height}`} role="group" aria-label="Pipeline graph">
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" class="arrowhead" />
          </marker>
        </defs>
        {l.edges.map((e) => (
          <path key={`${e.from}->${e.to}`} class="edge" marker-end="url(#arrow)" d={e.points.map((p, i) => `${i ? 'L' : 'M'}${p.x},${p.y}`).join(' ')} />
        ))}
        {l.nodes.map(({ n, x, y, w, h }) => {
          const st = states?.[n.id];
          return (
            <g
              key={n.id}
              class={`node st-${stateClass(st)} kind-${n.kind}${selected === n.id ? ' selected' : ''}`}
              transform={`translate(${x - w / 2},${y - h / 2})`}
              role="button"
              // SVG attributes are case-sensitive: it must be "tabindex", not tabIndex.
              tabindex={0}
              data-task={n.id}
              data-state={st ?? ''}
              aria-label={`${n.kind === 'task' ? 'Task' : n.kind === 'loop' ? 'Loop' : n.kind === 'condition' ? 'Condition' : n.kind === 'importer' ? 'Importer' : 'Sub-DAG'} ${n.label}${st ? `, ${st}` : ''}`}
              onClick={() => activate(n)}
              onKeyDown={(e) => {
                if (e.key === 'Enter' || e.key === ' ') {
                  e.preventDefault();
                  activate(n);
                }
              }}
            >
              <title>{n.condition ? `${n.label} — if ${n.condition}` : n.label}</title>
              <rect width={w} height={h} rx={n.kind === 'task' ? 6 : 14} />
              <circle class="dot" cx={14} cy={h / 2} r={5} />
              <text x={26} y={h / 2 + 1} dominant-baseline="middle">
                {KIND_MARK[n.kind]}
                {n.label.length > 32 ? `${n.label.slice(0, 31)}…` : n.label}
              </text>
              {badges?.[n.id] && (
                <text x={w - 8} y={13} text-anchor="end" class="node-badge">
                  {badges[n.id]}
                </text>
              )}
              {st && (
                <text x={w - 8} y={h - 7} text-anchor="end" class="node-state">
                  {st.toLowerCase()}
                </text>
              )}
            </g>
          );
        })}
      </svg>
    </div>
  );
}

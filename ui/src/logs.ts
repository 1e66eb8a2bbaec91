// Task logs: fetching (following while the task runs) and extracting per-step metrics.
import { useEffect, useState } from 'preact/hooks';
import { API } from './api';

const MAX_LOG = 8 * 1024 * 1024;

export function logsURL(runId: string, taskId: string, follow: boolean) {
  return `${API}/runs/${encodeURIComponent(runId)}/tasks/${encodeURIComponent(taskId)}/logs${follow ? '?follow=true' : ''}`;
}

/** useLogs streams a task's log; it refetches when `epoch` changes (for example the task state). */
export function useLogs(runId: string, taskId: string | undefined, follow: boolean, epoch: string) {
  const [text, setText] = useState('');
  const [status, setStatus] = useState<'idle' | 'loading' | 'streaming' | 'done' | 'missing' | 'error'>('idle');
  const [error, setError] = useState('');
  useEffect(() => {
    if (!taskId) return;
    const ac = new AbortController();
    setStatus('loading');
    (async () => {
      const res = await fetch(logsURL(runId, taskId, follow), { signal: ac.signal, headers: { Accept: 'text/plain' } });
      if (res.status === 404) {
        setText('');
        setStatus('missing');
        return;
      }
      if (!res.ok || !res.body) throw new Error(`${res.status} ${res.statusText}`);
      setStatus(follow ? 'streaming' : 'loading');
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let acc = '';
      let pending = false;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        acc += value;
        if (acc.length > MAX_LOG) acc = acc.slice(acc.length - MAX_LOG);
        if (!pending) {
          pending = true;
          requestAnimationFrame(() => {
            pending = false;
            if (!ac.signal.aborted) setText(acc);
          });
        }
      }
      setText(acc);
      setStatus('done');
    })().catch((e) => {
      if (ac.signal.aborted) return;
      setError(String(e?.message ?? e));
      setStatus('error');
    });
    return () => ac.abort();
  }, [runId, taskId, follow, epoch]);
  return { text, status, error };
}

export interface Curve {
  metric: string;
  x: number[];
  y: number[];
}

const STEP_KEYS = ['step', 'global_step', 'iteration', 'iter', 'epoch'];

/**
 * stepMetrics finds per-step metrics in a log: JSON lines such as {"step": 3, "loss": 0.2}
 * or key=value lines such as "step=3 loss=0.2 acc=0.91" (also "step: 3, loss: 0.2").
 * A line counts only when it names a step key and at least one other numeric value.
 */
export function stepMetrics(log: string): Curve[] {
  const curves = new Map<string, Curve>();
  const add = (rec: Record<string, number>) => {
    const sk = STEP_KEYS.find((k) => k in rec);
    if (sk === undefined) return;
    const x = rec[sk];
    for (const [k, v] of Object.entries(rec)) {
      if (k === sk || STEP_KEYS.includes(k)) continue;
      let c = curves.get(k);
      if (!c) curves.set(k, (c = { metric: k, x: [], y: [] }));
      const i = c.x.indexOf(x);
      if (i >= 0) c.y[i] = v; // the last value logged for a step wins
      else {
        c.x.push(x);
        c.y.push(v);
      }
    }
  };
  for (const raw of log.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const brace = line.indexOf('{');
    if (brace >= 0 && line.endsWith('}')) {
      try {
        const obj = JSON.parse(line.slice(brace));
        const rec: Record<string, number> = {};
        for (const [k, v] of Object.entries(obj)) if (typeof v === 'number' && isFinite(v)) rec[k.toLowerCase()] = v;
        if (Object.keys(rec).length >= 2) add(rec);
        continue;
      } catch {
        /* not JSON: try key=value */
      }
    }
    const rec: Record<string, number> = {};
    for (const m of line.matchAll(/([A-Za-z_][\w./-]*)\s*[=:]\s*(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.])/g)) rec[m[1].toLowerCase()] = Number(m[2]);
    if (Object.keys(rec).length >= 2) add(rec);
  }
  return [...curves.values()].filter((c) => c.x.length >= 2).map((c) => {
    const order = c.x.map((_, i) => i).sort((a, b) => c.x[a] - c.x[b]);
    return { metric: c.metric, x: order.map((i) => c.x[i]), y: order.map((i) => c.y[i]) };
  });
}

// Charts drawn by uPlot: line charts (learning curves, ROC) and bar charts (run comparison).
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useEffect, useRef } from 'preact/hooks';

const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];
export const color = (i: number) => PALETTE[i % PALETTE.length];

export interface Series {
  label: string;
  x: number[];
  y: number[];
}

function useUPlot(make: (el: HTMLElement) => uPlot | null, deps: unknown[]) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!ref.current) return;
    const plot = make(ref.current);
    return () => plot?.destroy();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  return ref;
}

/** LineChart plots series that may have different x values (they are merged on one axis). */
export function LineChart({ series, xLabel, yLabel, title, width = 520, height = 260, square }: { series: Series[]; xLabel: string; yLabel: string; title: string; width?: number; height?: number; square?: boolean }) {
  const ref = useUPlot(
    (el) => {
      if (!series.length) return null;
      const xs = [...new Set(series.flatMap((s) => s.x))].sort((a, b) => a - b);
      const idx = new Map(xs.map((x, i) => [x, i]));
      const ys = series.map((s) => {
        const col: (number | null)[] = new Array(xs.length).fill(null);
        s.x.forEach((x, i) => (col[idx.get(x)!] = s.y[i]));
        return col;
      });
      const opts: uPlot.Options = {
        title,
        width,
        height: square ? width : height,
        scales: { x: { time: false, ...(square ? { range: [0, 1] } : {}) }, ...(square ? { y: { range: [0, 1] } } : {}) },
        axes: [{ label: xLabel }, { label: yLabel }],
        series: [{ label: xLabel }, ...series.map((s, i) => ({ label: s.label, stroke: color(i), width: 2, spanGaps: true, points: { show: xs.length < 40 } }))],
      };
      return new uPlot(opts, [xs, ...ys] as uPlot.AlignedData, el);
    },
    [series, xLabel, yLabel, title, width, height],
  );
  return <div class="chart" ref={ref} role="img" aria-label={`${title}: ${yLabel} over ${xLabel}`} />;
}

/** BarChart shows one bar per category (for example one per run for a metric). */
export function BarChart({ categories, values, title, width = 360, height = 220 }: { categories: string[]; values: (number | null)[]; title: string; width?: number; height?: number }) {
  const ref = useUPlot(
    (el) => {
      if (!categories.length) return null;
      const xs = categories.map((_, i) => i);
      const opts: uPlot.Options = {
        title,
        width,
        height,
        legend: { show: false },
        scales: { x: { time: false, range: [-0.6, categories.length - 0.4] }, y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
        axes: [{ values: (_u, vals) => vals.map((v) => (Number.isInteger(v) ? categories[v] ?? '' : '')), splits: () => xs }, {}],
        series: [{}, { label: title, fill: color(0) + 'bb', stroke: color(0), paths: uPlot.paths.bars!({ size: [0.6, 80] }), points: { show: false } }],
      };
      return new uPlot(opts, [xs, values] as uPlot.AlignedData, el);
    },
    [categories, values, title, width, height],
  );
  return <div class="chart" ref={ref} role="img" aria-label={`${title} by run`} />;
}

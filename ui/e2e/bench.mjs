// Benchmark: the time from navigation start to the first rendered run list (the app marks
// "kfp-box:run-list-rendered" when the list's first response is on screen), in a fresh
// browser context each time (cold cache) over loopback. The server is seeded with runs so the
// list has rows. The baseline is the same browser loading the raw run list JSON from the API.
// Output is go-bench format so that scripts/bench.sh and internal/benchtable can read it:
//   BenchmarkUIFirstRunList  N  <median ns> ns/op  <min> ms/min  <max> ms/max
//   BenchmarkUIRawRunsAPI    N  <median ns> ns/op  ...
import { apiFetch as fetch, authHeaders, launchBrowser } from './harness.mjs';
import { pipelineYAML } from './pipeline.mjs';

const BASE = process.env.KFPBOX_URL;
const N = Number(process.env.BENCH_UI_N || 7);
const SEED = Number(process.env.BENCH_UI_RUNS || 10);
const api = (p) => `${BASE}/apis/v2beta1/${p}`;

async function seed() {
  const fd = new FormData();
  fd.append('uploadfile', new Blob([pipelineYAML('bench-ui-pipeline')]), 'bench-ui-pipeline.yaml');
  const up = await fetch(api(`pipelines/upload?name=bench-ui-${Date.now().toString(36)}`), { method: 'POST', body: fd });
  if (!up.ok) return `seeding failed: upload ${up.status}`;
  const p = await up.json();
  const vs = await (await fetch(api(`pipelines/${p.pipeline_id}/versions`))).json();
  const vid = vs.pipeline_versions?.[0]?.pipeline_version_id;
  let made = 0;
  for (let i = 0; i < SEED; i++) {
    const r = await fetch(api('runs'), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ display_name: `bench ${i}`, pipeline_version_reference: { pipeline_id: p.pipeline_id, pipeline_version_id: vid }, runtime_config: { parameters: { message: `m${i}`, steps: 1 } } }),
    });
    if (r.ok) made++;
  }
  return `${made} runs`;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const line = (name, ms) => {
  const xs = [...ms].sort((a, b) => a - b);
  return `${name}\t${ms.length}\t${Math.round(median(ms) * 1e6)} ns/op\t${xs[0].toFixed(1)} ms/min\t${xs[xs.length - 1].toFixed(1)} ms/max`;
};

const seeded = await seed().catch((e) => `seeding failed: ${e.message}`);
const browser = await launchBrowser();
const times = [];
const raw = [];
try {
  for (let i = 0; i < N; i++) {
    const ctx = await browser.newContext({ extraHTTPHeaders: authHeaders() });
    const page = await ctx.newPage();
    await page.goto(`${BASE}/runs`);
    const ms = await page.waitForFunction(
      () => {
        const m = performance.getEntriesByName('kfp-box:run-list-rendered')[0];
        // Rendered means painted: wait one frame after the mark.
        return m && new Promise((r) => requestAnimationFrame(() => r(m.startTime)));
      },
      null,
      { timeout: 30_000 },
    );
    times.push(await ms.jsonValue());
    await ctx.close();

    const rctx = await browser.newContext({ extraHTTPHeaders: authHeaders() });
    const rpage = await rctx.newPage();
    await rpage.goto(`${BASE}/apis/v2beta1/runs?page_size=20&sort_by=created_at%20desc`);
    raw.push(await rpage.evaluate(() => performance.getEntriesByType('navigation')[0].responseEnd));
    await rctx.close();
  }
} finally {
  await browser.close();
}
console.log(`${line('BenchmarkUIFirstRunList', times)}\t# cold browser context, loopback, seeded ${seeded}`);
console.log(line('BenchmarkUIRawRunsAPI', raw));

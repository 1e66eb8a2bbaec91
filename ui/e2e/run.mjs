#!/usr/bin/env node
// Runs the browser tests against a real kfp-box: starts `kfp-box serve` (the binary given by
// --binary, default ../bin/kfp-box) on free loopback ports with a fresh data directory, or uses
// the server at KFPBOX_URL when that is set, then runs e2e/*.test.mjs with node's test runner.
//   node e2e/run.mjs --binary ../bin/kfp-box [--bench]
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, OUT, startServer } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : def;
};
const bench = argv.includes('--bench');
const binary = resolve(opt('--binary', join(here, '..', '..', 'bin', 'kfp-box')));

if (!existsSync(CHROMIUM)) {
  console.error(`no Chromium at ${CHROMIUM}: install Debian's package (apt-get install -y chromium) or set CHROMIUM`);
  process.exit(2);
}

// Screenshots of an earlier run would mix with this run's: start from an empty set.
mkdirSync(OUT, { recursive: true });
if (!bench) for (const f of readdirSync(OUT)) if (f.endsWith('.png')) rmSync(join(OUT, f));

let server = null;
let url = process.env.KFPBOX_URL;
let token = process.env.KFPBOX_TOKEN || '';
if (!url) {
  if (!existsSync(binary)) {
    console.error(`no kfp-box binary at ${binary}: build it first (make build)`);
    process.exit(2);
  }
  // The host runtime runs the tasks' `sh -c` scripts without needing an image in containerd
  // (the test machine reaches no registry). KFPBOX_E2E_RUNTIME=containerd exercises containerd
  // instead, with KFPBOX_E2E_IMAGE imported beforehand (kfp-box image import FILE).
  server = await startServer(binary, ['--runtime', process.env.KFPBOX_E2E_RUNTIME || 'host']);
  url = server.url;
  token = server.token;
  if (!bench) console.error(`kfp-box serving at ${url} (data ${server.dataDir})`);
}

// The UI must be the real build, not the stub page of a binary built before `make ui`, and
// the server must mount it at all (ui.Handler as the router's fallback).
const res = await fetch(`${url}/runs`);
const page = await res.text();
const problem = page.includes('make ui')
  ? 'serves the "UI not built" stub: run `make ui` before building the binary'
  : !res.ok || !page.includes('id="app"')
    ? `does not serve the web UI at /runs (HTTP ${res.status}): mount ui.Handler(devURL) as the router's NoRoute handler`
    : '';
if (problem) {
  console.error(`${url} ${problem}`);
  await server?.stop();
  process.exit(2);
}

const files = bench ? [join(here, 'bench.mjs')] : readdirSync(here).filter((f) => f.endsWith('.test.mjs')).map((f) => join(here, f));
const args = bench ? files : ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files];
const code = await new Promise((res) => {
  const child = spawn(process.execPath, args, { stdio: 'inherit', env: { ...process.env, KFPBOX_URL: url, KFPBOX_TOKEN: token, TEST_OUTPUT: OUT } });
  const forward = (sig) => child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  child.on('exit', (c, sig) => res(c ?? (sig ? 1 : 0)));
});
await server?.stop(code !== 0);
if (!bench) console.error(`screenshots in ${OUT}`);
process.exit(code);

#!/usr/bin/env node
// Runs the UI's unit tests (unit/*.test.ts): esbuild bundles each into a temporary ES module
// and node's test runner runs them. No browser; `npm run test:unit`.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// Inside node_modules so that the bundles' bare imports resolve to ui/node_modules.
const cache = join(here, '..', 'node_modules', '.cache');
mkdirSync(cache, { recursive: true });
const out = mkdtempSync(join(cache, 'unit-'));
const entries = readdirSync(here).filter((f) => f.endsWith('.test.ts')).map((f) => join(here, f));
await build({
  entryPoints: entries,
  outdir: out,
  bundle: true,
  platform: 'node',
  format: 'esm',
  outExtension: { '.js': '.mjs' },
  loader: { '.css': 'empty' },
  jsx: 'automatic',
  jsxImportSource: 'preact',
  packages: 'external',
  logLevel: 'warning',
});
const files = readdirSync(out).map((f) => join(out, f));
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], { stdio: 'inherit', cwd: join(here, '..') });
rmSync(out, { recursive: true, force: true });
process.exit(r.status ?? 1);

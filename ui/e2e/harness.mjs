// Shared helpers for the browser tests: starting a real kfp-box, launching Debian's Chromium
// through playwright-core (never a downloaded browser), and waiting on conditions.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const OUT = process.env.TEST_OUTPUT || join(process.cwd(), 'test-output', 'ui');

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** waitFor polls cond until it returns a truthy value or the deadline passes. */
export async function waitFor(what, cond, timeoutMs, intervalMs = 200) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * startServer runs `kfp-box serve` on free loopback ports with a fresh data directory and
 * resolves once the API answers. Its output goes to OUT/server.log.
 */
export async function startServer(binary, extraArgs = []) {
  mkdirSync(OUT, { recursive: true });
  const dataDir = mkdtempSync(join(tmpdir(), 'kfp-box-ui-'));
  const port = await freePort();
  const s3Port = await freePort();
  const args = ['serve', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--s3-listen', `127.0.0.1:${s3Port}`, ...extraArgs];
  const log = createWriteStream(join(OUT, 'server.log'));
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  let exited = null;
  const exit = new Promise((resolve) => child.on('exit', (code, signal) => resolve((exited = { code, signal }))));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      `${binary} to answer on ${url}/apis/v2beta1/healthz (see ${join(OUT, 'server.log')})`,
      async () => {
        if (exited) throw new Error(`kfp-box exited early (${JSON.stringify(exited)}); see ${join(OUT, 'server.log')}`);
        const res = await fetch(`${url}/apis/v2beta1/healthz`);
        return res.ok;
      },
      60_000,
    );
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  // stop ends the server; keep leaves the data directory for a post-mortem (failed tests).
  const stop = async (keep = false) => {
    if (!exited) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exit;
      clearTimeout(t);
    }
    if (keep) console.error(`kept the data directory of the failed test run: ${dataDir}`);
    else rmSync(dataDir, { recursive: true, force: true });
  };
  // The box requires a token (--auth token, the default): its admin token is in the data dir.
  let token = '';
  try {
    token = readFileSync(join(dataDir, 'auth', 'admin-token'), 'utf8').trim();
  } catch {
    // --auth none, or an older box: requests go without a token.
  }
  return { url, dataDir, token, stop };
}

/** authHeaders are the headers that carry KFPBOX_TOKEN (set by e2e/run.mjs) to the API. */
export function authHeaders(extra = {}) {
  const t = process.env.KFPBOX_TOKEN;
  return t ? { ...extra, Authorization: `Bearer ${t}` } : { ...extra };
}

/** apiFetch is fetch with the token. */
export function apiFetch(url, init = {}) {
  return fetch(url, { ...init, headers: authHeaders(init.headers || {}) });
}

export async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  const opts = { executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] };
  // Debian's Chromium has been seen to crash while starting on a loaded machine (SIGSEGV
  // before the first page); a second start is not a retry of a test, only of the browser.
  try {
    return await chromium.launch(opts);
  } catch (err) {
    console.error(`chromium failed to start (${String(err).split('\n')[0]}); starting it once more`);
    return chromium.launch(opts);
  }
}

/**
 * watchConsole records console errors and uncaught page errors, the acceptance criterion
 * being none at all during the tests.
 */
export function watchConsole(page) {
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console.error: ${m.text()} (${m.location()?.url ?? ''})`);
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  return errors;
}

/** unlabeledControls lists form controls on the page that have no accessible name. */
export function unlabeledControls(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea, button')]
      .filter((el) => el.type !== 'hidden')
      .filter((el) => {
        if (el.labels?.length) return false;
        if (el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')) return false;
        if (el.tagName === 'BUTTON' && el.textContent.trim()) return false;
        return true;
      })
      .map((el) => el.outerHTML.slice(0, 120)),
  );
}

// Browser tests of the web UI against a real kfp-box (KFPBOX_URL, set by e2e/run.mjs): upload a
// pipeline, start a run with typed parameters, watch its graph reach SUCCEEDED, open a task's
// logs and an artifact preview, clone the run and compare the two runs, and visit every page.
// Each page's screenshot goes to TEST_OUTPUT. Any console error fails the test.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { OUT, apiFetch, launchBrowser, unlabeledControls, watchConsole } from './harness.mjs';
import { pipelineYAML } from './pipeline.mjs';

const BASE = process.env.KFPBOX_URL;
// How long a run may take to finish. The default covers pulling a small image once.
const RUN_TIMEOUT = Number(process.env.KFPBOX_E2E_RUN_TIMEOUT_MS || 240_000);
const suffix = Date.now().toString(36);

const UPLOAD = 'uploads a pipeline and shows its static graph and IR';
const RUN = 'starts a run with typed parameters and watches the graph reach SUCCEEDED';
const COMPARE = 'clones the run with other parameters and compares the two runs';

describe('kfp-box web UI', { skip: !BASE && 'KFPBOX_URL is not set: run through `make test-ui` (node e2e/run.mjs)' }, () => {
  let browser, page, errors;
  const runIds = [];
  let shot = 0;
  const screenshot = async (name) => {
    shot += 1;
    await page.screenshot({ path: join(OUT, `${String(shot).padStart(2, '0')}-${name}.png`), fullPage: true });
  };
  const go = async (path) => {
    await page.goto(BASE + path);
  };
  // The app navigates with the History API, so wait on location itself rather than on a load.
  const waitPath = async (test) => {
    const src = test instanceof RegExp ? { re: test.source, flags: test.flags } : null;
    await page.waitForFunction(({ re, flags }) => new RegExp(re, flags).test(location.pathname + location.search), src);
  };
  const assertLabeled = async (where) => assert.deepEqual(await unlabeledControls(page), [], `form controls without labels on ${where}`);

  /** waitRun waits until the run page shows a terminal state and asserts SUCCEEDED. */
  const waitSucceeded = async (runId) => {
    const summary = page.getByTestId('run-summary');
    try {
      await page.waitForFunction(
        () => ['SUCCEEDED', 'FAILED', 'CANCELED', 'SKIPPED'].includes(document.querySelector('[data-testid=run-summary]')?.getAttribute('data-run-state') ?? ''),
        null,
        { timeout: RUN_TIMEOUT, polling: 250 },
      );
    } catch {
      const st = await summary.getAttribute('data-run-state').catch(() => '?');
      const tasks = await page.locator('[data-task]').evaluateAll((ns) => ns.map((n) => `${n.dataset.task}=${n.dataset.state || 'none'}`));
      assert.fail(`run ${runId} did not finish within ${RUN_TIMEOUT} ms (KFPBOX_E2E_RUN_TIMEOUT_MS): run state ${st}, tasks ${tasks.join(' ')}; engine or runtime not ready?`);
    }
    const st = await summary.getAttribute('data-run-state');
    if (st !== 'SUCCEEDED') {
      const err = await page.locator('.error').allTextContents();
      assert.fail(`run ${runId} ended ${st}, want SUCCEEDED: ${err.join(' | ')}`);
    }
    // The graph shows every task succeeded (or cached), without reloading the page.
    for (const task of ['train', 'report', 'check']) {
      const state = await page.locator(`[data-task="${task}"]`).getAttribute('data-state');
      assert.ok(['SUCCEEDED', 'CACHED'].includes(state), `task ${task} shows ${state}`);
    }
  };

  // Steps build on each other (upload, run, clone, compare). A step names the steps it needs
  // and is skipped, with the reason, when one of them failed, instead of timing out itself.
  const failed = new Set();
  const step = (name, needs, fn) =>
    it(name, async (t) => {
      const missing = needs.filter((n) => failed.has(n));
      if (missing.length) return t.skip(`needs the failed step(s): ${missing.join(', ')}`);
      try {
        await fn(t);
      } catch (e) {
        failed.add(name);
        throw e;
      }
    });

  before(async () => {
    mkdirSync(OUT, { recursive: true });
    browser = await launchBrowser();
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    page = await ctx.newPage();
    // Generous: CI machines are often busy. Each wait still ends as soon as its condition holds.
    page.setDefaultTimeout(Number(process.env.KFPBOX_E2E_STEP_TIMEOUT_MS || 45_000));
    errors = watchConsole(page);
    // Log in as a user would: the box sends a page it cannot show without a session to its
    // login form, which takes a token and comes back to the page asked for.
    if (process.env.KFPBOX_TOKEN) {
      await page.goto(BASE + '/runs');
      await page.waitForURL(/\/login\?next=/);
      await page.getByLabel('Token').fill(process.env.KFPBOX_TOKEN);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.waitForURL((u) => u.pathname === '/runs');
    }
  });

  after(async () => {
    await browser?.close();
  });

  afterEach(() => {
    const found = errors.splice(0);
    assert.deepEqual(found, [], 'console errors');
  });

  step('shows the run list', [], async () => {
    await go('/');
    await waitPath(/\/runs$/);
    await page.locator('[data-testid=run-list][data-loaded=true]').waitFor();
    await assertLabeled('/runs');
    await screenshot('runs');
  });

  step(UPLOAD, [], async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kfp-box-ui-pipeline-'));
    const file = join(dir, 'e2e-ui-pipeline.yaml');
    writeFileSync(file, pipelineYAML());
    await go('/pipelines');
    await page.getByRole('button', { name: 'Upload pipeline' }).click();
    await page.getByLabel('Pipeline file').setInputFiles(file);
    await page.getByLabel(/Pipeline name/).fill(`e2e-ui-${suffix}`);
    await page.getByLabel('Description').fill('uploaded by the browser tests');
    await assertLabeled('/pipelines upload form');
    await screenshot('pipeline-upload');
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await waitPath(/\/pipelines\/[^/]+$/);
    for (const t of ['train', 'report', 'check']) await page.locator(`[data-task="${t}"]`).waitFor();
    await screenshot('pipeline-graph');
    await page.getByRole('tab', { name: 'Pipeline spec (IR)' }).click();
    await page.locator('pre.json', { hasText: 'comp-train' }).waitFor();
    await screenshot('pipeline-ir');
    await go('/pipelines');
    await page.getByRole('link', { name: `e2e-ui-${suffix}` }).waitFor();
    await screenshot('pipelines');
  });

  step(RUN, [UPLOAD], async () => {
    await go('/pipelines');
    await page.getByRole('link', { name: `e2e-ui-${suffix}` }).click();
    await page.getByRole('link', { name: 'Create run' }).click();
    await waitPath(/\/runs\/new\?/);
    await page.getByLabel(/^message/).fill('from-e2e');
    await page.getByLabel(/^steps/).fill('4');
    await page.getByLabel(/^rate/).fill('0.25');
    assert.equal(await page.getByLabel(/^verbose/).isChecked(), true, 'boolean default is checked');
    await page.getByLabel('Run name').fill(`e2e run A ${suffix}`);
    await assertLabeled('/runs/new');
    await screenshot('new-run');
    await page.getByRole('button', { name: 'Start run' }).click();
    await waitPath(/\/runs\/[0-9a-zA-Z-]+$/);
    runIds.push(page.url().split('/').pop());
    await page.locator('[data-task="train"]').waitFor();
    await screenshot('run-started');
    await waitSucceeded(runIds[0]);
    await screenshot('run-succeeded');
    await page.getByRole('tab', { name: 'Parameters' }).click();
    await page.getByRole('table', { name: 'Parameters' }).getByText('from-e2e').waitFor();
    await screenshot('run-parameters');
    await page.getByRole('tab', { name: 'Graph' }).click();
  });

  step("opens a task's logs, learning curves and artifact preview", [RUN], async () => {
    // Select the task from the keyboard.
    await page.locator('[data-task="train"]').focus();
    await page.keyboard.press('Enter');
    const panel = page.getByTestId('task-panel');
    await panel.waitFor();
    await panel.getByTestId('cache-reason').getByText('not a cache hit').waitFor();
    await panel.getByRole('tab', { name: 'Inputs/Outputs' }).click();
    const inputs = panel.getByRole('table', { name: 'Inputs' });
    await inputs.getByRole('row', { name: /message/ }).getByText('from-e2e').waitFor();
    await inputs.getByRole('row', { name: /steps/ }).getByText('4', { exact: true }).waitFor();
    await screenshot('task-io');
    await panel.getByRole('tab', { name: 'Logs' }).click();
    const logs = panel.getByTestId('task-logs');
    await logs.filter({ hasText: 'step=4' }).waitFor();
    await panel.getByLabel('Search logs').fill('step=2');
    await panel.getByText('1 matching lines').waitFor();
    assert.match(await logs.textContent(), /step=2 loss=500/);
    await screenshot('task-logs');
    await panel.getByRole('tab', { name: 'Curves' }).click();
    await panel.locator('.uplot').first().waitFor();
    await screenshot('task-curves');
    await panel.getByRole('tab', { name: /^Artifacts/ }).click();
    const md = panel.locator('.artifact-preview[data-kind=markdown]');
    await md.waitFor();
    await md.frameLocator('iframe').locator('h1', { hasText: 'Report' }).waitFor();
    await panel.locator('table.csv').getByRole('columnheader', { name: 'loss' }).waitFor();
    await panel.locator('.artifact-preview[data-kind=html]').frameLocator('iframe').locator('h1', { hasText: 'HTML report' }).waitFor();
    const img = panel.locator('.artifact-preview img.preview-img');
    await img.waitFor();
    await page.waitForFunction((el) => el.complete && el.naturalWidth === 16, await img.elementHandle());
    await screenshot('task-artifacts');
    const runTabs = page.getByRole('tablist', { name: 'Run views' });
    await runTabs.getByRole('tab', { name: 'Artifacts' }).click();
    await page.getByRole('list', { name: 'Artifacts' }).getByRole('button', { name: 'report' }).click();
    await page.locator('.artifact-list .artifact-preview[data-kind=markdown] iframe').waitFor();
    await screenshot('run-artifacts');
    await page.getByRole('link', { name: 'Open artifact report on its own page' }).click();
    await waitPath(/^\/artifacts\/[^/]+$/);
    await page.locator('.artifact-preview[data-kind=markdown]').frameLocator('iframe').locator('h1', { hasText: 'Report' }).waitFor();
    await screenshot('artifact-page');
    await page.goBack();
    await waitPath(new RegExp(`^/runs/${runIds[0]}$`));
    // Logs are kept after the run and searchable across its tasks.
    await page.getByTestId('run-summary').waitFor();
    await runTabs.getByRole('tab', { name: 'Logs' }).click();
    await page.getByLabel('Search all task logs').fill('step=3');
    const runLogs = page.getByTestId('run-logs');
    await runLogs.getByRole('heading', { name: /train/ }).waitFor();
    assert.match(await runLogs.locator('pre.log').first().textContent(), /step=3 loss=333/);
    await screenshot('run-logs-search');
  });

  step(COMPARE, [RUN], async () => {
    await go(`/runs/${runIds[0]}`);
    await page.getByRole('button', { name: 'Clone' }).click();
    await waitPath(/\/runs\/new\?clone=/);
    const msg = page.getByLabel(/^message/);
    await page.waitForFunction(() => document.querySelector('#param-message')?.value === 'from-e2e');
    await msg.fill('second');
    await page.getByLabel(/^steps/).fill('2');
    await page.getByLabel('Run name').fill(`e2e run B ${suffix}`);
    await page.getByRole('button', { name: 'Start run' }).click();
    await waitPath(new RegExp(`^/runs/(?!${runIds[0]}$)(?!new)[0-9a-zA-Z-]+$`));
    runIds.push(page.url().split('/').pop());
    await waitSucceeded(runIds[1]);

    await go('/runs');
    await page.getByLabel('Filter by name').fill(suffix);
    await page.getByRole('checkbox', { name: `Select run e2e run A ${suffix}` }).check();
    await page.getByRole('checkbox', { name: `Select run e2e run B ${suffix}` }).check();
    await screenshot('runs-selected');
    await page.getByRole('button', { name: 'Compare' }).click();
    await waitPath(/\/compare\?runs=/);
    const params = page.getByTestId('compare-params');
    await params.getByText('from-e2e').waitFor();
    await params.getByText('second').waitFor();
    assert.ok(await params.locator('tr.differs').count() >= 2, 'message and steps rows are marked as different');
    await screenshot('compare');
  });

  step('opens the links the kfp SDK prints (#/runs/details/..., #/experiments/details/..., #/pipelines/details/.../version/...)', [RUN], async () => {
    const api = (p, init) => apiFetch(`${BASE}/apis/v2beta1/${p}`, init).then(async (r) => (r.ok ? r.json() : assert.fail(`${p}: HTTP ${r.status} ${await r.text()}`)));
    const { pipeline_id: pid, pipeline_version_id: vid } = (await api(`runs/${runIds[0]}`)).pipeline_version_reference;
    // A newer version, so that the version link must open the older one it names.
    const form = new FormData();
    form.append('uploadfile', new Blob([pipelineYAML()]), 'e2e-ui-pipeline.yaml');
    const newer = await api(`pipelines/upload_version?pipelineid=${pid}&name=e2e-link-${suffix}`, { method: 'POST', body: form });
    assert.notEqual(newer.pipeline_version_id, vid);
    const exp = await api('experiments', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ display_name: `e2e-link-${suffix}` }) });

    await go(`/#/runs/details/${runIds[0]}`);
    await waitPath(new RegExp(`^/runs/${runIds[0]}$`));
    await page.getByTestId('run-summary').waitFor();
    assert.equal(await page.evaluate(() => location.hash), '', 'the KFP fragment is gone');
    await screenshot('kfp-link-run');

    await go(`/#/experiments/details/${exp.experiment_id}`);
    await waitPath(new RegExp(`^/runs\\?experiment=${exp.experiment_id}$`));
    await page.getByRole('heading', { name: new RegExp(`e2e-link-${suffix}`) }).waitFor();
    await screenshot('kfp-link-experiment');

    await go(`/#/pipelines/details/${pid}/version/${vid}`);
    await waitPath(new RegExp(`^/pipelines/${pid}/versions/${vid}$`));
    const versions = page.getByRole('complementary', { name: 'Versions' });
    await versions.locator(`a[aria-current=page][href$="/versions/${vid}"]`).waitFor();
    await versions.getByRole('link', { name: `e2e-link-${suffix}` }).waitFor();
    for (const t of ['train', 'report', 'check']) await page.locator(`[data-task="${t}"]`).waitFor();
    await screenshot('kfp-link-pipeline-version');

    await go(`/#/pipelines/details/${pid}`);
    await waitPath(new RegExp(`^/pipelines/${pid}$`));
    await page.getByRole('complementary', { name: 'Versions' }).getByRole('link', { name: `e2e-link-${suffix}` }).waitFor();
  });

  step('lists, sorts and pages runs', [COMPARE], async () => {
    // Eleven more runs (through the API, as a script would) give the list a second page.
    const api = (p, init) => apiFetch(`${BASE}/apis/v2beta1/${p}`, init).then(async (r) => (r.ok ? r.json() : assert.fail(`${p}: HTTP ${r.status} ${await r.text()}`)));
    const ref = (await api(`runs/${runIds[0]}`)).pipeline_version_reference;
    for (let i = 0; i < 11; i++) {
      await api('runs', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ display_name: `e2e page ${String(i).padStart(2, '0')} ${suffix}`, pipeline_version_reference: ref, runtime_config: { parameters: { message: `page ${i}`, steps: 1 } } }),
      });
    }
    await go('/runs');
    await page.getByLabel('Filter by name').fill(suffix);
    await page.getByLabel('Rows per page').selectOption('10');
    const rows = page.getByRole('table', { name: 'Runs' }).locator('tbody tr');
    await page.getByRole('button', { name: /^Name/ }).click(); // sort by name, descending
    await page.locator('th[aria-sort=descending]', { hasText: 'Name' }).waitFor();
    await page.getByText(`page 1 · 13 total`).waitFor();
    // The sorted page replaces the old one after the header changes: wait for it.
    await rows.first().filter({ hasText: /e2e run B/ }).waitFor();
    assert.equal(await rows.count(), 10);
    await page.getByRole('button', { name: 'Next ›' }).click();
    await page.getByText(`page 2 · 13 total`).waitFor();
    await rows.last().filter({ hasText: /e2e page 00/ }).waitFor();
    assert.equal(await rows.count(), 3);
    await screenshot('runs-page-2');
    await page.getByRole('button', { name: '‹ Previous' }).click();
    await page.getByText(`page 1 · 13 total`).waitFor();
    await page.getByLabel('State').selectOption('SUCCEEDED');
    await page.getByText('page 1 ·').waitFor();
    await rows.filter({ hasText: `e2e run B ${suffix}` }).waitFor();
    const states = await page.getByRole('table', { name: 'Runs' }).locator('tbody [data-state]').evaluateAll((els) => els.map((e) => e.dataset.state));
    assert.ok(states.length > 0 && states.every((s) => s === 'SUCCEEDED'), `state filter shows ${states}`);
    await screenshot('runs-sorted');

    // The list works from the keyboard: Tab from the filter reaches the row checkboxes and
    // links, Space selects, Enter follows a link.
    await page.getByLabel('Filter by name').focus();
    const target = `Select run e2e run B ${suffix}`;
    let reached = false;
    for (let i = 0; i < 40 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate((name) => document.activeElement?.getAttribute('aria-label') === name, target);
    }
    assert.ok(reached, `Tab never reached the checkbox "${target}"`);
    await page.keyboard.press('Space');
    assert.equal(await page.getByRole('checkbox', { name: target }).isChecked(), true, 'Space selects the run');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), `e2e run B ${suffix}`, 'the run link follows its checkbox');
    await page.keyboard.press('Enter');
    await waitPath(new RegExp(`/runs/${runIds[1]}$`));
  });

  step('creates a periodic recurring run, disables and enables it', [UPLOAD], async () => {
    await go('/pipelines');
    await page.getByRole('link', { name: `e2e-ui-${suffix}` }).click();
    await page.getByRole('link', { name: 'Create run' }).click();
    await page.getByLabel(/^message/).waitFor();
    await page.getByLabel('Run name').fill(`e2e nightly ${suffix}`);
    await page.getByLabel('Recurring').check();
    await page.getByLabel('Periodic').check();
    await page.getByLabel('Interval in seconds').fill('86400');
    await assertLabeled('/runs/new (recurring)');
    await screenshot('new-recurring-run');
    await page.getByRole('button', { name: 'Create recurring run' }).click();
    await waitPath(/\/recurring$/);
    const row = page.getByRole('row', { name: new RegExp(`e2e nightly ${suffix}`) });
    await row.getByText('enabled').waitFor();
    await row.getByRole('button', { name: `Disable e2e nightly ${suffix}` }).click();
    await row.getByText('disabled').waitFor();
    await screenshot('recurring-disabled');
    await row.getByRole('button', { name: `Enable e2e nightly ${suffix}` }).click();
    await row.getByText('enabled').waitFor();
    // Disable it again so it starts nothing while the remaining tests run.
    await row.getByRole('button', { name: `Disable e2e nightly ${suffix}` }).click();
    await row.getByText('disabled').waitFor();
  });

  step('creates and archives an experiment', [], async () => {
    await go('/experiments');
    await page.getByRole('button', { name: 'New experiment' }).click();
    await page.getByLabel('Name', { exact: true }).fill(`e2e-exp-${suffix}`);
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    await waitPath(/\/runs\?experiment=/);
    await page.getByRole('heading', { name: new RegExp(`e2e-exp-${suffix}`) }).waitFor();
    await go('/experiments');
    await page.getByRole('button', { name: `Archive experiment e2e-exp-${suffix}` }).click();
    await page.getByRole('link', { name: `e2e-exp-${suffix}` }).waitFor({ state: 'detached' });
    await page.getByLabel('Show archived').check();
    await page.getByRole('link', { name: `e2e-exp-${suffix}` }).waitFor();
    await screenshot('experiments-archived');
  });

  it('shows experiments, recurring runs and the system page', async () => {
    await go('/experiments');
    await page.getByTestId('experiment-list').or(page.getByText('No experiments.')).waitFor();
    await assertLabeled('/experiments');
    await screenshot('experiments');
    await go('/recurring');
    await page.getByText(/No recurring runs|Recurring runs/).first().waitFor();
    await screenshot('recurring');
    await go('/system');
    await page.getByTestId('system-health').getByText(/API healthy|unavailable/).waitFor();
    await assertLabeled('/system');
    await screenshot('system');
  });
});

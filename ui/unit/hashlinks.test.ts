import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kfpHashPath } from '../src/hashlinks';

describe('kfpHashPath', () => {
  const cases: [string, string | null][] = [
    // The links the kfp SDK prints after create_run_from_pipeline_package, create_experiment,
    // upload_pipeline and upload_pipeline_version.
    ['#/runs/details/0b5c7e8a-1c1e-4bd4-9f6d-2a4f4d8b2f10', '/runs/0b5c7e8a-1c1e-4bd4-9f6d-2a4f4d8b2f10'],
    ['#/experiments/details/e-1', '/runs?experiment=e-1'],
    ['#/pipelines/details/p-1', '/pipelines/p-1'],
    ['#/pipelines/details/p-1/version/v-2', '/pipelines/p-1/versions/v-2'],
    // Other KFP UI routes.
    ['#/recurringrun/details/r-1', '/runs?recurring=r-1'],
    ['#/compare?runlist=a,b', '/compare?runs=a%2Cb'],
    ['#/runs', '/runs'],
    ['#/pipelines', '/pipelines'],
    ['#/experiments', '/experiments'],
    ['#/artifacts/17', '/artifacts/17'],
    ['#/runs/details/a%20b', '/runs/a%20b'],
    // Not KFP routes.
    ['#main', null],
    ['', null],
    ['#/nowhere/else', null],
  ];
  for (const [hash, want] of cases) it(hash || '(empty)', () => assert.equal(kfpHashPath(hash), want));
});

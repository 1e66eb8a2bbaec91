import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { dagAt, graphNodes, taskStates } from '../src/graph';

// The IR fixtures compiled by the real KFP SDK, ../shared/fixtures/kfp-ir from the repo root.
const FIXTURES = resolve(process.cwd(), '..', '..', 'shared', 'fixtures', 'kfp-ir', 'valid');
const have = existsSync(FIXTURES);
const load = (name: string) => YAML.parseAllDocuments(readFileSync(join(FIXTURES, name), 'utf8'))[0].toJS();

describe('graphNodes', { skip: !have && `KFP IR fixtures not found at ${FIXTURES}` }, () => {
  it('classifies loops, conditions and tasks and keeps dependencies', () => {
    const spec = load('pipeline_with_loops_and_conditions.yaml');
    const nodes = Object.fromEntries(graphNodes(spec, []).map((n) => [n.id, n]));
    assert.equal(nodes['for-loop-14'].kind, 'loop');
    assert.equal(nodes['condition-1'].kind, 'condition');
    assert.equal(nodes['flip-coin-op'].kind, 'task');
    assert.deepEqual(nodes['condition-1'].deps.sort(), ['args-generator-op', 'flip-coin-op']);
    assert.ok(nodes['condition-1'].condition, 'condition text is kept');
  });
  it('walks into sub-DAGs by task name', () => {
    const spec = load('pipeline_with_loops_and_conditions.yaml');
    const inner = graphNodes(spec, ['condition-1']);
    assert.ok(inner.length > 0, 'condition-1 has tasks');
    assert.ok(dagAt(spec, ['condition-1'])?.tasks, 'dagAt finds the nested DAG');
    assert.equal(dagAt(spec, ['no-such-task']), undefined);
  });
  it('marks importers', () => {
    const nodes = Object.fromEntries(graphNodes(load('pipeline_with_importer.yaml'), []).map((n) => [n.id, n]));
    assert.equal(nodes.importer.kind, 'importer');
    assert.deepEqual(nodes.train.deps, ['importer']);
  });
  it('accepts a spec wrapped with a platform spec', () => {
    const spec = load('container_io.yaml');
    assert.deepEqual(
      graphNodes({ pipeline_spec: spec, platform_spec: {} }, []).map((n) => n.id),
      ['container-io'],
    );
  });
});

describe('taskStates', () => {
  it('folds loop iterations, worst state first, and marks cache hits', () => {
    const got = taskStates([
      { display_name: 'a', state: 'SUCCEEDED' },
      { display_name: 'a', state: 'RUNNING' },
      { display_name: 'a', state: 'SUCCEEDED' },
      { display_name: 'b', state: 'SUCCEEDED', cache_source: { run_id: 'r1' } },
      { display_name: 'c', state: 'FAILED' },
      { display_name: 'c', state: 'SUCCEEDED' },
      { state: 'RUNNING' },
    ]);
    assert.deepEqual(got, { a: 'RUNNING', b: 'CACHED', c: 'FAILED' });
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stepMetrics } from '../src/logs';

describe('stepMetrics', () => {
  it('reads key=value lines', () => {
    const log = 'starting\nstep=1 loss=0.9 acc=0.1\nstep=2 loss=0.5 acc=0.6\nstep=3 loss=0.25 acc=0.8\ndone\n';
    const c = stepMetrics(log);
    assert.deepEqual(
      c.map((x) => x.metric),
      ['loss', 'acc'],
    );
    assert.deepEqual(c[0], { metric: 'loss', x: [1, 2, 3], y: [0.9, 0.5, 0.25] });
  });
  it('reads JSON lines, also after a timestamp prefix, and sorts by step', () => {
    const log = ['2026-01-01T00:00:00Z {"step": 2, "loss": 0.5, "note": "x"}', '{"step": 1, "loss": 1e0}', '{"Epoch": 3, "val_loss": 0.1}', '{"epoch": 4, "val_loss": 0.05}'].join('\n');
    const c = stepMetrics(log);
    assert.deepEqual(c.find((x) => x.metric === 'loss'), { metric: 'loss', x: [1, 2], y: [1, 0.5] });
    assert.deepEqual(c.find((x) => x.metric === 'val_loss'), { metric: 'val_loss', x: [3, 4], y: [0.1, 0.05] });
  });
  it('reads "key: value" pairs and lets the last value of a step win', () => {
    const c = stepMetrics('epoch: 1, loss: 2\nepoch: 2, loss: 1\nepoch: 2, loss: 0.5\n');
    assert.deepEqual(c, [{ metric: 'loss', x: [1, 2], y: [2, 0.5] }]);
  });
  it('ignores lines without a step and single points', () => {
    assert.deepEqual(stepMetrics('loss=0.3 acc=0.2\nversion 1.2.3\nstep=1 loss=3\n'), []);
  });
});

// What a Task counts for in `parafork run`'s progress line (src/standalone/progress-units.ts): one
// process, or each index of an array (issue 17), so the line counts processes either way.
import { describe, expect, it } from 'vitest';

import type { Task, TaskStatus } from '../../src/api/task.js';
import { progressUnits } from '../../src/standalone/progress-units.js';

function task(spec: Partial<Task['spec']>, status?: TaskStatus): Task {
  return { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: 't' }, spec: { command: ['x'], ...spec }, ...(status ? { status } : {}) };
}

describe('progressUnits', () => {
  it('counts a single Task as one process in its phase', () => {
    expect(progressUnits(task({}, { phase: 'Running' }))).toEqual({ total: 1, running: 1, succeeded: 0, failed: 0 });
    expect(progressUnits(task({}, { phase: 'Failed' }))).toEqual({ total: 1, running: 0, succeeded: 0, failed: 1 });
  });

  it('counts a running array by its indexes: active, succeeded and failed indexes', () => {
    expect(progressUnits(task({ completions: 100 }, { phase: 'Running', active: 7, succeeded: 40, failedIndexes: '3,9-11' }))).toEqual({ total: 100, running: 7, succeeded: 40, failed: 4 });
  });

  it('counts every index of an array that ended early and did not succeed as done and failed', () => {
    expect(progressUnits(task({ completions: 100 }, { phase: 'Failed', succeeded: 40, active: 0, failedIndexes: '3' }))).toEqual({ total: 100, running: 0, succeeded: 40, failed: 60 });
  });

  it('counts an array not started yet as all to do', () => {
    expect(progressUnits(task({ completions: 5 }))).toEqual({ total: 5, running: 0, succeeded: 0, failed: 0 });
  });
});

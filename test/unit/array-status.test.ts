// The status objects of a Task array (src/tasks/array-status.ts): phase and conditions as a Job's,
// next to every Task's Succeeded and Running, with the array's progress fields.
import { describe, expect, it } from 'vitest';

import type { Task } from '../../src/api/task.js';
import { ArrayProgress } from '../../src/tasks/array-progress.js';
import { finishedArrayStatus, runningArrayStatus } from '../../src/tasks/array-status.js';

const task: Task = { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: 'array', namespace: 'default', generation: 3 }, spec: { command: ['x'], completions: 4 } };
const facts = { nodeName: 'node-a', startedAt: Date.parse('2026-01-01T00:00:00Z'), suspended: false, now: Date.parse('2026-01-01T00:01:05Z') };

function progressWith(running: number, succeeded: number): ArrayProgress {
  const progress = new ArrayProgress({ policy: { completions: 4, backoffLimit: 0, backoffLimitPerIndex: undefined, maxFailedIndexes: undefined }, retryDelayMs: () => 1_000 });
  for (let index = 0; index < running + succeeded; index++) progress.startNext(0);
  for (let index = 0; index < succeeded; index++) progress.succeeded(index, 1);
  return progress;
}

describe('runningArrayStatus', () => {
  it('is Running with the progress fields while an index runs', () => {
    const status = runningArrayStatus(task, progressWith(2, 1).snapshot(), facts);
    expect(status).toMatchObject({ phase: 'Running', nodeName: 'node-a', observedGeneration: 3, startTime: '2026-01-01T00:00:00.000000000Z', progress: '1/4', active: 2, completedIndexes: '0' });
    expect(status.conditions).toEqual([
      expect.objectContaining({ type: 'Running', status: 'True', reason: 'IndexesRunning' }),
      expect.objectContaining({ type: 'Succeeded', status: 'Unknown', reason: 'IndexesRunning' }),
    ]);
  });

  it('is Pending with Running False, reason Suspended, while suspend holds it with nothing running', () => {
    const status = runningArrayStatus(task, progressWith(0, 1).snapshot(), { ...facts, suspended: true });
    expect(status.phase).toBe('Pending');
    expect(status.conditions?.[0]).toMatchObject({ type: 'Running', status: 'False', reason: 'Suspended' });
  });

  it('keeps the startTime already written', () => {
    const written: Task = { ...task, status: { startTime: '2025-12-31T23:59:59.000000000Z' } };
    expect(runningArrayStatus(written, progressWith(1, 0).snapshot(), facts).startTime).toBe('2025-12-31T23:59:59.000000000Z');
  });
});

describe('finishedArrayStatus', () => {
  it('is Succeeded with Complete True, reason Completed, and the duration, when every index succeeded', () => {
    const status = finishedArrayStatus(task, progressWith(0, 4).snapshot(), facts, { kind: 'Complete' });
    expect(status).toMatchObject({ phase: 'Succeeded', reason: 'Completed', message: 'all 4 indexes succeeded', completionTime: '2026-01-01T00:01:05.000000000Z', duration: '1m5s', progress: '4/4' });
    expect(status.conditions?.map((condition) => [condition.type, condition.status, condition.reason])).toEqual([
      ['Running', 'False', 'Completed'],
      ['Succeeded', 'True', 'Completed'],
      ['Complete', 'True', 'Completed'],
    ]);
  });

  it('is Failed with a Job\'s Failed condition and the outcome\'s reason', () => {
    const status = finishedArrayStatus(task, progressWith(0, 1).snapshot(), facts, { kind: 'Failed', reason: 'MaxFailedIndexesExceeded', message: '2 indexes failed' });
    expect(status).toMatchObject({ phase: 'Failed', reason: 'MaxFailedIndexesExceeded', message: '2 indexes failed' });
    expect(status.conditions?.[2]).toMatchObject({ type: 'Failed', status: 'True', reason: 'MaxFailedIndexesExceeded' });
  });
});

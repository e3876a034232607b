// The rules of a Task array (src/tasks/array-progress.ts), as an Indexed Job's: indexes start in
// order, failed ones are retried per index (backoffLimitPerIndex) or from one budget for the array
// (backoffLimit), a budget of failed indexes (maxFailedIndexes) ends it early, and the status it
// describes stays small at 100,000 indexes.
import { describe, expect, it } from 'vitest';

import type { TaskStatus } from '../../src/api/task.js';
import { ArrayProgress, arrayPolicyOf, failureRecordLimit, type ArrayPolicy, type IndexFailure } from '../../src/tasks/array-progress.js';

const retryDelayMs = (failures: number): number => 10_000 * 2 ** (failures - 1);

function policy(fields: Partial<ArrayPolicy> & { completions: number }): ArrayPolicy {
  return { backoffLimit: 0, backoffLimitPerIndex: undefined, maxFailedIndexes: undefined, ...fields };
}

function progressOf(fields: Partial<ArrayPolicy> & { completions: number }): ArrayProgress {
  return new ArrayProgress({ policy: policy(fields), retryDelayMs });
}

function error(finishedAt = 1_000, fields: Partial<IndexFailure> = {}): IndexFailure {
  return { reason: 'Error', retryable: true, message: 'exited with code 1', exitCode: 1, finishedAt, ...fields };
}

/** Starts and finishes every index that can start now with `finish`, until none can. */
function runAll(progress: ArrayProgress, now: number, finish: (index: number) => 'succeed' | IndexFailure): void {
  for (let next = progress.startNext(now); next !== undefined; next = progress.startNext(now)) {
    progress.started(next.index, 1_000_000);
    const how = finish(next.index);
    if (how === 'succeed') progress.succeeded(next.index, 5_000_000);
    else progress.failed(next.index, how);
  }
}

describe('arrayPolicyOf', () => {
  it('is undefined for a Task that is not an array', () => {
    expect(arrayPolicyOf({ command: ['x'] })).toBeUndefined();
  });

  it('reads completions and the retry fields, backoffLimit defaulting to 0', () => {
    expect(arrayPolicyOf({ command: ['x'], completions: 5, backoffLimitPerIndex: 2, maxFailedIndexes: 1 })).toEqual({
      completions: 5, backoffLimitPerIndex: 2, backoffLimit: 0, maxFailedIndexes: 1,
    });
  });
});

describe('an array whose indexes all succeed', () => {
  it('starts indexes 0 to N-1 in order, each as attempt 1', () => {
    const progress = progressOf({ completions: 3 });
    expect([progress.startNext(0), progress.startNext(0), progress.startNext(0), progress.startNext(0)]).toEqual([
      { index: 0, attempt: 1 }, { index: 1, attempt: 1 }, { index: 2, attempt: 1 }, undefined,
    ]);
    expect(progress.active).toBe(3);
    expect(progress.launchedThrough).toBe(3);
  });

  it('is Complete once every index succeeded, whatever the order', () => {
    const progress = progressOf({ completions: 3 });
    for (let index = 0; index < 3; index++) progress.startNext(0);
    progress.succeeded(2, 1);
    progress.succeeded(0, 1);
    expect(progress.outcome).toBeUndefined();
    expect(progress.snapshot()).toMatchObject({ progress: '2/3', active: 1, succeeded: 2, completedIndexes: '0,2' });
    progress.succeeded(1, 1);
    expect(progress.outcome).toEqual({ kind: 'Complete' });
    expect(progress.settled).toBe(true);
    expect(progress.snapshot()).toMatchObject({ progress: '3/3', active: 0, succeeded: 3, failed: 0, completedIndexes: '0-2', failedIndexes: '', attempts: 3 });
  });

  it('reports spawn latency and run time percentiles over the attempts', () => {
    const progress = progressOf({ completions: 100 });
    for (let next = progress.startNext(0); next !== undefined; next = progress.startNext(0)) {
      progress.started(next.index, (next.index + 1) * 1_000);
      progress.succeeded(next.index, (next.index + 1) * 1_000_000);
    }
    const timings = progress.snapshot().indexTimings;
    expect(timings?.attempts).toBe(100);
    expect(timings?.spawnLatency?.p50Nanoseconds).toBeGreaterThanOrEqual(49_500);
    expect(timings?.spawnLatency?.p50Nanoseconds).toBeLessThanOrEqual(50_500);
    expect(timings?.spawnLatency?.maxNanoseconds).toBe(100_000);
    expect(timings?.runDuration?.p99Nanoseconds).toBeGreaterThanOrEqual(98_000_000);
  });

  it('refuses news of an index that is not running', () => {
    const progress = progressOf({ completions: 2 });
    expect(() => progress.succeeded(0, 1)).toThrow(/index 0 is not running/);
  });
});

describe('per-index retries (backoffLimitPerIndex)', () => {
  it('retries a failed index after the backoff, as attempt 2, starting fresh indexes meanwhile', () => {
    const progress = progressOf({ completions: 3, backoffLimitPerIndex: 1 });
    progress.startNext(0);
    expect(progress.failed(0, error(1_000))).toEqual({ kind: 'retry', at: 11_000 });
    expect(progress.nextRetryAt).toBe(11_000);
    expect(progress.startNext(5_000)).toEqual({ index: 1, attempt: 1 });
    expect(progress.startNext(11_000)).toEqual({ index: 0, attempt: 2 });
  });

  it('gives an index up after backoffLimitPerIndex + 1 failed attempts; the others go on; the array fails with FailedIndexes at the end', () => {
    const progress = progressOf({ completions: 4, backoffLimitPerIndex: 1 });
    runAll(progress, 0, (index) => (index === 2 ? error() : 'succeed'));
    expect(progress.outcome).toBeUndefined();
    progress.startNext(60_000);
    expect(progress.failed(2, error(61_000))).toEqual({ kind: 'index-failed' });
    expect(progress.outcome).toEqual({ kind: 'Failed', reason: 'FailedIndexes', message: '1 of 4 indexes failed: 2' });
    expect(progress.snapshot()).toMatchObject({ progress: '3/4', succeeded: 3, failed: 2, completedIndexes: '0,1,3', failedIndexes: '2', attempts: 5 });
  });

  it('gives up at once on an ending a retry cannot change (ExecFailed), whatever retries are left', () => {
    const progress = progressOf({ completions: 2, backoffLimitPerIndex: 5 });
    progress.startNext(0);
    expect(progress.failed(0, error(0, { reason: 'ExecFailed', retryable: false }))).toEqual({ kind: 'index-failed' });
    expect(progress.snapshot().failedIndexes).toBe('0');
  });

  it('fails the array with MaxFailedIndexesExceeded when one index more than maxFailedIndexes fails, starting nothing after', () => {
    const progress = progressOf({ completions: 10, backoffLimitPerIndex: 0, maxFailedIndexes: 1 });
    for (let index = 0; index < 4; index++) progress.startNext(0);
    expect(progress.failed(0, error())).toEqual({ kind: 'index-failed' });
    expect(progress.outcome).toBeUndefined();
    expect(progress.failed(1, error())).toEqual({ kind: 'array-failed', reason: 'MaxFailedIndexesExceeded' });
    expect(progress.outcome).toMatchObject({ kind: 'Failed', reason: 'MaxFailedIndexesExceeded' });
    expect(progress.startNext(0)).toBeUndefined();
    // The two still running are stopped by the agent; the final status waits for them. An index
    // that ends as it is stopped is not a failure of its own: neither counted nor listed.
    expect(progress.settled).toBe(false);
    progress.succeeded(2, 1);
    expect(progress.failed(3, error(0, { reason: 'Cancelled', retryable: false }))).toEqual({ kind: 'array-failed', reason: 'MaxFailedIndexesExceeded' });
    expect(progress.settled).toBe(true);
    expect(progress.snapshot()).toMatchObject({ completedIndexes: '2', failedIndexes: '0,1', failed: 2, active: 0 });
    expect(progress.snapshot().failures).toHaveLength(2);
  });

  it('fails at once when maxFailedIndexes is lowered below the indexes already failed', () => {
    const progress = progressOf({ completions: 10, backoffLimitPerIndex: 0, maxFailedIndexes: 5 });
    progress.startNext(0);
    progress.failed(0, error());
    progress.setPolicy(policy({ completions: 10, backoffLimitPerIndex: 0, maxFailedIndexes: 0 }));
    expect(progress.outcome).toMatchObject({ kind: 'Failed', reason: 'MaxFailedIndexesExceeded' });
  });
});

describe('one budget of failures for the array (backoffLimit, no backoffLimitPerIndex)', () => {
  it('fails the array at the first failure with backoffLimit 0, as a Job, with BackoffLimitExceeded', () => {
    const progress = progressOf({ completions: 5 });
    progress.startNext(0);
    expect(progress.failed(0, error())).toEqual({ kind: 'array-failed', reason: 'BackoffLimitExceeded' });
    expect(progress.snapshot()).toMatchObject({ failed: 1, failedIndexes: '', completedIndexes: '' });
  });

  it('retries failed indexes while no more than backoffLimit attempts failed across all of them', () => {
    const progress = progressOf({ completions: 5, backoffLimit: 2 });
    for (let index = 0; index < 3; index++) progress.startNext(0);
    expect(progress.failed(0, error()).kind).toBe('retry');
    expect(progress.failed(1, error()).kind).toBe('retry');
    expect(progress.failed(2, error())).toEqual({ kind: 'array-failed', reason: 'BackoffLimitExceeded' });
    // The retries that waited never start.
    expect(progress.nextRetryAt).toBeUndefined();
    expect(progress.startNext(1e12)).toBeUndefined();
  });

  it('fails with the ending itself when it cannot be retried and backoffLimit is 0 (as a single Task would)', () => {
    const progress = progressOf({ completions: 5 });
    progress.startNext(0);
    expect(progress.failed(0, error(0, { reason: 'ExecFailed', retryable: false }))).toEqual({ kind: 'array-failed', reason: 'ExecFailed' });
  });
});

describe('an array ended from outside', () => {
  it('starts nothing once its deadline ended it, and keeps the reason', () => {
    const progress = progressOf({ completions: 5 });
    progress.startNext(0);
    progress.end('DeadlineExceeded', 'activeDeadlineSeconds passed');
    expect(progress.startNext(0)).toBeUndefined();
    expect(progress.outcome).toEqual({ kind: 'Failed', reason: 'DeadlineExceeded', message: 'activeDeadlineSeconds passed' });
    progress.failed(0, error(0, { reason: 'DeadlineExceeded', retryable: false }));
    expect(progress.settled).toBe(true);
  });
});

describe('failure records (status.failures)', () => {
  it('keeps the first 8 failed attempts only, with index, attempt, reason and exit code', () => {
    const progress = progressOf({ completions: 20, backoffLimitPerIndex: 0 });
    runAll(progress, 0, (index) => error(index * 1_000, { message: `index ${index} failed` }));
    const failures = progress.snapshot().failures ?? [];
    expect(failures).toHaveLength(failureRecordLimit);
    expect(failures[0]).toEqual({ index: 0, attempt: 1, reason: 'Error', exitCode: 1, message: 'index 0 failed', finishedTime: '1970-01-01T00:00:00.000000000Z' });
    expect(failures.map((failure) => failure.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(progress.snapshot().failed).toBe(20);
  });

  it('cuts a stderr tail to its last 512 characters and 1 KiB of UTF-8, and a message to 256 characters', () => {
    const progress = progressOf({ completions: 2, backoffLimitPerIndex: 0 });
    progress.startNext(0);
    progress.startNext(0);
    progress.failed(0, error(0, { stderrTail: `start${'x'.repeat(600)}end`, message: 'm'.repeat(300) }));
    progress.failed(1, error(0, { stderrTail: '😀'.repeat(600) }));
    const [ascii, wide] = progress.snapshot().failures ?? [];
    expect(Array.from(ascii?.stderrTail ?? '')).toHaveLength(512);
    expect(ascii?.stderrTail?.endsWith('end')).toBe(true);
    expect(ascii?.message).toHaveLength(256);
    expect(Buffer.byteLength(wide?.stderrTail ?? '')).toBeLessThanOrEqual(1024);
    expect(Array.from(wide?.stderrTail ?? '').every((character) => character === '😀')).toBe(true);
  });
});

describe('resuming from the status an earlier agent left', () => {
  const status: TaskStatus = { completedIndexes: '0-3,6', failedIndexes: '5', failed: 1, attempts: 8 };

  it('keeps completed and failed indexes, and continues with fresh ones from launchedThrough', () => {
    const progress = ArrayProgress.resume({ policy: policy({ completions: 10, backoffLimitPerIndex: 1 }), retryDelayMs, status, launchedThrough: 7, now: 0 });
    expect(progress.succeededCount).toBe(5);
    expect(progress.failedIndexCount).toBe(1);
    expect(progress.startNext(0)).toEqual({ index: 7, attempt: 1 });
  });

  it('ends an index launched but never recorded (4 here) as a lost attempt, retried only as the policy allows: never started again as new', () => {
    const progress = ArrayProgress.resume({ policy: policy({ completions: 10, backoffLimitPerIndex: 1 }), retryDelayMs, status, launchedThrough: 7, now: 0 });
    expect(progress.snapshot()).toMatchObject({ failed: 2 });
    expect(progress.snapshot().failures?.[0]).toMatchObject({ index: 4, attempt: 1, reason: 'AgentRestarted' });
    expect(progress.nextRetryAt).toBe(10_000);
    expect(progress.startNext(10_000)).toEqual({ index: 4, attempt: 2 });
  });

  it('fails the array for a lost index when the policy allows no retry, as a single Task shown Running without a process', () => {
    const progress = ArrayProgress.resume({ policy: policy({ completions: 10 }), retryDelayMs, status, launchedThrough: 7, now: 0 });
    expect(progress.outcome).toMatchObject({ kind: 'Failed', reason: 'BackoffLimitExceeded' });
  });
});

describe('a range of the array (one agent\'s share)', () => {
  it('starts only indexes of its range and is Complete when they are', () => {
    const progress = new ArrayProgress({ policy: policy({ completions: 10 }), retryDelayMs, range: { start: 4, end: 7 } });
    runAll(progress, 0, () => 'succeed');
    expect(progress.outcome).toEqual({ kind: 'Complete' });
    expect(progress.snapshot()).toMatchObject({ completedIndexes: '4-6', progress: '3/10' });
  });

  it('refuses a range outside the array', () => {
    expect(() => new ArrayProgress({ policy: policy({ completions: 10 }), retryDelayMs, range: { start: 5, end: 11 } })).toThrow(RangeError);
  });
});

describe('at 100,000 indexes', () => {
  it('keeps the status under 32 KiB with 1,000 indexes running, 100 failed and 8 failure records of 4-byte characters', () => {
    const completions = 100_000;
    const progress = progressOf({ completions, backoffLimitPerIndex: 0 });
    for (let next = progress.startNext(0); next !== undefined; next = progress.startNext(0)) {
      progress.started(next.index, 800_000 + (next.index % 1_000) * 1_000);
      if (next.index % 100 === 50) continue; // still running
      if (next.index % 1_000 === 1) progress.failed(next.index, error(0, { stderrTail: '😀'.repeat(600), message: '😀'.repeat(300) }));
      else progress.succeeded(next.index, 2_000_000);
    }
    const snapshot = progress.snapshot();
    expect(snapshot.active).toBe(1_000);
    expect(snapshot.failedIndexes.split(',')).toHaveLength(100);
    expect(Buffer.byteLength(JSON.stringify(snapshot))).toBeLessThan(32 * 1024);
  });

  it('runs 100,000 indexes through in well under a second of CPU', () => {
    const progress = progressOf({ completions: 100_000 });
    const started = performance.now();
    runAll(progress, 0, () => 'succeed');
    progress.snapshot();
    expect(progress.outcome).toEqual({ kind: 'Complete' });
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

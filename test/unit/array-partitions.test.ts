// How agents share one Task array (src/tasks/array-partitions.ts): fixed ranges claimed lowest
// first, one unlaunched range per agent at a time, and expired ranges taken over, with expiry
// judged on the observer's own clock.
import { describe, expect, it } from 'vitest';

import type { TaskIndexPartition } from '../../src/api/task.js';
import { LeaseObserver, fieldManagerFor, maxPartitions, nextPartitionAction, partitionApplyBody, partitionSizeFor } from '../../src/tasks/array-partitions.js';

function partition(fields: Partial<TaskIndexPartition> & { start: number; end: number; nodeName: string }): TaskIndexPartition {
  return { launchedThrough: fields.start, renewTime: '2026-01-01T00:00:00Z', ...fields };
}

describe('partitionSizeFor', () => {
  it('cuts 1,000 indexes into 10 ranges, so two agents can share them', () => {
    expect(partitionSizeFor(1_000)).toBe(100);
  });

  it('never needs more than maxPartitions entries, up to 100,000 indexes', () => {
    for (const completions of [1, 7, 100, 1_000, 25_600, 100_000]) {
      expect(Math.ceil(completions / partitionSizeFor(completions))).toBeLessThanOrEqual(maxPartitions);
    }
  });
});

describe('nextPartitionAction', () => {
  const base = { completions: 1_000, nodeName: 'node-a', hasCapacity: true, now: 0 };

  it('claims the lowest range nobody holds', () => {
    const observer = new LeaseObserver();
    const partitions = [partition({ start: 0, end: 100, nodeName: 'node-b' })];
    expect(nextPartitionAction({ ...base, partitions, observer })).toEqual({ kind: 'claim', start: 100, end: 200 });
  });

  it('claims nothing while it holds a range with indexes not yet launched, or has no room', () => {
    const observer = new LeaseObserver();
    const partitions = [partition({ start: 0, end: 100, nodeName: 'node-a', launchedThrough: 50 })];
    expect(nextPartitionAction({ ...base, partitions, observer })).toEqual({ kind: 'none' });
    expect(nextPartitionAction({ ...base, partitions: [], observer, hasCapacity: false })).toEqual({ kind: 'none' });
  });

  it('takes over an unfinished range whose renewTime has not changed for the lease duration, on its own clock', () => {
    const observer = new LeaseObserver();
    const stale = partition({ start: 0, end: 100, nodeName: 'node-b', launchedThrough: 100, succeeded: 40 });
    observer.observe([stale], 1_000);
    expect(nextPartitionAction({ ...base, partitions: [stale], observer, now: 30_999 }).kind).toBe('claim');
    expect(nextPartitionAction({ ...base, partitions: [stale], observer, now: 31_000 })).toEqual({ kind: 'take-over', partition: stale });
  });

  it('restarts its count when the holder renews', () => {
    const observer = new LeaseObserver();
    const held = partition({ start: 0, end: 100, nodeName: 'node-b', launchedThrough: 100 });
    observer.observe([held], 0);
    const renewed = { ...held, renewTime: '2026-01-01T00:00:10Z' };
    observer.observe([renewed], 20_000);
    expect(observer.expired(renewed, 40_000)).toBe(false);
    expect(observer.expired(renewed, 50_000)).toBe(true);
  });

  it('never takes over a finished range, however old', () => {
    const observer = new LeaseObserver();
    const done = partition({ start: 0, end: 100, nodeName: 'node-b', launchedThrough: 100, succeeded: 98, failedIndexes: '5,7' });
    observer.observe([done], 0);
    expect(nextPartitionAction({ ...base, completions: 100, partitions: [done], observer, now: 1e9 })).toEqual({ kind: 'none' });
  });
});

describe('partitionApplyBody', () => {
  it('holds only the agent\'s own entries, under its own field manager', () => {
    const entries = [partition({ start: 0, end: 100, nodeName: 'node-a' }), partition({ start: 300, end: 400, nodeName: 'node-a' })];
    expect(partitionApplyBody({ apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: 'a', namespace: 'n' } }, entries)).toEqual({
      apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: 'a', namespace: 'n' }, status: { partitions: entries },
    });
    expect(fieldManagerFor('node-a')).toBe('parafork-agent/node-a');
  });
});

// How agents share one Task array (src/tasks/array-partitions.ts): fixed ranges claimed lowest
// first, one unlaunched range per agent at a time, and expired ranges taken over, with expiry
// judged on the observer's own clock; the coordinator, the merged status and outcome, the launch
// fence moved ahead in chunks, and the holder's self-fence before any observer may take over.
import { describe, expect, it } from 'vitest';

import type { TaskIndexPartition } from '../../src/api/task.js';
import {
  LeaseObserver, arrayLeaseTimings, coordinatorOf, decideOnConflicts, defaultLeaseDurationMs, defaultRenewIntervalMs, fieldManagerFor, leaseSafetyMs, maxPartitions, mergePartitions, nextFence,
  nextPartitionAction, partitionApplyBody, partitionProblem, partitionSizeFor, selfFenceDue,
} from '../../src/tasks/array-partitions.js';
import type { ArrayPolicy } from '../../src/tasks/array-progress.js';

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

describe('the lease timings', () => {
  it('give the documented defaults for 30 s, and a holder stops before any observer may take over', () => {
    expect(arrayLeaseTimings(30)).toEqual({ durationMs: defaultLeaseDurationMs, renewIntervalMs: defaultRenewIntervalMs, safetyMs: leaseSafetyMs });
    const { durationMs, renewIntervalMs, safetyMs } = arrayLeaseTimings(6);
    expect(renewIntervalMs + safetyMs).toBeLessThan(durationMs);
  });

  it('self-fence: a holder whose last accepted write was sent lease - safety ago stops, measured from the send', () => {
    expect(selfFenceDue(undefined, 1e9)).toBe(false);
    expect(selfFenceDue(1_000, 1_000 + defaultLeaseDurationMs - leaseSafetyMs - 1)).toBe(false);
    expect(selfFenceDue(1_000, 1_000 + defaultLeaseDurationMs - leaseSafetyMs)).toBe(true);
  });
});

describe('nextFence', () => {
  it('moves the fence a chunk past the next fresh index once less than half a chunk is left, never past the end', () => {
    expect(nextFence({ nextFresh: 0, recorded: 64, end: 100, chunk: 64 })).toBeUndefined();
    expect(nextFence({ nextFresh: 33, recorded: 64, end: 100, chunk: 64 })).toBe(97);
    expect(nextFence({ nextFresh: 40, recorded: 64, end: 100, chunk: 64 })).toBe(100);
    expect(nextFence({ nextFresh: 100, recorded: 100, end: 100, chunk: 64 })).toBeUndefined();
  });
});

describe('coordinatorOf', () => {
  it('is the holder of the lowest range whose lease has not expired', () => {
    const observer = new LeaseObserver();
    const low = partition({ start: 0, end: 100, nodeName: 'node-b' });
    const high = partition({ start: 100, end: 200, nodeName: 'node-a', renewTime: '2026-01-01T00:00:05Z' });
    observer.observe([low, high], 0);
    expect(coordinatorOf([high, low], observer, 1_000)).toBe('node-b');
    const renewed = { ...high, renewTime: '2026-01-01T00:00:35Z' };
    observer.observe([low, renewed], 20_000);
    expect(coordinatorOf([low, renewed], observer, 30_000)).toBe('node-a');
    expect(coordinatorOf([], observer, 0)).toBeUndefined();
  });
});

describe('mergePartitions', () => {
  const policy = (fields: Partial<ArrayPolicy> = {}): ArrayPolicy => ({ completions: 300, backoffLimitPerIndex: 1, backoffLimit: 0, maxFailedIndexes: undefined, ...fields });
  const entries = [
    partition({ start: 0, end: 100, nodeName: 'node-a', succeeded: 100, completedIndexes: '0-99', active: 0, failed: 1 }),
    partition({ start: 100, end: 200, nodeName: 'node-b', succeeded: 98, completedIndexes: '100-149,152-199', failedIndexes: '150', active: 1, failed: 2 }),
  ];

  it('adds up the counts and joins the index sets, with no outcome while some range is unclaimed or running', () => {
    const merged = mergePartitions(entries, policy());
    expect(merged).toMatchObject({ active: 1, succeeded: 198, failed: 3, covered: false, outcome: undefined });
    expect(merged.completedIndexes.toString()).toBe('0-149,152-199');
    expect(merged.failedIndexes.toString()).toBe('150');
  });

  it('is Complete when every index succeeded, FailedIndexes when every index is done and some failed', () => {
    const all = [partition({ start: 0, end: 300, nodeName: 'node-a', completedIndexes: '0-299' })];
    expect(mergePartitions(all, policy())).toMatchObject({ covered: true, outcome: { kind: 'Complete' } });
    const someFailed = [partition({ start: 0, end: 300, nodeName: 'node-a', completedIndexes: '0-298', failedIndexes: '299' })];
    expect(mergePartitions(someFailed, policy()).outcome).toMatchObject({ kind: 'Failed', reason: 'FailedIndexes' });
  });

  it('judges maxFailedIndexes and the array-wide backoffLimit on the sums of all ranges', () => {
    expect(mergePartitions(entries, policy({ maxFailedIndexes: 0 })).outcome).toMatchObject({ kind: 'Failed', reason: 'MaxFailedIndexesExceeded' });
    expect(mergePartitions(entries, policy({ backoffLimitPerIndex: undefined, backoffLimit: 2 })).outcome).toMatchObject({ kind: 'Failed', reason: 'BackoffLimitExceeded' });
    expect(mergePartitions(entries, policy({ backoffLimitPerIndex: undefined, backoffLimit: 3 })).outcome).toBeUndefined();
  });
});

describe('decideOnConflicts', () => {
  const field = (start: number, name: string): string => `.status.partitions[start=${start}].${name}`;

  it('drops a range whose nodeName another manager owns: it was taken over', () => {
    const decision = decideOnConflicts([{ manager: 'parafork-agent/node-c', field: field(100, 'nodeName') }, { manager: 'parafork-agent/node-c', field: field(100, 'renewTime') }], new Map([[100, undefined], [200, undefined]]));
    expect(decision).toEqual({ lost: [100], forceAgain: false });
  });

  it('forces again when every conflict is a field the agent it took the range from still co-owns', () => {
    const takenFrom = new Map<number, string | undefined>([[100, 'node-b'], [200, undefined]]);
    expect(decideOnConflicts([{ manager: 'parafork-agent/node-b', field: field(100, 'succeeded') }, { manager: 'parafork-agent/node-b', field: field(100, 'completedIndexes') }], takenFrom)).toEqual({ lost: [], forceAgain: true });
  });

  it('never forces over a conflict it cannot explain: another manager, a range it claimed, another field, or none listed', () => {
    const takenFrom = new Map<number, string | undefined>([[100, 'node-b'], [200, undefined]]);
    expect(decideOnConflicts([{ manager: 'parafork-agent/node-c', field: field(100, 'succeeded') }], takenFrom).forceAgain).toBe(false);
    expect(decideOnConflicts([{ manager: 'parafork-agent/node-b', field: field(200, 'succeeded') }], takenFrom).forceAgain).toBe(false);
    expect(decideOnConflicts([{ manager: 'parafork-agent/node-b', field: '.status.phase' }], takenFrom).forceAgain).toBe(false);
    expect(decideOnConflicts([], takenFrom).forceAgain).toBe(false);
  });
});

describe('partitionProblem (an entry its author wrote through tasks/status)', () => {
  // 1,000 indexes: ranges of 100.
  it('finds nothing wrong with the entries agents write: a fixed range, its fence within it, its indexes within it', () => {
    expect(partitionProblem(partition({ start: 0, end: 100, nodeName: 'a' }), 1_000)).toBeUndefined();
    expect(partitionProblem(partition({ start: 900, end: 1_000, nodeName: 'a', launchedThrough: 1_000, completedIndexes: '900-949', failedIndexes: '950,999' }), 1_000)).toBeUndefined();
    expect(partitionProblem(partition({ start: 0, end: 4, nodeName: 'a', launchedThrough: 4, completedIndexes: '0-3' }), 4)).toBeUndefined();
  });

  it('names an entry that is not one of the fixed ranges, or whose end or fence is not its range\'s', () => {
    expect(partitionProblem(partition({ start: 50, end: 150, nodeName: 'ghost' }), 1_000)).toContain('status.partitions[start=50] starts no range');
    expect(partitionProblem(partition({ start: 1_000, end: 1_100, nodeName: 'ghost' }), 1_000)).toContain('starts no range');
    expect(partitionProblem(partition({ start: 0, end: 100_000, nodeName: 'ghost' }), 1_000)).toContain('status.partitions[start=0].end is 100000, not 100');
    expect(partitionProblem(partition({ start: 100, end: 200, nodeName: 'ghost', launchedThrough: 201 }), 1_000)).toContain('launchedThrough 201 is outside [100, 200]');
    expect(partitionProblem(partition({ start: 100, end: 200, nodeName: 'ghost', launchedThrough: 0 }), 1_000)).toContain('launchedThrough 0');
  });

  it('names index sets that cannot be read, lie outside the range, or share an index', () => {
    expect(partitionProblem(partition({ start: 0, end: 100, nodeName: 'ghost', completedIndexes: '5,3' }), 1_000)).toContain('status.partitions[start=0].completedIndexes cannot be read');
    expect(partitionProblem(partition({ start: 100, end: 200, nodeName: 'ghost', failedIndexes: '99' }), 1_000)).toContain('failedIndexes names indexes outside [100, 200)');
    expect(partitionProblem(partition({ start: 100, end: 200, nodeName: 'ghost', completedIndexes: '150-200' }), 1_000)).toContain('outside');
    expect(partitionProblem(partition({ start: 0, end: 100, nodeName: 'ghost', completedIndexes: '1-10', failedIndexes: '10,20' }), 1_000)).toContain('share an index');
  });

  it('names counts no agent writes: failed attempts with no room below int32 for the array\'s next ones, more active indexes than the range holds', () => {
    // 1,000 indexes may start 101 attempts each at most (backoffLimitPerIndex 100).
    expect(partitionProblem(partition({ start: 0, end: 100, nodeName: 'a', failed: 2_147_483_647 - 101_000 }), 1_000)).toBeUndefined();
    expect(partitionProblem(partition({ start: 0, end: 100, nodeName: 'ghost', failed: 2_147_483_647 - 101_000 + 1 }), 1_000)).toContain('status.partitions[start=0].failed is 2147382648');
    expect(partitionProblem(partition({ start: 0, end: 100, nodeName: 'a', active: 100 }), 1_000)).toBeUndefined();
    expect(partitionProblem(partition({ start: 0, end: 100, nodeName: 'ghost', active: 101 }), 1_000)).toContain('active is 101');
  });
});

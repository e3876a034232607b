// The status objects the agent writes (src/tasks/task-status.ts): each one a whole, consistent
// picture built from the Task and the attempt, with conditions whose lastTransitionTime moves only
// when their status does.
import { readFileSync } from 'node:fs';

import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';

import { taskReasons, type Task, type TaskStatus } from '../../src/api/task.js';
import { StderrTail, type Attempt, type AttemptEnding } from '../../src/tasks/attempts.js';
import { endingReasons, failedWithoutAttemptStatus, finishedStatus, notTakenUpStatus, pendingReasons, runningStatus, waitingToRetryStatus } from '../../src/tasks/task-status.js';
import { parseTimestamp } from '../../src/tasks/time-format.js';

const startedAt = Date.parse('2026-01-02T03:04:05.000Z');

function task(status?: TaskStatus): Task {
  return { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: 'task', namespace: 'ns', uid: 'uid', generation: 7 }, spec: { command: ['work'] }, ...(status ? { status } : {}) };
}

function attempt(fields: Partial<Attempt> = {}): Attempt {
  return { uid: 'uid', number: 1, launchedAt: startedAt - 5, startedAt, runningRecorded: false, stderr: new StderrTail(), ...fields };
}

function ending(fields: Partial<AttemptEnding> = {}): AttemptEnding {
  return { reason: 'Error', message: 'exited with code 2', exitCode: 2, finishedAt: startedAt + 1_500, ...fields };
}

function conditionOf(status: TaskStatus, type: string) {
  return status.conditions?.find((condition) => condition.type === type);
}

describe('runningStatus', () => {
  it('is Running with the attempt number, node, generation and start times of the attempt', () => {
    const status = runningStatus(task(), 'node-a', attempt({ number: 2, timings: { queuedNs: 1.4, spawnNs: 2.6 } }));
    expect(status).toMatchObject({ phase: 'Running', nodeName: 'node-a', attempts: 2, observedGeneration: 7, startTime: '2026-01-02T03:04:05.000000000Z', lastAttemptStartTime: '2026-01-02T03:04:05.000000000Z', spawnTimings: { queuedNanoseconds: 1, spawnNanoseconds: 3 } });
    expect(conditionOf(status, 'Running')).toMatchObject({ status: 'True', reason: 'ProcessRunning', observedGeneration: 7 });
    expect(conditionOf(status, 'Succeeded')).toMatchObject({ status: 'Unknown' });
  });

  it('keeps the first attempt s startTime and the previous attempt s reason and message on a retry', () => {
    const previous: TaskStatus = { phase: 'Pending', attempts: 1, startTime: '2026-01-01T00:00:00.000000000Z', reason: 'Error', message: 'exited with code 2', exitCode: 2 };
    const status = runningStatus(task(previous), 'node', attempt({ number: 2 }));
    expect(status).toMatchObject({ startTime: '2026-01-01T00:00:00.000000000Z', lastAttemptStartTime: '2026-01-02T03:04:05.000000000Z', reason: 'Error', message: 'exited with code 2' });
  });

  it('shows the host ids and the limits the attempt runs under', () => {
    const identity = { hostUid: 200_001, hostGid: 200_001 } as unknown as NonNullable<Attempt['identity']>;
    const status = runningStatus(task(), 'node', attempt({ identity, resources: { limits: { pids: 10 } } }));
    expect(status.hostIdentity).toEqual({ uid: 200_001, gid: 200_001 });
    expect(status.resources).toEqual({ limits: { pids: 10 } });
  });

  it('counts from the launch when the process has no start time yet', () => {
    expect(runningStatus(task(), 'node', attempt({ startedAt: undefined as unknown as number })).lastAttemptStartTime).toBe('2026-01-02T03:04:04.995000000Z');
  });
});

describe('the conditions lastTransitionTime', () => {
  it('stays when a condition keeps its status, and moves when the status changes', () => {
    const running = runningStatus(task(), 'node', attempt());
    const retrying = waitingToRetryStatus(task(running), 'node', attempt(), ending(), startedAt + 11_500);
    // Succeeded stays Unknown: its time stays. Running goes True -> False: its time moves to the ending.
    expect(conditionOf(retrying, 'Succeeded')?.lastTransitionTime).toBe(conditionOf(running, 'Succeeded')?.lastTransitionTime);
    expect(conditionOf(retrying, 'Running')?.lastTransitionTime).toBe('2026-01-02T03:04:06.500000000Z');
  });
});

describe('waitingToRetryStatus', () => {
  it('is Pending with the ending s reason, exit code, stderr tail and the time of the next attempt', () => {
    const stderr = new StderrTail();
    stderr.append('boom\n');
    const status = waitingToRetryStatus(task(), 'node', attempt({ stderr }), ending(), startedAt + 11_500);
    expect(status).toMatchObject({ phase: 'Pending', reason: 'Error', exitCode: 2, stderrTail: 'boom\n', nextRetryTime: '2026-01-02T03:04:16.500000000Z', attempts: 1 });
    expect(conditionOf(status, 'Running')).toMatchObject({ status: 'False', reason: 'Error', message: 'attempt 1 ended; retrying at 2026-01-02T03:04:16.500000000Z' });
    expect(conditionOf(status, 'Succeeded')).toMatchObject({ status: 'Unknown', reason: 'WaitingToRetry' });
    expect(status.completionTime).toBeUndefined();
  });
});

describe('finishedStatus', () => {
  it('is Succeeded for a Completed ending, with completion time and duration, and no stderr tail', () => {
    const stderr = new StderrTail();
    stderr.append('progress\n');
    const status = finishedStatus(task(), 'node', attempt({ stderr }), ending({ reason: 'Completed', message: 'exited with code 0', exitCode: 0 }), false);
    expect(status).toMatchObject({ phase: 'Succeeded', reason: 'Completed', exitCode: 0, completionTime: '2026-01-02T03:04:06.500000000Z', duration: '1.5s' });
    expect(status.stderrTail).toBeUndefined();
    expect(conditionOf(status, 'Succeeded')).toMatchObject({ status: 'True', reason: 'Completed' });
    expect(conditionOf(status, 'Running')).toMatchObject({ status: 'False', message: 'the Task has finished' });
  });

  it('says what the attempt s processes cost in CPU time, from their rusage', () => {
    const status = finishedStatus(task(), 'node', attempt({ usage: { userUs: 1500.4, systemUs: 250, maxRssKb: 4096 } }), ending({ reason: 'Completed', message: 'exited with code 0', exitCode: 0 }), false);
    expect(status.usage).toEqual({ userCpuMicroseconds: 1500, systemCpuMicroseconds: 250 });
  });

  it('says the most memory the attempt s cgroup held beside its CPU time', () => {
    const status = finishedStatus(task(), 'node', attempt({ usage: { userUs: 10, systemUs: 20, maxRssKb: 900_000 }, memoryPeakBytes: 3_145_728 }), ending({ reason: 'Completed', message: 'exited with code 0', exitCode: 0 }), false);
    expect(status.usage).toEqual({ userCpuMicroseconds: 10, systemCpuMicroseconds: 20, memoryPeakBytes: 3_145_728 });
  });

  it('carries the attempt s result, and says when it was cut, on success and on failure alike', () => {
    const succeeded = finishedStatus(task(), 'node', attempt({ result: { text: '{"rows":42}', truncated: false } }), ending({ reason: 'Completed', message: 'exited with code 0', exitCode: 0 }), false);
    expect(succeeded).toMatchObject({ phase: 'Succeeded', result: '{"rows":42}' });
    expect(succeeded.resultTruncated).toBeUndefined();
    const failed = finishedStatus(task(), 'node', attempt({ result: { text: 'partial', truncated: true } }), ending(), false);
    expect(failed).toMatchObject({ phase: 'Failed', result: 'partial', resultTruncated: true });
    const retrying = waitingToRetryStatus(task(), 'node', attempt({ result: { text: 'first try', truncated: false } }), ending(), startedAt + 10_000);
    expect(retrying.result).toBe('first try');
  });

  it('leaves status.result unset for an attempt without a result, and a running attempt drops the previous one s', () => {
    expect(finishedStatus(task(), 'node', attempt(), ending(), false).result).toBeUndefined();
    expect(runningStatus(task({ phase: 'Pending', result: 'old' }), 'node', attempt({ number: 2 })).result).toBeUndefined();
  });

  it('is Failed with the ending s reason, signal and stderr tail', () => {
    const stderr = new StderrTail();
    stderr.append('segfault\n');
    const status = finishedStatus(task(), 'node', attempt({ stderr }), ending({ reason: 'Killed', message: 'killed by SIGSEGV', exitCode: undefined as unknown as number, signal: 'SIGSEGV' }), false);
    expect(status).toMatchObject({ phase: 'Failed', reason: 'Killed', signal: 'SIGSEGV', stderrTail: 'segfault\n' });
    expect(status.exitCode).toBeUndefined();
    expect(conditionOf(status, 'Succeeded')).toMatchObject({ status: 'False', reason: 'Killed', message: 'killed by SIGSEGV' });
  });

  it('says BackoffLimitExceeded, with the last attempt s message, once retries are exhausted', () => {
    const status = finishedStatus(task(), 'node', attempt({ number: 4 }), ending(), true);
    expect(status).toMatchObject({ phase: 'Failed', reason: 'BackoffLimitExceeded', message: 'all 4 attempts failed; the last: exited with code 2', exitCode: 2 });
    expect(conditionOf(status, 'Succeeded')).toMatchObject({ status: 'False', reason: 'BackoffLimitExceeded' });
  });

  it('measures the duration from the first attempt s start across retries', () => {
    const status = finishedStatus(task({ phase: 'Running', startTime: '2026-01-02T03:02:05.000000000Z' }), 'node', attempt({ number: 2 }), ending({ reason: 'Completed', message: 'exited with code 0', exitCode: 0 }), false);
    expect(status.duration).toBe('2m2s');
    expect(parseTimestamp(status.completionTime ?? '')).toBe(startedAt + 1_500);
  });

  it('does not carry a previous attempt s nextRetryTime', () => {
    const previous: TaskStatus = { phase: 'Running', attempts: 1, nextRetryTime: '2026-01-02T03:04:00.000000000Z' };
    expect(finishedStatus(task(previous), 'node', attempt({ number: 2 }), ending(), false).nextRetryTime).toBeUndefined();
  });
});

describe('failedWithoutAttemptStatus', () => {
  it('is Failed with the reason and message, keeping the attempts counted so far', () => {
    const status = failedWithoutAttemptStatus(task({ phase: 'Pending', attempts: 2 }), 'node', 'InvalidSpec', 'spec.args[0] must not contain NUL', startedAt);
    expect(status).toMatchObject({ phase: 'Failed', reason: 'InvalidSpec', message: 'spec.args[0] must not contain NUL', attempts: 2, nodeName: 'node', observedGeneration: 7, completionTime: '2026-01-02T03:04:05.000000000Z' });
    expect(conditionOf(status, 'Running')).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
    expect(conditionOf(status, 'Succeeded')).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
  });

  it('counts no attempts and gives no duration for a Task that never started', () => {
    const status = failedWithoutAttemptStatus(task(), 'node', 'SandboxUnavailable', 'no cgroups', startedAt);
    expect(status.attempts).toBe(0);
    expect(status.duration).toBeUndefined();
  });

  it('gives the duration since the first attempt s start for a Task whose deadline passed between attempts', () => {
    const status = failedWithoutAttemptStatus(task({ phase: 'Pending', attempts: 1, startTime: '2026-01-02T03:03:05.000000000Z' }), 'node', 'DeadlineExceeded', 'late', startedAt);
    expect(status.duration).toBe('1m0s');
  });

  it('drops the nextRetryTime of the retry that will now never start (the CRD: only while the Task waits to retry)', () => {
    const waiting: TaskStatus = { phase: 'Pending', attempts: 1, startTime: '2026-01-02T03:03:05.000000000Z', nextRetryTime: '2026-01-02T03:04:10.000000000Z', reason: 'Error', exitCode: 2 };
    const status = failedWithoutAttemptStatus(task(waiting), 'node', 'DeadlineExceeded', 'late', startedAt);
    expect(status.nextRetryTime).toBeUndefined();
    expect(status).toMatchObject({ phase: 'Failed', reason: 'DeadlineExceeded', attempts: 1 });
  });
});

describe('a Task no agent has taken up', () => {
  it('shows the CRD\'s default status, which stores without an apiserver start their Tasks with', () => {
    interface Crd { spec: { versions: { schema: { openAPIV3Schema: { properties: { status: { default: unknown } } } } }[] } }
    const crd = load(readFileSync(new URL('../../crds/task.yaml', import.meta.url), 'utf8')) as Crd;
    expect(crd.spec.versions[0]?.schema.openAPIV3Schema.properties.status.default).toEqual(notTakenUpStatus);
  });

  it('is Pending with a reason that is never an ending: every reason of the CRD is one or the other', () => {
    expect(notTakenUpStatus.phase).toBe('Pending');
    expect(pendingReasons).toContain(notTakenUpStatus.reason);
    expect([...pendingReasons, ...endingReasons].sort()).toEqual([...taskReasons].sort());
    expect(endingReasons).not.toContain('WaitingForCapacity');
  });

  it('does not carry a waiting reason into its Running status', () => {
    const status = runningStatus(task({ phase: 'Pending', reason: 'WaitingForCapacity', message: 'all slots are taken' }), 'node', attempt());
    expect(status.reason).toBeUndefined();
    expect(status.message).toBeUndefined();
  });
});

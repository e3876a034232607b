// The status objects the agent writes, built from the Task and the attempt: one function per
// situation, each returning the whole status, so a write is always a complete, consistent picture
// (phase, conditions, times, reason) and never a patch of one field.
import { taskReasons, type Task, type TaskCondition, type TaskConditionStatus, type TaskConditionType, type TaskReason, type TaskStatus } from '../api/task.js';
import type { Attempt, AttemptEnding } from './attempts.js';
import { formatDuration, parseTimestamp, preciseTimestamp } from './time-format.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Why a Task is Pending before this node runs it, as a Pod waiting to be scheduled says why.
 * Never how an attempt ended: a Running status does not carry them on, and metrics counts no
 * Task as finished with one.
 */
export const pendingReasons = ['WaitingForAgent', 'WaitingForCapacity', 'Suspended'] as const satisfies readonly TaskReason[];
export type PendingReason = (typeof pendingReasons)[number];

/** The reasons a Task or an attempt ends with. */
export const endingReasons = taskReasons.filter((reason) => !(pendingReasons as readonly string[]).includes(reason));

export function isPendingReason(reason: string | undefined): reason is PendingReason {
  return (pendingReasons as readonly (string | undefined)[]).includes(reason);
}

/**
 * A Task no agent has taken up yet: the status the CRD gives every Task as its default
 * (crds/task.yaml; test/unit/task-status.test.ts holds them equal), written by no one. Stores
 * without an apiserver start their Tasks with it.
 */
export const notTakenUpStatus: TaskStatus = {
  phase: 'Pending',
  reason: 'WaitingForAgent',
  message: 'no agent has taken this Task up yet: an unbound Task waits for an agent whose Node matches spec.nodeSelector (and has room) to claim it, a bound one for the agent of its node',
};

/** Standalone: a Task bound by spec.nodeName to another node than this machine, which never runs it. */
export function boundElsewhereStatus(task: Task, thisNode: string): TaskStatus {
  return { ...notTakenUpStatus, message: `bound to node ${task.spec.nodeName ?? ''} by spec.nodeName; this machine is ${thisNode}, so it is left for that node's agent` };
}

/** A Task bound to this node that waits, before its first attempt, for one of its maxConcurrent slots. */
export function waitingForCapacityStatus(task: Task, nodeName: string, maxConcurrent: number): TaskStatus {
  return pendingStatus(task, 'WaitingForCapacity', `all ${maxConcurrent} slots of node ${nodeName} (its --max-concurrent) are taken; the Task starts when one is free`);
}

/** A Task bound to this node, suspended before its first attempt. */
export function suspendedStatus(task: Task): TaskStatus {
  return pendingStatus(task, 'Suspended', 'spec.suspend is set: the Task starts once it is cleared');
}

function pendingStatus(task: Task, reason: PendingReason, message: string): TaskStatus {
  return { ...task.status, phase: 'Pending', observedGeneration: task.metadata.generation ?? 0, reason, message };
}

/** One condition of the status; shared with array-status.ts. */
export function condition(task: Task, type: TaskConditionType, status: TaskConditionStatus, reason: string, message: string, now: string): TaskCondition {
  const previous = task.status?.conditions?.find((existing) => existing.type === type);
  // lastTransitionTime moves only when the status itself changes.
  const lastTransitionTime = previous?.status === status ? previous.lastTransitionTime : now;
  return { type, status, reason, message, lastTransitionTime, observedGeneration: task.metadata.generation ?? 0 };
}

function base(task: Task, nodeName: string, attempt: Attempt): Mutable<TaskStatus> {
  const startedAt = attempt.startedAt ?? attempt.launchedAt;
  const status: Mutable<TaskStatus> = {
    observedGeneration: task.metadata.generation ?? 0,
    nodeName,
    attempts: attempt.number,
    startTime: task.status?.startTime ?? preciseTimestamp(startedAt),
    lastAttemptStartTime: preciseTimestamp(startedAt),
  };
  if (attempt.identity) status.hostIdentity = { uid: attempt.identity.hostUid, gid: attempt.identity.hostGid };
  if (attempt.resources) status.resources = attempt.resources;
  if (attempt.usage) {
    status.usage = {
      userCpuMicroseconds: Math.round(attempt.usage.userUs),
      systemCpuMicroseconds: Math.round(attempt.usage.systemUs),
      ...(attempt.memoryPeakBytes !== undefined ? { memoryPeakBytes: attempt.memoryPeakBytes } : {}),
    };
  }
  if (attempt.result) {
    status.result = attempt.result.text;
    if (attempt.result.truncated) status.resultTruncated = true;
  }
  if (attempt.timings) {
    status.spawnTimings = { queuedNanoseconds: Math.round(attempt.timings.queuedNs), spawnNanoseconds: Math.round(attempt.timings.spawnNs) };
  }
  return status;
}

export function runningStatus(task: Task, nodeName: string, attempt: Attempt): TaskStatus {
  const now = preciseTimestamp(attempt.startedAt ?? Date.now());
  const status = base(task, nodeName, attempt);
  status.phase = 'Running';
  // While running, reason and exit fields still describe the previous attempt, if any.
  if (task.status?.reason !== undefined && !isPendingReason(task.status.reason)) {
    status.reason = task.status.reason;
    if (task.status.message !== undefined) status.message = task.status.message;
  }
  status.conditions = [
    condition(task, 'Running', 'True', 'ProcessRunning', `attempt ${attempt.number} is running`, now),
    condition(task, 'Succeeded', 'Unknown', 'ProcessRunning', 'the Task has not finished', now),
  ];
  return status;
}

function endingFields(status: Mutable<TaskStatus>, ending: AttemptEnding, stderrTail: string): void {
  status.reason = ending.reason;
  status.message = ending.message;
  if (ending.exitCode !== undefined) status.exitCode = ending.exitCode;
  if (ending.signal !== undefined) status.signal = ending.signal;
  if (stderrTail.length > 0) status.stderrTail = stderrTail;
}

export function waitingToRetryStatus(task: Task, nodeName: string, attempt: Attempt, ending: AttemptEnding, nextRetryAt: number): TaskStatus {
  const now = preciseTimestamp(ending.finishedAt);
  const status = base(task, nodeName, attempt);
  status.phase = 'Pending';
  endingFields(status, ending, attempt.stderr.toString());
  status.nextRetryTime = preciseTimestamp(nextRetryAt);
  status.conditions = [
    condition(task, 'Running', 'False', ending.reason, `attempt ${attempt.number} ended; retrying at ${status.nextRetryTime}`, now),
    condition(task, 'Succeeded', 'Unknown', 'WaitingToRetry', ending.message, now),
  ];
  return status;
}

export function finishedStatus(task: Task, nodeName: string, attempt: Attempt, ending: AttemptEnding, retriesExhausted: boolean): TaskStatus {
  const now = preciseTimestamp(ending.finishedAt);
  const status = base(task, nodeName, attempt);
  const succeeded = ending.reason === 'Completed';
  status.phase = succeeded ? 'Succeeded' : 'Failed';
  endingFields(status, ending, succeeded ? '' : attempt.stderr.toString());
  if (retriesExhausted) {
    status.reason = 'BackoffLimitExceeded';
    status.message = `all ${attempt.number} attempts failed; the last: ${ending.message}`;
  }
  status.completionTime = now;
  status.duration = formatDuration(ending.finishedAt - parseTimestamp(status.startTime ?? now));
  status.conditions = [
    condition(task, 'Running', 'False', status.reason ?? ending.reason, 'the Task has finished', now),
    condition(task, 'Succeeded', succeeded ? 'True' : 'False', status.reason ?? ending.reason, status.message ?? ending.message, now),
  ];
  return status;
}

/** A Task that fails before any process: invalid for this node, or its deadline passed while waiting. */
export function failedWithoutAttemptStatus(task: Task, nodeName: string, reason: AttemptEnding['reason'], message: string, finishedAt: number): TaskStatus {
  const now = preciseTimestamp(finishedAt);
  const startTime = task.status?.startTime;
  // The previous attempt's fields stay; its nextRetryTime goes, as the retry will never start.
  const previous: Mutable<TaskStatus> = { ...task.status };
  delete previous.nextRetryTime;
  return {
    ...previous,
    phase: 'Failed',
    observedGeneration: task.metadata.generation ?? 0,
    nodeName,
    attempts: task.status?.attempts ?? 0,
    reason,
    message,
    completionTime: now,
    ...(startTime !== undefined ? { duration: formatDuration(finishedAt - parseTimestamp(startTime)) } : {}),
    conditions: [
      condition(task, 'Running', 'False', reason, message, now),
      condition(task, 'Succeeded', 'False', reason, message, now),
    ],
  };
}

// The status objects written for a Task array (issue 17), as task-status.ts writes them for a
// single Task: each function returns the whole status, so a write is always a consistent picture.
// The array's own fields come from ArrayProgress.snapshot(); this adds phase, conditions, times and
// the reason, with a Job's Complete/Failed conditions next to every Task's Succeeded and Running.
import type { Task, TaskStatus } from '../api/task.js';
import type { ArrayOutcome, ArrayStatusFields } from './array-progress.js';
import { condition } from './task-status.js';
import { formatDuration, parseTimestamp, preciseTimestamp } from './time-format.js';

/** What the agent knows of the array beyond its progress. */
export interface ArrayRunFacts {
  readonly nodeName: string;
  /** Epoch ms when the first index's process started; undefined while none has. */
  readonly startedAt: number | undefined;
  readonly suspended: boolean;
  /** Epoch ms, for lastTransitionTime and completionTime. */
  readonly now: number;
}

function common(task: Task, fields: ArrayStatusFields, facts: ArrayRunFacts): TaskStatus {
  const startTime = task.status?.startTime ?? (facts.startedAt === undefined ? undefined : preciseTimestamp(facts.startedAt));
  return {
    observedGeneration: task.metadata.generation ?? 0,
    nodeName: facts.nodeName,
    ...(startTime !== undefined ? { startTime } : {}),
    ...fields,
  };
}

/** While the array runs: Running when an index is, Pending when none is (suspended, or retries waiting). */
export function runningArrayStatus(task: Task, fields: ArrayStatusFields, facts: ArrayRunFacts): TaskStatus {
  const now = preciseTimestamp(facts.now);
  const running = fields.active > 0;
  const [runningReason, runningMessage] = running
    ? ['IndexesRunning', `${fields.active} indexes running, ${fields.progress} succeeded`]
    : facts.suspended
      ? ['Suspended', 'spec.suspend is true: no index starts until it is cleared']
      : ['WaitingToRetry', 'no index is running; failed indexes wait for their retry'];
  return {
    ...common(task, fields, facts),
    phase: running ? 'Running' : 'Pending',
    conditions: [
      condition(task, 'Running', running ? 'True' : 'False', runningReason, runningMessage, now),
      condition(task, 'Succeeded', 'Unknown', running ? 'IndexesRunning' : runningReason, `${fields.progress} indexes succeeded`, now),
    ],
  };
}

/** The array ended (every index done, or failed early): its final status, with a Job's Complete or Failed condition. */
export function finishedArrayStatus(task: Task, fields: ArrayStatusFields, facts: ArrayRunFacts, outcome: ArrayOutcome): TaskStatus {
  const now = preciseTimestamp(facts.now);
  const complete = outcome.kind === 'Complete';
  const reason = complete ? 'Completed' : outcome.reason;
  const message = complete ? `all ${fields.succeeded} indexes succeeded` : outcome.message;
  const status = common(task, fields, facts);
  return {
    ...status,
    phase: complete ? 'Succeeded' : 'Failed',
    reason,
    message,
    completionTime: now,
    ...(status.startTime !== undefined ? { duration: formatDuration(facts.now - parseTimestamp(status.startTime)) } : {}),
    conditions: [
      condition(task, 'Running', 'False', reason, 'the Task has finished', now),
      condition(task, 'Succeeded', complete ? 'True' : 'False', reason, message, now),
      condition(task, complete ? 'Complete' : 'Failed', 'True', reason, message, now),
    ],
  };
}

// Which attempt endings may be retried and how long to wait, decided here only. As Jobs do:
// exponential backoff from backoff.initialSeconds (10 s), doubling per failure, capped at
// backoff.maxSeconds (6 min). Endings that another attempt cannot change are never retried.
import type { TaskReason, TaskSpec } from '../api/task.js';

const neverRetried: ReadonlySet<TaskReason> = new Set(['ExecFailed', 'InvalidSpec', 'Forbidden', 'Cancelled', 'DeadlineExceeded', 'Completed']);

export const defaultBackoffInitialSeconds = 10;
export const defaultBackoffMaxSeconds = 360;

/** Whether another attempt could end differently from one that ended with `reason`. */
export function retryableEnding(reason: TaskReason): boolean {
  return !neverRetried.has(reason);
}

/** Whether another attempt may follow one that ended with `reason`, after `attempts` attempts. */
export function mayRetry(spec: TaskSpec, reason: TaskReason, attempts: number): boolean {
  if (!retryableEnding(reason)) return false;
  return attempts <= (spec.backoffLimit ?? 0);
}

/** Seconds to wait before the next attempt, after `failures` failed attempts (>= 1). */
export function retryDelaySeconds(spec: TaskSpec, failures: number): number {
  const initial = spec.backoff?.initialSeconds ?? defaultBackoffInitialSeconds;
  const maximum = spec.backoff?.maxSeconds ?? defaultBackoffMaxSeconds;
  return Math.min(maximum, initial * 2 ** Math.max(0, failures - 1));
}

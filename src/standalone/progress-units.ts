// What one Task counts for in `parafork run`'s progress line: one process, or each index of an
// array (issue 17), so the line counts processes however they are grouped into Tasks.
import type { Task } from '../api/task.js';
import { IndexSet } from '../tasks/index-ranges.js';

/** The processes a Task stands for in the progress line: one, or an array's indexes (issue 17). */
export interface ProgressUnits {
  readonly total: number;
  readonly running: number;
  readonly succeeded: number;
  readonly failed: number;
}

export function progressUnits(task: Task): ProgressUnits {
  const status = task.status;
  const completions = task.spec.completions;
  const finished = status?.phase === 'Succeeded' || status?.phase === 'Failed';
  if (completions === undefined) {
    return { total: 1, running: status?.phase === 'Running' ? 1 : 0, succeeded: status?.phase === 'Succeeded' ? 1 : 0, failed: status?.phase === 'Failed' ? 1 : 0 };
  }
  const succeeded = status?.succeeded ?? 0;
  // An array that ended early leaves indexes that will never run: done, and not succeeded.
  const failed = finished ? completions - succeeded : IndexSet.parse(status?.failedIndexes ?? '', completions).size;
  return { total: completions, running: finished ? 0 : status?.active ?? 0, succeeded, failed };
}

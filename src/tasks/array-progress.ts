// The state of one Task array (spec.completions) on the agent that runs it, and the rules of
// Indexed Jobs applied to it: which index starts next, per-index retries (backoffLimitPerIndex)
// or an array-wide budget of failures (backoffLimit), the budget of failed indexes
// (maxFailedIndexes), when the array is Complete or Failed, and the status fields that say so.
// Pure: no clock, no I/O; the reconciler passes times in and acts on what it returns.
//
// Memory for N indexes: two bytes per index (state and failed attempts, in typed arrays: 200 KB at
// N = 100,000), the index sets (O(runs), index-ranges.ts), retries waiting (at most the indexes
// that failed and wait, bounded by the parallelism), 8 failure records and two fixed-size
// percentile sketches. The status it describes stays under 32 KiB at N = 100,000 as long as the
// completed and failed sets are a few thousand runs (docs/arrays.md; tested).
import type { TaskIndexFailure, TaskIndexTimings, TaskReason, TaskSpec, TaskStatus } from '../api/task.js';
import { IndexRangesError, IndexSet } from './index-ranges.js';
import { PercentileSketch } from './percentile-sketch.js';
import { preciseTimestamp } from './time-format.js';

/** The spec fields that govern an array; read again on every reconcile, as all but completions are mutable. */
export interface ArrayPolicy {
  readonly completions: number;
  /** Retries per index; undefined: backoffLimit is a budget of failed attempts for the whole array. */
  readonly backoffLimitPerIndex: number | undefined;
  readonly backoffLimit: number;
  /** Failed indexes tolerated (with backoffLimitPerIndex); undefined: no limit. */
  readonly maxFailedIndexes: number | undefined;
}

/** The array policy of a spec; undefined for a Task that is not an array. */
export function arrayPolicyOf(spec: TaskSpec): ArrayPolicy | undefined {
  if (spec.completions === undefined) return undefined;
  return {
    completions: spec.completions,
    backoffLimitPerIndex: spec.backoffLimitPerIndex,
    backoffLimit: spec.backoffLimit ?? 0,
    maxFailedIndexes: spec.maxFailedIndexes,
  };
}

/** The largest value of an int32 field of the status (attempts, failed, ...): the apiserver refuses more. */
export const int32Max = 2_147_483_647;
/** Attempts one index may have at most: the first and backoffLimitPerIndex's (or backoffLimit's) 100 retries. */
const attemptsPerIndexMax = 101;

/**
 * Why an array's record of its indexes (status.completedIndexes, failedIndexes and the counts of
 * attempts, or those of one entry of status.partitions, `field`) is not one an agent writes, or
 * undefined when it is: each index set ascending and within `range` of an array of `completions`,
 * no index in both, and room left below int32 for every attempt the array may still start. The
 * agent resumes an array from it (ArrayProgress.resume), and its writers are the agents alone; an
 * author allowed to patch tasks/status could write "5,3", and the agent's read threw at every pass
 * for ever, the Task left Pending without a word; or attempts at int32's largest, and every status
 * write after the next attempt was refused (red team, session 15; task-author-api.test.ts).
 */
export function arrayRecordProblem(record: Pick<TaskStatus, 'completedIndexes' | 'failedIndexes' | 'attempts' | 'failed' | 'active'>, field: string, range: { readonly start: number; readonly end: number }, completions: number): string | undefined {
  const sets: IndexSet[] = [];
  for (const name of ['completedIndexes', 'failedIndexes'] as const) {
    let set: IndexSet;
    try {
      set = IndexSet.parse(record[name] ?? '', completions);
    } catch (error) {
      if (error instanceof IndexRangesError) return `${field}.${name} cannot be read: ${error.message}`;
      throw error;
    }
    let lowest: number | undefined;
    let beyond = 0;
    for (const { start, end } of set.ranges()) {
      lowest ??= start;
      beyond = end;
    }
    if (lowest !== undefined && (lowest < range.start || beyond > range.end)) return `${field}.${name} names indexes outside [${range.start}, ${range.end})`;
    sets.push(set);
  }
  const [completed, failed] = sets as [IndexSet, IndexSet];
  if (completed.overlaps(failed)) return `${field}.completedIndexes and failedIndexes share an index`;
  const countMax = int32Max - attemptsPerIndexMax * completions;
  for (const name of ['attempts', 'failed'] as const) {
    const count = record[name] ?? 0;
    if (count > countMax) return `${field}.${name} is ${count}, more than an array of ${completions} can have started (${countMax}) with room for its next attempts`;
  }
  if ((record.active ?? 0) > range.end - range.start) return `${field}.active is ${record.active ?? 0}, more than the ${range.end - range.start} indexes of [${range.start}, ${range.end})`;
  return undefined;
}

/** How one attempt of one index ended badly. */
export interface IndexFailure {
  readonly reason: TaskReason;
  /** Whether another attempt could end differently (retry-policy.ts decides: not for ExecFailed, InvalidSpec, ...). */
  readonly retryable: boolean;
  readonly message: string;
  readonly exitCode?: number;
  readonly signal?: string;
  readonly stderrTail?: string;
  /** Epoch ms. */
  readonly finishedAt: number;
  /** How long the process ran, when it ran at all. */
  readonly runNanoseconds?: number;
}

/** What became of an index after a failed attempt. */
export type FailureDecision =
  | { readonly kind: 'retry'; readonly at: number }
  | { readonly kind: 'index-failed' }
  | { readonly kind: 'array-failed'; readonly reason: TaskReason };

export type ArrayOutcome =
  | { readonly kind: 'Complete' }
  | { readonly kind: 'Failed'; readonly reason: TaskReason; readonly message: string };

/** The status fields of an array, as written to the Task. */
export type ArrayStatusFields = Required<Pick<TaskStatus, 'progress' | 'active' | 'succeeded' | 'failed' | 'completedIndexes' | 'failedIndexes' | 'attempts'>> &
  Pick<TaskStatus, 'failures' | 'indexTimings'>;

/** Failed attempts kept in status.failures: the first ones, which most often show the cause. */
export const failureRecordLimit = 8;
const recordStderrCodePoints = 512;
const recordStderrBytes = 1024;
const recordMessageCodePoints = 256;
const recordMessageBytes = 512;

/** Each index's state, one byte in a Uint8Array (plain numbers: Node's type stripping has no enums). */
const IndexState = { Pending: 0, Running: 1, WaitingToRetry: 2, Succeeded: 3, Failed: 4 } as const;
type IndexState = (typeof IndexState)[keyof typeof IndexState];

export interface ArrayProgressOptions {
  readonly policy: ArrayPolicy;
  /** The part of the array this agent runs, [start, end); default all of it. */
  readonly range?: { readonly start: number; readonly end: number };
  /** Milliseconds to wait before the retry that follows an index's `failures`-th failed attempt. */
  readonly retryDelayMs: (failures: number) => number;
}

export class ArrayProgress {
  #policy: ArrayPolicy;
  readonly #start: number;
  readonly #end: number;
  readonly #retryDelayMs: (failures: number) => number;
  readonly #state: Uint8Array;
  /** Failed attempts per index (at most backoffLimitPerIndex + 1 <= 101). */
  readonly #failures: Uint8Array;
  readonly #completed = new IndexSet();
  readonly #failedIndexes = new IndexSet();
  /** Retries waiting, sorted by when they are due (ascending). */
  readonly #retries: { index: number; at: number }[] = [];
  readonly #records: TaskIndexFailure[] = [];
  readonly #spawnLatency = new PercentileSketch();
  readonly #runDuration = new PercentileSketch();
  /** Every index below this has been handed out at least once (the launch fence: docs/arrays.md). */
  #nextFresh: number;
  #active = 0;
  #failedAttempts = 0;
  #attemptsStarted = 0;
  #outcome: ArrayOutcome | undefined;

  constructor(options: ArrayProgressOptions) {
    const { policy } = options;
    const start = options.range?.start ?? 0;
    const end = options.range?.end ?? policy.completions;
    if (!Number.isSafeInteger(policy.completions) || policy.completions < 1) throw new RangeError(`completions must be a whole number >= 1, not ${policy.completions}`);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end <= start || end > policy.completions) {
      throw new RangeError(`an array's range is [start, end) within [0, ${policy.completions}), not [${start}, ${end})`);
    }
    this.#policy = policy;
    this.#start = start;
    this.#end = end;
    this.#nextFresh = start;
    this.#retryDelayMs = options.retryDelayMs;
    this.#state = new Uint8Array(end - start);
    this.#failures = new Uint8Array(end - start);
  }

  /**
   * The progress an earlier life of the agent (or another agent) left in the status: completed and
   * failed indexes are kept; every index below `launchedThrough` that is neither was handed to a
   * launcher and its end never recorded, so it is ended as a lost attempt (AgentRestarted) and
   * retried only as the policy allows, as a Task shown Running without a process is. No index is
   * thereby started twice as new; none is forgotten.
   */
  static resume(options: ArrayProgressOptions & { readonly status: TaskStatus | undefined; readonly launchedThrough: number; readonly now: number }): ArrayProgress {
    const progress = new ArrayProgress(options);
    const { status, now } = options;
    const { completions } = options.policy;
    for (const { start, end } of IndexSet.parse(status?.completedIndexes ?? '', completions).ranges()) {
      for (let index = Math.max(start, progress.#start); index < Math.min(end, progress.#end); index++) progress.#markSucceeded(index);
    }
    for (const { start, end } of IndexSet.parse(status?.failedIndexes ?? '', completions).ranges()) {
      for (let index = Math.max(start, progress.#start); index < Math.min(end, progress.#end); index++) progress.#markFailedIndex(index);
    }
    progress.#failedAttempts = status?.failed ?? 0;
    progress.#attemptsStarted = status?.attempts ?? 0;
    for (const record of status?.failures ?? []) if (progress.#records.length < failureRecordLimit) progress.#records.push(record);
    const launchedThrough = Math.min(Math.max(options.launchedThrough, progress.#start), progress.#end);
    progress.#nextFresh = launchedThrough;
    for (let index = progress.#start; index < launchedThrough; index++) {
      if (progress.#stateOf(index) !== IndexState.Pending) continue;
      progress.#setState(index, IndexState.Running);
      progress.#active++;
      progress.failed(index, { reason: 'AgentRestarted', retryable: true, message: 'the agent running this index was lost before it recorded how the index ended', finishedAt: now });
    }
    return progress;
  }

  /** Takes a new policy (backoffLimitPerIndex, maxFailedIndexes, backoffLimit may change); the array fails at once if it is over a lowered budget. */
  setPolicy(policy: ArrayPolicy): void {
    if (policy.completions !== this.#policy.completions) throw new RangeError('completions cannot change');
    this.#policy = policy;
    this.#checkBudgets();
  }

  get outcome(): ArrayOutcome | undefined {
    return this.#outcome;
  }

  /** The outcome is known and no index is running any more: time for the final status. */
  get settled(): boolean {
    return this.#outcome !== undefined && this.#active === 0;
  }

  get active(): number {
    return this.#active;
  }

  get succeededCount(): number {
    return this.#completed.size;
  }

  get failedIndexCount(): number {
    return this.#failedIndexes.size;
  }

  /** Every index below this one (within the range) has been handed out at least once. */
  get launchedThrough(): number {
    return this.#nextFresh;
  }

  /** When the earliest waiting retry is due (epoch ms); undefined when none waits. */
  get nextRetryAt(): number | undefined {
    return this.#retries[0]?.at;
  }

  /**
   * The next index to start at `now`, marked running: a retry that is due first (failures show
   * early), else the lowest index never started. undefined when the array has an outcome or
   * nothing can start now (see nextRetryAt). The caller applies parallelism and suspend.
   * `freshBelow`: no index at or above it starts for the first time (a launch fence not yet
   * recorded, array-partitions.ts); retries are below the fence already.
   */
  startNext(now: number, freshBelow = this.#end): { readonly index: number; readonly attempt: number } | undefined {
    if (this.#outcome !== undefined) return undefined;
    let index: number | undefined;
    const due = this.#retries[0];
    if (due !== undefined && due.at <= now) {
      this.#retries.shift();
      index = due.index;
    } else if (this.#nextFresh < Math.min(this.#end, freshBelow)) {
      index = this.#nextFresh++;
    }
    if (index === undefined) return undefined;
    this.#setState(index, IndexState.Running);
    this.#active++;
    this.#attemptsStarted++;
    return { index, attempt: (this.#failures[index - this.#start] ?? 0) + 1 };
  }

  /** The index's process is running; `spawnLatencyNanoseconds` from the decision to start it until its exec. */
  started(index: number, spawnLatencyNanoseconds: number): void {
    this.#expectRunning(index);
    this.#spawnLatency.add(spawnLatencyNanoseconds);
  }

  succeeded(index: number, runNanoseconds: number): void {
    this.#expectRunning(index);
    this.#active--;
    this.#runDuration.add(runNanoseconds);
    this.#markSucceeded(index);
    this.#checkDone();
  }

  /** An attempt of `index` failed: retry it, give the index up, or fail the whole array. */
  failed(index: number, failure: IndexFailure): FailureDecision {
    this.#expectRunning(index);
    this.#active--;
    if (this.#outcome !== undefined) {
      // The array has ended and this index was being stopped (or ended meanwhile): its end is not
      // a failure of its own, so it is neither counted nor recorded, and nothing starts again.
      this.#setState(index, IndexState.Pending);
      return { kind: 'array-failed', reason: this.#outcome.kind === 'Failed' ? this.#outcome.reason : failure.reason };
    }
    if (failure.runNanoseconds !== undefined) this.#runDuration.add(failure.runNanoseconds);
    const offset = index - this.#start;
    const failures = (this.#failures[offset] ?? 0) + 1;
    this.#failures[offset] = Math.min(255, failures);
    this.#failedAttempts++;
    this.#record(index, failures, failure);

    const { backoffLimitPerIndex, backoffLimit } = this.#policy;
    const retriesLeft = backoffLimitPerIndex === undefined ? this.#failedAttempts <= backoffLimit : failures <= backoffLimitPerIndex;
    if (backoffLimitPerIndex === undefined) {
      // A Job without backoffLimitPerIndex: one budget of failures for all indexes.
      if (!failure.retryable || !retriesLeft) {
        const reason: TaskReason = failure.retryable || backoffLimit > 0 ? 'BackoffLimitExceeded' : failure.reason;
        this.#setState(index, IndexState.Pending);
        this.#fail(reason, `index ${index} failed (${failure.message}); ${this.#failedAttempts} failed attempt(s) across the array, backoffLimit ${backoffLimit}`);
        return { kind: 'array-failed', reason };
      }
      return this.#scheduleRetry(index, failures, failure.finishedAt);
    }
    if (failure.retryable && retriesLeft) return this.#scheduleRetry(index, failures, failure.finishedAt);
    this.#markFailedIndex(index);
    if (this.#checkBudgets()) return { kind: 'array-failed', reason: 'MaxFailedIndexesExceeded' };
    this.#checkDone();
    return { kind: 'index-failed' };
  }

  /** Ends the array from outside (activeDeadlineSeconds passed): no index starts any more. */
  end(reason: TaskReason, message: string): void {
    this.#fail(reason, message);
    this.#retries.length = 0;
  }

  /** The array's status fields now. */
  snapshot(): ArrayStatusFields {
    const fields: ArrayStatusFields = {
      progress: `${this.#completed.size}/${this.#policy.completions}`,
      active: this.#active,
      succeeded: this.#completed.size,
      failed: this.#failedAttempts,
      completedIndexes: this.#completed.toString(),
      failedIndexes: this.#failedIndexes.toString(),
      attempts: this.#attemptsStarted,
      ...(this.#records.length > 0 ? { failures: [...this.#records] } : {}),
    };
    const timings = this.#timings();
    return timings === undefined ? fields : { ...fields, indexTimings: timings };
  }

  #timings(): TaskIndexTimings | undefined {
    if (this.#spawnLatency.count === 0) return undefined;
    const percentiles = (sketch: PercentileSketch) => ({
      p50Nanoseconds: Math.round(sketch.quantile(0.5) ?? 0),
      p90Nanoseconds: Math.round(sketch.quantile(0.9) ?? 0),
      p99Nanoseconds: Math.round(sketch.quantile(0.99) ?? 0),
      maxNanoseconds: Math.round(sketch.max),
    });
    return {
      attempts: this.#spawnLatency.count,
      spawnLatency: percentiles(this.#spawnLatency),
      ...(this.#runDuration.count > 0 ? { runDuration: percentiles(this.#runDuration) } : {}),
    };
  }

  #scheduleRetry(index: number, failures: number, finishedAt: number): FailureDecision {
    const at = finishedAt + this.#retryDelayMs(failures);
    this.#setState(index, IndexState.WaitingToRetry);
    // Sorted insert: retries waiting are few (at most what was running), and mostly due in order.
    let position = this.#retries.length;
    while (position > 0 && (this.#retries[position - 1]?.at ?? 0) > at) position--;
    this.#retries.splice(position, 0, { index, at });
    return { kind: 'retry', at };
  }

  /** Fails the array if more indexes failed than maxFailedIndexes allows; true when it did. */
  #checkBudgets(): boolean {
    const { maxFailedIndexes } = this.#policy;
    if (this.#outcome !== undefined || maxFailedIndexes === undefined || this.#failedIndexes.size <= maxFailedIndexes) return false;
    this.#fail('MaxFailedIndexesExceeded', `${this.#failedIndexes.size} indexes failed, more than maxFailedIndexes ${maxFailedIndexes}`);
    return true;
  }

  #checkDone(): void {
    if (this.#outcome !== undefined) return;
    const size = this.#end - this.#start;
    if (this.#completed.size === size) {
      this.#outcome = { kind: 'Complete' };
    } else if (this.#completed.size + this.#failedIndexes.size === size) {
      this.#outcome = { kind: 'Failed', reason: 'FailedIndexes', message: `${this.#failedIndexes.size} of ${size} indexes failed: ${abbreviate(this.#failedIndexes.toString())}` };
    }
  }

  #fail(reason: TaskReason, message: string): void {
    if (this.#outcome !== undefined) return;
    this.#outcome = { kind: 'Failed', reason, message };
    // Retries waiting will never start; their indexes stay neither completed nor failed, as a Job's.
    for (const retry of this.#retries) this.#setState(retry.index, IndexState.Pending);
    this.#retries.length = 0;
  }

  #record(index: number, attempt: number, failure: IndexFailure): void {
    if (this.#records.length >= failureRecordLimit) return;
    const stderrTail = failure.stderrTail === undefined ? '' : tailWithin(failure.stderrTail, recordStderrCodePoints, recordStderrBytes);
    this.#records.push({
      index,
      attempt,
      reason: failure.reason,
      ...(failure.exitCode !== undefined ? { exitCode: failure.exitCode } : {}),
      ...(failure.signal !== undefined ? { signal: failure.signal } : {}),
      message: headWithin(failure.message, recordMessageCodePoints, recordMessageBytes),
      ...(stderrTail !== '' ? { stderrTail } : {}),
      finishedTime: preciseTimestamp(failure.finishedAt),
    });
  }

  #markSucceeded(index: number): void {
    this.#setState(index, IndexState.Succeeded);
    this.#completed.add(index);
  }

  #markFailedIndex(index: number): void {
    this.#setState(index, IndexState.Failed);
    this.#failedIndexes.add(index);
  }

  #stateOf(index: number): IndexState {
    return (this.#state[index - this.#start] ?? IndexState.Pending) as IndexState;
  }

  #setState(index: number, state: IndexState): void {
    this.#state[index - this.#start] = state;
  }

  #expectRunning(index: number): void {
    if (index < this.#start || index >= this.#end || this.#stateOf(index) !== IndexState.Running) {
      throw new RangeError(`index ${index} is not running in this array's range [${this.#start}, ${this.#end})`);
    }
  }
}

/** The last `codePoints` code points of `text`, shortened further from the front until it fits `bytes` of UTF-8. */
export function tailWithin(text: string, codePoints: number, bytes: number): string {
  let points = Array.from(text).slice(-codePoints);
  while (Buffer.byteLength(points.join('')) > bytes) points = points.slice(Math.max(1, Math.ceil((Buffer.byteLength(points.join('')) - bytes) / 4)));
  return points.join('');
}

/** The first `codePoints` code points of `text`, shortened further at the end until it fits `bytes` of UTF-8. */
export function headWithin(text: string, codePoints: number, bytes: number): string {
  let points = Array.from(text).slice(0, codePoints);
  while (Buffer.byteLength(points.join('')) > bytes) points = points.slice(0, points.length - Math.max(1, Math.ceil((Buffer.byteLength(points.join('')) - bytes) / 4)));
  return points.join('');
}

function abbreviate(text: string): string {
  return text.length <= 200 ? text : `${text.slice(0, 197)}...`;
}

// One Task array (spec.completions) being run by this agent: its progress (array-progress.ts), the
// processes of its running indexes, their kills, and its paced status writes (status-write-pacer.ts).
// The reconciler owns one ArrayRun per array key and calls reconcile() on each pass; index starts
// and ends only fill in the progress and ask for a pass, as single attempts do (task-reconciler.ts).
//
// What one pass does, in order: take the spec's mutable policy; end the array if its deadline
// passed; stop running indexes if the array has failed; start indexes while the array's
// parallelism, the node's free slots and suspend allow; then write the status if the pacer says
// it is due (the final status at once, when the outcome is known and nothing runs any more).
// Running-status writes are not awaited: starting indexes goes on while a write is in flight.
import { availableParallelism } from 'node:os';

import type { Logger } from 'pino';

import type { Task, TaskReason, TaskStatus } from '../api/task.js';
import type { AttemptEnding, KillCause } from './attempts.js';
import { ArrayProgress, arrayPolicyOf, type ArrayPolicy } from './array-progress.js';
import { finishedArrayStatus, runningArrayStatus, type ArrayRunFacts } from './array-status.js';
import { IndexSet } from './index-ranges.js';
import { StatusWritePacer, type StatusWritePacing } from './status-write-pacer.js';
import { parseTimestamp } from './time-format.js';

/** A running index's process, as the array needs it: killed with the cause its ending will carry. */
export interface IndexProcess {
  kill(cause: KillCause, signal: 'SIGTERM' | 'SIGKILL'): void;
}

/** What the launch of one index's attempt reports; each at most once, running before ended. */
export interface IndexCallbacks {
  /** The process has exec'd; `spawnLatencyNanoseconds` from the decision to start it. */
  running(process: IndexProcess, spawnLatencyNanoseconds: number): void;
  /** The attempt ended (or never started); `runNanoseconds` when its process ran. */
  ended(ending: AttemptEnding, stderrTail: string, runNanoseconds: number | undefined): void;
}

/** Starts one index's attempt (sandbox, cgroup, ids, launch): the reconciler's, or a test's. */
export interface IndexLauncher {
  launch(task: Task, index: number, attempt: number, callbacks: IndexCallbacks): void;
}

/** Where the launch fence is kept so a restarted agent knows which indexes were handed out (launch-journal.ts). */
export interface LaunchFence {
  /** The fence recorded for this Task uid; undefined if none. */
  read(uid: string): number | undefined;
  /** Records that indexes below `through` may have been launched; called before launching them. */
  record(uid: string, through: number): void;
}

export interface ArrayRunOptions {
  readonly nodeName: string;
  readonly writeStatus: (task: Task, status: TaskStatus) => Promise<void>;
  /** The final status was written (for the Task's event and the outcome metrics). */
  readonly finished?: (task: Task, status: TaskStatus) => void;
  /** Adds the process finalizer before the first Running write (a Task shown Running is delete-protected). */
  readonly addFinalizer: (task: Task) => Promise<void>;
  readonly launcher: IndexLauncher;
  /** Asks for a reconcile of this array. */
  readonly requeue: () => void;
  readonly terminationGraceMs: number;
  /** Whether another attempt could end differently (retry-policy.ts). */
  readonly retryable: (reason: TaskReason) => boolean;
  /** Milliseconds before the retry that follows an index's `failures`-th failed attempt (retry-policy.ts). */
  readonly retryDelayMs: (task: Task, failures: number) => number;
  readonly fence?: LaunchFence;
  readonly pacing?: StatusWritePacing;
  /** Most indexes handed to the launcher and not yet running; default defaultMaxSpawning. */
  readonly maxSpawning?: number;
  readonly logger: Logger;
  /** Epoch ms; a test's clock. */
  readonly clock?: () => number;
}

/** What one pass tells the reconciler. */
export interface ArrayPassResult {
  /** When to look again without an event (a retry, the deadline, a kill's grace, the next status write). */
  readonly requeueAfterMs: number | undefined;
  /** The final status was written: the array needs nothing more of this agent but its finalizer's removal. */
  readonly finished: boolean;
}

interface RunningIndex {
  process?: IndexProcess;
  killCause?: KillCause;
  terminatingSince?: number;
}


/**
 * Indexes handed to the launcher at once and not yet running: 8 per spawn thread of the
 * launcher's default pool (one per CPU, at least 2: launcher.ts). The spawn threads set the pace;
 * more in its queue only wait there, which shows as spawn latency (queue length / rate, by
 * Little's law) and holds a cgroup and ids for each, and keeps their objects alive across young
 * collections, which promotes them (agent RSS). Each start asks for a pass, which hands over the
 * next, so 8 a thread keep the threads busy while the JS thread comes round. Measured at load
 * ~35 on 2 CPUs (docs/benchmarks.md, Task arrays): 16 instead of 64 cut the p99 spawn latency
 * of a 20,000-index array from 349 to 99 ms at the same rate.
 */
export const defaultMaxSpawning = 8 * Math.max(2, availableParallelism());

export class ArrayRun {
  readonly #options: ArrayRunOptions;
  readonly #uid: string;
  readonly #progress: ArrayProgress;
  readonly #pacer: StatusWritePacer;
  readonly #running = new Map<number, RunningIndex>();
  /** Of #running, those handed to the launcher and not yet running (kept, not counted: a pass would walk every running index). */
  #spawning = 0;
  readonly #clock: () => number;
  #latestTask: Task;
  #startedAt: number | undefined;
  #fenceRecorded: number;
  /** addFinalizer is idempotent (it looks first); called once per run, before the first Running write. */
  #finalizerAdded = false;
  #finalWritten = false;
  /** spec.suspend as the last pass saw it: a change is news for the status (Running's reason Suspended). */
  #suspended: boolean | undefined;

  constructor(task: Task, options: ArrayRunOptions) {
    const policy = arrayPolicyOf(task.spec);
    if (policy === undefined) throw new TypeError('an ArrayRun needs a Task with spec.completions');
    this.#options = options;
    this.#clock = options.clock ?? (() => performance.timeOrigin + performance.now());
    this.#uid = task.metadata.uid ?? '';
    this.#latestTask = task;
    const now = this.#clock();
    const retryDelayMs = (failures: number): number => options.retryDelayMs(this.#latestTask, failures);
    const recordedFence = options.fence?.read(this.#uid);
    const startTime = task.status?.startTime;
    this.#startedAt = startTime === undefined ? undefined : parseTimestamp(startTime);
    this.#progress = task.status?.completedIndexes !== undefined || recordedFence !== undefined
      ? ArrayProgress.resume({ policy, retryDelayMs, status: task.status, launchedThrough: Math.max(recordedFence ?? 0, highestRecorded(task.status, policy) + 1), now })
      : new ArrayProgress({ policy, retryDelayMs });
    this.#fenceRecorded = this.#progress.launchedThrough;
    this.#pacer = new StatusWritePacer(now, options.pacing);
    if (this.#progress.failedIndexCount + this.#progress.succeededCount > 0 || this.#progress.outcome !== undefined) this.#pacer.changed();
  }

  get uid(): string {
    return this.#uid;
  }

  /** Indexes whose process is running or being spawned. */
  get active(): number {
    return this.#running.size;
  }

  /** One reconcile pass; `freeSlots`: how many more processes the node may start now. */
  async reconcile(task: Task, context: { readonly freeSlots: number; readonly draining: boolean }): Promise<ArrayPassResult> {
    this.#latestTask = task;
    const now = this.#clock();
    const policy = arrayPolicyOf(task.spec) as ArrayPolicy;
    this.#progress.setPolicy(policy);
    const suspended = task.spec.suspend === true;
    if (suspended !== this.#suspended) {
      if (suspended || this.#suspended !== undefined) this.#pacer.changed({ urgent: true });
      this.#suspended = suspended;
    }

    const deadline = this.#deadline(task);
    if (deadline !== undefined && now >= deadline && this.#progress.outcome === undefined) {
      this.#progress.end('DeadlineExceeded', `activeDeadlineSeconds (${task.spec.activeDeadlineSeconds}) passed with ${this.#progress.succeededCount} of ${policy.completions} indexes succeeded`);
      this.#pacer.changed();
    }
    let killWaitMs: number | undefined;
    const outcome = this.#progress.outcome;
    if (outcome?.kind === 'Failed' && this.#running.size > 0) {
      killWaitMs = this.stopAll(outcome.reason === 'DeadlineExceeded' ? 'DeadlineExceeded' : 'Cancelled');
    } else if (task.spec.suspend !== true && !context.draining) {
      this.#startIndexes(task, Math.min(context.freeSlots, (task.spec.parallelism ?? Number.MAX_SAFE_INTEGER) - this.#running.size), now);
    }

    if (this.#progress.settled) {
      if (!this.#finalWritten) await this.#writeFinal(task, now);
      return { requeueAfterMs: undefined, finished: true };
    }
    const writeDue = this.#pacer.dueAt();
    if (writeDue !== undefined && writeDue <= now) this.#writeRunning(task, now);
    const wakeAt = earliest(earliest(this.#pacer.dueAt(), this.#progress.nextRetryAt), deadline);
    return { requeueAfterMs: earliest(killWaitMs, wakeAt === undefined ? undefined : Math.max(1, Math.ceil(wakeAt - now))), finished: false };
  }

  /**
   * Stops every running index (SIGTERM, SIGKILL after the grace period): the array was deleted,
   * failed, or the agent shuts down. Returns how long until the next escalation is due, or
   * undefined when nothing runs.
   */
  stopAll(cause: KillCause): number | undefined {
    const now = this.#clock();
    let waitMs: number | undefined;
    for (const running of this.#running.values()) {
      running.killCause ??= cause;
      if (running.process === undefined) continue; // spawning: killed as soon as it runs
      if (running.terminatingSince === undefined) {
        running.terminatingSince = now;
        running.process.kill(running.killCause, 'SIGTERM');
      } else if (now - running.terminatingSince >= this.#options.terminationGraceMs) {
        running.process.kill(running.killCause, 'SIGKILL');
      }
      const left = running.terminatingSince + this.#options.terminationGraceMs - now;
      waitMs = Math.min(waitMs ?? Infinity, left > 0 ? left : 1_000);
    }
    return waitMs === undefined ? undefined : Math.max(1, Math.ceil(waitMs));
  }

  /** Kills every running index at once (the Task is gone). */
  killNow(): void {
    for (const running of this.#running.values()) {
      running.killCause ??= 'Deleted';
      running.process?.kill(running.killCause, 'SIGKILL');
    }
  }

  #startIndexes(task: Task, freeSlots: number, now: number): void {
    const slots = Math.min(freeSlots, (this.#options.maxSpawning ?? defaultMaxSpawning) - this.#spawning);
    for (let started = 0; started < slots; started++) {
      const next = this.#progress.startNext(now);
      if (next === undefined) return;
      if (next.index >= this.#fenceRecorded) {
        // Recorded before the launch: a restarted agent never takes an index below it for new.
        // It moves a chunk on (maxSpawning, at least what this pass may still start), as a shared
        // array's fence does (shared-array-run.ts): most passes start one index (each start and
        // end asks for one), and one journal write(2) per index cost its JS thread ~10 us. An index
        // counted as launched that was not is at most one chunk's, ended as AgentRestarted.
        const chunk = Math.max(slots - started, this.#options.maxSpawning ?? defaultMaxSpawning);
        this.#fenceRecorded = Math.min(next.index + chunk, task.spec.completions ?? next.index + 1);
        try {
          this.#options.fence?.record(this.#uid, this.#fenceRecorded);
        } catch (error) {
          this.#options.logger.warn({ task: task.metadata.name, err: (error as Error).message }, 'could not record the launch fence; a crash now could run some indexes again');
        }
      }
      this.#launch(task, next.index, next.attempt);
    }
  }

  #launch(task: Task, index: number, attempt: number): void {
    const running: RunningIndex = {};
    this.#running.set(index, running);
    this.#spawning++;
    let ended = false;
    this.#options.launcher.launch(task, index, attempt, {
      running: (process, spawnLatencyNanoseconds) => {
        if (ended) return;
        running.process = process;
        this.#spawning--;
        this.#startedAt ??= this.#clock();
        this.#progress.started(index, spawnLatencyNanoseconds);
        this.#pacer.changed();
        if (running.killCause !== undefined) {
          running.terminatingSince = this.#clock();
          process.kill(running.killCause, 'SIGTERM');
        }
        // A pass arms what this start brings: the deadline's timer, the next status write, a kill's escalation.
        this.#options.requeue();
      },
      ended: (ending, stderrTail, runNanoseconds) => {
        if (ended) return;
        ended = true;
        this.#running.delete(index);
        if (running.process === undefined) this.#spawning--; // it never ran
        recordIndexEnding(this.#progress, index, { ending, stderrTail, runNanoseconds, retryable: this.#options.retryable });
        this.#pacer.changed();
        if (this.#progress.settled) this.#pacer.finished();
        this.#options.requeue();
      },
    });
  }

  #facts(task: Task, now: number): ArrayRunFacts {
    return { nodeName: this.#options.nodeName, startedAt: this.#startedAt, suspended: task.spec.suspend === true, now };
  }

  #writeRunning(task: Task, now: number): void {
    const status = runningArrayStatus(task, this.#progress.snapshot(), this.#facts(task, now));
    this.#pacer.writeStarted(now);
    const write = async (): Promise<void> => {
      if (!this.#finalizerAdded) {
        await this.#options.addFinalizer(task);
        this.#finalizerAdded = true;
      }
      await this.#options.writeStatus(task, status);
    };
    write().then(
      () => {
        this.#pacer.writeFinished(true);
        // A change made while the write was on its way (an index ended, suspend set) was due at no
        // time then: a pass now arms its write, or the status could stay old for good (the last
        // running index of a suspended array ending during the write asks for no other pass).
        if (this.#pacer.dueAt() !== undefined) this.#options.requeue();
      },
      (error: unknown) => {
        this.#pacer.writeFinished(false);
        this.#options.logger.warn({ task: task.metadata.name, err: (error as Error).message }, 'array status write failed; it is tried again');
        this.#options.requeue();
      },
    );
  }

  async #writeFinal(task: Task, now: number): Promise<void> {
    const outcome = this.#progress.outcome;
    if (outcome === undefined) return;
    const status = finishedArrayStatus(task, this.#progress.snapshot(), this.#facts(task, now), outcome);
    await this.#options.writeStatus(task, status);
    this.#finalWritten = true;
    this.#options.finished?.(task, status);
    this.#options.logger.info({ task: task.metadata.name, phase: status.phase, reason: status.reason, progress: status.progress }, outcome.kind === 'Complete' ? 'array complete' : 'array failed');
  }

  /** activeDeadlineSeconds from the first index's start, as for a single Task. */
  #deadline(task: Task): number | undefined {
    const seconds = task.spec.activeDeadlineSeconds;
    if (seconds === undefined || this.#startedAt === undefined) return undefined;
    return this.#startedAt + seconds * 1000;
  }
}

/** Records how an attempt of `index` ended in the array's progress: succeeded, or a failure with its details. */
export function recordIndexEnding(
  progress: ArrayProgress,
  index: number,
  attempt: { readonly ending: AttemptEnding; readonly stderrTail: string; readonly runNanoseconds: number | undefined; readonly retryable: (reason: TaskReason) => boolean },
): void {
  const { ending, stderrTail, runNanoseconds } = attempt;
  if (ending.reason === 'Completed') {
    progress.succeeded(index, runNanoseconds ?? 0);
    return;
  }
  progress.failed(index, {
    reason: ending.reason,
    retryable: attempt.retryable(ending.reason),
    message: ending.message,
    finishedAt: ending.finishedAt,
    ...(ending.exitCode !== undefined ? { exitCode: ending.exitCode } : {}),
    ...(ending.signal !== undefined ? { signal: ending.signal } : {}),
    ...(stderrTail !== '' ? { stderrTail } : {}),
    ...(runNanoseconds !== undefined ? { runNanoseconds } : {}),
  });
}

/** The highest index the status names as completed or failed; -1 when none. */
function highestRecorded(status: TaskStatus | undefined, policy: ArrayPolicy): number {
  let highest = -1;
  for (const text of [status?.completedIndexes, status?.failedIndexes]) {
    for (const range of IndexSet.parse(text ?? '', policy.completions).ranges()) highest = Math.max(highest, range.end - 1);
  }
  return highest;
}

/** The earlier of two times, either of which may be unset (twice a pass: without the arrays a list of them cost each pass). */
function earliest(first: number | undefined, second: number | undefined): number | undefined {
  if (first === undefined) return second;
  return second === undefined || first <= second ? first : second;
}

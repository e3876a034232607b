// One Task array shared by several agents (spec.indexPlacement AcrossNodes), as this agent takes
// part in it: the ranges it holds (each with its own ArrayProgress), their processes, the writes
// of its own status.partitions entries, and, when it is the coordinator, the array's merged status.
// The protocol and the argument that no index is launched twice are docs/arrays.md; the decisions
// are the pure functions of array-partitions.ts, and this file does their I/O.
//
// What one pass does, in order: stop everything if its own writes have failed for so long that
// its lease may be judged expired (self-fence); claim or take over one range when it has room; move a range's
// launch fence ahead and wait for the apiserver to accept it before launching past the old one;
// start indexes; write its entries (paced, with a heartbeat that renews its lease); write the
// merged status if it is the coordinator.
//
// A range is given up only when the apiserver says another agent owns its nodeName now (the 409
// of this agent's next write, decideOnConflicts), never from the informer's cache: the cache may
// still show the entry as it was before this agent's own takeover. And an entry whose nodeName
// this agent owns is never left out of a write: the apiserver would remove this agent's fields
// of it and keep the ones a previous holder co-owns, an entry without nodeName, which the schema
// refuses; every later write of the Task would then fail (seen on a real apiserver).
//
// Not here (docs/arrays.md, "What is not built"): the process finalizer (a deleted shared array's
// indexes are SIGKILLed as each agent's watch sees the deletion), activeDeadlineSeconds, and the
// failure records and timings of other agents' ranges in the merged status.
import type { Logger } from 'pino';

import type { Task, TaskIndexPartition, TaskReason, TaskStatus } from '../api/task.js';
import type { ApplyOutcome } from '../store/task-store.js';
import { type IndexCallbacks, type IndexLauncher, type IndexProcess, defaultMaxSpawning, recordIndexEnding } from './array-run.js';
import { ArrayProgress, arrayPolicyOf, type ArrayPolicy, type ArrayStatusFields } from './array-progress.js';
import {
  coordinatorFieldManager, coordinatorOf, decideOnConflicts, defaultLeaseDurationMs, defaultRenewIntervalMs, fieldManagerFor, forgedPartitionProblem, leaseSafetyMs, LeaseObserver,
  mergePartitions, type MergedPartitions, nextFence, nextPartitionAction, partitionProblem, selfFenceDue,
} from './array-partitions.js';
import { finishedArrayStatus, runningArrayStatus, type ArrayRunFacts } from './array-status.js';
import type { AttemptEnding } from './attempts.js';
import { StatusWritePacer } from './status-write-pacer.js';
import { preciseTimestamp } from './time-format.js';

export interface SharedArrayLease {
  /** An entry not renewed for this long may be taken over. Default defaultLeaseDurationMs. */
  readonly durationMs?: number;
  /** Entries are written at least this often. Default defaultRenewIntervalMs. */
  readonly renewIntervalMs?: number;
  /** A holder stops this long before its lease could be judged expired. Default leaseSafetyMs. */
  readonly safetyMs?: number;
}

export interface SharedArrayRunOptions {
  readonly nodeName: string;
  /**
   * Server-side apply of status fields under a field manager; false on 409 Conflict. With
   * `resourceVersion`, only if the Task is still at that version (also 409 otherwise).
   */
  readonly applyStatus: (task: Task, status: TaskStatus, fieldManager: string, force: boolean, resourceVersion?: string) => Promise<ApplyOutcome>;
  readonly launcher: IndexLauncher;
  readonly requeue: () => void;
  readonly retryable: (reason: TaskReason) => boolean;
  readonly retryDelayMs: (task: Task, failures: number) => number;
  /** The merged final status was written by this agent (for the Task's event and the outcome metrics). */
  readonly finished?: (task: Task, status: TaskStatus) => void;
  readonly lease?: SharedArrayLease;
  /** Fresh indexes a fence write lets a range launch; default defaultMaxSpawning. */
  readonly fenceChunk?: number;
  readonly maxSpawning?: number;
  readonly logger: Logger;
  /** Epoch ms; a test's clock. Leases are judged on it too, so it should not step (performance-based by default). */
  readonly clock?: () => number;
}

interface RunningIndex {
  process?: IndexProcess;
  killed?: boolean;
}

/** One range this agent holds. */
interface Holding {
  readonly start: number;
  readonly end: number;
  readonly progress: ArrayProgress;
  /** The launch fence the apiserver has accepted: fresh indexes start only below it. */
  fenceRecorded: number;
  /** The fence the next entry write records (>= fenceRecorded). */
  fenceWanted: number;
  readonly running: Map<number, RunningIndex>;
  /**
   * Stopped by the self-fence: nothing launches, and its entry is sent as last sent (never
   * renewed) until it expires and is taken over, by another agent or by this one. Not dropped:
   * an entry an apply leaves out is deleted, and with it the range's record of completed indexes.
   */
  fenced: boolean;
  /** The entry as last sent to the apiserver. */
  lastSent: TaskIndexPartition | undefined;
  /** The node this agent took the range over from; undefined when it claimed it. */
  readonly takenFrom: string | undefined;
}

export interface SharedArrayPassResult {
  readonly requeueAfterMs: number | undefined;
  /** The array has its final status: nothing more to do here. */
  readonly finished: boolean;
}

export class SharedArrayRun {
  readonly #options: SharedArrayRunOptions;
  readonly #uid: string;
  readonly #clock: () => number;
  readonly #leaseMs: number;
  readonly #renewMs: number;
  readonly #safetyMs: number;
  readonly #observer = new LeaseObserver();
  readonly #held = new Map<number, Holding>();
  /** Entries of status.partitions found to be ones an agent writes (#forgedPartitionProblem); completions never changes. */
  readonly #checkedPartitions = new WeakSet<TaskIndexPartition>();
  readonly #entriesPacer: StatusWritePacer;
  readonly #mergedPacer: StatusWritePacer;
  #latestTask: Task;
  #writingEntries = false;
  /** When the last entry write that the apiserver accepted was sent. */
  #lastRenewSentAt: number | undefined;
  #startedAt: number | undefined;
  #finalWritten = false;
  /** The merged fields last sent: the merged status is written only when they change. */
  #mergedSent = '';

  constructor(task: Task, options: SharedArrayRunOptions) {
    if (arrayPolicyOf(task.spec) === undefined) throw new TypeError('a SharedArrayRun needs a Task with spec.completions');
    this.#options = options;
    this.#uid = task.metadata.uid ?? '';
    this.#latestTask = task;
    this.#clock = options.clock ?? (() => performance.timeOrigin + performance.now());
    this.#leaseMs = options.lease?.durationMs ?? defaultLeaseDurationMs;
    this.#renewMs = options.lease?.renewIntervalMs ?? defaultRenewIntervalMs;
    this.#safetyMs = options.lease?.safetyMs ?? leaseSafetyMs;
    if (!(this.#renewMs > 0 && this.#safetyMs > 0 && this.#renewMs + this.#safetyMs < this.#leaseMs)) {
      throw new RangeError(`array lease: renew interval (${this.#renewMs} ms) + safety (${this.#safetyMs} ms) must be less than the lease (${this.#leaseMs} ms)`);
    }
    const now = this.#clock();
    this.#entriesPacer = new StatusWritePacer(now, { minIntervalMs: Math.min(1_000, this.#renewMs), heartbeatMs: this.#renewMs, firstWriteDelayMs: 0 });
    this.#mergedPacer = new StatusWritePacer(now, { minIntervalMs: Math.min(1_000, this.#renewMs), firstWriteDelayMs: 0 });
  }

  get uid(): string {
    return this.#uid;
  }

  /** Indexes of this agent whose process runs or is being spawned. */
  get active(): number {
    let active = 0;
    for (const holding of this.#held.values()) active += holding.running.size;
    return active;
  }

  /** One pass; `freeSlots`: how many more processes the node may start now. */
  async reconcile(task: Task, context: { readonly freeSlots: number; readonly draining: boolean }): Promise<SharedArrayPassResult> {
    this.#latestTask = task;
    const now = this.#clock();
    const policy = arrayPolicyOf(task.spec) as ArrayPolicy;
    const partitions = task.status?.partitions ?? [];
    this.#observer.observe(partitions, now);
    if (task.status?.phase === 'Succeeded' || task.status?.phase === 'Failed') {
      this.killNow();
      return { requeueAfterMs: undefined, finished: true };
    }
    const forged = this.#forgedPartitionProblem(partitions, policy.completions);
    if (forged !== undefined) return this.#endForged(task, policy, partitions, forged, now);
    const live = [...this.#held.values()].filter((holding) => !holding.fenced);
    if (live.length > 0 && selfFenceDue(this.#lastRenewSentAt, now, this.#leaseMs, this.#safetyMs)) {
      this.#options.logger.warn({ task: task.metadata.name, ranges: live.map((holding) => holding.start) }, 'could not renew the lease on this agent\'s ranges of a shared array in time: killing their indexes; the ranges are taken over once the lease has expired');
      for (const holding of live) this.#fence(holding);
    }
    for (const holding of this.#held.values()) holding.progress.setPolicy(policy);

    const stopping = context.draining || task.spec.suspend === true;
    const parallelismLeft = (task.spec.parallelism ?? Number.MAX_SAFE_INTEGER) - this.active;
    let freeSlots = Math.max(0, Math.min(context.freeSlots, parallelismLeft));
    if (!stopping && !this.#writingEntries) await this.#claimOrTakeOver(task, policy, partitions, freeSlots > 0, now);
    if (!stopping) freeSlots -= this.#startIndexes(task, freeSlots, now);

    if (this.#fenceWriteDue() || this.#dueNow(this.#entriesPacer, now)) this.#writeEntries(task, now);
    await this.#coordinate(task, policy, partitions, now);
    // A pass is due when the self-fence would be, while any range still runs (a fenced one waits for its takeover).
    const running = [...this.#held.values()].some((holding) => !holding.fenced);
    const selfFenceAt = running && this.#lastRenewSentAt !== undefined ? this.#lastRenewSentAt + this.#leaseMs - this.#safetyMs : Infinity;
    const wakeAt = Math.min(selfFenceAt, this.#entriesPacer.dueAt() ?? Infinity, this.#mergedPacer.dueAt() ?? Infinity, ...[...this.#held.values()].map((holding) => holding.progress.nextRetryAt ?? Infinity));
    // Leases of others expire without any event: look again within a renew interval while the array runs.
    const lookAgainMs = Math.min(this.#renewMs, Number.isFinite(wakeAt) ? Math.max(1, Math.ceil(wakeAt - now)) : Infinity);
    return { requeueAfterMs: this.#finalWritten ? undefined : lookAgainMs, finished: this.#finalWritten };
  }

  /**
   * forgedPartitionProblem over the entries not checked before: a pass comes with every index's
   * start and end, and the entries (the informer's objects, new only when the status changed) would
   * otherwise have their index sets parsed again at each.
   */
  #forgedPartitionProblem(partitions: readonly TaskIndexPartition[], completions: number): string | undefined {
    const unchecked = partitions.filter((partition) => !this.#checkedPartitions.has(partition));
    if (unchecked.length === 0) return undefined;
    const problem = forgedPartitionProblem(unchecked, completions);
    if (problem === undefined) for (const partition of unchecked) this.#checkedPartitions.add(partition);
    return problem;
  }

  #facts(task: Task, now: number): ArrayRunFacts {
    return { nodeName: this.#options.nodeName, startedAt: this.#startedAt ?? now, suspended: task.spec.suspend === true, now: Date.now() };
  }

  /**
   * An entry of status.partitions that no agent could have written (its author's, through
   * tasks/status): the array ends Failed, naming it, from whichever agent sees it first; the
   * agents' own indexes are killed. Taken over, it would have run indexes twice or failed every pass.
   */
  async #endForged(task: Task, policy: ArrayPolicy, partitions: readonly TaskIndexPartition[], problem: string, now: number): Promise<SharedArrayPassResult> {
    this.#dropAll();
    const merged = mergePartitions(partitions.filter((partition) => partitionProblem(partition, policy.completions) === undefined), policy);
    const outcome = { kind: 'Failed', reason: 'InvalidSpec', message: `${problem}: the agents alone write these entries, and cannot run the array on from it without running indexes twice or skipping them` } as const;
    const status = finishedArrayStatus(task, mergedFields(merged, policy), this.#facts(task, now), outcome);
    if (!(await this.#options.applyStatus(task, withoutNode(status), coordinatorFieldManager, true)).applied) return { requeueAfterMs: this.#renewMs, finished: false };
    this.#finalWritten = true;
    this.#options.logger.warn({ task: task.metadata.name, problem }, 'a shared array\'s status.partitions holds an entry no agent wrote: the array is ended');
    this.#options.finished?.(task, status);
    return { requeueAfterMs: undefined, finished: true };
  }

  /** SIGKILLs every index this agent runs for the array and gives its ranges up locally (the Task is gone or over). */
  killNow(): void {
    this.#dropAll();
  }

  /** My entries as the apiserver should see them now. */
  #entries(now: number): TaskIndexPartition[] {
    const renewTime = preciseTimestamp(now);
    return [...this.#held.values()].map((holding) => this.#entryOf(holding, renewTime));
  }

  #entryOf(holding: Holding, renewTime: string): TaskIndexPartition {
    if (holding.fenced && holding.lastSent !== undefined) return holding.lastSent;
    const fields = holding.progress.snapshot();
    return {
      start: holding.start,
      end: holding.end,
      nodeName: this.#options.nodeName,
      launchedThrough: holding.fenceWanted,
      active: fields.active,
      succeeded: fields.succeeded,
      failed: fields.failed,
      completedIndexes: fields.completedIndexes,
      failedIndexes: fields.failedIndexes,
      renewTime,
    };
  }

  #drop(holding: Holding): void {
    for (const running of holding.running.values()) {
      running.killed = true;
      running.process?.kill('AgentShutdown', 'SIGKILL');
    }
    this.#held.delete(holding.start);
  }

  #dropAll(): void {
    for (const holding of [...this.#held.values()]) this.#drop(holding);
  }

  /** SIGKILLs the range's indexes and launches none any more; its entry stays as last sent (see Holding.fenced). */
  #fence(holding: Holding): void {
    for (const running of holding.running.values()) {
      running.killed = true;
      running.process?.kill('AgentShutdown', 'SIGKILL');
    }
    holding.fenced = true;
  }

  async #claimOrTakeOver(task: Task, policy: ArrayPolicy, partitions: readonly TaskIndexPartition[], hasCapacity: boolean, now: number): Promise<void> {
    const renewTime = preciseTimestamp(now);
    // My own entries as I know them (fresher than the cache) decide whether I still have indexes to launch.
    const view = partitions.map((partition) => {
      const holding = this.#held.get(partition.start);
      return holding === undefined ? partition : this.#entryOf(holding, renewTime);
    });
    const held = new Set([...this.#held.values()].filter((holding) => !holding.fenced).map((holding) => holding.start));
    const action = nextPartitionAction({ completions: policy.completions, partitions: view, nodeName: this.#options.nodeName, held, hasCapacity, observer: this.#observer, now, leaseDurationMs: this.#leaseMs });
    if (action.kind === 'none') return;
    const retryDelayMs = (failures: number): number => this.#options.retryDelayMs(this.#latestTask, failures);
    let holding: Holding;
    if (action.kind === 'claim') {
      const progress = new ArrayProgress({ policy, range: { start: action.start, end: action.end }, retryDelayMs });
      // The claim records the first fence too: the range's first chunk may launch once it is accepted.
      const fence = Math.min(action.end, action.start + (this.#options.fenceChunk ?? defaultMaxSpawning));
      holding = { start: action.start, end: action.end, progress, fenceRecorded: fence, fenceWanted: fence, running: new Map(), fenced: false, lastSent: undefined, takenFrom: undefined };
    } else {
      // What the old holder recorded stays; its indexes below its fence that are neither completed
      // nor failed are in doubt and end as lost attempts (ArrayProgress.resume), as on a restart.
      const old = action.partition;
      const progress = ArrayProgress.resume({
        policy,
        range: { start: old.start, end: old.end },
        retryDelayMs,
        status: { completedIndexes: old.completedIndexes ?? '', failedIndexes: old.failedIndexes ?? '', failed: old.failed ?? 0, attempts: 0 },
        launchedThrough: old.launchedThrough,
        now,
      });
      holding = { start: old.start, end: old.end, progress, fenceRecorded: old.launchedThrough, fenceWanted: old.launchedThrough, running: new Map(), fenced: false, lastSent: undefined, takenFrom: old.nodeName };
    }
    // A range this agent had fenced and now takes over again is replaced by its resumed holding.
    const entries = [...[...this.#held.values()].filter((other) => other.start !== holding.start).map((other) => this.#entryOf(other, renewTime)), this.#entryOf(holding, renewTime)];
    // A claim is an apply without force: of two agents claiming one range, the apiserver lets one
    // own it. A takeover forces: the old holder's next apply is then refused (array-partitions-ssa.test.ts).
    // Both only at the resourceVersion this pass read: a takeover must see the holder's latest
    // fence, and any write of the holder (a renew) since the read makes the takeover fail.
    this.#writingEntries = true;
    try {
      const outcome = await this.#options.applyStatus(task, { partitions: entries }, fieldManagerFor(this.#options.nodeName), action.kind === 'take-over', task.metadata.resourceVersion);
      if (!outcome.applied) return;
      this.#lastRenewSentAt = now;
      this.#held.set(holding.start, holding);
      this.#noteSent(entries);
      this.#entriesPacer.changed();
      this.#options.logger.info({ task: task.metadata.name, start: holding.start, end: holding.end, launchedThrough: holding.fenceRecorded, action: action.kind }, action.kind === 'claim' ? 'claimed a range of a shared array' : 'took over a range of a shared array whose holder stopped renewing it');
    } finally {
      this.#writingEntries = false;
    }
  }

  /** Starts indexes of the held ranges, below each range's recorded fence; returns how many. */
  #startIndexes(task: Task, freeSlots: number, now: number): number {
    let spawning = 0;
    for (const holding of this.#held.values()) for (const running of holding.running.values()) if (running.process === undefined) spawning++;
    const slots = Math.min(freeSlots, (this.#options.maxSpawning ?? defaultMaxSpawning) - spawning);
    let started = 0;
    for (const holding of this.#held.values()) {
      if (holding.fenced) continue;
      while (started < slots) {
        const next = holding.progress.startNext(now, holding.fenceRecorded);
        if (next === undefined) break;
        this.#launch(task, holding, next.index, next.attempt);
        started++;
      }
      const fence = nextFence({ nextFresh: holding.progress.launchedThrough, recorded: holding.fenceWanted, end: holding.end, chunk: this.#options.fenceChunk ?? defaultMaxSpawning });
      if (fence !== undefined) holding.fenceWanted = fence;
    }
    return started;
  }

  #fenceWriteDue(): boolean {
    if (this.#writingEntries) return false;
    for (const holding of this.#held.values()) if (holding.fenceWanted > holding.fenceRecorded) return true;
    return false;
  }

  #dueNow(pacer: StatusWritePacer, now: number): boolean {
    const due = pacer.dueAt();
    return due !== undefined && due <= now;
  }

  #launch(task: Task, holding: Holding, index: number, attempt: number): void {
    const running: RunningIndex = {};
    holding.running.set(index, running);
    let ended = false;
    const callbacks: IndexCallbacks = {
      running: (process, spawnLatencyNanoseconds) => {
        if (ended) return;
        running.process = process;
        if (running.killed === true || this.#held.get(holding.start) !== holding) {
          process.kill('AgentShutdown', 'SIGKILL');
          return;
        }
        this.#startedAt ??= this.#clock();
        holding.progress.started(index, spawnLatencyNanoseconds);
        this.#entriesPacer.changed();
        this.#options.requeue();
      },
      ended: (ending: AttemptEnding, stderrTail, runNanoseconds) => {
        if (ended) return;
        ended = true;
        holding.running.delete(index);
        // A range given up (taken over, self-fenced): its new holder decides about this index.
        if (this.#held.get(holding.start) !== holding) return;
        recordIndexEnding(holding.progress, index, { ending, stderrTail, runNanoseconds, retryable: this.#options.retryable });
        // Not the pacer's finished(): a finished range's entry is still renewed until the array is over.
        this.#entriesPacer.changed();
        this.#options.requeue();
      },
    };
    this.#options.launcher.launch(task, index, attempt, callbacks);
  }

  /**
   * Writes every entry this agent holds (all of them: an entry left out would be deleted), with
   * the fences wanted. Not awaited. A refusal (409) names the conflicting fields: a range whose
   * nodeName another manager owns now was taken over and is dropped at once; conflicts only with
   * the agents this one took ranges over from are their left-over co-ownership, and the write
   * is made again with force (decideOnConflicts).
   */
  #writeEntries(task: Task, now: number): void {
    if (this.#held.size === 0) return;
    this.#writingEntries = true;
    this.#entriesPacer.writeStarted(now);
    this.#applyEntries(task, now).then(
      (applied) => {
        this.#writingEntries = false;
        this.#entriesPacer.writeFinished(applied);
        this.#options.requeue();
      },
      (error: unknown) => {
        this.#writingEntries = false;
        this.#entriesPacer.writeFinished(false);
        this.#options.logger.warn({ task: task.metadata.name, err: (error as Error).message }, 'could not write this agent\'s ranges of a shared array; it is tried again');
        this.#options.requeue();
      },
    );
  }

  async #applyEntries(task: Task, now: number): Promise<boolean> {
    for (const force of [false, true]) {
      const sent = new Map([...this.#held.values()].map((holding) => [holding, holding.fenceWanted]));
      const entries = this.#entries(now);
      const outcome = await this.#options.applyStatus(task, { partitions: entries }, fieldManagerFor(this.#options.nodeName), force);
      if (outcome.applied) {
        this.#lastRenewSentAt = now;
        this.#noteSent(entries);
        for (const [holding, fence] of sent) holding.fenceRecorded = Math.max(holding.fenceRecorded, fence);
        return true;
      }
      const decision = decideOnConflicts(outcome.conflicts, new Map([...this.#held.values()].map((holding) => [holding.start, holding.takenFrom])));
      for (const start of decision.lost) {
        const holding = this.#held.get(start);
        if (holding === undefined) continue;
        this.#options.logger.warn({ task: task.metadata.name, start }, 'a range of a shared array was taken over by another agent: killing its indexes here');
        this.#drop(holding);
      }
      // Forcing is safe only while this agent's lease is live: past the self-fence, another may be taking a range over.
      if (!decision.forceAgain || force || selfFenceDue(this.#lastRenewSentAt, this.#clock(), this.#leaseMs, this.#safetyMs)) {
        if (!decision.forceAgain) this.#options.logger.warn({ task: task.metadata.name, conflicts: outcome.conflicts.length }, 'the apiserver refused this agent\'s ranges of a shared array (409)');
        return false;
      }
    }
    return false;
  }

  /** Remembers each holding's entry as the apiserver accepted it (what a fenced holding keeps sending). */
  #noteSent(entries: readonly TaskIndexPartition[]): void {
    for (const entry of entries) {
      const holding = this.#held.get(entry.start);
      if (holding !== undefined) holding.lastSent = entry;
    }
  }

  /** The coordinator (coordinatorOf) writes the array's merged status: paced while it runs, once when it is over. */
  async #coordinate(task: Task, policy: ArrayPolicy, partitions: readonly TaskIndexPartition[], now: number): Promise<void> {
    if (this.#finalWritten || coordinatorOf(partitions, this.#observer, now, this.#leaseMs) !== this.#options.nodeName) return;
    // Its own entries as the apiserver accepted them (fresher than the cache, never ahead of the
    // record): the merged status never shows an index done that no entry records.
    const view = partitions.map((partition) => this.#held.get(partition.start)?.lastSent ?? partition);
    const merged = mergePartitions(view, policy);
    const fields = mergedFields(merged, policy);
    const facts = this.#facts(task, now);
    const outcome = merged.outcome?.kind === 'Complete' && !merged.covered ? undefined : merged.outcome;
    if (outcome !== undefined && (outcome.kind === 'Failed' || merged.active === 0)) {
      const status = finishedArrayStatus(task, fields, facts, outcome);
      if ((await this.#options.applyStatus(task, withoutNode(status), coordinatorFieldManager, true)).applied) {
        this.#finalWritten = true;
        this.#dropAll();
        this.#options.finished?.(task, status);
      }
      return;
    }
    const text = JSON.stringify(fields);
    if (text !== this.#mergedSent) this.#mergedPacer.changed();
    if (!this.#dueNow(this.#mergedPacer, now)) return;
    const status = runningArrayStatus(task, fields, facts);
    this.#mergedPacer.writeStarted(now);
    this.#mergedSent = text;
    try {
      this.#mergedPacer.writeFinished((await this.#options.applyStatus(task, withoutNode(status), coordinatorFieldManager, true)).applied);
    } catch (error) {
      this.#mergedPacer.writeFinished(false);
      this.#options.logger.warn({ task: task.metadata.name, err: (error as Error).message }, 'could not write the merged status of a shared array; it is tried again');
    }
  }
}

/** The array's status fields as the merged entries give them. */
function mergedFields(merged: MergedPartitions, policy: ArrayPolicy): ArrayStatusFields {
  return {
    progress: `${merged.succeeded}/${policy.completions}`,
    active: merged.active,
    succeeded: merged.succeeded,
    failed: merged.failed,
    completedIndexes: merged.completedIndexes.toString(),
    failedIndexes: merged.failedIndexes.toString(),
    attempts: merged.succeeded + merged.failed + merged.active,
  };
}

/**
 * The merged status leaves status.nodeName out: several nodes run the array, and the entries name them.
 * (status.partitions is never in it: those fields belong to the holders.)
 */
function withoutNode(status: TaskStatus): TaskStatus {
  const rest: TaskStatus = { ...status };
  delete (rest as { nodeName?: string }).nodeName;
  delete (rest as { partitions?: unknown }).partitions;
  return rest;
}

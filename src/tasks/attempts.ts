// The processes this agent runs: at most one attempt per Task key, from the moment it is decided
// to launch until its ending has been written to the Task's status. The reconciler is the only
// writer; spawn results and exits only fill in fields and ask for a reconcile.
import type { ResourceUsage, SpawnedProcess, SpawnTimings } from '../launcher/spawned-process.js';
import type { TaskReason, TaskStatusResources } from '../api/task.js';
import type { TaskIdentityLease } from '../sandbox/task-identities.js';
import type { AttemptResult } from './attempt-result.js';

/** Why the agent itself ended an attempt; wins over the signal the process died of. */
export type KillCause = 'DeadlineExceeded' | 'Cancelled' | 'Deleted' | 'AgentShutdown';

export interface AttemptEnding {
  readonly reason: TaskReason;
  readonly exitCode?: number;
  readonly signal?: string;
  readonly message: string;
  /** Epoch milliseconds (with fraction). */
  readonly finishedAt: number;
}

export interface Attempt {
  /** The Task's uid: a Task deleted and created again under the same name is another Task. */
  readonly uid: string;
  /** 1-based, as status.attempts counts. */
  readonly number: number;
  /** Epoch milliseconds (with fraction) when the launch was decided. */
  readonly launchedAt: number;
  child?: SpawnedProcess;
  timings?: SpawnTimings;
  /** The host ids the attempt runs as, leased until its processes are gone (task-identities.ts). */
  identity?: TaskIdentityLease;
  /** Epoch milliseconds when the process had exec'd. */
  startedAt?: number;
  /** The limits its cgroup enforces, for status.resources; undefined without any. */
  resources?: TaskStatusResources | undefined;
  killCause?: KillCause;
  /** When the SIGTERM went out; SIGKILL follows after the grace period. */
  terminatingSince?: number;
  ending?: AttemptEnding;
  /** What the process tree cost (rusage at its reaping), once it has exited. */
  usage?: ResourceUsage;
  /** The most memory its cgroup held (TaskCgroup.memoryPeakBytes), once it has exited. */
  memoryPeakBytes?: number | undefined;
  /** Its result (attempt-result.ts), once it has ended with one. */
  result?: AttemptResult | undefined;
  /** The Running status for this attempt has been written. */
  runningRecorded: boolean;
  /**
   * The status written for this attempt's ending, kept (with the attempt) until the informer's
   * cache shows it: until then the cache is older than our own write, and acting on it could
   * launch the attempt again or take our own Running for a lost process.
   */
  recorded?: { readonly status: import('../api/task.js').TaskStatus; readonly at: number };
  readonly stderr: StderrTail;
}

/** The last `limit` characters (code points, as the apiserver counts) a process wrote to stderr. */
export class StderrTail {
  readonly #limit: number;
  #text = '';

  constructor(limit = 4096) {
    this.#limit = limit;
  }

  append(chunk: string): void {
    this.#text += chunk;
    // Trim by UTF-16 units with headroom; the exact code-point cut happens once, at the end.
    if (this.#text.length > this.#limit * 4) this.#text = this.#text.slice(-this.#limit * 2);
  }

  toString(): string {
    const codePoints = Array.from(this.#text);
    return codePoints.length <= this.#limit ? this.#text : codePoints.slice(-this.#limit).join('');
  }
}

/**
 * The attempts by Task key, and how many of them are active. `active` is read before every launch
 * and after every reconcile, so it is a count kept as attempts come, end and go, not a walk over
 * the table: with thousands of Tasks a walk made each burst of reconciles quadratic (issue 15's
 * event-loop bar). An attempt's ending is set where its process ends (task-launch.ts); whoever sets
 * it tells the table with ended().
 */
export class AttemptTable {
  readonly #attempts = new Map<string, Attempt>();
  /** The attempts of the table that have no ending yet. */
  readonly #unended = new Set<Attempt>();

  get(key: string): Attempt | undefined {
    return this.#attempts.get(key);
  }

  set(key: string, attempt: Attempt): void {
    const replaced = this.#attempts.get(key);
    if (replaced !== undefined) this.#unended.delete(replaced);
    this.#attempts.set(key, attempt);
    if (attempt.ending === undefined) this.#unended.add(attempt);
  }

  delete(key: string): void {
    const attempt = this.#attempts.get(key);
    if (attempt !== undefined) this.#unended.delete(attempt);
    this.#attempts.delete(key);
  }

  /** The attempt's ending has been set: it no longer counts as active. */
  ended(attempt: Attempt): void {
    if (attempt.ending !== undefined) this.#unended.delete(attempt);
  }

  /** Attempts whose process is (or may be) running: launching, or spawned and not yet ended. */
  get active(): number {
    return this.#unended.size;
  }

  entries(): IterableIterator<[string, Attempt]> {
    return this.#attempts.entries();
  }
}

// The agent's work queue: keys go in (the runtime's are typed: a Task to reconcile, or one to
// claim), and a handler reconciles each one, at most `concurrency` keys at a time. Keys are
// compared by the string `keyId` makes of them (for string keys, the key itself). Modelled on client-go's rate-limited workqueue and
// controller-runtime's reconcile.Result; a key stands for "look at this object's state again", not
// for an event, which is what lets the queue merge and reorder adds freely.
//
// Contract:
// - Dedupe: a key is queued at most once. A key added while its handler runs is marked dirty and
//   handled again once that run ends, so one key never has two runs at once.
// - Outcomes of a run (#run names the outcome, #finishRun is the one switch that acts on it):
//   - success (the handler resolves without requeueAfterMs): the key's failure count is reset.
//   - requeue (`requeueAfterMs` set): the failure count is reset and the key is added again after
//     that delay; 0 or less means at once. A requeueAfterMs that is not finite counts as a retry.
//   - retry (the handler throws anything but a TerminalError): the failure count goes up by one and
//     the key is added again after base * 2^(failures - 1) ms, capped at maxRetryDelayMs.
//   - terminal (the handler throws a TerminalError): never retried; the failure count is reset.
//     The queue does not log; the handler's caller logs, the observer counts.
// - A key has at most one pending delayed add, and the earliest pending time wins. A delayed add for
//   a key that is already ready (or dirty) is dropped: the run it waits for reads the newest state
//   and returns its own result.
// - A plain add() of a key that waits for a delayed add (a retry or a requeueAfter) makes it ready
//   now, because something about it changed; its failure count stays, so the next failure still
//   backs off further. The same holds when a key that failed was dirty: it runs again at once.
// - Ready keys are taken in FIFO order. Handlers are started from setImmediate callbacks, one
//   handler each, never from inside add(), a bounded number per turn and for a bounded time: a
//   turn starts no more handlers once `dispatchSliceMs` has passed since it began, counting what
//   each handler did before it first waited for I/O or a timer (its synchronous part and the
//   promise callbacks that follow it at once), so a burst of adds cannot start thousands of
//   handlers in one stretch of the event loop or starve I/O and timers.
// - `depth` counts ready keys only; a dirty key becomes ready (and counts) when its run ends.
// - shutDown() drops waiting and delayed keys, clears every timer, aborts the signal handed to
//   running handlers and resolves once they have all settled. Runs that settle after that still
//   count and reach the observer, but nothing is re-added. Afterwards add() and addAfter() do
//   nothing and start() throws. Handlers that ignore the signal keep shutDown() waiting.

import { defaultSliceMs } from './sliced-work.js';

/** What a handler returns; `undefined` means success. */
export interface ReconcileResult {
  /** Handle the key again after this many milliseconds (and reset its backoff). */
  readonly requeueAfterMs?: number;
}

/** Thrown by a handler for a failure that retrying cannot fix: counted, never retried. */
export class TerminalError extends Error {
  override name = 'TerminalError';
}

/** What one run of a key came to (the contract above); metrics counts runs by it. */
export const workOutcomes = ['success', 'requeue', 'retry', 'terminal'] as const;
export type WorkOutcome = (typeof workOutcomes)[number];

/**
 * Hooks for the metrics layer; every one is optional. Hooks are called once the queue's state is
 * consistent, and a hook that throws is a bug: its error is rethrown from a microtask so that it is
 * seen, without leaving the queue half-updated.
 */
export interface WorkQueueObserver<Key = string> {
  /** Every request to handle a key now: each add() call (deduped or not), and each delayed add when it comes due. */
  added?(key: Key): void;
  /** The number of ready keys changed. */
  depthChanged?(depth: number): void;
  /** A handler took the key, `waitedMs` after the key became ready. */
  started?(key: Key, waitedMs: number): void;
  /** The handler's run for the key settled after `workedMs`. */
  finished?(key: Key, workedMs: number, outcome: WorkOutcome): void;
}

/** How keys are told apart: string keys by themselves; any other key type must say. */
type KeyIdOption<Key> = Key extends string
  ? { readonly keyId?: (key: Key) => string }
  : { /** Equal keys give the same string, different keys different ones. */ readonly keyId: (key: Key) => string };

export type WorkQueueOptions<Key = string> = BaseWorkQueueOptions<Key> & KeyIdOption<Key>;

interface BaseWorkQueueOptions<Key> {
  /** At most this many keys are handled at once; a whole number of at least 1. */
  readonly concurrency: number;
  /** The first retry delay of a failing key, doubled on each further failure; default 5. */
  readonly baseRetryDelayMs?: number;
  /** The longest retry delay; default 300_000 (5 minutes). */
  readonly maxRetryDelayMs?: number;
  readonly observer?: WorkQueueObserver<Key>;
  /** How long one turn may go on starting handlers; default defaultSliceMs (sliced-work.ts). */
  readonly dispatchSliceMs?: number;
  /** Milliseconds on a monotonic clock, for the dispatch slices; default performance.now (tests pass their own). */
  readonly clock?: () => number;
}

export type WorkHandler<Key = string> = (key: Key, signal: AbortSignal) => Promise<ReconcileResult | undefined>;

const defaultBaseRetryDelayMs = 5;
const defaultMaxRetryDelayMs = 300_000;

/**
 * How many handlers one turn may start (one setImmediate each). Large enough that handing out
 * keys costs little per key, small enough that timers and I/O get a turn between batches.
 */
const handlerStartsPerTurn = 128;

/** Node fires a setTimeout longer than this after 1 ms instead (TimeoutOverflowWarning). */
const longestTimerDelayMs = 2 ** 31 - 1;

export class WorkQueue<Key = string> {
  readonly #handler: WorkHandler<Key>;
  readonly #keyId: (key: Key) => string;
  readonly #concurrency: number;
  readonly #baseRetryDelayMs: number;
  readonly #maxRetryDelayMs: number;
  readonly #observer: WorkQueueObserver<Key> | undefined;
  readonly #dispatchSliceMs: number;
  readonly #clock: () => number;

  readonly #ready = new ReadyKeys<Key>();
  readonly #delayed = new DelayedKeys<Key>();
  /** Keys whose handler is running now, by id. */
  readonly #running = new Set<string>();
  /** Running keys that were added again during their run, by id. */
  readonly #dirty = new Set<string>();
  /** Consecutive failures per key id; a key without failures has no entry. */
  readonly #failures = new Map<string, number>();
  readonly #abortController = new AbortController();

  #lifecycle: 'created' | 'started' | 'shut down' = 'created';
  /** The turn that hands out ready keys now, if one is scheduled or running. */
  #dispatchTurn: DispatchTurn | undefined;
  #delayTimer: NodeJS.Timeout | undefined;
  /** When #delayTimer fires, on the performance.now() clock. */
  #delayTimerFiresAt = Number.POSITIVE_INFINITY;
  #shutDownPromise: Promise<void> | undefined;
  #resolveIdle: (() => void) | undefined;

  constructor(handler: WorkHandler<Key>, options: WorkQueueOptions<Key>) {
    this.#handler = handler;
    this.#keyId = options.keyId ?? String;
    this.#concurrency = checkConcurrency(options.concurrency);
    this.#baseRetryDelayMs = checkPositiveDelay(options.baseRetryDelayMs ?? defaultBaseRetryDelayMs, 'baseRetryDelayMs');
    this.#maxRetryDelayMs = checkPositiveDelay(options.maxRetryDelayMs ?? defaultMaxRetryDelayMs, 'maxRetryDelayMs');
    if (this.#maxRetryDelayMs < this.#baseRetryDelayMs) {
      throw new RangeError(
        `parafork: work queue maxRetryDelayMs (${this.#maxRetryDelayMs}) must not be less than baseRetryDelayMs (${this.#baseRetryDelayMs})`,
      );
    }
    this.#observer = options.observer;
    this.#dispatchSliceMs = checkPositiveDelay(options.dispatchSliceMs ?? defaultSliceMs, 'dispatchSliceMs');
    this.#clock = options.clock ?? (() => performance.now());
  }

  /** Keys ready and waiting for a handler (not those running, delayed or dirty). */
  get depth(): number {
    return this.#ready.size;
  }

  /** Keys whose handler is running now. */
  get processing(): number {
    return this.#running.size;
  }

  /** Consecutive failures of the key since its last success, requeue or terminal error. */
  retries(key: Key): number {
    return this.#failures.get(this.#keyId(key)) ?? 0;
  }

  /** Asks for the key to be handled now. */
  add(key: Key): void {
    if (this.#lifecycle === 'shut down') return;
    this.#notify((observer) => observer.added?.(key));
    this.#makeReady(key);
  }

  /** Asks for the key to be handled after `delayMs`; 0 or less is add(). The earliest pending time wins. */
  addAfter(key: Key, delayMs: number): void {
    if (Number.isNaN(delayMs) || delayMs === Number.POSITIVE_INFINITY) {
      throw new RangeError(`parafork: addAfter needs a finite delay in milliseconds, got ${delayMs}`);
    }
    if (this.#lifecycle === 'shut down') return;
    this.#addAfterDelay(key, delayMs);
  }

  /** Starts handing ready keys to the handler. Keys added before start() wait for it. */
  start(): void {
    if (this.#lifecycle === 'shut down') throw new Error('parafork: it is not possible to restart a work queue that was shut down');
    this.#lifecycle = 'started';
    this.#scheduleDispatch();
  }

  /** Stops taking keys, aborts the signal given to running handlers and waits for them to settle. */
  shutDown(): Promise<void> {
    if (this.#shutDownPromise !== undefined) return this.#shutDownPromise;
    this.#lifecycle = 'shut down';
    this.#endDispatchTurn();
    if (this.#delayTimer !== undefined) clearTimeout(this.#delayTimer);
    this.#delayTimer = undefined;
    this.#delayed.clear();
    this.#dirty.clear();
    const depthBefore = this.#ready.size;
    this.#ready.clear();
    if (depthBefore > 0) this.#notify((observer) => observer.depthChanged?.(0));
    // An AbortError, as AbortController.abort() gives by default, so handlers and the Node APIs
    // they pass the signal to recognise it; the message says who aborted.
    this.#abortController.abort(new DOMException('parafork: the work queue is shutting down', 'AbortError'));
    if (this.#running.size === 0) {
      this.#shutDownPromise = Promise.resolve();
    } else {
      const { promise, resolve } = Promise.withResolvers<undefined>();
      this.#resolveIdle = () => resolve(undefined);
      this.#shutDownPromise = promise;
    }
    return this.#shutDownPromise;
  }

  /** Puts the key in the ready FIFO, or marks it dirty when it is running; drops any delayed add. */
  #makeReady(key: Key): void {
    const id = this.#keyId(key);
    this.#delayed.cancel(id);
    if (this.#running.has(id)) {
      this.#dirty.add(id);
      return;
    }
    if (!this.#ready.push(key, id, performance.now())) return;
    this.#notify((observer) => observer.depthChanged?.(this.#ready.size));
    this.#scheduleDispatch();
  }

  #addAfterDelay(key: Key, delayMs: number): void {
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const id = this.#keyId(key);
    // A run that has not started yet reads the newest state, so it answers this request too.
    if (this.#ready.has(id) || this.#dirty.has(id)) return;
    if (this.#delayed.schedule(key, id, performance.now() + delayMs)) this.#armDelayTimer();
  }

  /**
   * One timer for all delayed keys, set for the earliest of them: thousands of Tasks waiting for a
   * requeue cost one timer, not thousands. The timer stays referenced while the queue runs (pending
   * retries are work the process still has to do) and is cleared at shutDown.
   */
  #armDelayTimer(): void {
    const earliestDueAt = this.#delayed.earliestDueAt();
    if (earliestDueAt === undefined) {
      if (this.#delayTimer !== undefined) clearTimeout(this.#delayTimer);
      this.#delayTimer = undefined;
      this.#delayTimerFiresAt = Number.POSITIVE_INFINITY;
      return;
    }
    if (this.#delayTimer !== undefined && this.#delayTimerFiresAt <= earliestDueAt) return;
    if (this.#delayTimer !== undefined) clearTimeout(this.#delayTimer);
    const now = performance.now();
    // At least 1 ms: Node's timer clock is cached per loop turn and can fire a hair before
    // performance.now() reaches the due time; the next arm then catches the key.
    const delayMs = Math.min(Math.max(Math.ceil(earliestDueAt - now), 1), longestTimerDelayMs);
    this.#delayTimerFiresAt = now + delayMs;
    this.#delayTimer = setTimeout(() => {
      this.#delayTimer = undefined;
      this.#delayTimerFiresAt = Number.POSITIVE_INFINITY;
      this.#promoteDueKeys();
    }, delayMs);
  }

  #promoteDueKeys(): void {
    for (const key of this.#delayed.takeDue(performance.now())) {
      this.#notify((observer) => observer.added?.(key));
      this.#makeReady(key);
    }
    this.#armDelayTimer();
    // A timer callback is a macrotask of its own, not a caller's add(): the first key that came
    // due starts now rather than after the poll; the others in turns, as any added key.
    if (this.#lifecycle !== 'started' || this.#running.size >= this.#concurrency) return;
    const next = this.#ready.shift();
    if (next === undefined) return;
    this.#startRun(next.key, next.id, next.readySince);
    this.#notify((observer) => observer.depthChanged?.(this.#ready.size));
  }

  /**
   * Schedules a turn of handler starts: one setImmediate per start, the first at once, the others
   * once the caller's synchronous stretch is over (a burst of add() calls makes one turn). Node runs
   * immediates queued together in one check phase, each after the promise callbacks of the one
   * before it, so each start sees the time the handlers started before it have taken, with their
   * work after their first await: a reconcile's launch (sandbox plan, cgroup, spawn request; ~0.3
   * ms each) runs there, and a loop that started 64 handlers back to back ran 64 launches, ~20 ms,
   * in one stretch (docs/benchmarks.md, "The event loop in the burst's first second").
   */
  #scheduleDispatch(): void {
    if (this.#lifecycle !== 'started' || this.#dispatchTurn !== undefined) return;
    if (this.#ready.size === 0 || this.#running.size >= this.#concurrency) return;
    const turn: DispatchTurn = { immediates: [], began: undefined, ran: 0, started: 0 };
    this.#dispatchTurn = turn;
    const queueStart = (): void => {
      turn.immediates.push(setImmediate(() => this.#startInTurn(turn)));
    };
    queueStart();
    queueMicrotask(() => {
      if (this.#dispatchTurn !== turn || turn.ran > 0) return; // ended or begun meanwhile: the next turn plans anew
      const starts = Math.min(this.#ready.size, this.#concurrency - this.#running.size, handlerStartsPerTurn);
      if (starts === 0) this.#endDispatchTurn(); // taken meanwhile (a due key started at once)
      for (let index = 1; index < starts; index += 1) queueStart();
    });
  }

  /** One of a turn's immediates: starts the next ready key, unless the turn's time is up. */
  #startInTurn(turn: DispatchTurn): void {
    const now = this.#clock();
    turn.began ??= now;
    turn.ran += 1;
    const timeIsUp = turn.started > 0 && now - turn.began >= this.#dispatchSliceMs;
    const next = timeIsUp || this.#running.size >= this.#concurrency ? undefined : this.#ready.shift();
    if (next !== undefined) {
      turn.started += 1;
      this.#startRun(next.key, next.id, next.readySince);
      if (turn.ran < turn.immediates.length) return;
    }
    this.#endDispatchTurn();
    if (turn.started > 0) this.#notify((observer) => observer.depthChanged?.(this.#ready.size));
    this.#scheduleDispatch();
  }

  /** Drops the immediates of the current turn that have not run. */
  #endDispatchTurn(): void {
    const turn = this.#dispatchTurn;
    if (turn === undefined) return;
    this.#dispatchTurn = undefined;
    for (const immediate of turn.immediates.slice(turn.ran)) clearImmediate(immediate);
  }

  #startRun(key: Key, id: string, readySince: number): void {
    this.#running.add(id);
    const startedAt = performance.now();
    this.#notify((observer) => observer.started?.(key, startedAt - readySince));
    void this.#run(key, id, startedAt);
  }

  async #run(key: Key, id: string, startedAt: number): Promise<void> {
    let settled: Settled;
    try {
      // Awaited inside the try so that a handler which throws before returning a promise is
      // treated like one that rejects.
      settled = outcomeOf(await this.#handler(key, this.#abortController.signal));
    } catch (error) {
      settled = error instanceof TerminalError ? { outcome: 'terminal' } : { outcome: 'retry' };
    }
    this.#finishRun(key, id, settled, performance.now() - startedAt);
  }

  /** The one switch that turns a run's outcome into failure counting, re-adds and the observer call. */
  #finishRun(key: Key, id: string, settled: Settled, workedMs: number): void {
    this.#running.delete(id);
    const wasDirty = this.#dirty.delete(id);
    const failures = settled.outcome === 'retry' ? (this.#failures.get(id) ?? 0) + 1 : 0;
    if (failures > 0) this.#failures.set(id, failures);
    else this.#failures.delete(id);
    this.#notify((observer) => observer.finished?.(key, workedMs, settled.outcome));

    if (this.#lifecycle === 'shut down') {
      if (this.#running.size === 0) this.#resolveIdle?.();
      return;
    }
    if (wasDirty) {
      // Added during the run: the state changed after the handler read it, so look again now,
      // whatever the outcome asked for.
      this.#makeReady(key);
    } else if (settled.outcome === 'retry') {
      this.#addAfterDelay(key, this.#retryDelayMs(failures));
    } else if (settled.outcome === 'requeue') {
      this.#addAfterDelay(key, settled.requeueAfterMs);
    }
    this.#scheduleDispatch();
  }

  #retryDelayMs(failures: number): number {
    // 2 ** n reaches Infinity for large n, and Math.min caps that too.
    return Math.min(this.#baseRetryDelayMs * 2 ** (failures - 1), this.#maxRetryDelayMs);
  }

  #notify(report: (observer: WorkQueueObserver<Key>) => void): void {
    if (this.#observer === undefined) return;
    try {
      report(this.#observer);
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }
}

type Settled = { readonly outcome: 'success' | 'retry' | 'terminal' } | { readonly outcome: 'requeue'; readonly requeueAfterMs: number };

/**
 * A requeueAfterMs that is not a finite number is a bug in the handler; it is retried with backoff
 * (and so shows in the retry count) rather than spinning or never coming back.
 */
function outcomeOf(result: ReconcileResult | undefined): Settled {
  const requeueAfterMs = result?.requeueAfterMs;
  if (requeueAfterMs === undefined) return { outcome: 'success' };
  if (!Number.isFinite(requeueAfterMs)) return { outcome: 'retry' };
  return { outcome: 'requeue', requeueAfterMs };
}

function checkConcurrency(concurrency: number): number {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`parafork: work queue concurrency must be a whole number of at least 1, got ${concurrency}`);
  }
  return concurrency;
}

function checkPositiveDelay(delayMs: number, name: string): number {
  if (!Number.isFinite(delayMs) || delayMs <= 0) {
    throw new RangeError(`parafork: work queue ${name} must be a finite number of milliseconds above 0, got ${delayMs}`);
  }
  return delayMs;
}

/** The ready keys in FIFO order, each with the time it became ready. */
/** A turn of handler starts (#scheduleDispatch): its immediates, and what it has done so far. */
interface DispatchTurn {
  readonly immediates: NodeJS.Immediate[];
  /** When its first immediate ran, on the queue's clock. */
  began: number | undefined;
  /** Immediates that have run. */
  ran: number;
  /** Handlers started. */
  started: number;
}

class ReadyKeys<Key> {
  /** A queue as an array and a head index: shift() on a large array copies it every time. */
  #keys: { readonly key: Key; readonly id: string }[] = [];
  #head = 0;
  /** By key id. */
  readonly #readySince = new Map<string, number>();

  get size(): number {
    return this.#readySince.size;
  }

  has(id: string): boolean {
    return this.#readySince.has(id);
  }

  /** Appends the key unless it is already here; says whether it was appended. */
  push(key: Key, id: string, now: number): boolean {
    if (this.#readySince.has(id)) return false;
    this.#readySince.set(id, now);
    this.#keys.push({ key, id });
    return true;
  }

  shift(): { readonly key: Key; readonly id: string; readonly readySince: number } | undefined {
    const entry = this.#keys[this.#head];
    if (entry === undefined) return undefined;
    this.#head += 1;
    // Drop the consumed prefix once it is most of the array, so memory follows the depth.
    if (this.#head > 1024 && this.#head * 2 > this.#keys.length) {
      this.#keys = this.#keys.slice(this.#head);
      this.#head = 0;
    }
    const readySince = this.#readySince.get(entry.id) ?? 0;
    this.#readySince.delete(entry.id);
    return { ...entry, readySince };
  }

  clear(): void {
    this.#keys = [];
    this.#head = 0;
    this.#readySince.clear();
  }
}

interface DelayedEntry<Key> {
  readonly key: Key;
  readonly id: string;
  readonly dueAt: number;
  /** Breaks ties between equal due times in the order the adds were asked for. */
  readonly sequence: number;
}

/**
 * Keys waiting for a time, one entry per key, in a binary min-heap by due time. Cancelled or
 * superseded entries stay in the heap and are skipped when they surface: an entry is live only
 * while it is the one #byKey holds for its key.
 */
class DelayedKeys<Key> {
  /** By key id. */
  readonly #byKey = new Map<string, DelayedEntry<Key>>();
  #heap: DelayedEntry<Key>[] = [];
  #nextSequence = 0;

  /** Sets the key's due time unless it already has an earlier one; says whether it changed. */
  schedule(key: Key, id: string, dueAt: number): boolean {
    const current = this.#byKey.get(id);
    if (current !== undefined && current.dueAt <= dueAt) return false;
    const entry = { key, id, dueAt, sequence: this.#nextSequence++ };
    this.#byKey.set(id, entry);
    this.#heapPush(entry);
    if (current !== undefined) this.#compactIfMostlyStale();
    return true;
  }

  cancel(id: string): void {
    if (this.#byKey.delete(id)) this.#compactIfMostlyStale();
  }

  earliestDueAt(): number | undefined {
    this.#dropStaleTop();
    return this.#heap[0]?.dueAt;
  }

  /** Removes and returns the keys due at `now` or before, earliest first. */
  takeDue(now: number): Key[] {
    const due: Key[] = [];
    for (;;) {
      this.#dropStaleTop();
      const top = this.#heap[0];
      if (top === undefined || top.dueAt > now) return due;
      this.#heapPop();
      this.#byKey.delete(top.id);
      due.push(top.key);
    }
  }

  clear(): void {
    this.#byKey.clear();
    this.#heap = [];
  }

  #dropStaleTop(): void {
    for (let top = this.#heap[0]; top !== undefined && this.#byKey.get(top.id) !== top; top = this.#heap[0]) {
      this.#heapPop();
    }
  }

  /**
   * Keys promoted by add() or moved earlier over and over would otherwise leave the heap growing
   * without bound.
   */
  #compactIfMostlyStale(): void {
    if (this.#heap.length <= 64 || this.#heap.length <= 2 * this.#byKey.size) return;
    // A sorted array is a valid heap.
    this.#heap = [...this.#byKey.values()].sort(compareDelayed);
  }

  #heapPush(entry: DelayedEntry<Key>): void {
    const heap = this.#heap;
    heap.push(entry);
    let index = heap.length - 1;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex];
      if (parent === undefined || compareDelayed(parent, entry) <= 0) break;
      heap[index] = parent;
      index = parentIndex;
    }
    heap[index] = entry;
  }

  #heapPop(): void {
    const heap = this.#heap;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    let index = 0;
    for (;;) {
      const leftIndex = 2 * index + 1;
      const rightIndex = leftIndex + 1;
      const left = heap[leftIndex];
      const right = heap[rightIndex];
      if (left === undefined) break;
      const [smallerIndex, smaller] = right !== undefined && compareDelayed(right, left) < 0 ? [rightIndex, right] : [leftIndex, left];
      if (compareDelayed(last, smaller) <= 0) break;
      heap[index] = smaller;
      index = smallerIndex;
    }
    heap[index] = last;
  }
}

function compareDelayed(first: DelayedEntry<unknown>, second: DelayedEntry<unknown>): number {
  return first.dueAt - second.dueAt || first.sequence - second.sequence;
}

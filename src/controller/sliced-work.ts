// Small synchronous pieces of work that arrive in bursts (the end of each Task's process: reading
// its cgroup's counters, killing and removing the cgroup, giving back its ids, asking for a
// reconcile) run in time slices, so that a burst never holds the event loop for long. Exits come
// from the launcher in batches (one callback for hundreds), and a promise's callbacks all run
// before the loop moves on: done right there, 1,000 Tasks ending together held the JS thread for
// hundreds of milliseconds at a time (issue 15: the event loop's p99 delay < 10 ms during a burst).
//
// Contract: pieces run in the order they were scheduled, never inside schedule(), from setImmediate
// callbacks; each callback runs pieces until `sliceMs` has passed since it began (at least one
// piece), then yields to timers and I/O and goes on in the next turn. A piece that throws is a bug:
// its error is rethrown from a microtask (so that it is seen) and the next pieces still run.

export interface SlicedWorkOptions {
  /** How long one turn may run pieces for; default defaultSliceMs. */
  readonly sliceMs?: number;
  /** Milliseconds on a monotonic clock; default performance.now (tests pass their own). */
  readonly clock?: () => number;
}

/**
 * A turn's budget: a few milliseconds, well under the 10 ms the event loop's p99 delay may reach,
 * and long enough that a piece (tens of microseconds) is not outweighed by the turn it waits for.
 */
export const defaultSliceMs = 3;

export class SlicedWork {
  readonly #sliceMs: number;
  readonly #clock: () => number;
  /** A queue as an array and a head index: shift() on a large array copies it every time. */
  #pieces: (() => void)[] = [];
  #head = 0;
  #immediate: NodeJS.Immediate | undefined;

  constructor(options: SlicedWorkOptions = {}) {
    this.#sliceMs = options.sliceMs ?? defaultSliceMs;
    if (!Number.isFinite(this.#sliceMs) || this.#sliceMs <= 0) throw new RangeError(`parafork: sliceMs must be a finite number of milliseconds above 0, got ${this.#sliceMs}`);
    this.#clock = options.clock ?? (() => performance.now());
  }

  /** Pieces scheduled and not run yet. */
  get pending(): number {
    return this.#pieces.length - this.#head;
  }

  /** Runs `piece` in a later turn of the event loop, after the pieces scheduled before it. */
  schedule(piece: () => void): void {
    this.#pieces.push(piece);
    this.#arm();
  }

  #arm(): void {
    if (this.#immediate !== undefined || this.pending === 0) return;
    this.#immediate = setImmediate(() => {
      this.#immediate = undefined;
      this.#runSlice();
    });
  }

  #runSlice(): void {
    // A piece that schedules another arms a turn while this one runs, and this one may then run
    // that piece too: the turn armed for it finds nothing left to run.
    if (this.pending === 0) return;
    const startedAt = this.#clock();
    do {
      const piece = this.#pieces[this.#head] as () => void;
      this.#pieces[this.#head] = noPiece; // let go of what it holds once it has run
      this.#head += 1;
      try {
        piece();
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    } while (this.pending > 0 && this.#clock() - startedAt < this.#sliceMs);
    if (this.pending === 0) {
      this.#pieces = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#pieces.length) {
      this.#pieces = this.#pieces.slice(this.#head);
      this.#head = 0;
    }
    this.#arm();
  }
}

function noPiece(): void {
  // a slot whose piece has run
}

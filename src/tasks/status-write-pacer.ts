// When a running Task array's status is written: at most one write per interval (1 s) while it
// runs, whatever number of indexes started or ended in between, and its final status at once.
// A 100,000-index array that runs 70 s thus costs about 70 status writes, not 100,000 (issue 17:
// API writes are what limits Tasks per second, issue 7). Pure: the caller passes the time and
// does the writing.
//
// - Nothing is written before firstWriteDelayMs after the array started: an array that ends
//   sooner costs one write, its final status (as a short single Task does: runningWriteDelayMs).
// - One write at a time: a change during a write waits for it and for the interval.
// - A failed write leaves the status unwritten; it is tried again after the interval.
// - With heartbeatMs (a range held by one of several agents, docs/arrays.md), a write is due that
//   long after the last one even with no change, so other agents can tell the holder is alive.

export interface StatusWritePacing {
  /** Least time between two writes while the array runs. Default 1000. */
  readonly minIntervalMs?: number;
  /** No write before this long after the start. Default 250. */
  readonly firstWriteDelayMs?: number;
  /** Write at least this often, changed or not; undefined: never without a change. */
  readonly heartbeatMs?: number;
}

export const defaultStatusWriteIntervalMs = 1_000;
export const defaultFirstStatusWriteDelayMs = 250;

export class StatusWritePacer {
  readonly #minIntervalMs: number;
  readonly #firstWriteAt: number;
  readonly #heartbeatMs: number | undefined;
  #changed = false;
  #final = false;
  #writing = false;
  #lastWriteFailed = false;
  #lastWriteAt: number | undefined;

  constructor(startedAt: number, pacing: StatusWritePacing = {}) {
    this.#minIntervalMs = pacing.minIntervalMs ?? defaultStatusWriteIntervalMs;
    this.#firstWriteAt = startedAt + (pacing.firstWriteDelayMs ?? defaultFirstStatusWriteDelayMs);
    this.#heartbeatMs = pacing.heartbeatMs;
    if (!(this.#minIntervalMs >= 0) || !(this.#firstWriteAt >= startedAt) || (this.#heartbeatMs !== undefined && !(this.#heartbeatMs >= this.#minIntervalMs))) {
      throw new RangeError('status write pacing: intervals are >= 0, and a heartbeat is no shorter than the interval');
    }
  }

  /** The status changed (an index started or ended, a count moved). */
  changed(): void {
    this.#changed = true;
  }

  /** The array has its outcome and nothing runs: its final status is due at once. */
  finished(): void {
    this.#final = true;
    this.#changed = true;
  }

  /** When the next write is due (epoch ms, possibly in the past: write now); undefined: none is. */
  dueAt(): number | undefined {
    if (this.#writing) return undefined;
    if (this.#final) {
      if (!this.#changed) return undefined;
      // At once, unless the last write failed: then after the interval, as any retry.
      return this.#lastWriteFailed && this.#lastWriteAt !== undefined ? this.#lastWriteAt + this.#minIntervalMs : 0;
    }
    const intervalDone = this.#lastWriteAt === undefined ? this.#firstWriteAt : Math.max(this.#firstWriteAt, this.#lastWriteAt + this.#minIntervalMs);
    if (this.#changed) return intervalDone;
    if (this.#heartbeatMs !== undefined) return Math.max(intervalDone, (this.#lastWriteAt ?? this.#firstWriteAt) + this.#heartbeatMs);
    return undefined;
  }

  /** A write of the status as it is now begins. */
  writeStarted(now: number): void {
    this.#writing = true;
    this.#changed = false;
    this.#lastWriteAt = now;
  }

  /** The write ended; a failed one leaves the status to be written again. */
  writeFinished(succeeded: boolean): void {
    this.#writing = false;
    this.#lastWriteFailed = !succeeded;
    if (!succeeded) this.#changed = true;
  }
}

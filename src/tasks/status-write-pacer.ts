// When a running Task array's status is written: at most one write per interval while it runs,
// whatever number of indexes started or ended in between, and its final status at once. API
// writes are what limits Tasks per second (issue 7), so an array's writes are bounded whatever
// its size and however slowly it runs (issue 17: a 100,000-index array in at most 200 writes).
// Pure: the caller passes the time and does the writing.
//
// The interval stretches with the array's age: a running write is due max(minIntervalMs,
// stretch * age) after the previous one began, age being that write's time since the start. So
// the status is never older than 5% of the array's age (default stretch 0.05; at least 1 s), and
// the writes of an array that runs T are at most
//     T0 / minInterval + ln(T / T0) / ln(1 + stretch) + the final one,   T0 = minInterval / stretch,
// with the defaults (T0 = 20 s) 20 + 20.5 ln(T / 20 s): 34 for 40 s, 76 for 5 minutes, 126 for
// an hour, 192 for a day. Before T0 it is one write a second, as a Job controller's batching.
//
// - Nothing is written before firstWriteDelayMs after the array started: an array that ends
//   sooner costs one write, its final status (as a short single Task does: runningWriteDelayMs).
// - A change people wait to see (suspend set or cleared) is written minIntervalMs after the last
//   write, not stretched: changed({ urgent: true }).
// - One write at a time: a change during a write waits for it and for the interval.
// - A failed write leaves the status unwritten; it is tried again after minIntervalMs.
// - With heartbeatMs (a range held by one of several agents, docs/arrays.md), a write is due that
//   long after the last one even with no change, so other agents can tell the holder is alive;
//   the stretched interval never exceeds it.

export interface StatusWritePacing {
  /** Least time between two writes while the array runs. Default 1000. */
  readonly minIntervalMs?: number;
  /** The interval after a write is at least this fraction of the array's age at that write. Default 0.05; 0: never stretched. */
  readonly stretch?: number;
  /** No write before this long after the start. Default 250. */
  readonly firstWriteDelayMs?: number;
  /** Write at least this often, changed or not; undefined: never without a change. */
  readonly heartbeatMs?: number;
}

export const defaultStatusWriteIntervalMs = 1_000;
export const defaultStatusWriteStretch = 0.05;
export const defaultFirstStatusWriteDelayMs = 250;

export class StatusWritePacer {
  readonly #startedAt: number;
  readonly #minIntervalMs: number;
  readonly #stretch: number;
  readonly #firstWriteAt: number;
  readonly #heartbeatMs: number | undefined;
  #changed = false;
  #urgent = false;
  #final = false;
  #writing = false;
  #lastWriteFailed = false;
  #lastWriteAt: number | undefined;

  constructor(startedAt: number, pacing: StatusWritePacing = {}) {
    this.#startedAt = startedAt;
    this.#minIntervalMs = pacing.minIntervalMs ?? defaultStatusWriteIntervalMs;
    this.#stretch = pacing.stretch ?? defaultStatusWriteStretch;
    this.#firstWriteAt = startedAt + (pacing.firstWriteDelayMs ?? defaultFirstStatusWriteDelayMs);
    this.#heartbeatMs = pacing.heartbeatMs;
    if (!(this.#minIntervalMs >= 0) || !(this.#stretch >= 0 && this.#stretch <= 1) || !(this.#firstWriteAt >= startedAt) || (this.#heartbeatMs !== undefined && !(this.#heartbeatMs >= this.#minIntervalMs))) {
      throw new RangeError('status write pacing: intervals are >= 0, the stretch between 0 and 1, and a heartbeat is no shorter than the interval');
    }
  }

  /** The status changed (an index started or ended, a count moved); `urgent`: a change people wait to see, not held by the stretch. */
  changed(options: { readonly urgent?: boolean } = {}): void {
    this.#changed = true;
    if (options.urgent === true) this.#urgent = true;
  }

  /** The array has its outcome and nothing runs: its final status is due at once. */
  finished(): void {
    this.#final = true;
    this.#changed = true;
  }

  /** When the next write is due (epoch ms, possibly in the past: write now); undefined: none is. */
  dueAt(): number | undefined {
    if (this.#writing) return undefined;
    const lastWriteAt = this.#lastWriteAt;
    if (this.#final) {
      if (!this.#changed) return undefined;
      // At once, unless the last write failed: then after the interval, as any retry.
      return this.#lastWriteFailed && lastWriteAt !== undefined ? lastWriteAt + this.#minIntervalMs : 0;
    }
    if (lastWriteAt === undefined) {
      if (this.#changed) return this.#firstWriteAt;
      return this.#heartbeatMs === undefined ? undefined : this.#firstWriteAt + this.#heartbeatMs;
    }
    const soonest = Math.max(this.#firstWriteAt, lastWriteAt + this.#minIntervalMs);
    if (this.#changed && (this.#urgent || this.#lastWriteFailed)) return soonest;
    const stretched = Math.max(soonest, lastWriteAt + this.#stretch * (lastWriteAt - this.#startedAt));
    const heartbeat = this.#heartbeatMs === undefined ? undefined : Math.max(soonest, lastWriteAt + this.#heartbeatMs);
    if (this.#changed) return heartbeat === undefined ? stretched : Math.min(stretched, heartbeat);
    return heartbeat;
  }

  /** A write of the status as it is now begins. */
  writeStarted(now: number): void {
    this.#writing = true;
    this.#changed = false;
    this.#urgent = false;
    this.#lastWriteAt = now;
  }

  /** The write ended; a failed one leaves the status to be written again. */
  writeFinished(succeeded: boolean): void {
    this.#writing = false;
    this.#lastWriteFailed = !succeeded;
    if (!succeeded) this.#changed = true;
  }
}

// The whole-array cap on a Task array's index logs (issue 17): each attempt's log is capped by the
// pump (the per-index cap, as a single Task's), and the array's ended logs together by this
// budget, so 100,000 indexes can never keep 100,000 x 10 MiB. An attempt that printed nothing has
// no log file at all (the pump makes an index's file at its first byte: LogOutput.createWhenWritten),
// so it is never counted: a /bin/true array leaves no files behind, where 100,000 empty logs would
// take 400 MB of 4 KiB blocks. Which logs go when the array is over its budget, in order:
//   1. logs of succeeded attempts, the oldest ended first;
//   2. logs of failed attempts, the newest first: the first failures are kept longest, as
//      status.failures keeps the first 8 failure records (the first failures most often show the
//      cause).
// A running attempt's log is not counted until it ends (its size is bounded by the per-index cap),
// so the array's disk use is at most maxBytes + running indexes x the per-index cap.
// Sizes are counted in 4 KiB blocks, as the disk allocates them. Memory: three numbers per log kept.

/** One attempt's log, by index and attempt. */
export interface IndexLogKey {
  readonly index: number;
  readonly attempt: number;
}

/** An attempt's log once complete (its process ended and both pipes closed). */
export interface EndedIndexLog extends IndexLogKey {
  /** What the attempt wrote (LogTotals.bytes); 0: it has no log file. */
  readonly payloadBytes: number;
  /** The log's size on disk (LogTotals.diskBytes). */
  readonly diskBytes: number;
  readonly failed: boolean;
}

const blockBytes = 4096;

/** Keeps logs in the order they are to be removed: first in, first out, or last in, first out. */
class LogQueue {
  readonly #indexes: number[] = [];
  readonly #attempts: number[] = [];
  readonly #bytes: number[] = [];
  #head = 0;
  readonly order: 'oldest-first' | 'newest-first';

  constructor(order: 'oldest-first' | 'newest-first') {
    this.order = order;
  }

  get size(): number {
    return this.#indexes.length - this.#head;
  }

  push(key: IndexLogKey, bytes: number): void {
    this.#indexes.push(key.index);
    this.#attempts.push(key.attempt);
    this.#bytes.push(bytes);
  }

  /** The next log to remove and its bytes; undefined when empty. */
  take(): { readonly key: IndexLogKey; readonly bytes: number } | undefined {
    if (this.size === 0) return undefined;
    if (this.order === 'newest-first') {
      return { key: { index: this.#indexes.pop() ?? 0, attempt: this.#attempts.pop() ?? 0 }, bytes: this.#bytes.pop() ?? 0 };
    }
    const at = this.#head++;
    const taken = { key: { index: this.#indexes[at] ?? 0, attempt: this.#attempts[at] ?? 0 }, bytes: this.#bytes[at] ?? 0 };
    // Drop the taken front now and then: O(1) amortised, and the arrays do not grow without end.
    if (this.#head >= 4096 && this.#head * 2 >= this.#indexes.length) {
      for (const column of [this.#indexes, this.#attempts, this.#bytes]) column.splice(0, this.#head);
      this.#head = 0;
    }
    return taken;
  }
}

export class ArrayLogBudget {
  readonly maxBytes: number;
  readonly #succeeded = new LogQueue('oldest-first');
  readonly #failed = new LogQueue('newest-first');
  #bytes = 0;

  constructor(maxBytes: number) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < blockBytes) throw new RangeError(`an array's log budget must be a whole number of bytes from ${blockBytes}, got ${maxBytes}`);
    this.maxBytes = maxBytes;
  }

  /** The bytes (in whole blocks) of the ended logs kept. */
  get bytes(): number {
    return this.#bytes;
  }

  /** How many ended logs are kept. */
  get kept(): number {
    return this.#succeeded.size + this.#failed.size;
  }

  /**
   * Counts an ended attempt's log; returns the logs to remove now (this one among them if it
   * alone is over the budget) to keep within maxBytes.
   */
  ended(log: EndedIndexLog): IndexLogKey[] {
    const key = { index: log.index, attempt: log.attempt };
    if (log.payloadBytes === 0) return [];
    const bytes = Math.max(blockBytes, Math.ceil(log.diskBytes / blockBytes) * blockBytes);
    (log.failed ? this.#failed : this.#succeeded).push(key, bytes);
    this.#bytes += bytes;
    const removed: IndexLogKey[] = [];
    while (this.#bytes > this.maxBytes) {
      const next = this.#succeeded.take() ?? this.#failed.take();
      if (next === undefined) break;
      this.#bytes -= next.bytes;
      removed.push(next.key);
    }
    return removed;
  }
}

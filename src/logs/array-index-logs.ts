// The logs of one Task array's indexes on this node (issue 17): where each attempt of an index
// writes (index-log-layout.ts), its cap, and the array's budget (array-log-budget.ts) applied as
// each attempt's log completes. Made by TaskLogStore.arrayLogs, once per array and agent life.
import { mkdirSync } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import path from 'node:path';

import { ArrayLogBudget, type EndedIndexLog, type IndexLogKey } from './array-log-budget.js';
import { indexAttemptLogPathIn, indexLogsDirectoryName, listIndexLogFiles, type EndedIndexes } from './index-log-layout.js';
import { readOutputTail, readStderrTail } from './log-reader.js';

/** The log the launcher is to write for one attempt (its LogOutput). */
export interface AttemptLog {
  readonly log: string;
  readonly maxBytes: number;
  /** Made at the first byte written: an index that prints nothing leaves no file (array-log-budget.ts). */
  readonly createWhenWritten?: boolean;
}

export interface ArrayIndexLogsOptions {
  /** The Task's log directory. */
  readonly taskDirectory: string;
  /** Each attempt's cap (the agent's, lowered by spec.logs.maxBytes, never above the budget). */
  readonly maxBytesPerAttempt: number;
  /** The array's budget for its ended logs. */
  readonly maxBytesPerArray: number;
  /** Which indexes already failed, for logs found from an earlier life of the agent; default none. */
  readonly failedIndex?: (index: number) => boolean;
  /** A log that could not be removed (it stays; the node-wide cap still applies). */
  readonly onRemoveError?: (error: Error) => void;
}

export class ArrayIndexLogs {
  readonly taskDirectory: string;
  readonly maxBytesPerAttempt: number;
  /** `<task directory>/indexes`, joined once: every attempt's log path starts with it. */
  readonly #indexesDirectory: string;
  readonly #budget: ArrayLogBudget;
  readonly #onRemoveError: (error: Error) => void;
  /** Epoch ms of the last log that ended (for the node-wide eviction's "written longest ago"). */
  lastEndedAt = 0;
  /** The ended indexes last recorded (TaskLogStore.recordEndedIndexes). */
  endedIndexes: EndedIndexes | undefined;
  readonly #createdAt = Date.now();

  constructor(options: ArrayIndexLogsOptions) {
    this.taskDirectory = options.taskDirectory;
    this.#indexesDirectory = path.join(this.taskDirectory, indexLogsDirectoryName);
    this.#budget = new ArrayLogBudget(options.maxBytesPerArray);
    this.maxBytesPerAttempt = Math.min(options.maxBytesPerAttempt, options.maxBytesPerArray);
    this.#onRemoveError = options.onRemoveError ?? ((): void => undefined);
    // The shards are made by the pump as it opens a log (one level); their parent here, once.
    const made = mkdirSync(this.#indexesDirectory, { recursive: true, mode: 0o700 });
    // It was there: an earlier life of the agent ran this array; its logs count against the budget.
    if (made === undefined) void this.#countExisting(options.failedIndex ?? ((): boolean => false));
  }

  /** The bytes of ended logs the array keeps (in whole blocks). */
  get keptBytes(): number {
    return this.#budget.bytes;
  }

  /** How many ended logs the array keeps (each one file, or two once rotated: counted as one). */
  get keptFiles(): number {
    return this.#budget.kept;
  }

  /** The log attempt `attempt` of `index` is to write; `specMaxBytes` (spec.logs.maxBytes) may lower the cap. */
  attemptLog(index: number, attempt: number, specMaxBytes: number | undefined): AttemptLog {
    return {
      log: indexAttemptLogPathIn(this.#indexesDirectory, index, attempt),
      maxBytes: specMaxBytes === undefined ? this.maxBytesPerAttempt : Math.min(specMaxBytes, this.maxBytesPerAttempt),
      createWhenWritten: true,
    };
  }

  stderrTail(index: number, attempt: number, limit: number): Promise<string> {
    return readStderrTail(indexAttemptLogPathIn(this.#indexesDirectory, index, attempt), limit);
  }

  /** The end of both streams of an index's attempt (an index has no result file to fall back from today). */
  outputTail(index: number, attempt: number, limit = 4096): Promise<string> {
    return readOutputTail(indexAttemptLogPathIn(this.#indexesDirectory, index, attempt), undefined, limit);
  }

  /** An attempt's log is complete: counts it and removes what the budget says must go. */
  async ended(log: EndedIndexLog): Promise<void> {
    this.lastEndedAt = Date.now();
    const removed = this.#budget.ended(log);
    if (removed.length > 0) await Promise.all(removed.map((key) => this.#remove(key)));
  }

  /** Removes a log and its rotated older half, if any. */
  async #remove(key: IndexLogKey): Promise<void> {
    const file = indexAttemptLogPathIn(this.#indexesDirectory, key.index, key.attempt);
    await Promise.all([file, `${file}.1`].map((name) => unlink(name).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.#onRemoveError(error as Error);
    })));
  }

  /** Counts the logs an earlier life of the agent left (oldest first), as if they had just ended. */
  async #countExisting(failedIndex: (index: number) => boolean): Promise<void> {
    const found: { key: IndexLogKey; size: number; modified: number }[] = [];
    for (const file of await listIndexLogFiles(this.taskDirectory)) {
      const status = await stat(file.path).catch(() => undefined);
      const rotated = await stat(`${file.path}.1`).catch(() => undefined);
      // A log begun in this life is counted when it ends.
      if (status === undefined || status.mtimeMs >= this.#createdAt) continue;
      found.push({ key: { index: file.index, attempt: file.attempt }, size: status.size + (rotated?.size ?? 0), modified: status.mtimeMs });
    }
    for (const { key, size } of found.sort((a, b) => a.modified - b.modified)) {
      // Found on disk, it printed something.
      const removed = this.#budget.ended({ ...key, payloadBytes: Math.max(1, size), diskBytes: size, failed: failedIndex(key.index) });
      await Promise.all(removed.map((gone) => this.#remove(gone)));
    }
  }
}

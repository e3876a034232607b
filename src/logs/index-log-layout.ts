// Where the logs of a Task array's indexes live inside the Task's log directory (issue 17): one log
// per attempt of an index, as a single Task has one per attempt, sharded by index range so that no
// directory holds 100,000 entries:
//
//   <task directory>/indexes/<first index of the shard>/<index>.<attempt>.log   (and .log.1)
//
// e.g. index 17042's second attempt: indexes/17000/17042.2.log. Why shards: listing one index's
// attempts reads its shard (1,000 indexes, 0.6 ms) where a flat directory of 100,000 logs takes
// 260-660 ms to list on ext4 (measured, docs/arrays.md "Logs per index"). The native log file makes
// one directory level when it opens a log (native/src/log_file.h), the shard; `indexes` is made by
// the store when the array's first log is handed out.
import { renameSync, writeFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

/** Indexes per shard directory. */
export const indexesPerShard = 1000;

/** The directory of a Task's index logs, inside its log directory. */
export const indexLogsDirectoryName = 'indexes';

/**
 * In `indexes/`: the indexes that have ended, as the array's status last had them (completedIndexes,
 * failedIndexes: "0-4,7"), so that a reader waiting for an index's output on the node (`parafork logs
 * --index N -f`) knows when one that printed nothing is done. An index that prints nothing leaves no log.
 */
const endedIndexesFileName = 'ended';

/** How an index ended, as recorded: `stopped` when the array ended (Complete or Failed) before it did. */
export type RecordedIndexEnding = 'succeeded' | 'failed' | 'stopped';

/**
 * Records the array's ended indexes (its status's index sets, and whether the array itself has
 * ended: then every index has) in one step: a reader sees the old record or the new.
 */
export function writeEndedIndexes(taskDirectory: string, ended: EndedIndexes): void {
  const file = path.join(taskDirectory, indexLogsDirectoryName, endedIndexesFileName);
  writeFileSync(`${file}.tmp`, `completed ${ended.completed}\nfailed ${ended.failed}\n${ended.arrayEnded ? 'array-ended\n' : ''}`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

export interface EndedIndexes {
  /** status.completedIndexes, failedIndexes: "0-4,7". */
  readonly completed: string;
  readonly failed: string;
  readonly arrayEnded: boolean;
}

/** How `index` ended as last recorded (writeEndedIndexes): undefined while it has not (or nothing was recorded). */
export async function recordedIndexEnding(taskDirectory: string, index: number): Promise<RecordedIndexEnding | undefined> {
  const text = await readFile(path.join(taskDirectory, indexLogsDirectoryName, endedIndexesFileName), 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [outcome, ranges] = line.split(' ');
    if ((outcome === 'completed' || outcome === 'failed') && ranges !== undefined && rangesHold(ranges, index)) return outcome === 'completed' ? 'succeeded' : 'failed';
  }
  return text.includes('\narray-ended\n') ? 'stopped' : undefined;
}

/** Whether "1,3-5,7" holds `index` (the text form src/tasks/index-ranges.ts writes). */
function rangesHold(ranges: string, index: number): boolean {
  return ranges.split(',').some((range) => {
    if (range === '') return false; // no index at all
    const [start, end] = range.split('-').map(Number);
    return start !== undefined && index >= start && index <= (end ?? start);
  });
}

/** The shard directory of `index` inside a Task's log directory. */
export function indexShardDirectory(taskDirectory: string, index: number): string {
  return path.join(taskDirectory, indexLogsDirectoryName, String(index - (index % indexesPerShard)));
}

/** The log of one attempt (1-based) of one index of a Task array. */
export function indexAttemptLogPath(taskDirectory: string, index: number, attempt: number): string {
  return indexAttemptLogPathIn(path.join(taskDirectory, indexLogsDirectoryName), index, attempt);
}

/**
 * indexAttemptLogPath inside the `indexes` directory already joined (normalized, no trailing
 * slash): the same string, without path.join's normalising walk, which cost every index of an
 * array ~1 KB of garbage on the JS thread (docs/benchmarks.md, Task arrays).
 */
export function indexAttemptLogPathIn(indexesDirectory: string, index: number, attempt: number): string {
  return `${indexesDirectory}/${index - (index % indexesPerShard)}/${index}.${attempt}.log`;
}

/** An index log's index and attempt from its file name, or undefined for any other file (a rotated `.log.1`). */
export function parseIndexLogFileName(file: string): { readonly index: number; readonly attempt: number } | undefined {
  const match = /^(\d+)\.(\d+)\.log$/.exec(file);
  return match ? { index: Number(match[1]), attempt: Number(match[2]) } : undefined;
}

/** The attempts of `index` with a log in the Task directory, oldest first. */
export async function indexLogAttempts(taskDirectory: string, index: number): Promise<number[]> {
  const files = await readdir(indexShardDirectory(taskDirectory, index)).catch(() => []);
  const attempts: number[] = [];
  for (const file of files) {
    const parsed = parseIndexLogFileName(file);
    if (parsed?.index === index) attempts.push(parsed.attempt);
  }
  return attempts.sort((a, b) => a - b);
}

/** One index log found on disk. */
export interface IndexLogFile {
  readonly index: number;
  readonly attempt: number;
  readonly path: string;
}

/** Every index log of the Task directory, by index then attempt. Reads every shard: not for a hot path. */
export async function listIndexLogFiles(taskDirectory: string): Promise<IndexLogFile[]> {
  const root = path.join(taskDirectory, indexLogsDirectoryName);
  const found: IndexLogFile[] = [];
  for (const shard of await readdir(root).catch(() => [])) {
    const shardDirectory = path.join(root, shard);
    for (const file of await readdir(shardDirectory).catch(() => [])) {
      const parsed = parseIndexLogFileName(file);
      if (parsed !== undefined) found.push({ ...parsed, path: path.join(shardDirectory, file) });
    }
  }
  return found.sort((a, b) => a.index - b.index || a.attempt - b.attempt);
}

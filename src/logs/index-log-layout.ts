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
import { readdir } from 'node:fs/promises';
import path from 'node:path';

/** Indexes per shard directory. */
export const indexesPerShard = 1000;

/** The directory of a Task's index logs, inside its log directory. */
export const indexLogsDirectoryName = 'indexes';

/** The shard directory of `index` inside a Task's log directory. */
export function indexShardDirectory(taskDirectory: string, index: number): string {
  return path.join(taskDirectory, indexLogsDirectoryName, String(index - (index % indexesPerShard)));
}

/** The log of one attempt (1-based) of one index of a Task array. */
export function indexAttemptLogPath(taskDirectory: string, index: number, attempt: number): string {
  return path.join(indexShardDirectory(taskDirectory, index), `${index}.${attempt}.log`);
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

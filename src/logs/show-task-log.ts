// `parafork logs` on the node: finds a Task's log among the agent's and `parafork run`'s, and writes
// the lines asked for. Reading goes straight to the files (readable by root, as the agent's state
// is); the apiserver path for readers elsewhere is the agent's job.
import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';

import { type LogStreamName } from './log-format.js';
import { indexAttemptLogPath, indexLogAttempts, indexLogsDirectoryName, recordedIndexEnding, type RecordedIndexEnding } from './index-log-layout.js';
import { formatLogLine, readLogLines } from './log-reader.js';
import { findTaskLogs } from './task-log-store.js';

export interface ShowTaskLogOptions {
  /** Log directories to look in: the newest log directory of the Task among them is read. */
  readonly directories: readonly string[];
  /** What the directories are, for a message (one per `parafork run` can be many); default their list. */
  readonly searched?: string;
  readonly namespace: string;
  readonly name: string;
  /** An index of a Task array (issue 17): that index's log, not the Task's. */
  readonly index?: number;
  /** 1-based; default the latest attempt. */
  readonly attempt?: number;
  /** The attempt before the latest (as kubectl logs --previous). */
  readonly previous?: boolean;
  readonly tail?: number;
  readonly timestamps?: boolean;
  readonly stream?: LogStreamName;
  readonly follow?: boolean;
  readonly signal?: AbortSignal;
}

export class TaskLogNotFoundError extends Error {
  readonly code = 'ERR_PARAFORK_LOG_NOT_FOUND';
}

/** Writes the log's lines to `out`; throws TaskLogNotFoundError with what was looked for. */
export async function showTaskLog(options: ShowTaskLogOptions, out: (text: string) => void): Promise<void> {
  const found = await findTaskLogs(options.directories, options.namespace, options.name);
  const task = `${options.namespace}/${options.name}`;
  const { index } = options;
  let attempts = found === undefined ? [] : index === undefined ? found.attempts : await indexLogAttempts(found.directory, index);
  if (found !== undefined && index !== undefined && attempts.length === 0) {
    // An index that has not printed yet: -f waits for its first line, or for it to end without one.
    const waited = options.follow === true ? await waitForIndexLog(found.directory, index, options.signal) : await recordedIndexEnding(found.directory, index);
    if (waited === undefined && options.signal?.aborted === true) return;
    if (Array.isArray(waited)) attempts = waited;
    else if (waited === 'gone') throw new TaskLogNotFoundError(`Task ${task} was deleted before index ${index} printed anything`);
    else if (waited !== undefined) {
      const how = waited === 'stopped' ? 'ended with its array' : waited;
      throw new TaskLogNotFoundError(`index ${index} of Task ${task} ${how} and no log of it is kept: it printed nothing${waited === 'succeeded' ? ', or its log was removed to keep the array within its log budget (the logs of succeeded indexes go first)' : ''}`);
    }
  }
  if (found === undefined || attempts.length === 0) {
    if (index !== undefined && found !== undefined) {
      // An array keeps no log for an index that succeeded printing nothing, nor those its log budget let go (array-log-budget.ts).
      throw new TaskLogNotFoundError(`no log of index ${index} of Task ${task} on this node: the index has not started here (another node may run it), it succeeded and printed nothing, or its log was removed to keep the array within its log budget (the logs of succeeded indexes go first)`);
    }
    if (found !== undefined && (await isDirectory(path.join(found.directory, indexLogsDirectoryName)))) {
      throw new TaskLogNotFoundError(`Task ${task} is an array: each index has its own log (--index N)`);
    }
    throw new TaskLogNotFoundError(`no logs of Task ${task} on this node (looked in ${options.searched ?? options.directories.join(', ')}); the Task may run on another node, or print nothing yet`);
  }
  const latest = attempts.at(-1) ?? 1;
  const attempt = options.attempt ?? (options.previous === true ? latest - 1 : latest);
  const what = index === undefined ? `Task ${task}` : `index ${index} of Task ${task}`;
  if (options.attempt === undefined && options.previous === true && latest <= 1) {
    throw new TaskLogNotFoundError(`${what} has run once: --previous needs an attempt before the latest (it has the log of attempt ${latest})`);
  }
  if (!attempts.includes(attempt)) {
    throw new TaskLogNotFoundError(`${what} has no log of attempt ${attempt}; it has ${attempts.length === 1 ? 'attempt' : 'attempts'} ${attempts.join(', ')}`);
  }
  const file = index === undefined ? path.join(found.directory, `${attempt}.log`) : indexAttemptLogPath(found.directory, index, attempt);
  for await (const line of readLogLines(file, {
    ...(options.stream !== undefined ? { stream: options.stream } : {}),
    ...(options.tail !== undefined ? { tail: options.tail } : {}),
    ...(options.follow !== undefined ? { follow: options.follow } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
  })) {
    out(formatLogLine(line, options.timestamps === true));
  }
}

/** How often `-f --index N` looks for the index's first log or its end. */
const indexPollMs = 200;

/**
 * Waits until index `index` has a log (its attempts, oldest first), has ended without one (how it
 * ended), or its Task's logs are gone (the Task deleted); undefined once `signal` aborts. The ending
 * is read before the logs, so an index that wrote and then ended between the two looks is seen
 * with its log.
 */
async function waitForIndexLog(taskDirectory: string, index: number, signal: AbortSignal | undefined): Promise<number[] | RecordedIndexEnding | 'gone' | undefined> {
  while (signal?.aborted !== true) {
    const ending = await recordedIndexEnding(taskDirectory, index);
    const attempts = await indexLogAttempts(taskDirectory, index);
    if (attempts.length > 0) return attempts;
    if (ending !== undefined) return ending;
    if (!(await isDirectory(taskDirectory))) return 'gone';
    await sleep(indexPollMs, undefined, signal ? { signal } : {}).catch(() => undefined);
  }
  return undefined;
}

async function isDirectory(file: string): Promise<boolean> {
  return stat(file).then((status) => status.isDirectory(), () => false);
}

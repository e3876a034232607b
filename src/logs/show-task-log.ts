// `parafork logs` on the node: finds a Task's log among the agent's and `parafork run`'s, and writes
// the lines asked for. Reading goes straight to the files (readable by root, as the agent's state
// is); the apiserver path for readers elsewhere is the agent's job.
import path from 'node:path';

import { type LogStreamName } from './log-format.js';
import { formatLogLine, readLogLines } from './log-reader.js';
import { findTaskLogs } from './task-log-store.js';

export interface ShowTaskLogOptions {
  /** Log directories to look in: the newest log directory of the Task among them is read. */
  readonly directories: readonly string[];
  readonly namespace: string;
  readonly name: string;
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
  if (found === undefined || found.attempts.length === 0) {
    throw new TaskLogNotFoundError(`no logs of Task ${task} on this node (looked in ${options.directories.join(', ')}); the Task may run on another node, or print nothing yet`);
  }
  const latest = found.attempts.at(-1) ?? 1;
  const attempt = options.attempt ?? (options.previous === true ? latest - 1 : latest);
  if (!found.attempts.includes(attempt)) {
    throw new TaskLogNotFoundError(`Task ${task} has no log of attempt ${attempt}; it has attempts ${found.attempts.join(', ')}`);
  }
  const file = path.join(found.directory, `${attempt}.log`);
  for await (const line of readLogLines(file, {
    ...(options.stream !== undefined ? { stream: options.stream } : {}),
    ...(options.tail !== undefined ? { tail: options.tail } : {}),
    ...(options.follow !== undefined ? { follow: options.follow } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
  })) {
    out(formatLogLine(line, options.timestamps === true));
  }
}

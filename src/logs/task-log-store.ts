// Where Task logs live on the node and how long: one directory per Task object, named as the
// kubelet names a pod's (/var/log/pods/<namespace>_<name>_<uid>), one log per attempt inside it
// (`<attempt>.log`, and `<attempt>.log.1` once the cap rotates it: native/src/log_file.h). A Task
// deleted and made again under its name is another object with another uid: another directory.
// Logs outlive the agent (they are files under --state-dir) and go with their Task: when the Task
// is gone from the cache (forget), and at start for Tasks that no longer exist (sweep).
import { mkdirSync } from 'node:fs';
import { open, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';

import { LogLineParser } from './log-format.js';

/** The Task fields a log's place depends on. */
export interface TaskLogOwner {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

export interface TaskLogStoreOptions {
  /** The logs' directory (made, mode 0700: a task's output may hold secrets). */
  readonly directory: string;
  /** Each attempt's cap (--task-log-max-bytes); a Task's spec.logs.maxBytes may ask for less. */
  readonly maxBytesPerAttempt: number;
}

/** The log the launcher is to write for one attempt (its LogOutput). */
export interface AttemptLog {
  readonly log: string;
  readonly maxBytes: number;
}

/** A Task's log directory name: namespace and name are DNS labels/subdomains, never with `_`. */
export function taskLogDirectoryName(owner: TaskLogOwner): string {
  return `${owner.namespace}_${owner.name}_${owner.uid}`;
}

/** The owner a directory name stands for, or undefined for a name not made by taskLogDirectoryName. */
export function parseTaskLogDirectoryName(entry: string): TaskLogOwner | undefined {
  const match = /^([a-z0-9.-]+)_([a-z0-9.-]+)_([A-Za-z0-9-]+)$/.exec(entry);
  return match ? { namespace: match[1] ?? '', name: match[2] ?? '', uid: match[3] ?? '' } : undefined;
}

export class TaskLogStore {
  readonly directory: string;
  readonly maxBytesPerAttempt: number;
  /** The uids with a log directory, by namespace/name: forget needs no directory listing. */
  readonly #uidsByKey = new Map<string, Set<string>>();

  constructor(options: TaskLogStoreOptions) {
    this.directory = options.directory;
    this.maxBytesPerAttempt = options.maxBytesPerAttempt;
    mkdirSync(this.directory, { recursive: true, mode: 0o700 });
  }

  taskDirectory(owner: TaskLogOwner): string {
    return path.join(this.directory, taskLogDirectoryName(owner));
  }

  attemptPath(owner: TaskLogOwner, attempt: number): string {
    return path.join(this.taskDirectory(owner), `${attempt}.log`);
  }

  /** The log of one attempt; `specMaxBytes` (spec.logs.maxBytes) lowers the agent's cap, never raises it. */
  attemptLog(owner: TaskLogOwner, attempt: number, specMaxBytes: number | undefined): AttemptLog {
    const maxBytes = specMaxBytes === undefined ? this.maxBytesPerAttempt : Math.min(specMaxBytes, this.maxBytesPerAttempt);
    this.#remember(owner);
    return { log: this.attemptPath(owner, attempt), maxBytes };
  }

  /**
   * Removes the logs of the Task at namespace/name but the one with uid `keepUid` (undefined: all
   * of them): called once the Task is gone, or made again under its name.
   */
  async forget(namespace: string, name: string, keepUid?: string): Promise<void> {
    const key = `${namespace}/${name}`;
    const uids = this.#uidsByKey.get(key);
    if (uids === undefined) return;
    for (const uid of [...uids]) {
      if (uid === keepUid) continue;
      uids.delete(uid);
      await rm(this.taskDirectory({ namespace, name, uid }), { recursive: true, force: true });
    }
    if (uids.size === 0) this.#uidsByKey.delete(key);
  }

  /** At start: removes the logs of every Task `exists` says is gone. Returns how many went. */
  async sweep(exists: (owner: TaskLogOwner) => boolean): Promise<number> {
    let removed = 0;
    for (const entry of await this.#entries()) {
      const owner = parseTaskLogDirectoryName(entry);
      if (owner !== undefined && exists(owner)) {
        this.#remember(owner);
        continue;
      }
      await rm(path.join(this.directory, entry), { recursive: true, force: true });
      removed++;
    }
    return removed;
  }

  /**
   * Keeps the node's logs within `maxBytesTotal` (--logs-max-bytes-total): while they hold more,
   * the logs of the finished Task written longest ago go first (a running Task's are never
   * removed). Returns the Task directories removed.
   */
  async evictOldest(maxBytesTotal: number, finished: (owner: TaskLogOwner) => boolean): Promise<number> {
    const tasks: { directory: string; owner: TaskLogOwner; bytes: number; modified: number }[] = [];
    let total = 0;
    for (const entry of await this.#entries()) {
      const owner = parseTaskLogDirectoryName(entry);
      if (owner === undefined) continue;
      const directory = path.join(this.directory, entry);
      let bytes = 0;
      let modified = 0;
      for (const file of await readdir(directory).catch(() => [])) {
        const status = await stat(path.join(directory, file)).catch(() => undefined);
        bytes += status?.size ?? 0;
        modified = Math.max(modified, status?.mtimeMs ?? 0);
      }
      total += bytes;
      tasks.push({ directory, owner, bytes, modified });
    }
    let removed = 0;
    for (const task of tasks.sort((a, b) => a.modified - b.modified)) {
      if (total <= maxBytesTotal) break;
      if (!finished(task.owner)) continue;
      await rm(task.directory, { recursive: true, force: true });
      this.#uidsByKey.get(`${task.owner.namespace}/${task.owner.name}`)?.delete(task.owner.uid);
      total -= task.bytes;
      removed++;
    }
    return removed;
  }

  /**
   * The last `limit` characters the attempt wrote to stderr, read from the end of its log (the
   * pump, not JavaScript, took every byte in): for status.stderrTail.
   */
  async stderrTail(owner: TaskLogOwner, attempt: number, limit = 4096): Promise<string> {
    const joined = await this.#tailText(owner, attempt, 'stderr');
    const codePoints = Array.from(joined);
    return codePoints.length <= limit ? joined : codePoints.slice(-limit).join('');
  }

  /**
   * The end of what the attempt wrote to stdout and stderr, in the order it wrote them, from the
   * last 64 KiB of its log: for status.result under resultPolicy FallbackToLogsOnError.
   */
  async outputTail(owner: TaskLogOwner, attempt: number): Promise<string> {
    return this.#tailText(owner, attempt, undefined);
  }

  /** The lines (of `stream`, or both) in the last records of the attempt's log, joined. */
  async #tailText(owner: TaskLogOwner, attempt: number, stream: 'stdout' | 'stderr' | undefined): Promise<string> {
    const file = this.attemptPath(owner, attempt);
    // Enough records for 4096 characters of one stream unless the other floods the end of the log.
    const window = 64 * 1024;
    let text: string;
    try {
      const size = (await stat(file)).size;
      const handle = await open(file, 'r');
      try {
        const start = Math.max(0, size - window);
        const buffer = Buffer.alloc(size - start);
        await handle.read(buffer, 0, buffer.length, start);
        text = buffer.toString('utf8');
        // Start at a whole record.
        if (start > 0) text = text.slice(text.indexOf('\n') + 1);
      } finally {
        await handle.close();
      }
    } catch {
      return '';
    }
    const parser = new LogLineParser();
    const lines = [...parser.parse(text), ...parser.finish()].filter((line) => (stream === undefined ? line.stream !== 'dropped' : line.stream === stream));
    return lines.map((line) => (line.complete ? `${line.text}\n` : line.text)).join('');
  }

  #remember(owner: TaskLogOwner): void {
    const key = `${owner.namespace}/${owner.name}`;
    let uids = this.#uidsByKey.get(key);
    if (uids === undefined) this.#uidsByKey.set(key, (uids = new Set()));
    uids.add(owner.uid);
  }

  async #entries(): Promise<string[]> {
    try {
      return await readdir(this.directory);
    } catch {
      return [];
    }
  }
}

/** A Task's logs as found on disk: its directory and the attempts with a log, oldest first. */
export interface FoundTaskLogs {
  readonly directory: string;
  readonly owner: TaskLogOwner;
  readonly attempts: readonly number[];
}

/**
 * The logs of the Task namespace/name among `directories` (the agents', `parafork run`'s): of
 * several objects that had the name, here or in different directories, the one written last.
 */
export async function findTaskLogs(directories: readonly string[], namespace: string, name: string): Promise<FoundTaskLogs | undefined> {
  const candidates: { directory: string; owner: TaskLogOwner; modified: number }[] = [];
  for (const directory of directories) {
    let entries: string[];
    try {
      entries = await readdir(directory);
    } catch {
      continue;
    }
    for (const entry of entries) {
      const owner = parseTaskLogDirectoryName(entry);
      if (owner?.namespace !== namespace || owner.name !== name) continue;
      const taskDirectory = path.join(directory, entry);
      const modified = await stat(taskDirectory).then((status) => status.mtimeMs, () => 0);
      candidates.push({ directory: taskDirectory, owner, modified });
    }
  }
  const newest = candidates.sort((a, b) => b.modified - a.modified)[0];
  if (newest === undefined) return undefined;
  const attempts = (await readdir(newest.directory).catch(() => []))
    .map((file) => /^(\d+)\.log$/.exec(file)?.[1])
    .filter((number): number is string => number !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  return { directory: newest.directory, owner: newest.owner, attempts };
}

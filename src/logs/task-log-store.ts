// Where Task logs live on the node and how long: one directory per Task object, named as the
// kubelet names a pod's (/var/log/pods/<namespace>_<name>_<uid>), one log per attempt inside it
// (`<attempt>.log`, and `<attempt>.log.1` once the cap rotates it: native/src/log_file.h). A Task
// deleted and made again under its name is another object with another uid: another directory.
// Logs outlive the agent (they are files under --state-dir) and go with their Task: when the Task
// is gone from the cache (forget), and at start for Tasks that no longer exist (sweep).
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';

import { ArrayIndexLogs, type AttemptLog } from './array-index-logs.js';
import { readOutputTail, readStderrTail } from './log-reader.js';
import { indexLogsDirectoryName, listIndexLogFiles, writeEndedIndexes, type EndedIndexes, type IndexLogFile } from './index-log-layout.js';

export type { AttemptLog } from './array-index-logs.js';

/**
 * Most bytes of ended index logs one Task array keeps (array-log-budget.ts), unless the store is
 * told otherwise: 25 single Tasks' worth at the default --task-log-max-bytes, an eighth of the
 * default --logs-max-bytes-total, so a few large arrays do not push every other Task's logs out.
 */
export const defaultArrayLogMaxBytes = 256 * 2 ** 20;

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
  /** The ended index logs one Task array keeps together (--array-log-max-bytes); default defaultArrayLogMaxBytes. */
  readonly maxBytesPerArray?: number;
}

/**
 * The longest Task name a log directory name holds as it is. A directory entry has at most 255
 * bytes (NAME_MAX): a namespace (a DNS label, at most 63), a uid (at most 64: the apiserver's are
 * UUIDs, 36) and the two `_` leave 126 for the name, which may have up to 253.
 */
const maxVerbatimNameLength = 126;
const maxUidLength = 64;
/** A longer name's first characters kept in the directory name, before `+` and its hash. */
const shortenedNamePrefixLength = 100;
/** In a shortened Task's directory: its full name, for the sweeps that ask whether the Task still exists. */
const fullNameFile = 'task-name';

/**
 * How a Task name stands in its log directory's name: as it is up to 126 characters; past that its
 * first 100, `+` (no DNS name has one) and 16 hex digits of its SHA-256, 117 characters in all.
 */
export function taskLogNameKey(name: string): string {
  if (name.length <= maxVerbatimNameLength) return name;
  return `${name.slice(0, shortenedNamePrefixLength)}+${createHash('sha256').update(name).digest('hex').slice(0, 16)}`;
}

/**
 * A Task's log directory name, `<namespace>_<name>_<uid>` (a long name shortened: taskLogNameKey):
 * namespace and name are DNS labels/subdomains, never with `_`. Throws for an owner whose parts
 * are not (a manifest's metadata is untrusted input): each part must be read back as it went in,
 * so no `/`, `..` or `_` can take a log out of its directory.
 */
export function taskLogDirectoryName(owner: TaskLogOwner): string {
  const entry = `${owner.namespace}_${taskLogNameKey(owner.name)}_${owner.uid}`;
  const parsed = parseTaskLogDirectoryName(entry);
  if (parsed?.namespace !== owner.namespace || parsed.name !== taskLogNameKey(owner.name) || parsed.uid !== owner.uid || owner.uid.length > maxUidLength || Buffer.byteLength(entry) > 255) {
    throw new RangeError(`no log directory for Task ${JSON.stringify(`${owner.namespace}/${owner.name}`)} (uid ${JSON.stringify(owner.uid)}): namespace and name must be DNS names (namespace at most 63 characters), uid at most ${maxUidLength} letters, digits and -`);
  }
  return entry;
}

/**
 * The owner a directory name stands for, or undefined for a name not made by taskLogDirectoryName.
 * For a shortened name (taskLogNameKey) the owner's name is that key: readTaskLogOwner reads the full one.
 */
export function parseTaskLogDirectoryName(entry: string): TaskLogOwner | undefined {
  const match = /^([a-z0-9.-]+)_([a-z0-9.-]+(?:\+[0-9a-f]{16})?)_([A-Za-z0-9-]+)$/.exec(entry);
  return match ? { namespace: match[1] ?? '', name: match[2] ?? '', uid: match[3] ?? '' } : undefined;
}

/**
 * The owner of the log directory `entry` in `directory`, its full name read from inside when the
 * directory name holds a shortened one; undefined when it is not a Task's log directory, or its
 * full name is missing or does not match (both removed by a sweep).
 */
async function readTaskLogOwner(directory: string, entry: string): Promise<TaskLogOwner | undefined> {
  const owner = parseTaskLogDirectoryName(entry);
  if (owner === undefined || !owner.name.includes('+')) return owner;
  const name = await readFile(path.join(directory, entry, fullNameFile), 'utf8').catch(() => undefined);
  return name !== undefined && taskLogNameKey(name) === owner.name ? { ...owner, name } : undefined;
}

/**
 * Removes from `directory` the log directory of every Task `exists` says is gone, and anything else
 * not a Task's log directory unless `keepOthers` (a folder shared with other things). Returns the
 * owners kept and how many entries went.
 */
export async function sweepTaskLogDirectory(directory: string, exists: (owner: TaskLogOwner) => boolean, { keepOthers = false } = {}): Promise<{ kept: TaskLogOwner[]; removed: number }> {
  const kept: TaskLogOwner[] = [];
  let removed = 0;
  for (const entry of await readdir(directory).catch(() => [])) {
    const owner = await readTaskLogOwner(directory, entry);
    if (owner === undefined ? keepOthers : exists(owner)) {
      if (owner !== undefined) kept.push(owner);
      continue;
    }
    await rm(path.join(directory, entry), { recursive: true, force: true });
    removed++;
  }
  return { kept, removed };
}

export class TaskLogStore {
  readonly directory: string;
  readonly maxBytesPerAttempt: number;
  readonly maxBytesPerArray: number;
  /** The uids with a log directory, by namespace/name: forget needs no directory listing. */
  readonly #uidsByKey = new Map<string, Set<string>>();
  /** The index logs of the arrays run in this life of the agent, by Task directory. */
  readonly #arrays = new Map<string, ArrayIndexLogs>();
  #diskUsage: { files: number; bytes: number } | undefined;

  constructor(options: TaskLogStoreOptions) {
    this.directory = options.directory;
    this.maxBytesPerAttempt = options.maxBytesPerAttempt;
    this.maxBytesPerArray = options.maxBytesPerArray ?? defaultArrayLogMaxBytes;
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
    this.#recordFullName(owner);
    return { log: this.attemptPath(owner, attempt), maxBytes };
  }

  /**
   * The index logs of the Task array `owner` (issue 17): made at the array's first launch in this
   * life of the agent. `failedIndex` tells the budget which logs an earlier life left are failures.
   */
  arrayLogs(owner: TaskLogOwner, options: { readonly failedIndex?: (index: number) => boolean; readonly onRemoveError?: (error: Error) => void } = {}): ArrayIndexLogs {
    const directory = this.taskDirectory(owner);
    let logs = this.#arrays.get(directory);
    if (logs === undefined) {
      this.#remember(owner);
      mkdirSync(directory, { recursive: true, mode: 0o700 });
      this.#recordFullName(owner);
      logs = new ArrayIndexLogs({ taskDirectory: directory, maxBytesPerAttempt: this.maxBytesPerAttempt, maxBytesPerArray: this.maxBytesPerArray, ...options });
      this.#arrays.set(directory, logs);
    }
    return logs;
  }

  /**
   * Records which indexes of the array `owner` have ended, from a status just written
   * (at most about once a second per array, and once at its end), for readers waiting on an index
   * (index-log-layout.ts). Only for an array whose logs this store made, and only when it changed.
   */
  recordEndedIndexes(owner: TaskLogOwner, ended: EndedIndexes): void {
    const logs = this.#arrays.get(this.taskDirectory(owner));
    const last = logs?.endedIndexes;
    if (logs === undefined || (last?.completed === ended.completed && last.failed === ended.failed && last.arrayEnded === ended.arrayEnded)) return;
    writeEndedIndexes(logs.taskDirectory, ended);
    logs.endedIndexes = ended;
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
      const directory = this.taskDirectory({ namespace, name, uid });
      this.#arrays.delete(directory);
      await rm(directory, { recursive: true, force: true });
    }
    if (uids.size === 0) this.#uidsByKey.delete(key);
  }

  /** At start: removes the logs of every Task `exists` says is gone. Returns how many went. */
  async sweep(exists: (owner: TaskLogOwner) => boolean): Promise<number> {
    const { kept, removed } = await sweepTaskLogDirectory(this.directory, exists);
    for (const owner of kept) this.#remember(owner);
    return removed;
  }

  /** The log files and their bytes as evictOldest (every 30 s in an agent) last found them; undefined before it ran. */
  get diskUsage(): { files: number; bytes: number } | undefined {
    return this.#diskUsage;
  }

  /**
   * Keeps the node's logs within `maxBytesTotal` (--logs-max-bytes-total): while they hold more, the
   * logs of the finished Task written longest ago go first, then the earlier attempts of running
   * Tasks, oldest first (a Task retrying up to backoffLimit 100 keeps a log per attempt: without
   * this, N such Tasks held N times 101 logs whatever the cap). The newest attempt of a running
   * Task, which it may be writing, is never removed. Returns the Task directories removed.
   */
  async evictOldest(maxBytesTotal: number, finished: (owner: TaskLogOwner) => boolean): Promise<number> {
    // What may go, each with its files: a finished Task's directory whole, a running Task's earlier attempt.
    const removable: { paths: string[]; owner: TaskLogOwner; whole: boolean; bytes: number; files: number; modified: number }[] = [];
    let total = 0;
    let totalFiles = 0;
    for (const entry of await this.#entries()) {
      const owner = await readTaskLogOwner(this.directory, entry);
      if (owner === undefined) continue;
      const directory = path.join(this.directory, entry);
      const attempts = new Map<number, { paths: string[]; bytes: number; modified: number }>();
      const found = await regularFiles(directory);
      let { bytes, files, modified } = sizeOf(found);
      for (const file of found) {
        const attempt = /^(\d+)\.log(\.1)?$/.exec(file.name)?.[1];
        if (attempt === undefined) continue;
        const attemptFiles = attempts.get(Number(attempt)) ?? { paths: [], bytes: 0, modified: 0 };
        attemptFiles.paths.push(path.join(directory, file.name));
        attemptFiles.bytes += file.size;
        attemptFiles.modified = Math.max(attemptFiles.modified, file.modified);
        attempts.set(Number(attempt), attemptFiles);
      }
      // An array's index logs (its own budget trims them while it runs): as that budget counts them
      // when the array runs here, else read from disk. They go with the whole directory.
      const array = this.#arrays.get(directory);
      if (array !== undefined) {
        bytes += array.keptBytes;
        files += array.keptFiles;
        modified = Math.max(modified, array.lastEndedAt);
      } else {
        const shardsDirectory = path.join(directory, indexLogsDirectoryName);
        for (const shard of await readdir(shardsDirectory).catch(() => [])) {
          const size = sizeOf(await regularFiles(path.join(shardsDirectory, shard)));
          bytes += size.bytes;
          files += size.files;
          modified = Math.max(modified, size.modified);
        }
      }
      total += bytes;
      totalFiles += files;
      if (finished(owner)) {
        removable.push({ paths: [directory], owner, whole: true, bytes, files, modified });
        continue;
      }
      const newest = Math.max(...attempts.keys());
      for (const [attempt, unit] of attempts) if (attempt !== newest) removable.push({ ...unit, files: unit.paths.length, owner, whole: false });
    }
    let removed = 0;
    for (const unit of removable.sort((a, b) => Number(b.whole) - Number(a.whole) || a.modified - b.modified)) {
      if (total <= maxBytesTotal) break;
      for (const file of unit.paths) await rm(file, { recursive: true, force: true });
      total -= unit.bytes;
      totalFiles -= unit.files;
      if (!unit.whole) continue;
      this.#arrays.delete(unit.paths[0] ?? '');
      this.#uidsByKey.get(`${unit.owner.namespace}/${unit.owner.name}`)?.delete(unit.owner.uid);
      removed++;
    }
    this.#diskUsage = { files: totalFiles, bytes: total };
    return removed;
  }

  /** The last `limit` characters the attempt wrote to stderr: for status.stderrTail. */
  async stderrTail(owner: TaskLogOwner, attempt: number, limit = 4096): Promise<string> {
    return readStderrTail(this.attemptPath(owner, attempt), limit);
  }

  /**
   * The end of what the attempt wrote to stdout and stderr, in the order it wrote them: for
   * status.result under resultPolicy FallbackToLogsOnError.
   */
  async outputTail(owner: TaskLogOwner, attempt: number, limit = 4096): Promise<string> {
    return readOutputTail(this.attemptPath(owner, attempt), undefined, limit);
  }

  /**
   * A Task whose name its directory's name shortens (taskLogNameKey) gets its full name written
   * inside, before its first log: the sweeps read it to ask whether the Task still exists.
   */
  #recordFullName(owner: TaskLogOwner): void {
    if (taskLogNameKey(owner.name) === owner.name) return;
    const directory = this.taskDirectory(owner);
    mkdirSync(directory, { recursive: true, mode: 0o700 });
    writeFileSync(path.join(directory, fullNameFile), owner.name, { mode: 0o600 });
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

/** The regular files in `directory` (not below it), with their sizes and when each was last written. */
async function regularFiles(directory: string): Promise<{ name: string; size: number; modified: number }[]> {
  const found: { name: string; size: number; modified: number }[] = [];
  for (const name of await readdir(directory).catch(() => [])) {
    const status = await stat(path.join(directory, name)).catch(() => undefined);
    if (status?.isFile() === true) found.push({ name, size: status.size, modified: status.mtimeMs });
  }
  return found;
}

/** The bytes and count of `files` and when the newest was written. */
function sizeOf(files: readonly { size: number; modified: number }[]): { bytes: number; files: number; modified: number } {
  return { bytes: files.reduce((sum, file) => sum + file.size, 0), files: files.length, modified: Math.max(0, ...files.map((file) => file.modified)) };
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
    const key = taskLogNameKey(name);
    for (const entry of entries) {
      const owner = parseTaskLogDirectoryName(entry);
      if (owner?.namespace !== namespace || owner.name !== key) continue;
      const taskDirectory = path.join(directory, entry);
      const modified = await stat(taskDirectory).then((status) => status.mtimeMs, () => 0);
      candidates.push({ directory: taskDirectory, owner: { ...owner, name }, modified });
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

/** A Task's log files on disk: each attempt's (a single Task) or each index attempt's (an array). */
export interface TaskLogFiles {
  readonly directory: string;
  readonly owner: TaskLogOwner;
  /** A single Task's attempts, oldest first. */
  readonly attempts: readonly { readonly attempt: number; readonly path: string }[];
  /** An array's index logs, by index then attempt (only those kept: see array-log-budget.ts). */
  readonly indexes: readonly IndexLogFile[];
}

/**
 * Every log file of the Task namespace/name among `directories` (findTaskLogs picks the object),
 * for a reader that prints them all (`parafork run`); undefined when it has none. Lists every
 * shard of an array: seconds at 100,000 kept logs, so not for each progress tick.
 */
export async function listTaskLogFiles(directories: readonly string[], namespace: string, name: string): Promise<TaskLogFiles | undefined> {
  const found = await findTaskLogs(directories, namespace, name);
  if (found === undefined) return undefined;
  return {
    directory: found.directory,
    owner: found.owner,
    attempts: found.attempts.map((attempt) => ({ attempt, path: path.join(found.directory, `${attempt}.log`) })),
    indexes: await listIndexLogFiles(found.directory),
  };
}

// Log directories of parafork instances that share a folder: `parafork run`s in /run/parafork/run-logs,
// `agent --manifests` in <state-dir>/logs beside the cluster agents' <node name> directories. More
// than one may run on a machine at once, with Tasks of the same names, so each writes in a
// directory of its own, `<kind>_<pid>_<random>` (a `_` no node name has: it never names an agent's
// directory), and holds an exclusive flock(2) on it while it lives (src/launcher/file-lock.ts): the
// kernel drops it when the instance ends, even by SIGKILL. An instance that cleans up at start
// touches only the directories whose lock it could take, the ended instances', and holds that lock
// while it removes, so it never removes a live instance's logs nor one being made.
import { mkdirSync, readdirSync, rmdirSync } from 'node:fs';
import { readdir, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

import { FileLock, lockHolder } from '../launcher/file-lock.js';

/** What kind of instance owns a directory: its name's first part. */
export type LogInstanceKind = 'run' | 'manifests';

/** Tries with a new name when another instance's sweep held a fresh directory for a moment. */
const claimAttempts = 5;

function instancePattern(kind: LogInstanceKind): RegExp {
  return new RegExp(`^${kind}_[0-9]+_[0-9a-f]{8}$`);
}

/** A log directory this instance made and holds until release() or its end. */
export class OwnedLogDirectory {
  readonly path: string;
  readonly #lock: FileLock;

  private constructor(directory: string, lock: FileLock) {
    this.path = directory;
    this.#lock = lock;
  }

  /** Makes and locks a directory of this instance's own in `root` (made too, mode 0700: Task output may hold secrets). */
  static claim(root: string, kind: LogInstanceKind): OwnedLogDirectory {
    mkdirSync(root, { recursive: true, mode: 0o700 });
    for (let attempt = 1; ; attempt++) {
      const directory = path.join(root, `${kind}_${process.pid}_${randomBytes(4).toString('hex')}`);
      mkdirSync(directory, { mode: 0o700 });
      let lock: FileLock | undefined;
      try {
        lock = FileLock.tryAcquire(directory);
      } catch (error) {
        // Removed by a sweep that took it between our mkdir and our lock: a new name.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= claimAttempts) throw error;
      }
      if (lock !== undefined) return new OwnedLogDirectory(directory, lock);
      if (attempt >= claimAttempts) throw new Error(`cannot claim a log directory in ${root}: another instance's sweep took each new one`);
    }
  }

  /** Lets another instance's sweep have the directory (the logs stay until then). */
  release(): void {
    this.#lock.release();
  }
}

/**
 * Runs `clean` on each directory of `kind` in `root` whose owner has ended, holding its lock
 * meanwhile (a live instance's, locked, is skipped); then removes the directory if `clean` left
 * it empty. Returns how many directories were removed.
 */
export async function cleanEndedInstances(root: string, kind: LogInstanceKind, clean: (directory: string) => Promise<unknown>): Promise<number> {
  let removed = 0;
  for (const entry of instanceEntries(root, kind)) {
    const directory = path.join(root, entry);
    const lock = tryLock(directory);
    if (lock === undefined) continue; // its instance is alive (or another sweep removed it)
    try {
      await clean(directory);
      if (readdirSync(directory).length === 0) {
        rmdirSync(directory);
        removed++;
      }
    } finally {
      lock.release();
    }
  }
  return removed;
}

/**
 * Keeps the ended instances' directories of `kind` in `root` within `maxBytesTotal` together,
 * removing whole directories, the one written longest ago first (a run's logs go together, as
 * they were made together). Live instances' directories are not counted: each keeps its own
 * within its cap. Returns how many went. Sizing them stats every file (150 ms for 45 runs'
 * 5,000 logs on this machine), so with `minimumIntervalMs` it is done only when no instance did it
 * that recently (a file's mtime in `root` says when).
 */
export async function trimEndedInstances(root: string, kind: LogInstanceKind, maxBytesTotal: number, minimumIntervalMs = 0): Promise<number> {
  if (minimumIntervalMs > 0) {
    const marker = path.join(root, `.${kind}-trimmed`);
    const last = await stat(marker).then((status) => status.mtimeMs, () => 0);
    if (Date.now() - last < minimumIntervalMs) return 0;
    await writeFile(marker, '', { mode: 0o600 });
  }
  const ended: { directory: string; bytes: number; modified: number }[] = [];
  for (const entry of instanceEntries(root, kind)) {
    const directory = path.join(root, entry);
    const lock = tryLock(directory);
    if (lock === undefined) continue;
    try {
      ended.push({ directory, ...(await treeSize(directory)) });
    } finally {
      lock.release();
    }
  }
  let total = ended.reduce((sum, entry) => sum + entry.bytes, 0);
  let removed = 0;
  for (const entry of ended.sort((a, b) => a.modified - b.modified)) {
    if (total <= maxBytesTotal) break;
    const lock = tryLock(entry.directory);
    if (lock === undefined) continue;
    try {
      await rm(entry.directory, { recursive: true, force: true });
    } finally {
      lock.release();
    }
    total -= entry.bytes;
    removed++;
  }
  return removed;
}

/** Every instance directory of `kind` in `root`, live or ended: where a reader looks. */
export function instanceLogDirectories(root: string, kind: LogInstanceKind): string[] {
  return instanceEntries(root, kind).map((entry) => path.join(root, entry));
}

function instanceEntries(root: string, kind: LogInstanceKind): string[] {
  const pattern = instancePattern(kind);
  try {
    return readdirSync(root, { withFileTypes: true }).filter((entry) => entry.isDirectory() && pattern.test(entry.name)).map((entry) => entry.name);
  } catch {
    return [];
  }
}

/** The lock of an ended instance's directory; undefined while its instance lives, or once it is gone. */
function tryLock(directory: string): FileLock | undefined {
  try {
    return FileLock.tryAcquire(directory);
  } catch {
    return undefined;
  }
}

/** The bytes of the regular files below `directory`, and when the newest was written. */
async function treeSize(directory: string): Promise<{ bytes: number; modified: number }> {
  let bytes = 0;
  let modified = 0;
  for (const entry of await readdir(directory, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (!entry.isFile()) continue;
    const status = await stat(path.join(entry.parentPath, entry.name)).catch(() => undefined);
    if (status === undefined) continue;
    bytes += status.size;
    modified = Math.max(modified, status.mtimeMs);
  }
  return { bytes, modified };
}

/** Another live agent keeps the logs (and launch journal) of this node name in this --state-dir. */
export class NodeStateInUseError extends Error {
  readonly code = 'ERR_PARAFORK_STATE_IN_USE';

  constructor(nodeName: string, stateDirectory: string, directory: string) {
    const holder = lockHolder(directory);
    const owner = holder === undefined ? 'a process this one cannot see (another container\'s pid namespace)' : `pid ${holder.pid}${holder.command === undefined ? '' : `: ${holder.command}`}`;
    super(`another running agent keeps node ${nodeName}'s Task logs and launch journal in --state-dir ${stateDirectory} (${directory}), ${owner}: each would sweep the other's logs as Tasks it does not know; give this one another --state-dir or --node-name, or stop that one first`);
    this.name = 'NodeStateInUseError';
  }
}

/**
 * The cluster agent's hold on its node's log directory in --state-dir (made here: mode 0700),
 * which also stands for the launch journal beside it: a second agent of the same node name on the
 * same --state-dir (another cluster's, given another --cgroup-parent) is refused with
 * NodeStateInUseError. Undefined where the directory cannot be made or opened (the logs are off then too).
 */
export function holdNodeLogDirectory(stateDirectory: string, nodeName: string, directory: string): FileLock | undefined {
  let lock: FileLock | undefined;
  try {
    mkdirSync(directory, { recursive: true, mode: 0o700 });
    lock = FileLock.tryAcquire(directory);
  } catch {
    return undefined; // not writable or not readable here: no logs, and nothing of another's to sweep
  }
  if (lock === undefined) throw new NodeStateInUseError(nodeName, stateDirectory, directory);
  return lock;
}

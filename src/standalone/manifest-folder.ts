// A folder of Task manifests kept in step with a Task store, as the kubelet keeps static pods in
// step with its manifest folder: a Task that appears in a file is added, one whose manifest changes
// is replaced (its process ended, a new one run), one whose file or document goes away is deleted
// (its process stopped first). A file that does not parse or validate is reported once per
// version, and the Tasks it last held stay as they were: bad input loses nothing.
//
// Changes are seen through inotify (fs.watch) and, because inotify misses some (network
// filesystems, editors that swap files, a folder replaced by a ConfigMap's symlink flip), by a full
// rescan every `rescanIntervalMs` too, as the kubelet does every 20 s.
import { watch, statSync, type FSWatcher } from 'node:fs';

import type { Logger } from 'pino';

import type { Task } from '../api/task.js';
import { loadedTaskKey, loadTaskFile, manifestFiles, withoutTerminalControls, type LoadedTask } from './manifest-loader.js';

/** Where the folder's Tasks go: InMemoryTasks in the agent. */
export interface TaskStore {
  put(task: Task): void;
  delete(key: string): void;
}

export interface ManifestFolderOptions {
  readonly directory: string;
  readonly store: TaskStore;
  readonly logger: Logger;
  /** A full rescan this often, whatever inotify said (default 20 s). */
  readonly rescanIntervalMs?: number;
  /** Quiet time after a change before the folder is read, so a file being written is read once, whole. */
  readonly settleMs?: number;
}

interface FileState {
  /** mtime and size the file had when last read: unchanged files are not read again. */
  readonly stamp: string;
  /** The Tasks of its last good version (a bad version keeps them). */
  readonly tasks: readonly LoadedTask[];
}

export class ManifestFolder {
  readonly #options: ManifestFolderOptions;
  readonly #files = new Map<string, FileState>();
  /** What the store holds from this folder: key -> the manifest text it was made from. */
  readonly #applied = new Map<string, string>();
  #watcher: FSWatcher | undefined;
  #rescanTimer: NodeJS.Timeout | undefined;
  #settleTimer: NodeJS.Timeout | undefined;
  #scans = 0;

  constructor(options: ManifestFolderOptions) {
    this.#options = options;
  }

  /** Tasks the folder holds now. */
  get size(): number {
    return this.#applied.size;
  }

  /** Completed scans of the folder (the first happens in start()). */
  get scans(): number {
    return this.#scans;
  }

  /** Reads the folder once, then follows it. Throws if it is not a readable folder. */
  start(): void {
    if (!statSync(this.#options.directory).isDirectory()) throw new Error(`${this.#options.directory} is not a directory`);
    this.scan();
    try {
      this.#watcher = watch(this.#options.directory, { persistent: false }, () => this.#scheduleScan());
      this.#watcher.on('error', (error) => {
        this.#options.logger.warn({ err: error.message, directory: this.#options.directory }, 'manifest folder watch failed; rescanning on the timer only');
        this.#watcher?.close();
        this.#watcher = undefined;
      });
    } catch (error) {
      this.#options.logger.warn({ err: (error as Error).message, directory: this.#options.directory }, 'cannot watch the manifest folder; rescanning on the timer only');
    }
    this.#rescanTimer = setInterval(() => this.scan(), this.#options.rescanIntervalMs ?? 20_000);
    this.#rescanTimer.unref();
  }

  stop(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    clearInterval(this.#rescanTimer);
    clearTimeout(this.#settleTimer);
  }

  /** Reads what changed and brings the store in step. */
  scan(): void {
    const { logger } = this.#options;
    let files: string[];
    try {
      files = manifestFiles(this.#options.directory);
    } catch (error) {
      logger.error({ err: (error as Error).message, directory: this.#options.directory }, 'cannot read the manifest folder; keeping its Tasks as they are');
      return;
    }
    for (const file of this.#files.keys()) if (!files.includes(file)) this.#files.delete(file);
    for (const file of files) this.#readFile(file);

    // The first file (in name order) to define a key wins; a later one is an error, reported once.
    const wanted = new Map<string, LoadedTask>();
    for (const file of files) {
      for (const loaded of this.#files.get(file)?.tasks ?? []) {
        const key = loadedTaskKey(loaded);
        const first = wanted.get(key);
        if (first) this.#reportOnce(`${loaded.source} duplicate`, { file: withoutTerminalControls(loaded.source), task: key, firstIn: withoutTerminalControls(first.source) }, 'Task defined twice in the manifest folder; the later definition is ignored');
        else wanted.set(key, loaded);
      }
    }
    for (const [key, loaded] of wanted) {
      const text = JSON.stringify(loaded.task);
      if (this.#applied.get(key) === text) continue;
      logger.info({ task: key, source: loaded.source }, this.#applied.has(key) ? 'manifest changed: replacing the Task' : 'manifest added');
      this.#applied.set(key, text);
      this.#options.store.put(loaded.task);
    }
    for (const key of [...this.#applied.keys()]) {
      if (wanted.has(key)) continue;
      logger.info({ task: key }, 'manifest removed: deleting the Task');
      this.#applied.delete(key);
      this.#options.store.delete(key);
    }
    this.#scans++;
  }

  #readFile(file: string): void {
    let stamp: string;
    try {
      const stats = statSync(file);
      stamp = `${stats.mtimeMs}:${stats.size}:${stats.ino}`;
    } catch {
      this.#files.delete(file); // gone between the listing and now
      return;
    }
    const previous = this.#files.get(file);
    if (previous?.stamp === stamp) return;
    try {
      this.#files.set(file, { stamp, tasks: loadTaskFile(file) });
    } catch (error) {
      const message = (error as Error).message;
      // The name is the author's: JSON escapes its C0 controls in the log line, not DEL or C1 (ManifestError).
      this.#options.logger.error({ err: message, file: withoutTerminalControls(file) }, 'invalid manifest: its Tasks are kept as they were until the file is fixed');
      this.#files.set(file, { stamp, tasks: previous?.tasks ?? [] });
    }
  }

  readonly #reported = new Set<string>();

  #reportOnce(identity: string, fields: Record<string, unknown>, message: string): void {
    if (this.#reported.has(identity)) return;
    this.#reported.add(identity);
    this.#options.logger.error(fields, message);
  }

  #scheduleScan(): void {
    clearTimeout(this.#settleTimer);
    this.#settleTimer = setTimeout(() => this.scan(), this.#options.settleMs ?? 200);
  }
}

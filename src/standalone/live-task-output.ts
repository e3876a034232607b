// `parafork run`'s live output: each Task's stdout and stderr lines while the Task runs, prefixed
// by its name as `docker compose up` prefixes its services' (every name padded to one width, a
// colour per Task on a terminal). A stderr line has `!` where a stdout line has `|`, so the two
// streams stay apart without colour, in a file or a pipe.
//
// The lines come from the Tasks' logs, not from pipes of their own: the native log pump keeps the
// bytes off the JS thread and caps them, and what is printed is what `parafork logs` shows later.
// Each poll looks at the logs still growing (a stat each), reads what they gained (bounded per
// poll), and writes it in one piece; a log is let go once its end chunk is read.
//
// A Task array's indexes are printed too, each line after `name[index]`. An index's log is made at
// its first byte (src/logs/array-index-logs.ts), so only indexes that write have one, and it is
// found by looking at the array's shard directories (index-log-layout.ts): a stat of each (one per
// 1,000 indexes) a poll, and a listing only of a shard that changed. An array of silent indexes
// costs one stat per shard a poll, whatever their number (docs/benchmarks.md, "Task output printed live").
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

import type { Task } from '../api/task.js';
import { indexLogsDirectoryName, parseIndexLogFileName } from '../logs/index-log-layout.js';
import type { LogLine } from '../logs/log-format.js';
import { PolledLog } from '../logs/polled-log.js';
import type { TaskLogOwner } from '../logs/task-log-store.js';

/** One log to print, and how its lines are labelled. */
export interface TaskOutputSource {
  /** Before each line: the Task's name (an array's index logs would be `name[17]`). */
  readonly label: string;
  /** The Task it belongs to (namespace/name): one colour per Task. */
  readonly task: string;
  readonly file: string;
  /** A line of parafork's own printed before the log's (a retry's `[parafork: attempt 2]`). */
  readonly heading?: string;
}

export interface LiveTaskOutputOptions {
  /** A Task's logs from attempt `fromAttempt` on (taskOutputSources, bound to the run's log store). */
  readonly sources: (task: Task, fromAttempt: number) => readonly TaskOutputSource[];
  /**
   * A Task array's log directory and label (its indexes' lines go after `label[index]`);
   * undefined: its indexes are not printed.
   */
  readonly arrayLogs?: (task: Task) => { readonly directory: string; readonly label: string } | undefined;
  readonly write: (text: string) => void;
  /** ANSI colours (a terminal that did not ask for none: NO_COLOR). */
  readonly colors: boolean;
  /** Every label is padded to this width. */
  readonly labelWidth: number;
  /** Called before anything is written: a terminal's progress line is cleared there. */
  readonly beforeWrite?: () => void;
  /** About how many bytes of log one poll reads over all logs; the rest waits for the next. */
  readonly maxBytesPerPoll?: number;
  /** About how long one poll may hold the event loop (its reads are synchronous); default 10 ms. */
  readonly maxMillisecondsPerPoll?: number;
}

/**
 * 5 MiB/s at five polls a second: more than anyone reads, and a write to a terminal or a pipe is
 * synchronous, so a slow one holds the event loop for at most this much a poll. A Task writing
 * faster has its log rotate under the reader, which then says how many bytes it did not print.
 */
const defaultMaxBytesPerPoll = 2 ** 20;
/** No log gets less of a poll's budget than this, however many grow at once. */
const minimumBytesPerLog = 16 * 1024;
/** The reconciler shares the event loop: a poll of a thousand logs on a loaded machine stops here. */
const defaultMaxMillisecondsPerPoll = 10;

// docker compose's order: cyan, yellow, green, magenta, blue, then their bright forms.
const palette = ['36', '33', '32', '35', '34', '96', '93', '92', '95', '94'];
const stderrColour = '31';

/** A shard directory's mtime is trusted to say "nothing new" only once it is this old: the kernel's clock for it is coarse. */
const settledShardMs = 100;

/** A Task array whose index logs are looked for. */
interface WatchedArray {
  readonly task: string;
  readonly label: string;
  /** Its `indexes/` directory. */
  readonly root: string;
  /** Each shard's mtime when it was last listed. */
  readonly listedAt: Map<string, number>;
}

interface Followed {
  readonly log: PolledLog;
  readonly source: TaskOutputSource;
  readonly stdoutPrefix: string;
  readonly stderrPrefix: string;
  headingShown: boolean;
}

export class LiveTaskOutput {
  readonly #options: LiveTaskOutputOptions;
  readonly #files = new Set<string>();
  readonly #colours = new Map<string, string>();
  /** Attempts whose logs are followed, by Task uid. */
  readonly #attemptsFollowed = new Map<string, number>();
  /** The logs not yet ended, in the order they were followed. */
  #growing: Followed[] = [];
  /** Where the next poll starts, when the last one ran out of its budget. */
  #cursor = 0;
  /** The arrays whose index logs are looked for, by Task uid. */
  readonly #arrays = new Map<string, WatchedArray>();

  constructor(options: LiveTaskOutputOptions) {
    this.#options = options;
  }

  /** Follows the logs the Tasks began since the last update, then prints what all of them gained. */
  update(tasks: readonly Task[]): void {
    for (const task of tasks) {
      const attempts = task.status?.attempts ?? 0;
      const uid = task.metadata.uid ?? '';
      if (task.spec.completions !== undefined) {
        this.#watchArray(task, uid);
        continue;
      }
      const followed = this.#attemptsFollowed.get(uid) ?? 0;
      if (attempts <= followed) continue;
      for (const source of this.#options.sources(task, followed + 1)) this.follow(source);
      this.#attemptsFollowed.set(uid, attempts);
    }
    this.#findIndexLogs();
    this.poll();
  }

  #watchArray(task: Task, uid: string): void {
    if (this.#arrays.has(uid)) return;
    const logs = this.#options.arrayLogs?.(task);
    if (logs === undefined) return;
    const key = `${task.metadata.namespace ?? 'default'}/${task.metadata.name ?? ''}`;
    this.#arrays.set(uid, { task: key, label: logs.label, root: path.join(logs.directory, indexLogsDirectoryName), listedAt: new Map() });
  }

  /** Follows the index logs made since the last look: a stat per shard, a listing of those that changed. */
  #findIndexLogs(): void {
    const now = Date.now();
    for (const array of this.#arrays.values()) {
      let shards: string[];
      try {
        shards = readdirSync(array.root);
      } catch {
        continue; // no index has written yet
      }
      for (const shard of shards) {
        if (!/^[0-9]+$/.test(shard)) continue;
        const directory = path.join(array.root, shard);
        let modified: number;
        let files: string[];
        try {
          modified = statSync(directory).mtimeMs;
          if (array.listedAt.get(shard) === modified) continue;
          files = readdirSync(directory);
        } catch {
          continue;
        }
        // A log made in the same clock tick as this listing would not change the mtime: look again next time.
        if (now - modified >= settledShardMs) array.listedAt.set(shard, modified);
        const logs = files.map((file) => ({ file, log: parseIndexLogFileName(file) })).filter((entry) => entry.log !== undefined) as { file: string; log: { index: number; attempt: number } }[];
        for (const { file, log } of logs.sort((a, b) => a.log.index - b.log.index || a.log.attempt - b.log.attempt)) {
          this.follow({ label: `${array.label}[${log.index}]`, task: array.task, file: path.join(directory, file), ...(log.attempt > 1 ? { heading: `[parafork: attempt ${log.attempt}]` } : {}) });
        }
      }
    }
  }

  /** Starts printing a log (once: a file already followed is ignored). */
  follow(source: TaskOutputSource): void {
    if (this.#files.has(source.file)) return;
    this.#files.add(source.file);
    const colour = this.#colourOf(source.task);
    const label = source.label.padEnd(this.#options.labelWidth);
    const paint = (text: string, code: string | undefined): string => (code === undefined ? text : `\x1b[${code}m${text}\x1b[0m`);
    this.#growing.push({
      log: new PolledLog(source.file),
      source,
      stdoutPrefix: `${paint(`${label} |`, colour)} `,
      stderrPrefix: `${paint(label, colour)} ${paint('!', colour === undefined ? undefined : stderrColour)} `,
      headingShown: false,
    });
  }

  /**
   * Prints what the followed logs gained since the last poll, up to the poll's budget of bytes
   * and time; the next poll goes on from the first log this one did not look at.
   */
  poll(): void {
    const growing = this.#growing;
    if (growing.length === 0) return;
    const budget = this.#options.maxBytesPerPoll ?? defaultMaxBytesPerPoll;
    const share = Math.max(minimumBytesPerLog, Math.floor(budget / growing.length));
    const deadline = performance.now() + (this.#options.maxMillisecondsPerPoll ?? defaultMaxMillisecondsPerPoll);
    const out: string[] = [];
    let spent = 0;
    let visited = 0;
    for (; visited < growing.length && spent < budget && (visited === 0 || performance.now() < deadline); visited++) {
      const followed = growing[(this.#cursor + visited) % growing.length] as Followed;
      spent += this.#read(followed, share, out);
    }
    this.#cursor = (this.#cursor + visited) % growing.length;
    this.#letGoOfEnded();
    this.#write(out);
  }

  /** Once the Tasks' runtime has stopped (every log closed): prints the rest of every log. */
  finish(): void {
    this.#findIndexLogs();
    const out: string[] = [];
    for (const followed of this.#growing) {
      this.#read(followed, Number.POSITIVE_INFINITY, out);
      // Cut short (an agent that died mid-write has no end chunk): what there is, as it is.
      if (!followed.log.ended) this.#lines(followed, followed.log.finish(), out);
    }
    this.#growing = [];
    this.#write(out);
  }

  /** Reads one log into `out`; returns the bytes of text added. */
  #read(followed: Followed, maxBytes: number, out: string[]): number {
    const before = out.length;
    if (!followed.headingShown) {
      followed.headingShown = true;
      if (followed.source.heading !== undefined) out.push(`${followed.stdoutPrefix}${followed.source.heading}\n`);
    }
    this.#lines(followed, followed.log.read(maxBytes), out);
    // The end chunk: a last line the Task left without a newline is complete now.
    if (followed.log.ended) this.#lines(followed, followed.log.finish(), out);
    let bytes = 0;
    for (let index = before; index < out.length; index++) bytes += (out[index] as string).length;
    return bytes;
  }

  #lines(followed: Followed, lines: readonly LogLine[], out: string[]): void {
    for (const line of lines) out.push(`${line.stream === 'stderr' ? followed.stderrPrefix : followed.stdoutPrefix}${line.text}\n`);
  }

  #letGoOfEnded(): void {
    if (!this.#growing.some((followed) => followed.log.ended)) return;
    this.#growing = this.#growing.filter((followed) => !followed.log.ended);
    this.#cursor = 0;
  }

  #write(out: readonly string[]): void {
    if (out.length === 0) return;
    this.#options.beforeWrite?.();
    this.#options.write(out.join(''));
  }

  #colourOf(task: string): string | undefined {
    if (!this.#options.colors) return undefined;
    let colour = this.#colours.get(task);
    if (colour === undefined) {
      colour = palette[this.#colours.size % palette.length] ?? '36';
      this.#colours.set(task, colour);
    }
    return colour;
  }
}

/** How a run's Tasks are labelled: by name, or namespace/name when the run spans namespaces. */
export function taskLabels(tasks: readonly Task[]): (task: Task) => string {
  const namespaces = new Set(tasks.map((task) => task.metadata.namespace ?? 'default'));
  return namespaces.size > 1 ? (task) => `${task.metadata.namespace ?? 'default'}/${task.metadata.name ?? ''}` : (task) => task.metadata.name ?? '';
}

/**
 * The logs a Task has so far from attempt `fromAttempt` on, oldest first: one per attempt that
 * started (status.attempts). None for an array: its indexes' logs are found as they are made
 * (LiveTaskOutputOptions.arrayLogs).
 */
export function taskOutputSources(task: Task, fromAttempt: number, label: string, attemptPath: (owner: TaskLogOwner, attempt: number) => string): TaskOutputSource[] {
  if (task.spec.completions !== undefined) return [];
  const owner = { namespace: task.metadata.namespace ?? 'default', name: task.metadata.name ?? '', uid: task.metadata.uid ?? '' };
  const sources: TaskOutputSource[] = [];
  for (let attempt = fromAttempt; attempt <= (task.status?.attempts ?? 0); attempt++) {
    sources.push({ label, task: `${owner.namespace}/${owner.name}`, file: attemptPath(owner, attempt), ...(attempt > 1 ? { heading: `[parafork: attempt ${attempt}]` } : {}) });
  }
  return sources;
}

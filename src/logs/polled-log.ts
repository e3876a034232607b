// One attempt's log read a piece at a time as it grows, for a reader that follows many logs at once
// (`parafork run` prints up to a thousand running Tasks' output live). Nothing is held open
// between reads: log-reader.ts's follow keeps a file handle and a pending read per log, which for a
// run's Tasks would be bounded only by how many run. A look at a log that has not grown is one
// stat(2); one that has grown is opened, read from where the last read stopped, and closed.
//
// Synchronous on purpose: the logs are on local disk or tmpfs (/run), where a stat or a read of
// what the pump has just written costs microseconds, less than a promise's round trip through
// libuv's thread pool (measured in docs/benchmarks.md, "Task output printed live"); the caller
// bounds each read (maxBytes) so one busy log cannot hold the event loop.
import { closeSync, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';

import { LogLineParser, type LogLine } from './log-format.js';

/** Longest line given whole; past it a line is given in pieces (LogLineParser's maxLineLength). */
const maxLineLength = 64 * 1024;

export class PolledLog {
  readonly file: string;
  readonly #parser = new LogLineParser({ maxLineLength });
  /** The file being read (fileIdentity): another at `file` means the pump rotated it to `file`.1. */
  #identity: string | undefined;
  #position = 0;

  constructor(file: string) {
    this.file = file;
  }

  /** The log's end chunk was read: the task's pipes were closed, nothing more will come. */
  get ended(): boolean {
    return this.#parser.ended;
  }

  /**
   * The lines the log gained since the last read, reading at most about `maxBytes` of it (what is
   * left is read next time). A log not written yet gives none.
   */
  read(maxBytes: number): LogLine[] {
    if (this.ended) return [];
    const now = statSync(this.file, { throwIfNoEntry: false });
    if (now === undefined || (fileIdentity(now) === this.#identity && now.size === this.#position)) return [];
    let descriptor: number;
    try {
      descriptor = openSync(this.file, 'r');
    } catch {
      return []; // gone since the stat: removed with its Task
    }
    let lines: LogLine[] = [];
    try {
      const status = fstatSync(descriptor);
      const identity = fileIdentity(status);
      if (identity !== this.#identity) {
        // First read: what `file`.1 holds came before. Rotated since the last read: the rest of the
        // file read so far is `file`.1 now (unless it was rotated twice, when the next file's
        // offset chunk tells the parser what was dropped).
        // The whole of `file`.1 on a first read: concat, as its lines may be more than a call's
        // arguments can hold.
        lines = this.#parser.parse(this.#rotatedPart());
        // A chunk that file left cut short (a read that caught the pump mid-write is read on: this
        // is only once the file will not grow) is not read on into the next.
        this.#parser.endOfFile();
        this.#identity = identity;
        this.#position = 0;
      }
      const fresh = readFrom(descriptor, this.#position, status.size, maxBytes);
      this.#position += fresh.length;
      // The parser keeps what the read cut short of a chunk (or a character) for the next.
      lines = lines.concat(this.#parser.parse(fresh));
    } finally {
      closeSync(descriptor);
    }
    return lines;
  }

  /** What the log left without a newline, once it will not grow any more (its task's run is over). */
  finish(): LogLine[] {
    return this.#parser.finish();
  }

  /** All of `file`.1 before the first read; the rest of the file being read once it was rotated. */
  #rotatedPart(): Buffer {
    const rotated = `${this.file}.1`;
    // Most logs are never rotated: a stat that finds nothing costs no exception, an open would.
    if (statSync(rotated, { throwIfNoEntry: false }) === undefined) return Buffer.alloc(0);
    let descriptor: number;
    try {
      descriptor = openSync(rotated, 'r');
    } catch {
      return Buffer.alloc(0);
    }
    try {
      const status = fstatSync(descriptor);
      if (this.#identity === undefined) return readFrom(descriptor, 0, status.size, Number.POSITIVE_INFINITY);
      return fileIdentity(status) === this.#identity ? readFrom(descriptor, this.#position, status.size, Number.POSITIVE_INFINITY) : Buffer.alloc(0);
    } finally {
      closeSync(descriptor);
    }
  }
}

/**
 * Which file this is: its inode and birth time. The inode alone is not enough: the pump unlinks
 * the oldest file as it rotates, and the next file it makes may get the freed inode number back.
 */
function fileIdentity(status: Stats): string {
  return `${status.ino}:${status.birthtimeMs}`;
}

/** Up to `maxBytes` from `position` of a file `size` bytes long (as fstat said a moment ago). */
function readFrom(descriptor: number, position: number, size: number, maxBytes: number): Buffer {
  const length = Math.max(0, Math.min(size - position, maxBytes));
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const read = readSync(descriptor, buffer, filled, length - filled, position + filled);
    if (read === 0) break;
    filled += read;
  }
  return buffer.subarray(0, filled);
}

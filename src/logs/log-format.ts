// Reading the task logs the native log pump writes (native/src/log_file.h): CRI-format records,
//   <RFC 3339 nano timestamp> <stdout|stderr|parafork> <P|F> <payload>
// across the log's two files (`N.log.1`, then `N.log`), joined back into the lines the task wrote.
// `parafork` records are the pump's own: `offset N` (the task had written N bytes before the next
// record: fewer seen means the cap dropped the rest) and `end N` (the log is complete).

export type LogStreamName = 'stdout' | 'stderr';

/** One line as the task wrote it (or a note of the log's own: bytes the cap dropped). */
export interface LogLine {
  /** The time the line's first record was read, RFC 3339 with nanoseconds. */
  readonly time: string;
  /** `dropped`: not output, a note that `droppedBytes` of output were dropped here by the cap. */
  readonly stream: LogStreamName | 'dropped';
  /** Without its newline. */
  readonly text: string;
  /** False for the last line of a log that did not end it with a newline. */
  readonly complete: boolean;
  readonly droppedBytes?: number;
}

const recordPattern = /^(\S+) (stdout|stderr|parafork) ([PF]) (.*)$/s;

/**
 * Turns records into lines, keeping what is needed across calls: a line continued in a later read
 * (P records), and how many payload bytes it has seen (against the pump's offsets).
 */
export class LogLineParser {
  readonly #partial = new Map<LogStreamName, { time: string; text: string }>();
  readonly #maxLineLength: number;
  #seenBytes = 0;
  #ended = false;

  /**
   * `maxLineLength`: a line not ended by then is given as it stands (complete: false) and what
   * follows begins another, so a task that never writes a newline cannot grow one line without
   * bound in a reader that keeps up with its log (a whole log is at most its cap anyway).
   */
  constructor(options: { readonly maxLineLength?: number } = {}) {
    this.#maxLineLength = options.maxLineLength ?? Number.POSITIVE_INFINITY;
  }

  /** True once the log's end record was read: it is complete, and nothing follows. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Lines the records of `text` (whole records, newline-separated) complete. */
  parse(text: string): LogLine[] {
    const lines: LogLine[] = [];
    for (const record of text.split('\n')) {
      if (record === '') continue;
      const match = recordPattern.exec(record);
      if (!match) continue; // not ours (cut by a crash mid-write): skipped rather than shown wrong
      const [, time = '', stream = '', tag = '', payload = ''] = match;
      if (stream === 'parafork') {
        this.#onMarker(time, payload, lines);
        continue;
      }
      const name = stream as LogStreamName;
      const earlier = this.#partial.get(name);
      const joined = { time: earlier?.time ?? time, text: (earlier?.text ?? '') + payload };
      this.#seenBytes += Buffer.byteLength(payload) + (tag === 'F' ? 1 : 0);
      if (tag === 'P' && joined.text.length >= this.#maxLineLength) {
        this.#partial.delete(name);
        lines.push({ time: joined.time, stream: name, text: joined.text, complete: false });
      } else if (tag === 'P') {
        this.#partial.set(name, joined);
      } else {
        this.#partial.delete(name);
        lines.push({ time: joined.time, stream: name, text: joined.text, complete: true });
      }
    }
    return lines;
  }

  /** What is left once the log is read to its end: lines the task never ended with a newline. */
  finish(): LogLine[] {
    const lines = [...this.#partial].map(([stream, { time, text }]) => ({ time, stream, text, complete: false }));
    this.#partial.clear();
    return lines;
  }

  #onMarker(time: string, payload: string, lines: LogLine[]): void {
    const [kind, count] = payload.split(' ');
    const bytes = Number(count);
    if (!Number.isSafeInteger(bytes)) return;
    if (kind === 'end') this.#ended = true;
    if ((kind === 'offset' || kind === 'end') && bytes > this.#seenBytes) {
      // A line cut by the gap is not joined across it.
      lines.push(...this.finish());
      lines.push({ time, stream: 'dropped', text: `[parafork: ${bytes - this.#seenBytes} bytes of output dropped here by the log's cap]`, complete: true, droppedBytes: bytes - this.#seenBytes });
      this.#seenBytes = bytes;
    }
  }
}

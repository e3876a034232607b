// Reading the task logs the native log pump writes (native/src/log_file.h). A file opens with the
// format line `parafork-log 2`, then holds chunks, each one read of a pipe as the task wrote it:
//   <RFC 3339 nano timestamp> <stdout|stderr|parafork> <length>\n<exactly length bytes>
// A chunk may end mid-line or mid-character: each stream's pieces are joined back into lines here,
// on bytes, and a line is decoded (UTF-8) only once it is whole. A line's time is that of the chunk
// where it began (so `--timestamps` is per chunk: lines read together share one).
// Logs an earlier agent wrote have no format line and hold CRI records instead, one a line:
//   <RFC 3339 nano timestamp> <stdout|stderr|parafork> <P|F> <payload>
// (`F` ends a line, `P` is a piece of one); they are read as chunks of their own (an F record's
// payload with its newline, a P record's without), so an agent upgrade loses no log.
// `parafork` chunks are the pump's own: `offset N` (the task had written N bytes before the next
// chunk: fewer seen means the cap dropped the rest) and `end N` (the log is complete).

export type LogStreamName = 'stdout' | 'stderr';

/** The first line of each file the pump writes in the chunk format. */
export const logFormatLine = 'parafork-log 2\n';
const formatLineBytes = Buffer.from(logFormatLine);

/** One line as the task wrote it (or a note of the log's own: bytes the cap dropped). */
export interface LogLine {
  /** The time of the chunk (or record) the line began in, RFC 3339 with nanoseconds. */
  readonly time: string;
  /** `dropped`: not output, a note that `droppedBytes` of output were dropped here by the cap. */
  readonly stream: LogStreamName | 'dropped';
  /** Without its newline. */
  readonly text: string;
  /** False for the last line of a log that did not end it with a newline. */
  readonly complete: boolean;
  readonly droppedBytes?: number;
}

/** One read of a pipe as the pump wrote it (or one CRI record of an older log). */
export interface LogChunk {
  readonly time: string;
  readonly stream: LogStreamName | 'parafork';
  /** The task's bytes (`parafork`: the marker's text). */
  readonly payload: Buffer;
}

/** The longest header line: a timestamp, `parafork`, a 20-digit length (native/src/log_file.h). */
const maxHeaderBytes = 64;
const headerPattern = /^(\S+) (stdout|stderr|parafork) (\d{1,15})$/;
const recordPrefixPattern = /^(\S+) (stdout|stderr|parafork) ([PF]) /;
const newline = 0x0a;

/**
 * The header that starts at `start` of `bytes`: its chunk's time, stream, where its payload starts
 * and where the next chunk starts (which may lie past `bytes`); 'incomplete' when `bytes` ends
 * inside the header line; undefined when no header starts there.
 */
export function chunkHeaderAt(bytes: Buffer, start: number): { time: string; stream: LogChunk['stream']; payloadStart: number; next: number } | 'incomplete' | undefined {
  const end = bytes.indexOf(newline, start);
  if (end === -1) return bytes.length - start > maxHeaderBytes ? undefined : 'incomplete';
  if (end - start > maxHeaderBytes) return undefined;
  const match = headerPattern.exec(bytes.toString('latin1', start, end));
  if (!match) return undefined;
  const [, time = '', stream = '', length = ''] = match;
  return { time, stream: stream as LogChunk['stream'], payloadStart: end + 1, next: end + 1 + Number(length) };
}

/**
 * The chunk whose header starts at `start` of `bytes`: the chunk and where the next one starts;
 * 'incomplete' when `bytes` ends before it does; undefined when no header starts there.
 */
export function chunkAt(bytes: Buffer, start: number): { chunk: LogChunk; next: number } | 'incomplete' | undefined {
  const header = chunkHeaderAt(bytes, start);
  if (header === undefined || header === 'incomplete') return header;
  if (header.next > bytes.length) return 'incomplete';
  return { chunk: { time: header.time, stream: header.stream, payload: bytes.subarray(header.payloadStart, header.next) }, next: header.next };
}

/**
 * A log file in a format this parafork does not read: its first line names another version of the
 * chunk format (`parafork-log 3`, say: written by a newer parafork, read here after a downgrade).
 * Said, rather than read as CRI records that match nothing, which would leave a follower waiting
 * for an end record it can never see.
 */
export class UnreadableLogFormatError extends Error {
  readonly formatLine: string;
  constructor(formatLine: string) {
    super(`the log was written in the format "${formatLine}" by another parafork version; this one reads "${logFormatLine.trim()}" and the CRI records of earlier ones`);
    this.name = 'UnreadableLogFormatError';
    this.formatLine = formatLine;
  }
}

const formatLinePrefix = Buffer.from('parafork-log ');

/**
 * True when `bytes` (a file's first bytes) open with the chunk format's line, false when they are
 * CRI records; throws UnreadableLogFormatError for another version's format line.
 */
export function startsWithFormatLine(bytes: Buffer): boolean {
  if (bytes.length >= formatLineBytes.length && bytes.subarray(0, formatLineBytes.length).equals(formatLineBytes)) return true;
  if (bytes.length >= formatLinePrefix.length && bytes.subarray(0, formatLinePrefix.length).equals(formatLinePrefix)) {
    const end = bytes.indexOf(newline);
    throw new UnreadableLogFormatError(bytes.toString('latin1', 0, end === -1 ? Math.min(bytes.length, 32) : Math.min(end, 32)));
  }
  return false;
}

/**
 * Cuts a log's bytes, given in pieces as they are read, into chunks, keeping what a piece cut short
 * for the next. Each file says its format in its first line (none: CRI records); `endOfFile` is
 * called between files, so that a chunk a crash cut short is dropped, never read on into the next
 * file as if it were output.
 */
export class LogChunkReader {
  #rest: Buffer = Buffer.alloc(0);
  #chunked: boolean;
  #atFileStart = true;

  /** `chunked`: the bytes start at a chunk of a file in the chunk format (its format line already passed). */
  constructor(options: { readonly chunked?: boolean } = {}) {
    this.#chunked = options.chunked ?? false;
    if (this.#chunked) this.#atFileStart = false;
  }

  /** The chunks `bytes` complete; the payloads are views of `bytes` (or of a copy of the rest and them). */
  push(bytes: Buffer): LogChunk[] {
    const data = this.#rest.length === 0 ? bytes : Buffer.concat([this.#rest, bytes]);
    const chunks: LogChunk[] = [];
    let position = 0;
    if (this.#atFileStart) {
      if (data.length < formatLineBytes.length && formatLineBytes.subarray(0, data.length).equals(data)) {
        this.#rest = Buffer.from(data);
        return chunks; // too short to know yet
      }
      this.#atFileStart = false;
      this.#chunked = startsWithFormatLine(data);
      if (this.#chunked) position = formatLineBytes.length;
    }
    while (position < data.length) {
      const next = this.#chunked ? this.#nextChunk(data, position, chunks) : this.#nextRecord(data, position, chunks);
      if (next === undefined) break;
      position = next;
    }
    // Copied: the rest must not keep the whole read buffer alive.
    this.#rest = Buffer.from(data.subarray(position));
    return chunks;
  }

  /** The file read so far is complete: what it left cut short is dropped, and the next file says its format. */
  endOfFile(): void {
    this.#rest = Buffer.alloc(0);
    this.#atFileStart = true;
  }

  #nextChunk(data: Buffer, position: number, chunks: LogChunk[]): number | undefined {
    const found = chunkAt(data, position);
    if (found === 'incomplete') return undefined;
    if (found === undefined) {
      // Not a header (only a damaged file has one): skipped to the next line rather than shown wrong.
      const end = data.indexOf(newline, position);
      return end === -1 ? undefined : end + 1;
    }
    chunks.push(found.chunk);
    return found.next;
  }

  #nextRecord(data: Buffer, position: number, chunks: LogChunk[]): number | undefined {
    const end = data.indexOf(newline, position);
    if (end === -1) return undefined;
    const match = recordPrefixPattern.exec(data.toString('latin1', position, Math.min(end, position + maxHeaderBytes)));
    // Not a record (cut by a crash mid-write): skipped rather than shown wrong.
    if (match) {
      const [prefix, time = '', stream = '', tag = ''] = match;
      // An F record's newline is the line's own; a marker's newline ends its text.
      const payloadEnd = tag === 'F' ? end + 1 : end;
      chunks.push({ time, stream: stream as LogChunk['stream'], payload: data.subarray(position + prefix.length, payloadEnd) });
    }
    return end + 1;
  }
}

interface PartialLine {
  readonly time: string;
  readonly pieces: Buffer[];
  length: number;
}

/**
 * Turns a log's bytes into lines, keeping what is needed across calls: each stream's line not yet
 * ended, and how many payload bytes it has seen (against the pump's offsets).
 */
export class LogLineParser {
  readonly #chunks: LogChunkReader;
  readonly #partial = new Map<LogStreamName, PartialLine>();
  readonly #maxLineLength: number;
  #seenBytes = 0;
  #ended = false;

  /**
   * `maxLineLength` (bytes): a line not ended by then is given as it stands (complete: false, cut
   * at a character's end) and what follows begins another, so a task that never writes a newline
   * cannot grow one line without bound in a reader that keeps up with its log (a whole log is at
   * most its cap anyway). `chunked`: as LogChunkReader's.
   */
  constructor(options: { readonly maxLineLength?: number; readonly chunked?: boolean } = {}) {
    this.#maxLineLength = options.maxLineLength ?? Number.POSITIVE_INFINITY;
    this.#chunks = new LogChunkReader({ chunked: options.chunked ?? false });
  }

  /** True once the log's end chunk was read: it is complete, and nothing follows. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Lines the next bytes of the log complete (a string: its UTF-8 bytes). */
  parse(bytes: Buffer | string): LogLine[] {
    const lines: LogLine[] = [];
    for (const chunk of this.#chunks.push(typeof bytes === 'string' ? Buffer.from(bytes) : bytes)) this.take(chunk, lines);
    return lines;
  }

  /**
   * The chunks the next bytes of the log complete, not yet taken (`take` or `skip` each, in order):
   * for a reader that looks at them first (a tail).
   */
  chunksOf(bytes: Buffer): LogChunk[] {
    return this.#chunks.push(bytes);
  }

  /** The file read so far is complete (LogChunkReader.endOfFile); lines go on into the next. */
  endOfFile(): void {
    this.#chunks.endOfFile();
  }

  /** Adds the lines `chunk` completes to `lines`. */
  take(chunk: LogChunk, lines: LogLine[]): void {
    if (chunk.stream === 'parafork') {
      this.#onMarker(chunk, lines);
      return;
    }
    const { stream, payload, time } = chunk;
    this.#seenBytes += payload.length;
    let start = 0;
    for (let end = payload.indexOf(newline); end !== -1; end = payload.indexOf(newline, start)) {
      const partial = this.#partial.get(stream);
      if (partial === undefined) {
        lines.push({ time, stream, text: payload.toString('utf8', start, end), complete: true });
      } else {
        this.#partial.delete(stream);
        lines.push({ time: partial.time, stream, text: Buffer.concat([...partial.pieces, payload.subarray(start, end)]).toString('utf8'), complete: true });
      }
      start = end + 1;
    }
    if (start < payload.length) this.#keepPartial(stream, time, payload.subarray(start), lines);
  }

  /**
   * Accounts for `chunk` without giving its lines (they come before those a tail wants): the bytes
   * seen, the end, and where each stream's line not yet ended began.
   */
  skip(chunk: LogChunk): void {
    if (chunk.stream === 'parafork') {
      this.#onMarker(chunk, []);
      return;
    }
    const { stream, payload, time } = chunk;
    this.#seenBytes += payload.length;
    const end = payload.lastIndexOf(newline);
    if (end !== -1) this.#partial.delete(stream);
    const rest = payload.subarray(end + 1);
    if (rest.length === 0) return;
    const partial = this.#partial.get(stream);
    if (partial === undefined) {
      this.#partial.set(stream, { time, pieces: [Buffer.from(rest)], length: rest.length });
    } else {
      partial.pieces.push(Buffer.from(rest));
      partial.length += rest.length;
    }
  }

  /** What is left once the log is read to its end: lines the task never ended with a newline. */
  finish(): LogLine[] {
    const lines = [...this.#partial].map(([stream, { time, pieces }]) => ({ time, stream, text: Buffer.concat(pieces).toString('utf8'), complete: false }));
    this.#partial.clear();
    return lines;
  }

  #keepPartial(stream: LogStreamName, time: string, piece: Buffer, lines: LogLine[]): void {
    const partial = this.#partial.get(stream) ?? { time, pieces: [], length: 0 };
    // Copied: a view would keep the whole read buffer alive.
    partial.pieces.push(Buffer.from(piece));
    partial.length += piece.length;
    this.#partial.set(stream, partial);
    if (partial.length < this.#maxLineLength) return;
    const joined = Buffer.concat(partial.pieces);
    const cut = characterEnd(joined);
    lines.push({ time: partial.time, stream, text: joined.toString('utf8', 0, cut), complete: false });
    if (cut === joined.length) {
      this.#partial.delete(stream);
    } else {
      this.#partial.set(stream, { time, pieces: [joined.subarray(cut)], length: joined.length - cut });
    }
  }

  #onMarker(chunk: LogChunk, lines: LogLine[]): void {
    const [kind, count] = chunk.payload.toString('latin1').trim().split(' ');
    const bytes = Number(count);
    if (!Number.isSafeInteger(bytes)) return;
    if (kind === 'end') this.#ended = true;
    if ((kind === 'offset' || kind === 'end') && bytes > this.#seenBytes) {
      // A line cut by the gap is not joined across it.
      lines.push(...this.finish());
      lines.push({ time: chunk.time, stream: 'dropped', text: `[parafork: ${bytes - this.#seenBytes} bytes of output dropped here by the log's cap]`, complete: true, droppedBytes: bytes - this.#seenBytes });
      this.#seenBytes = bytes;
    }
  }
}

/** The end of the last whole UTF-8 character of `bytes` (its length unless it ends mid-character). */
function characterEnd(bytes: Buffer): number {
  // Back over at most 3 continuation bytes (10xxxxxx) to the lead byte of the last character.
  let lead = bytes.length - 1;
  while (lead > 0 && bytes.length - lead < 4 && ((bytes[lead] ?? 0) & 0xc0) === 0x80) lead -= 1;
  const first = bytes[lead] ?? 0;
  const needed = first >= 0xf0 ? 4 : first >= 0xe0 ? 3 : first >= 0xc0 ? 2 : 1;
  return lead + needed <= bytes.length ? bytes.length : lead;
}

/**
 * How many lines (of `wanted` streams) the chunks from `from` on complete, at least: their
 * newlines. For a tail: the chunks before the first from which the count reaches N need only be
 * skipped (LogLineParser.skip), never decoded.
 */
export function firstChunkForTail(chunks: readonly LogChunk[], tail: number, wanted: (stream: LogStreamName) => boolean): number {
  let count = 0;
  for (let index = chunks.length - 1; index >= 0; index -= 1) {
    const chunk = chunks[index];
    if (chunk === undefined || chunk.stream === 'parafork' || !wanted(chunk.stream)) continue;
    for (let at = chunk.payload.indexOf(newline); at !== -1; at = chunk.payload.indexOf(newline, at + 1)) count += 1;
    if (count >= tail) return index;
  }
  return 0;
}

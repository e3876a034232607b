// Reading one attempt's log as lines: all of it, its last N lines, or followed as it grows until
// the log's end chunk (native/src/log_file.h; log-format.ts reads its format). The files are read
// straight from disk, by the CLI on the node or by the agent for a remote reader; nothing here
// talks to the pump.
import { open, stat, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import { chunkHeaderAt, firstChunkForTail, logFormatLine, LogLineParser, startsWithFormatLine, type LogLine, type LogStreamName } from './log-format.js';

export interface LogReadOptions {
  /** Only this stream's lines (the dropped-output notes are always kept). */
  readonly stream?: LogStreamName;
  /** Only the last this many lines (before following). */
  readonly tail?: number;
  /** Go on with what the task writes until its log is complete (or `signal` aborts). */
  readonly follow?: boolean;
  readonly signal?: AbortSignal;
  /** How often a followed log is looked at; default 200 ms. */
  readonly pollMs?: number;
}

/** The log's lines; the log at `file` (and `file`.1) must exist, or this throws ENOENT. */
export async function* readLogLines(file: string, options: LogReadOptions = {}): AsyncGenerator<LogLine> {
  const parser = new LogLineParser();
  const wanted = wantedBy(options);
  let handle: FileHandle = await open(file, 'r');
  try {
    let inode = (await handle.stat()).ino;
    const older = await readWhole(`${file}.1`);
    const head = await readFrom(handle, 0);
    let position = head.length;
    yield* firstLines(parser, older, head, options);
    if (!options.follow) return;
    while (!parser.ended && options.signal?.aborted !== true) {
      const grown = await readFrom(handle, position);
      position += grown.length;
      if (grown.length === 0) {
        // Rotated: the file we hold became .1; its last bytes (written before the rename) first,
        // then go on with the new one.
        const now = await stat(file).catch(() => undefined);
        if (now !== undefined && now.ino !== inode) {
          const last = await readFrom(handle, position);
          yield* parser.parse(last).filter(wanted);
          parser.endOfFile();
          await handle.close();
          handle = await open(file, 'r');
          inode = (await handle.stat()).ino;
          position = 0;
          continue;
        }
        await sleep(options.pollMs ?? 200, undefined, { signal: options.signal }).catch(() => undefined);
        continue;
      }
      yield* parser.parse(grown).filter(wanted);
    }
    yield* parser.finish().filter(wanted);
  } finally {
    await handle.close();
  }
}

/**
 * The lines of the files as first read (`older`: `file`.1's bytes), all or the last `tail`. For a
 * tail the chunks are cut apart first (one header a chunk) and only those that hold the last lines
 * are decoded: the ones before are skipped (LogLineParser.skip), so a tail of a 10 MiB log costs
 * little more than reading it.
 */
function firstLines(parser: LogLineParser, older: Buffer, head: Buffer, options: LogReadOptions): LogLine[] {
  const finished = (lines: LogLine[]): LogLine[] => (!options.follow || parser.ended ? [...lines, ...parser.finish()] : lines).filter(wantedBy(options));
  if (options.tail === undefined) {
    // concat, not push(...): a whole log may be a hundred thousand lines, past what a call's
    // arguments can hold.
    const lines = parser.parse(older);
    parser.endOfFile();
    return finished(lines.concat(parser.parse(head)));
  }
  const olderChunks = parser.chunksOf(older);
  parser.endOfFile();
  const chunks = olderChunks.concat(parser.chunksOf(head));
  const first = firstChunkForTail(chunks, options.tail, (stream) => options.stream === undefined || stream === options.stream);
  const lines: LogLine[] = [];
  chunks.forEach((chunk, index) => (index < first ? parser.skip(chunk) : parser.take(chunk, lines)));
  const kept = finished(lines);
  return kept.slice(Math.max(0, kept.length - options.tail));
}

/** Whether a line is one `options` asks for (the dropped-output notes always are). */
function wantedBy(options: LogReadOptions): (line: LogLine) => boolean {
  return (line) => options.stream === undefined || line.stream === options.stream || line.stream === 'dropped';
}

/** The line as `parafork logs` prints it. */
export function formatLogLine(line: LogLine, timestamps: boolean): string {
  return `${timestamps ? `${line.time} ` : ''}${line.text}${line.complete ? '\n' : ''}`;
}

async function readWhole(file: string): Promise<Buffer> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    return await readFrom(handle, 0);
  } finally {
    await handle.close();
  }
}

async function readFrom(handle: FileHandle, position: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (;;) {
    const buffer = Buffer.alloc(256 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) break;
    chunks.push(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
  return Buffer.concat(chunks);
}

/**
 * The last `limit` characters an attempt wrote to `stream` (or to both, in the order it wrote them),
 * read from the chunks in the last 64 KiB of its log at `file` (the pump, not JavaScript, took every
 * byte in); '' when there is no log. For status.stderrTail, and status.result under
 * FallbackToLogsOnError.
 */
export async function readOutputTail(file: string, stream: 'stdout' | 'stderr' | undefined, limit: number): Promise<string> {
  let lines: LogLine[];
  try {
    const handle = await open(file, 'r');
    try {
      lines = await tailWindowLines(handle, (await handle.stat()).size);
    } finally {
      await handle.close();
    }
  } catch {
    return '';
  }
  const joined = lines
    .filter((line) => (stream === undefined ? line.stream !== 'dropped' : line.stream === stream))
    .map((line) => (line.complete ? `${line.text}\n` : line.text))
    .join('');
  const codePoints = Array.from(joined);
  return codePoints.length <= limit ? joined : codePoints.slice(-limit).join('');
}

/** Enough output for a status tail of one stream unless the other floods the end of the log. */
const tailWindowBytes = 64 * 1024;

/** The lines of the chunks (or whole records) that reach into the last 64 KiB of a log file `size` bytes long. */
async function tailWindowLines(handle: FileHandle, size: number): Promise<LogLine[]> {
  const windowStart = Math.max(0, size - tailWindowBytes);
  const opening = await readAt(handle, 0, logFormatLine.length);
  if (!startsWithFormatLine(opening)) {
    // An earlier agent's CRI records, one a line: start at the first whole one.
    let bytes = await readAt(handle, windowStart, size - windowStart);
    if (windowStart > 0) bytes = bytes.subarray(bytes.indexOf(0x0a) + 1);
    const parser = new LogLineParser({ chunked: false });
    return [...parser.parse(bytes), ...parser.finish()];
  }
  // Chunks can be told apart only from the file's start: their headers are walked (each read
  // reaches the next header, skipping the payloads between) to the chunk the window begins in,
  // which is read whole. Starting after it instead lost the tail of a Task whose last chunk was
  // larger than the window (a 64 KiB write to stderr, then exit 1: no stderr tail at all).
  let start = logFormatLine.length;
  walk: while (start < windowStart) {
    const bytes = await readAt(handle, start, headerWalkBytes);
    let position = 0;
    for (;;) {
      const header = chunkHeaderAt(bytes, position);
      if (header === undefined) return []; // damaged: no tail rather than a wrong one
      if (header === 'incomplete') {
        if (position === 0) return []; // a header cut short at the end of the file
        break; // the next read begins at this header
      }
      if (start + header.next > windowStart) {
        start += position;
        break walk;
      }
      position = header.next;
      if (position >= bytes.length) break; // the next header lies past this read
    }
    start += position;
  }
  const parser = new LogLineParser({ chunked: true });
  return [...parser.parse(await readAt(handle, start, size - start)), ...parser.finish()];
}

/** How much the header walk reads at a time: many small chunks' headers, or one large chunk's. */
const headerWalkBytes = 16 * 1024;

async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(Math.max(0, length));
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

/** The last `limit` characters an attempt wrote to stderr (readOutputTail). */
export function readStderrTail(file: string, limit: number): Promise<string> {
  return readOutputTail(file, 'stderr', limit);
}

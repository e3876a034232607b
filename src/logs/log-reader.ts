// Reading one attempt's log as lines: all of it, its last N lines, or followed as it grows until
// the log's end record (native/src/log_file.h). The files are read straight from disk, by the CLI
// on the node or by the agent for a remote reader; nothing here talks to the pump.
import { open, stat, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import { LogLineParser, type LogLine, type LogStreamName } from './log-format.js';

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
  const wanted = (line: LogLine): boolean => options.stream === undefined || line.stream === options.stream || line.stream === 'dropped';
  const current = await open(file, 'r');
  let position = 0;
  let rest: Buffer = Buffer.alloc(0);
  let handle: FileHandle = current;
  try {
    let inode = (await handle.stat()).ino;
    const older = await readWhole(`${file}.1`);
    const head = await readFrom(handle, 0);
    position = head.length;
    const { records, remainder } = splitRecords(Buffer.concat([older, head]));
    rest = remainder;
    let lines = parser.parse(records).filter(wanted);
    if (!options.follow || parser.ended) lines.push(...parser.finish().filter(wanted));
    if (options.tail !== undefined) lines = lines.slice(Math.max(0, lines.length - options.tail));
    yield* lines;
    if (!options.follow) return;
    while (!parser.ended && options.signal?.aborted !== true) {
      const grown = await readFrom(handle, position);
      position += grown.length;
      if (grown.length === 0) {
        // Rotated: the file we hold became .1 (read to its end above); go on with the new one.
        const now = await stat(file).catch(() => undefined);
        if (now !== undefined && now.ino !== inode) {
          await handle.close();
          handle = await open(file, 'r');
          inode = (await handle.stat()).ino;
          position = 0;
          continue;
        }
        await sleep(options.pollMs ?? 200, undefined, { signal: options.signal }).catch(() => undefined);
        continue;
      }
      const split = splitRecords(Buffer.concat([rest, grown]));
      rest = split.remainder;
      yield* parser.parse(split.records).filter(wanted);
    }
    yield* parser.finish().filter(wanted);
  } finally {
    await handle.close();
  }
}

/** The line as `parafork logs` prints it. */
export function formatLogLine(line: LogLine, timestamps: boolean): string {
  return `${timestamps ? `${line.time} ` : ''}${line.text}${line.complete ? '\n' : ''}`;
}

/** Whole records as text, and the bytes of one not yet complete (never a character cut in two). */
function splitRecords(bytes: Buffer): { records: string; remainder: Buffer } {
  const end = bytes.lastIndexOf(0x0a) + 1;
  return { records: bytes.toString('utf8', 0, end), remainder: Buffer.from(bytes.subarray(end)) };
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
 * read from the last 64 KiB of its log at `file` (the pump, not JavaScript, took every byte in); ''
 * when there is no log. For status.stderrTail, and status.result under FallbackToLogsOnError.
 */
export async function readOutputTail(file: string, stream: 'stdout' | 'stderr' | undefined, limit: number): Promise<string> {
  // Enough records for `limit` characters of one stream unless the other floods the end of the log.
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
  const joined = lines.map((line) => (line.complete ? `${line.text}\n` : line.text)).join('');
  const codePoints = Array.from(joined);
  return codePoints.length <= limit ? joined : codePoints.slice(-limit).join('');
}

/** The last `limit` characters an attempt wrote to stderr (readOutputTail). */
export function readStderrTail(file: string, limit: number): Promise<string> {
  return readOutputTail(file, 'stderr', limit);
}

// The chunk format of Task logs (native/src/log_file.h) as readers read it (src/logs/log-format.ts,
// log-reader.ts, polled-log.ts): each stream's lines joined across chunks on bytes, a character cut
// between chunks decoded whole, a line timed by the chunk it began in, the two files of a rotation,
// a chunk a crash cut short never shown, an earlier agent's CRI records still read, and a tail that
// decodes only the chunks it needs yet gives what reading the whole log gives.
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { LogLineParser, type LogLine } from '../../src/logs/log-format.js';
import { readLogLines, readOutputTail } from '../../src/logs/log-reader.js';
import { PolledLog } from '../../src/logs/polled-log.js';

type Stream = 'stdout' | 'stderr' | 'parafork';
const timeOf = (second: number): string => `2026-12-06T12:00:${String(second).padStart(2, '0')}.123456789Z`;

/** A file in the chunk format: its format line, then each chunk's header and bytes. */
function chunkFile(...chunks: [Stream, string | Buffer, number?][]): Buffer {
  return Buffer.concat([
    Buffer.from('parafork-log 2\n'),
    ...chunks.flatMap(([stream, payload, second = 0]) => {
      const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
      return [Buffer.from(`${timeOf(second)} ${stream} ${bytes.length}\n`), bytes];
    }),
  ]);
}

const shown = (lines: readonly LogLine[]): string[] => lines.map((line) => `${line.stream}:${line.text}${line.complete ? '' : '…'}`);

let scratch: string;
beforeEach(() => {
  scratch = mkdtempSync(path.join(tmpdir(), 'parafork-log-chunks-'));
});
afterEach(() => {
  rmSync(scratch, { recursive: true, force: true });
});

async function collect(file: string, options: Parameters<typeof readLogLines>[1] = {}): Promise<LogLine[]> {
  const lines: LogLine[] = [];
  for await (const line of readLogLines(file, options)) lines.push(line);
  return lines;
}

describe('the chunk format', () => {
  it('joins a line cut between chunks, and times it by the chunk it began in', () => {
    const parser = new LogLineParser();
    const lines = parser.parse(chunkFile(['stdout', 'one\ntw', 1], ['stdout', 'o\nthr', 2], ['stdout', 'ee\n', 3]));
    expect(lines.map((line) => [line.time, line.text])).toEqual([
      [timeOf(1), 'one'],
      [timeOf(1), 'two'],
      [timeOf(2), 'three'],
    ]);
  });

  it('decodes a character cut between chunks whole', () => {
    const check = Buffer.from('done ✓ ok\n');
    const cut = check.indexOf(0xe2) + 1; // inside the three bytes of ✓
    const parser = new LogLineParser();
    expect(shown(parser.parse(chunkFile(['stdout', check.subarray(0, cut)], ['stdout', check.subarray(cut)])))).toEqual(['stdout:done ✓ ok']);
  });

  it('keeps each stream\'s line not yet ended apart from the other stream\'s', () => {
    const parser = new LogLineParser();
    const lines = parser.parse(chunkFile(['stdout', 'progress '], ['stderr', 'warn'], ['stdout', '50%\n'], ['stderr', 'ing\nlast'], ['parafork', 'end 22\n']));
    expect(shown(lines)).toEqual(['stdout:progress 50%', 'stderr:warning']);
    expect(shown(parser.finish())).toEqual(['stderr:last…']);
    expect(parser.ended).toBe(true);
  });

  it('gives the same lines however the bytes are cut into reads, down to one byte a read', () => {
    const file = chunkFile(['stdout', 'a line\nhalf '], ['stderr', 'é\n'], ['stdout', 'of it\n'], ['parafork', 'end 21\n']);
    const whole = new LogLineParser();
    const expected = shown([...whole.parse(file), ...whole.finish()]);
    expect(expected).toEqual(['stdout:a line', 'stderr:é', 'stdout:half of it']);
    const bytewise = new LogLineParser();
    const lines: LogLine[] = [];
    for (let at = 0; at < file.length; at += 1) lines.push(...bytewise.parse(file.subarray(at, at + 1)));
    expect(shown([...lines, ...bytewise.finish()])).toEqual(expected);
    expect(bytewise.ended).toBe(true);
  });

  it('shows where the cap dropped output: an offset past what was read', () => {
    const parser = new LogLineParser();
    const lines = parser.parse(chunkFile(['parafork', 'offset 1000\n'], ['stdout', 'kept\n'], ['parafork', 'end 1005\n']));
    expect(lines.map((line) => [line.stream, line.droppedBytes])).toEqual([
      ['dropped', 1000],
      ['stdout', undefined],
    ]);
  });

  it('gives a line longer than maxLineLength in pieces cut at a character\'s end', () => {
    const parser = new LogLineParser({ maxLineLength: 8 });
    const check = Buffer.from('✓');
    const lines = parser.parse(chunkFile(['stdout', Buffer.concat([Buffer.from('abcdefg'), check.subarray(0, 2)])], ['stdout', Buffer.concat([check.subarray(2), Buffer.from('h\n')])]));
    expect(lines.map((line) => [line.text, line.complete])).toEqual([
      ['abcdefg', false],
      ['✓h', true],
    ]);
  });
});

describe('reading chunked logs from disk', () => {
  it('reads the rotated file, then the current one, and says what the cap dropped between', async () => {
    const file = path.join(scratch, '1.log');
    writeFileSync(`${file}.1`, chunkFile(['parafork', 'offset 100\n'], ['stdout', 'one\nt'], ['stderr', 'two\n']));
    writeFileSync(file, chunkFile(['parafork', 'offset 109\n'], ['stdout', 'hree\n'], ['parafork', 'end 114\n']));
    expect(shown(await collect(file))).toEqual(["dropped:[parafork: 100 bytes of output dropped here by the log's cap]", 'stdout:one', 'stderr:two', 'stdout:three']);
  });

  it('never shows a chunk a crash cut short, at the end of the log nor of its older file', async () => {
    const file = path.join(scratch, '1.log');
    const older = chunkFile(['stdout', 'whole\n'], ['stdout', 'cut short and never ended\n']);
    writeFileSync(`${file}.1`, older.subarray(0, older.length - 10));
    const newer = chunkFile(['parafork', 'offset 32\n'], ['stderr', 'after\n'], ['stdout', 'cut\n']);
    writeFileSync(file, newer.subarray(0, newer.length - 2));
    expect(shown(await collect(file))).toEqual(['stdout:whole', "dropped:[parafork: 26 bytes of output dropped here by the log's cap]", 'stderr:after']);
  });

  it('reads an earlier agent\'s CRI log, and a rotation that began in it and went on in chunks', async () => {
    const file = path.join(scratch, '1.log');
    writeFileSync(`${file}.1`, `${timeOf(0)} stdout F old line\n${timeOf(0)} stdout P cut by the upgr\n`);
    writeFileSync(file, chunkFile(['parafork', 'offset 24\n'], ['stdout', 'ade\nnew line\n'], ['parafork', 'end 37\n']));
    expect(shown(await collect(file))).toEqual(['stdout:old line', 'stdout:cut by the upgrade', 'stdout:new line']);
  });

  it('gives as its last N lines what reading the whole log gives, for any N and stream, though it decodes only the chunks it needs', async () => {
    const file = path.join(scratch, '1.log');
    // A deterministic jumble: lines of both streams cut anywhere, some multi-byte, chunks interleaved.
    let seed = 7;
    const random = (below: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % below;
    };
    const pending: Record<'stdout' | 'stderr', Buffer> = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
    const chunks: [Stream, Buffer, number][] = [];
    for (let line = 0; line < 400; line += 1) {
      const stream = random(3) === 0 ? 'stderr' : 'stdout';
      pending[stream] = Buffer.concat([pending[stream], Buffer.from(`${stream} line ${line} ${'é'.repeat(random(4))}\n`)]);
      if (random(2) === 0) {
        const cut = random(pending[stream].length + 1);
        chunks.push([stream, pending[stream].subarray(0, cut), line % 60]);
        pending[stream] = pending[stream].subarray(cut);
      }
    }
    chunks.push(['stdout', pending.stdout, 59], ['stderr', Buffer.concat([pending.stderr, Buffer.from('no newline')]), 59]);
    writeFileSync(file, chunkFile(...chunks.filter(([, payload]) => payload.length > 0)));
    const whole = await collect(file);
    expect(whole.length).toBe(401);
    for (const stream of [undefined, 'stdout', 'stderr'] as const) {
      const all = whole.filter((line) => stream === undefined || line.stream === stream);
      for (const tail of [0, 1, 2, 5, 37, 200, 1000]) {
        expect(await collect(file, { tail, ...(stream === undefined ? {} : { stream }) })).toEqual(all.slice(Math.max(0, all.length - tail)));
      }
    }
  });

  it('reads the stderr tail for status from the chunks at the end of a log far longer than its window', async () => {
    const file = path.join(scratch, '1.log');
    // Chunks larger than a read of the header walk, then many small ones.
    const chunks: [Stream, string][] = [1, 2, 3].map(() => ['stdout', `${'y'.repeat(40_000)}\n`]);
    for (let index = 0; index < 300; index += 1) chunks.push(['stdout', `${'x'.repeat(999)}\n`], ['stderr', `error ${index}\n`]);
    chunks.push(['stderr', 'the last wo'], ['stderr', 'rds\n']);
    writeFileSync(file, chunkFile(...chunks));
    expect(await readOutputTail(file, 'stderr', 30)).toBe(' 298\nerror 299\nthe last words\n');
    expect(await readOutputTail(file, undefined, 16)).toBe('\nthe last words\n');
    expect(await readOutputTail(path.join(scratch, 'none.log'), 'stderr', 30)).toBe('');
  });

  it('reads the tail from a last chunk larger than the tail window, where the window begins mid-chunk', async () => {
    // A Task that wrote 64 KiB to stderr in one write and exited: the pump took it as one chunk
    // (up to 64 KiB), so the window of the last 64 KiB began inside it. The walk went past that
    // chunk and its status had no stderr tail at all.
    const file = path.join(scratch, '1.log');
    writeFileSync(file, chunkFile(['stdout', 'started\n'], ['stderr', `${'x'.repeat(65_530)}\nLAST\n`], ['parafork', 'end 65545\n']));
    expect(await readOutputTail(file, 'stderr', 10)).toBe('xxxx\nLAST\n');
    expect(await readOutputTail(file, undefined, 5)).toBe('LAST\n');
    // The same with the window beginning in a chunk after a run of small ones.
    const many: [Stream, string][] = [];
    for (let index = 0; index < 50; index += 1) many.push(['stdout', `line ${index}\n`]);
    many.push(['stderr', `${'e'.repeat(100_000)}\nthe end\n`]);
    writeFileSync(file, chunkFile(...many));
    expect(await readOutputTail(file, 'stderr', 10)).toBe('e\nthe end\n');
  });

  it('reads a chunked log piece by piece as it grows, a read ending anywhere in a chunk or character', () => {
    const file = path.join(scratch, '1.log');
    const bytes = chunkFile(['stdout', 'één\ntw'], ['stderr', 'x\n'], ['stdout', 'o\n'], ['parafork', 'end 12\n']);
    writeFileSync(file, Buffer.alloc(0));
    const log = new PolledLog(file);
    const lines: LogLine[] = [];
    for (let at = 0; at < bytes.length; at += 3) {
      appendFileSync(file, bytes.subarray(at, at + 3));
      lines.push(...log.read(2));
      lines.push(...log.read(Number.POSITIVE_INFINITY));
    }
    expect(shown(lines)).toEqual(['stdout:één', 'stderr:x', 'stdout:two']);
    expect(log.ended).toBe(true);
  });
});

describe('a long log', () => {
  it('reads a log of 200,000 lines whole, as a tail and piece by piece (no call spreads its lines)', async () => {
    const file = path.join(scratch, '1.log');
    const line = 'y'.repeat(19) + '\n';
    writeFileSync(`${file}.1`, chunkFile(...Array.from({ length: 100 }, (): [Stream, string] => ['stdout', line.repeat(1000)])));
    writeFileSync(file, chunkFile(...Array.from({ length: 100 }, (): [Stream, string] => ['stdout', line.repeat(1000)])));
    expect((await collect(file)).length).toBe(200_000);
    expect((await collect(file, { tail: 150_000 })).length).toBe(150_000);
    expect(new PolledLog(file).read(Number.POSITIVE_INFINITY).length).toBe(200_000);
  });
});

describe('a log in a format this version does not read', () => {
  it('says so for a whole read, a tail and a follow, instead of following it for an end it cannot see', async () => {
    // As a newer parafork would write it, read by this one after a downgrade (or by another
    // checkout's `parafork logs` on a shared machine).
    const file = path.join(scratch, '1.log');
    writeFileSync(file, `parafork-log 3\n${timeOf(0)} stdout 6\nhello\n${timeOf(1)} parafork 5\nend 6`);
    const message = 'the log was written in the format "parafork-log 3" by another parafork version';
    await expect(collect(file)).rejects.toThrow(message);
    await expect(collect(file, { tail: 1 })).rejects.toThrow(message);
    await expect(collect(file, { follow: true, pollMs: 10 })).rejects.toThrow(message);
  });
});

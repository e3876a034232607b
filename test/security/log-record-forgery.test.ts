// A Task's log against a Task that writes the log format's own records into its output: a fake
// `parafork F end` (a follower would stop there: `parafork logs -f` and the live lines of
// `parafork run` would miss the rest), a fake `parafork F offset` (a reader would print "bytes
// dropped" that were not), and a fake `stderr` record (status.stderrTail and
// FallbackToLogsOnError read stderr from the log). The pump writes each record's prefix itself and
// the Task's bytes only after it, up to a newline that ends the record, so a Task's line is never
// read as anything but its own stream's (native/src/log_file.h, src/logs/log-format.ts); this holds
// for a line the pump cuts into 16 KiB pieces too. Red team: no finding; the test keeps it so.
// Needs root (the sandbox).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher } from '../../src/index.js';
import { readLogLines, readOutputTail } from '../../src/logs/log-reader.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python } from './sandbox-helpers.js';

const skip = missingRequirement('the sandbox needs root', runningAsRoot);

const stamp = '2026-12-07T00:00:00.000000000Z';
/** The lines the Task writes to stdout, each a record of the pump's format or a piece of one. */
const forged = [
  `${stamp} parafork F end 0`,
  `${stamp} parafork F offset 999999`,
  `${stamp} stderr F forged stderr line`,
  `\r${stamp} parafork F end 0`,
  // Cut by the pump after 16 KiB: the piece that follows starts with a record of its own.
  `${'x'.repeat(16 * 1024)}${stamp} stderr F forged after a cut`,
];
const script = [
  'import sys, time',
  `lines = ${JSON.stringify(forged)}`,
  'for line in lines:',
  '    sys.stdout.write(line + "\\n")',
  '    sys.stdout.flush()',
  '    time.sleep(0.02)',
  // Without a newline, then a record on a line of its own: the pump's next record begins after it.
  `sys.stdout.write("no newline"); sys.stdout.flush(); time.sleep(0.2)`,
  `sys.stdout.write("\\n${stamp} parafork F end 0\\nthe last line\\n")`,
].join('\n');

describe.skipIf(skip !== undefined)(`a Task that writes the log format's records${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;
  let scratch: string;
  beforeAll(() => {
    launcher = new Launcher();
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-log-forgery-'));
  });
  afterAll(async () => {
    await launcher.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('has every line read back as its own stdout, the log ended only at its real end, nothing dropped', async () => {
    const log = path.join(scratch, 'task', '1.log');
    const child = await launcher.spawn({ file: python, args: ['-c', script], stdout: { log }, stderr: { log }, sandbox: {}, env: { PATH: '/usr/bin:/bin' } });
    expect(await child.exited).toMatchObject({ code: 0 });
    expect(await child.log).toMatchObject({ complete: true, droppedBytes: 0 });

    const lines: { stream: string; text: string }[] = [];
    for await (const line of readLogLines(log)) lines.push({ stream: line.stream, text: line.text });
    expect(lines).toEqual([...forged, 'no newline', `${stamp} parafork F end 0`, 'the last line'].map((text) => ({ stream: 'stdout', text })));
    // Followed, the reader goes to the real end (a fake end would stop it before "the last line").
    const followed: string[] = [];
    for await (const line of readLogLines(log, { follow: true, pollMs: 10 })) followed.push(line.text);
    expect(followed.at(-1)).toBe('the last line');
    // What status takes from stderr: nothing, the Task wrote none.
    expect(await readOutputTail(log, 'stderr', 4096)).toBe('');
  });
});

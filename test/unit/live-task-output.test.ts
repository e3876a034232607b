// `parafork run`'s live output (src/standalone/live-task-output.ts) and the piecewise log reading
// under it (src/logs/polled-log.ts): the lines of growing logs, each after its Task's name, stderr
// marked, nothing held open, a rotation followed, a flood read a budget at a time.
import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import type { Task } from '../../src/api/task.js';
import { PolledLog } from '../../src/logs/polled-log.js';
import { LiveTaskOutput, taskLabels, taskOutputSources, type LiveTaskOutputOptions } from '../../src/standalone/live-task-output.js';

const at = '2026-12-06T12:00:00.123456789Z';
const records = (...lines: string[]): string => lines.map((line) => `${at} ${line}\n`).join('');

let scratch: string;
beforeEach(() => {
  scratch = mkdtempSync(path.join(tmpdir(), 'parafork-live-output-'));
});
afterEach(() => {
  rmSync(scratch, { recursive: true, force: true });
});

const texts = (log: PolledLog, maxBytes = Number.POSITIVE_INFINITY): string[] => log.read(maxBytes).map((line) => `${line.stream}:${line.text}`);

describe('a log read piece by piece as it grows', () => {
  it('gives nothing before the log exists, then each read what was added since the last', () => {
    const file = path.join(scratch, '1.log');
    const log = new PolledLog(file);
    expect(texts(log)).toEqual([]);
    writeFileSync(file, records('stdout F one', 'stderr P half '));
    expect(texts(log)).toEqual(['stdout:one']);
    expect(texts(log)).toEqual([]);
    appendFileSync(file, records('stderr F a line', 'parafork F end 16'));
    expect(texts(log)).toEqual(['stderr:half a line']);
    expect(log.ended).toBe(true);
  });

  it('keeps a record cut by a read for the next one', () => {
    const file = path.join(scratch, '1.log');
    const log = new PolledLog(file);
    const whole = records('stdout F first', 'stdout F second');
    writeFileSync(file, whole.slice(0, whole.length - 4));
    expect(texts(log)).toEqual(['stdout:first']);
    appendFileSync(file, whole.slice(whole.length - 4));
    expect(texts(log)).toEqual(['stdout:second']);
  });

  it('reads at most about maxBytes a time, the rest at the next read', () => {
    const file = path.join(scratch, '1.log');
    writeFileSync(file, records(...Array.from({ length: 100 }, (_, index) => `stdout F line ${index}`)));
    const log = new PolledLog(file);
    const first = texts(log, 1000);
    expect(first.length).toBeGreaterThan(10);
    expect(first.length).toBeLessThan(100);
    expect([...first, ...texts(log)]).toEqual(Array.from({ length: 100 }, (_, index) => `stdout:line ${index}`));
  });

  it('reads the rest of a rotated file before the new one, and the older file first when it starts late', () => {
    const file = path.join(scratch, '1.log');
    writeFileSync(file, records('stdout F one'));
    const log = new PolledLog(file);
    expect(texts(log)).toEqual(['stdout:one']);
    appendFileSync(file, records('stdout F two'));
    // The pump's rotation: the file becomes 1.log.1, a new 1.log opens with the offset so far.
    renameSync(file, `${file}.1`);
    writeFileSync(file, records('parafork F offset 8', 'stdout F three'));
    expect(texts(log)).toEqual(['stdout:two', 'stdout:three']);
    const late = new PolledLog(file);
    expect(texts(late)).toEqual(['stdout:one', 'stdout:two', 'stdout:three']);
  });

  it('says where output went by unread when the log rotated twice between reads', () => {
    const file = path.join(scratch, '1.log');
    writeFileSync(file, records('stdout F one'));
    const log = new PolledLog(file);
    expect(texts(log)).toEqual(['stdout:one']);
    // Unlinked by the second rotation; the newer files may get its inode number back.
    rmSync(file);
    writeFileSync(`${file}.1`, records('parafork F offset 4', 'stdout F lost'));
    writeFileSync(file, records('parafork F offset 100', 'stdout F kept'));
    expect(texts(log)).toEqual(["dropped:[parafork: 96 bytes of output dropped here by the log's cap]", 'stdout:kept']);
  });

  it('gives a line that never ends in pieces rather than holding it whole', () => {
    const file = path.join(scratch, '1.log');
    const piece = 'x'.repeat(16 * 1024);
    writeFileSync(file, records(...Array.from({ length: 10 }, () => `stdout P ${piece}`)));
    const lines = new PolledLog(file).read(Number.POSITIVE_INFINITY);
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.every((line) => line.text.length <= 64 * 1024 && !line.complete)).toBe(true);
  });
});

function task(name: string, attempts: number | undefined, extra: Partial<Task['spec']> = {}, namespace = 'default'): Task {
  return {
    apiVersion: 'parafork.dev/v1alpha1',
    kind: 'Task',
    metadata: { name, namespace, uid: `uid-${name}` },
    spec: { command: ['true'], ...extra },
    ...(attempts !== undefined ? { status: { attempts } } : {}),
  };
}

describe('the live output of a run', () => {
  const logFile = (name: string, attempt: number): string => path.join(scratch, `${name}-${attempt}.log`);
  function liveOutput(options: Partial<LiveTaskOutputOptions> = {}): { output: LiveTaskOutput; written: string[] } {
    const written: string[] = [];
    const output = new LiveTaskOutput({
      sources: (each, fromAttempt) => taskOutputSources(each, fromAttempt, each.metadata.name ?? '', (owner, attempt) => logFile(owner.name, attempt)),
      write: (text) => written.push(text),
      colors: false,
      labelWidth: 7,
      ...options,
    });
    return { output, written };
  }

  it('prints each line after its Task\'s padded name, `|` for stdout and `!` for stderr, in the order the logs grew', () => {
    const { output, written } = liveOutput();
    writeFileSync(logFile('hello', 1), records('stdout F hello from parafork'));
    writeFileSync(logFile('failing', 1), records('stderr F cannot open'));
    output.update([task('hello', 1), task('failing', 1)]);
    appendFileSync(logFile('hello', 1), records('stdout F goodbye', 'parafork F end 28'));
    output.update([task('hello', 1), task('failing', 1)]);
    expect(written.join('')).toBe('hello   | hello from parafork\nfailing ! cannot open\nhello   | goodbye\n');
  });

  it('writes each poll\'s lines in one piece, and nothing when no log grew', () => {
    const { output, written } = liveOutput();
    writeFileSync(logFile('hello', 1), records('stdout F a', 'stdout F b'));
    output.update([task('hello', 1)]);
    output.update([task('hello', 1)]);
    expect(written).toEqual(['hello   | a\nhello   | b\n']);
  });

  it('starts a retry\'s log with the attempt it is, after the earlier attempt\'s lines', () => {
    const { output, written } = liveOutput();
    writeFileSync(logFile('failing', 1), records('stderr F first try', 'parafork F end 10'));
    writeFileSync(logFile('failing', 2), records('stderr F second try'));
    output.update([task('failing', 2)]);
    expect(written.join('')).toBe('failing ! first try\nfailing | [parafork: attempt 2]\nfailing ! second try\n');
  });

  it('prints at the end what came after the last poll and a last line without a newline', () => {
    const { output, written } = liveOutput();
    output.update([task('hello', 1)]);
    writeFileSync(logFile('hello', 1), records('stdout F late', 'stdout P no newline'));
    output.finish();
    expect(written.join('')).toBe('hello   | late\nhello   | no newline\n');
  });

  it('gives each Task a colour of its own on a terminal, the stderr mark in red', () => {
    const { output, written } = liveOutput({ colors: true });
    writeFileSync(logFile('one', 1), records('stdout F a'));
    writeFileSync(logFile('two', 1), records('stderr F b'));
    output.update([task('one', 1), task('two', 1)]);
    expect(written.join('')).toBe('\x1b[36mone     |\x1b[0m a\n\x1b[33mtwo    \x1b[0m \x1b[31m!\x1b[0m b\n');
  });

  it('clears the way first (a terminal\'s progress line) only when it has something to print', () => {
    let cleared = 0;
    const { output } = liveOutput({ beforeWrite: () => cleared++ });
    output.update([task('hello', 1)]);
    expect(cleared).toBe(0);
    writeFileSync(logFile('hello', 1), records('stdout F a'));
    output.update([task('hello', 1)]);
    expect(cleared).toBe(1);
  });

  it('reads no more than its budget a poll when many logs flood, and gets to all of them', () => {
    const { output, written } = liveOutput({ maxBytesPerPoll: 64 * 1024 });
    const tasks = Array.from({ length: 8 }, (_, index) => task(`t${index}`, 1));
    for (const each of tasks) writeFileSync(logFile(each.metadata.name ?? '', 1), records(...Array.from({ length: 2000 }, () => 'stdout F 0123456789')));
    output.update(tasks);
    expect(written.join('').length).toBeLessThan(2 * 64 * 1024);
    for (let poll = 0; poll < 100; poll++) output.update(tasks);
    const lines = written.join('').split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(8 * 2000);
    expect(new Set(lines.map((line) => line.split(' ')[0]))).toEqual(new Set(tasks.map((each) => each.metadata.name)));
  });

  it('stops a poll at its time budget and goes on at the next from the first log it did not look at', () => {
    const { output, written } = liveOutput({ maxMillisecondsPerPoll: 0 });
    const tasks = ['a', 'b', 'c'].map((name) => task(name, 1));
    for (const each of tasks) writeFileSync(logFile(each.metadata.name ?? '', 1), records(`stdout F from ${each.metadata.name}`));
    output.update(tasks);
    expect(written).toEqual(['a       | from a\n']);
    output.update(tasks);
    output.update(tasks);
    expect(written).toEqual(['a       | from a\n', 'b       | from b\n', 'c       | from c\n']);
  });

  it('prints an array\'s indexes that write, each line after `name[index]`, found as their logs are made, a retry after its attempt', () => {
    const array = task('array', undefined, { completions: 2000 });
    const directory = path.join(scratch, 'array-logs');
    const { output, written } = liveOutput({ arrayLogs: () => ({ directory, label: 'array' }), labelWidth: 11 });
    output.update([array]); // no index has written: nothing to find, nothing printed
    const indexLog = (index: number, attempt: number): string => {
      const shard = path.join(directory, 'indexes', String(index - (index % 1000)));
      mkdirSync(shard, { recursive: true });
      return path.join(shard, `${index}.${attempt}.log`);
    };
    writeFileSync(indexLog(17, 1), records('stdout F seventeen', 'parafork F end 9'));
    output.update([array]);
    writeFileSync(indexLog(1042, 1), records('stderr F first try', 'parafork F end 9'));
    writeFileSync(indexLog(1042, 2), records('stdout F second try'));
    output.update([array]);
    appendFileSync(indexLog(1042, 2), records('stdout F more', 'parafork F end 9'));
    output.update([array]);
    expect(written.join('')).toBe('array[17]   | seventeen\narray[1042] ! first try\narray[1042] | [parafork: attempt 2]\narray[1042] | second try\narray[1042] | more\n');
  });

  it('looks at an array of silent indexes with one stat per 1,000 indexes a poll, listing only a shard that changed', () => {
    const array = task('array', undefined, { completions: 100_000 });
    const directory = path.join(scratch, 'silent');
    const minuteAgo = new Date(Date.now() - 60_000);
    for (let shard = 0; shard < 100_000; shard += 1000) {
      mkdirSync(path.join(directory, 'indexes', String(shard)), { recursive: true });
      utimesSync(path.join(directory, 'indexes', String(shard)), minuteAgo, minuteAgo);
    }
    const { output, written } = liveOutput({ arrayLogs: () => ({ directory, label: 'array' }) });
    output.update([array]);
    // CPU time, not wall time: on a loaded machine the wait for a CPU is not the poll's (this
    // bound failed once by the clock at load ~30). 100 stats take well under a millisecond; a stat
    // per index, 100,000 of them, hundreds.
    const cpuBefore = process.cpuUsage();
    for (let poll = 0; poll < 10; poll++) output.update([array]);
    const cpu = process.cpuUsage(cpuBefore);
    expect((cpu.user + cpu.system) / 1000 / 10).toBeLessThan(10); // ms a poll: 100 stats
    expect(written).toEqual([]);
  });

  it('leaves out an array from the per-attempt logs (its indexes are found apart), and a Task not started', () => {
    expect(taskOutputSources(task('array', undefined, { completions: 10 }), 1, 'array', () => 'unused')).toEqual([]);
    expect(taskOutputSources(task('pending', undefined), 1, 'pending', () => 'unused')).toEqual([]);
  });

  it('labels Tasks by name, by namespace/name when the run spans namespaces', () => {
    expect(taskLabels([task('a', 1), task('b', 1)])(task('a', 1))).toBe('a');
    const spanning = [task('a', 1, {}, 'one'), task('a', 1, {}, 'two')];
    expect(spanning.map(taskLabels(spanning))).toEqual(['one/a', 'two/a']);
  });
});

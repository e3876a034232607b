// Task logs as the agent and `parafork logs` read them (src/logs): CRI records joined back into the
// task's lines, the cap's gaps shown where they are, each Task's logs in a directory of its own that
// goes with the Task, and a stderr tail for status read from the log.
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { LogLineParser } from '../../src/logs/log-format.js';
import { readLogLines } from '../../src/logs/log-reader.js';
import { showTaskLog, TaskLogNotFoundError } from '../../src/logs/show-task-log.js';
import { TaskLogStore, parseTaskLogDirectoryName, taskLogDirectoryName } from '../../src/logs/task-log-store.js';
import { waitFor } from '../helpers/wait-for.js';

const at = '2026-12-06T12:00:00.123456789Z';
const records = (...lines: string[]): string => lines.map((line) => `${at} ${line}\n`).join('');

let scratch: string;
beforeEach(() => {
  scratch = mkdtempSync(path.join(tmpdir(), 'parafork-task-logs-'));
});
afterEach(() => {
  rmSync(scratch, { recursive: true, force: true });
});

async function collect(file: string, options: Parameters<typeof readLogLines>[1] = {}): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of readLogLines(file, options)) lines.push(`${line.stream}:${line.text}${line.complete ? '' : '…'}`);
  return lines;
}

describe('the log format', () => {
  it('joins P records with the F record that ends the line, per stream', () => {
    const parser = new LogLineParser();
    const lines = parser.parse(records('stdout P progress ', 'stderr F warning', 'stdout F done', 'stdout P no newline'));
    expect(lines.map((line) => [line.stream, line.text])).toEqual([['stderr', 'warning'], ['stdout', 'progress done']]);
    expect(parser.finish().map((line) => [line.text, line.complete])).toEqual([['no newline', false]]);
  });

  it('shows where the cap dropped output: an offset past what was read', () => {
    const parser = new LogLineParser();
    const lines = parser.parse(records('parafork F offset 1000', 'stdout F kept', 'parafork F end 1005'));
    expect(lines.map((line) => line.stream)).toEqual(['dropped', 'stdout']);
    expect(lines[0]?.droppedBytes).toBe(1000);
    expect(lines[0]?.text).toBe("[parafork: 1000 bytes of output dropped here by the log's cap]");
    expect(parser.ended).toBe(true);
  });

  it('says nothing was dropped when the older file holds everything before the newer one', () => {
    const parser = new LogLineParser();
    // "abc\n" is 4 bytes: the newer file's offset 4 is where the older one ended.
    expect(parser.parse(records('stdout F abc', 'parafork F offset 4', 'stdout F def')).map((line) => line.stream)).toEqual(['stdout', 'stdout']);
  });
});

describe('reading an attempt log', () => {
  it('reads the rotated file first, then the current one, and keeps the last N lines of the stream asked for', async () => {
    const file = path.join(scratch, '1.log');
    writeFileSync(`${file}.1`, records('stdout F one', 'stderr F two'));
    writeFileSync(file, records('parafork F offset 8', 'stdout F three', 'stderr F four', 'parafork F end 19'));
    expect(await collect(file)).toEqual(['stdout:one', 'stderr:two', 'stdout:three', 'stderr:four']);
    expect(await collect(file, { stream: 'stdout', tail: 1 })).toEqual(['stdout:three']);
  });

  it('follows a log as it grows and ends at its end record', async () => {
    const file = path.join(scratch, '1.log');
    writeFileSync(file, records('stdout F first'));
    const seen: string[] = [];
    const following = (async () => {
      for await (const line of readLogLines(file, { follow: true, pollMs: 10 })) seen.push(line.text);
    })();
    // Waits for each line rather than a fixed time: a loaded machine can take longer than a few
    // polls to read it.
    await waitFor(() => seen.length >= 1 || undefined, { timeoutMs: 10_000, description: 'the first line' });
    appendFileSync(file, records('stdout F second'));
    await waitFor(() => seen.length >= 2 || undefined, { timeoutMs: 10_000, description: 'the appended line' });
    expect(seen).toEqual(['first', 'second']);
    appendFileSync(file, records('parafork F end 13'));
    await following;
    expect(seen).toEqual(['first', 'second']);
  });
});

describe('the Task log store', () => {
  const owner = { namespace: 'team-a', name: 'build', uid: '0b6f3c1e-4a2b-4c55-9d1e-2f0a5b7c8d9e' };

  it('names a Task directory as the kubelet names a pod log directory, and parses it back', () => {
    expect(taskLogDirectoryName(owner)).toBe('team-a_build_0b6f3c1e-4a2b-4c55-9d1e-2f0a5b7c8d9e');
    expect(parseTaskLogDirectoryName(taskLogDirectoryName(owner))).toEqual(owner);
    expect(parseTaskLogDirectoryName('../etc')).toBeUndefined();
  });

  it('fits the directory of a Task of the longest valid name (253) in a namespace of 63 into a path component of 255 bytes, the full name kept inside for the sweeps and readers', async () => {
    const name = ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.');
    const sibling = `e${name.slice(1)}`; // the same first 100 characters but one: another directory
    const namespace = 'n'.repeat(63);
    const long = { namespace, name, uid: owner.uid };
    expect(name).toHaveLength(253);
    expect(Buffer.byteLength(taskLogDirectoryName(long))).toBeLessThanOrEqual(255);
    expect(taskLogDirectoryName(long)).not.toBe(taskLogDirectoryName({ ...long, name: sibling }));
    expect(taskLogDirectoryName({ ...long, name: `${name.slice(0, -1)}e` })).not.toBe(taskLogDirectoryName(long));
    // A name up to 126 characters stays as it is: directories made before keep their names.
    expect(taskLogDirectoryName({ ...owner, name: 'x'.repeat(126) })).toBe(`team-a_${'x'.repeat(126)}_${owner.uid}`);
    expect(() => taskLogDirectoryName({ ...owner, uid: 'u'.repeat(65) })).toThrow(RangeError);

    const store = new TaskLogStore({ directory: path.join(scratch, 'logs'), maxBytesPerAttempt: 2 ** 20 });
    writeFileSync(store.attemptLog(long, 1, undefined).log, records('stdout F from the long one'));
    const shown: string[] = [];
    await showTaskLog({ directories: [store.directory], namespace, name }, (text) => shown.push(text));
    expect(shown).toEqual(['from the long one\n']);
    await expect(showTaskLog({ directories: [store.directory], namespace, name: sibling }, () => undefined)).rejects.toThrow(TaskLogNotFoundError);
    // The sweep and the eviction ask about the Task by its full name.
    const asked: string[] = [];
    expect(await store.sweep((each) => asked.push(each.name) > 0)).toBe(0);
    expect(asked).toEqual([name]);
    expect(await store.evictOldest(0, (each) => each.name === name)).toBe(1);
    expect(readdirSync(store.directory)).toEqual([]);
  });

  it('gives each attempt its own log, capped by the agent unless the spec asks for less', () => {
    const store = new TaskLogStore({ directory: path.join(scratch, 'logs'), maxBytesPerAttempt: 10 * 2 ** 20 });
    expect(store.attemptLog(owner, 2, undefined)).toEqual({ log: path.join(scratch, 'logs', taskLogDirectoryName(owner), '2.log'), maxBytes: 10 * 2 ** 20 });
    expect(store.attemptLog(owner, 1, 2 ** 20).maxBytes).toBe(2 ** 20);
    expect(store.attemptLog(owner, 1, 2 ** 30).maxBytes).toBe(10 * 2 ** 20);
  });

  it('removes a Task\'s logs when it is forgotten, and keeps those of the object made again under its name', async () => {
    const store = new TaskLogStore({ directory: path.join(scratch, 'logs'), maxBytesPerAttempt: 2 ** 20 });
    const again = { ...owner, uid: 'a1b2c3' };
    for (const each of [owner, again]) {
      mkdirSync(store.taskDirectory(each));
      writeFileSync(store.attemptLog(each, 1, undefined).log, records('stdout F x'));
    }
    await store.forget('team-a', 'build', again.uid);
    expect(readdirSync(store.directory)).toEqual([taskLogDirectoryName(again)]);
    await store.forget('team-a', 'build');
    expect(readdirSync(store.directory)).toEqual([]);
  });

  it('sweeps at start the logs of Tasks that no longer exist', async () => {
    const store = new TaskLogStore({ directory: path.join(scratch, 'logs'), maxBytesPerAttempt: 2 ** 20 });
    const gone = { ...owner, name: 'gone' };
    for (const each of [owner, gone]) mkdirSync(store.taskDirectory(each));
    mkdirSync(path.join(store.directory, 'not-a-task-directory'));
    expect(await store.sweep((each) => each.name === 'build')).toBe(2);
    expect(readdirSync(store.directory)).toEqual([taskLogDirectoryName(owner)]);
  });

  it('evicts the logs of the finished Tasks written longest ago while the node holds more than its cap, never a running one', async () => {
    const store = new TaskLogStore({ directory: path.join(scratch, 'logs'), maxBytesPerAttempt: 2 ** 20 });
    const owners = ['oldest', 'running', 'middle', 'newest'].map((name) => ({ namespace: 'default', name, uid: `u-${name}` }));
    for (const [index, each] of owners.entries()) {
      mkdirSync(store.taskDirectory(each));
      writeFileSync(store.attemptPath(each, 1), 'x'.repeat(1000));
      const time = new Date(Date.now() - (10 - index) * 60_000);
      utimesSync(store.attemptPath(each, 1), time, time);
    }
    expect(await store.evictOldest(2500, (each) => each.name !== 'running')).toBe(2);
    expect(readdirSync(store.directory).sort()).toEqual(['default_newest_u-newest', 'default_running_u-running']);
    expect(await store.evictOldest(2500, () => true)).toBe(0);
  });

  it('reads the stderr tail for status from the end of the log', async () => {
    const store = new TaskLogStore({ directory: path.join(scratch, 'logs'), maxBytesPerAttempt: 2 ** 20 });
    mkdirSync(store.taskDirectory(owner));
    writeFileSync(store.attemptPath(owner, 1), records('stdout F ok', 'stderr F error: disk full', 'stderr P exit', 'parafork F end 40'));
    expect(await store.stderrTail(owner, 1)).toBe('error: disk full\nexit');
    expect(await store.stderrTail(owner, 1, 4)).toBe('exit');
    expect(await store.stderrTail(owner, 2)).toBe('');
  });
});

describe('parafork logs on the node', () => {
  it('prints the latest attempt by default, an earlier one with --attempt, and says when there is none', async () => {
    const store = new TaskLogStore({ directory: path.join(scratch, 'logs'), maxBytesPerAttempt: 2 ** 20 });
    const owner = { namespace: 'default', name: 'hello', uid: 'u1' };
    mkdirSync(store.taskDirectory(owner));
    writeFileSync(store.attemptPath(owner, 1), records('stdout F first try'));
    writeFileSync(store.attemptPath(owner, 2), records('stdout F second try'));
    const printed: string[] = [];
    const show = (options: { attempt?: number; name?: string }): Promise<void> =>
      showTaskLog({ directories: [store.directory], namespace: 'default', name: options.name ?? 'hello', ...(options.attempt ? { attempt: options.attempt } : {}) }, (text) => printed.push(text));
    await show({});
    await show({ attempt: 1 });
    expect(printed).toEqual(['second try\n', 'first try\n']);
    await expect(show({ name: 'missing' })).rejects.toThrow(TaskLogNotFoundError);
    await expect(show({ attempt: 3 })).rejects.toThrow(/has no log of attempt 3; it has attempts 1, 2/);
  });

  it('says of --previous on a Task that ran once that there is no earlier attempt, not "no log of attempt 0"', async () => {
    const store = new TaskLogStore({ directory: path.join(scratch, 'logs'), maxBytesPerAttempt: 2 ** 20 });
    const owner = { namespace: 'default', name: 'once', uid: 'u1' };
    mkdirSync(store.taskDirectory(owner));
    writeFileSync(store.attemptPath(owner, 1), records('stdout F only try'));
    const show = (): Promise<void> => showTaskLog({ directories: [store.directory], namespace: 'default', name: 'once', previous: true }, () => undefined);
    await expect(show()).rejects.toThrow('Task default/once has run once: --previous needs an attempt before the latest (it has the log of attempt 1)');
  });
});

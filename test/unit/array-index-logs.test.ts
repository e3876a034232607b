// The logs of a Task array's indexes (issue 17, src/logs/index-log-layout.ts, array-log-budget.ts,
// array-index-logs.ts): one log per attempt of an index in shards of 1,000 indexes, a whole-array
// budget that lets succeeded indexes' logs go first and keeps the first failures longest, and
// `parafork logs --index` reading them.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import type { Task } from '../../src/api/task.js';
import { logNodeName } from '../../src/k8s/task-log-client.js';
import { ArrayIndexLogs } from '../../src/logs/array-index-logs.js';
import { ArrayLogBudget } from '../../src/logs/array-log-budget.js';
import { recordingEndedIndexes } from '../../src/logs/ended-index-records.js';
import { indexAttemptLogPath, indexLogAttempts, parseIndexLogFileName } from '../../src/logs/index-log-layout.js';
import { showTaskLog } from '../../src/logs/show-task-log.js';
import { listTaskLogFiles, TaskLogStore } from '../../src/logs/task-log-store.js';

const at = '2026-12-06T12:00:00.123456789Z';
const records = (...lines: string[]): string => lines.map((line) => `${at} ${line}\n`).join('');
const block = 4096;

let scratch: string;
beforeEach(() => {
  scratch = mkdtempSync(path.join(tmpdir(), 'parafork-index-logs-'));
});
afterEach(() => {
  rmSync(scratch, { recursive: true, force: true });
});

describe('where an index log lives', () => {
  it('puts each attempt of an index in the shard of its 1,000 indexes', () => {
    expect(indexAttemptLogPath('/logs/t', 17, 1)).toBe('/logs/t/indexes/0/17.1.log');
    expect(indexAttemptLogPath('/logs/t', 17042, 2)).toBe('/logs/t/indexes/17000/17042.2.log');
    expect(indexAttemptLogPath('/logs/t', 99999, 1)).toBe('/logs/t/indexes/99000/99999.1.log');
  });

  it('hands the launcher the same path for a log as a reader computes for it, whatever form the task directory takes', () => {
    for (const taskDirectory of ['/logs/t', '/logs/t/', '/logs//t', 'logs/./t']) {
      const logs = new ArrayIndexLogs({ taskDirectory: path.join(scratch, taskDirectory), maxBytesPerAttempt: 1 << 20, maxBytesPerArray: 1 << 24 });
      expect(logs.attemptLog(17042, 2, undefined).log).toBe(indexAttemptLogPath(path.join(scratch, taskDirectory), 17042, 2));
      expect(logs.attemptLog(7, 1, undefined).log).toBe(indexAttemptLogPath(logs.taskDirectory, 7, 1));
    }
  });

  it('reads index and attempt back from a log file name, and nothing from a rotated or foreign file', () => {
    expect(parseIndexLogFileName('17042.2.log')).toEqual({ index: 17042, attempt: 2 });
    expect(parseIndexLogFileName('17042.2.log.1')).toBeUndefined();
    expect(parseIndexLogFileName('1.log')).toBeUndefined();
  });

  it('lists the attempts of one index, oldest first, without those of its neighbours', async () => {
    for (const [index, attempt] of [[17, 2], [17, 1], [170, 1], [7, 1]] as const) {
      const file = indexAttemptLogPath(scratch, index, attempt);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, '');
    }
    expect(await indexLogAttempts(scratch, 17)).toEqual([1, 2]);
    expect(await indexLogAttempts(scratch, 5000)).toEqual([]);
  });
});

describe('the array log budget', () => {
  const ended = (index: number, bytes: number, failed = false, attempt = 1) => ({ index, attempt, payloadBytes: bytes, diskBytes: bytes + 60, failed });

  it('counts nothing for an attempt that printed nothing: it has no log file', () => {
    const budget = new ArrayLogBudget(10 * block);
    expect(budget.ended(ended(0, 0))).toEqual([]);
    expect(budget.ended(ended(1, 0, true))).toEqual([]);
    expect(budget.bytes).toBe(0);
    expect(budget.kept).toBe(0);
  });

  it('counts logs in whole 4 KiB blocks, as the disk holds them', () => {
    const budget = new ArrayLogBudget(100 * block);
    budget.ended(ended(0, 10));
    budget.ended(ended(1, block));
    expect(budget.bytes).toBe(3 * block);
  });

  it('lets the logs of succeeded indexes go first, oldest first, before any failure', () => {
    const budget = new ArrayLogBudget(3 * block);
    budget.ended(ended(0, 100));
    budget.ended(ended(1, 100, true));
    budget.ended(ended(2, 100));
    expect(budget.ended(ended(3, 100))).toEqual([{ index: 0, attempt: 1 }]);
    expect(budget.ended(ended(4, 100, true))).toEqual([{ index: 2, attempt: 1 }]);
    expect(budget.kept).toBe(3);
  });

  it('keeps the first failures longest once only failures are left: the newest go first', () => {
    const budget = new ArrayLogBudget(2 * block);
    budget.ended(ended(5, 100, true));
    budget.ended(ended(9, 100, true));
    expect(budget.ended(ended(12, 100, true))).toEqual([{ index: 12, attempt: 1 }]);
    expect(budget.ended(ended(13, 100, true, 2))).toEqual([{ index: 13, attempt: 2 }]);
    expect(budget.bytes).toBe(2 * block);
  });

  it('holds 100,000 indexes that all print within its cap', () => {
    const budget = new ArrayLogBudget(256 * 2 ** 20);
    let removed = 0;
    for (let index = 0; index < 100_000; index++) removed += budget.ended(ended(index, 5000, index % 100 === 0)).length;
    expect(budget.bytes).toBeLessThanOrEqual(256 * 2 ** 20);
    expect(budget.kept + removed).toBe(100_000);
    expect(budget.kept).toBe((256 * 2 ** 20) / (2 * block));
  });

  it('refuses a budget smaller than one block', () => {
    expect(() => new ArrayLogBudget(100)).toThrow(/from 4096/);
  });
});

describe('an array\'s index logs in the Task log store', () => {
  const owner = { namespace: 'default', name: 'shards', uid: 'u-shards' };

  it('gives each index attempt a log in its shard, capped per attempt and never above the array budget', () => {
    const store = new TaskLogStore({ directory: path.join(scratch, 'logs'), maxBytesPerAttempt: 10 * 2 ** 20, maxBytesPerArray: 2 ** 20 });
    const logs = store.arrayLogs(owner);
    expect(logs.attemptLog(1234, 2, undefined)).toEqual({ log: path.join(store.taskDirectory(owner), 'indexes', '1000', '1234.2.log'), maxBytes: 2 ** 20, createWhenWritten: true });
    expect(logs.attemptLog(1, 1, 128 * 1024).maxBytes).toBe(128 * 1024);
    expect(store.arrayLogs(owner)).toBe(logs);
  });

  it('removes the oldest succeeded indexes\' logs (and their rotated halves) past the array budget', async () => {
    const store = new TaskLogStore({ directory: path.join(scratch, 'logs'), maxBytesPerAttempt: 2 ** 20, maxBytesPerArray: 2 * block });
    const logs = store.arrayLogs(owner);
    for (const index of [1, 2, 3]) {
      const file = logs.attemptLog(index, 1, undefined).log;
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, records(`stdout F index ${index}`, 'parafork F end 8'));
      if (index === 1) writeFileSync(`${file}.1`, records('stdout F older'));
      await logs.ended({ index, attempt: 1, payloadBytes: 8, diskBytes: 100, failed: false });
    }
    expect(readdirSync(path.join(store.taskDirectory(owner), 'indexes', '0')).sort()).toEqual(['2.1.log', '3.1.log']);
    expect(logs.keptBytes).toBe(2 * block);
  });

  it('counts the logs an earlier life of the agent left, so a restarted array stays within its budget', async () => {
    const directory = path.join(scratch, 'logs');
    const before = new TaskLogStore({ directory, maxBytesPerAttempt: 2 ** 20, maxBytesPerArray: 2 * block });
    const earlier = before.arrayLogs(owner);
    const old = new Date(Date.now() - 60_000);
    for (const index of [0, 1, 2]) {
      const file = earlier.attemptLog(index, 1, undefined).log;
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, records(`stdout F index ${index}`));
      utimesSync(file, old, old);
    }
    // A new life: index 1 is a failure the status recorded; of 0 and 2 (successes) the oldest goes.
    const after = new TaskLogStore({ directory, maxBytesPerAttempt: 2 ** 20, maxBytesPerArray: 2 * block }).arrayLogs(owner, { failedIndex: (index) => index === 1 });
    await expect.poll(() => readdirSync(path.join(after.taskDirectory, 'indexes', '0')).length).toBe(2);
    expect(readdirSync(path.join(after.taskDirectory, 'indexes', '0'))).toContain('1.1.log');
  });

  it('goes with the Task, and is counted by the node-wide eviction', async () => {
    const store = new TaskLogStore({ directory: path.join(scratch, 'logs'), maxBytesPerAttempt: 2 ** 20 });
    const logs = store.arrayLogs(owner);
    const file = logs.attemptLog(3, 1, undefined).log;
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, 'x'.repeat(5000));
    await logs.ended({ index: 3, attempt: 1, payloadBytes: 5000, diskBytes: 5000, failed: true });
    expect(await store.evictOldest(block, () => false)).toBe(0);
    // Another life of the agent, which has not run the array: its index logs are read from disk.
    const later = new TaskLogStore({ directory: store.directory, maxBytesPerAttempt: 2 ** 20 });
    expect(await later.evictOldest(5000, () => true)).toBe(0);
    expect(await later.evictOldest(4999, () => true)).toBe(1);
    expect(readdirSync(store.directory)).toEqual([]);
    // This life's budget counts it (in blocks) where it runs the array.
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, 'x'.repeat(5000));
    expect(await store.evictOldest(block, () => true)).toBe(1);
    expect(readdirSync(store.directory)).toEqual([]);
    // Made again, and forgotten with its Task.
    store.arrayLogs(owner);
    await store.forget(owner.namespace, owner.name);
    expect(readdirSync(store.directory)).toEqual([]);
  });

  it('prints one index\'s attempts with --index and --attempt, lists them all, and says what to ask for', async () => {
    const store = new TaskLogStore({ directory: path.join(scratch, 'logs'), maxBytesPerAttempt: 2 ** 20 });
    const logs = store.arrayLogs(owner);
    for (const [attempt, text] of [[1, 'first try'], [2, 'second try']] as const) {
      const file = logs.attemptLog(17, attempt, undefined).log;
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, records(`stdout F ${text}`, `stderr F ${attempt}`, 'parafork F end 10'));
    }
    const printed: string[] = [];
    const show = (options: { index?: number; attempt?: number }): Promise<void> =>
      showTaskLog({ directories: [store.directory], namespace: 'default', name: 'shards', ...options }, (text) => printed.push(text));
    await show({ index: 17 });
    await show({ index: 17, attempt: 1, });
    expect(printed).toEqual(['second try\n', '2\n', 'first try\n', '1\n']);
    await expect(show({ index: 18 })).rejects.toThrow(/no log of index 18 of Task default\/shards on this node: .*printed nothing/);
    await expect(show({})).rejects.toThrow(/is an array: each index has its own log \(--index N\)/);
    const listed = await listTaskLogFiles([store.directory], 'default', 'shards');
    expect(listed?.indexes.map((file) => [file.index, file.attempt])).toEqual([[17, 1], [17, 2]]);
    expect(listed?.attempts).toEqual([]);
  });
});

describe('parafork logs --index N -f for an index that has not printed yet', () => {
  const owner = { namespace: 'default', name: 'waiting', uid: 'u-waiting' };
  const array = (uid: string): Task => ({ apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { namespace: 'default', name: 'waiting', uid }, spec: { command: ['true'], completions: 5 } });

  function follow(store: TaskLogStore, index: number, signal?: AbortSignal): { printed: string[]; done: Promise<void> } {
    const printed: string[] = [];
    const done = showTaskLog({ directories: [store.directory], namespace: 'default', name: 'waiting', index, follow: true, ...(signal ? { signal } : {}) }, (text) => printed.push(text));
    return { printed, done };
  }

  it('waits for the index\'s first line, prints as it writes, and ends when its attempt ends', async () => {
    const store = new TaskLogStore({ directory: path.join(scratch, 'logs'), maxBytesPerAttempt: 2 ** 20 });
    const logs = store.arrayLogs(owner);
    const { printed, done } = follow(store, 3);
    let settled = false;
    void done.finally(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(settled).toBe(false); // not at once: the index has not printed, nor ended
    const file = logs.attemptLog(3, 1, undefined).log;
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, records('stdout F late line'));
    await waitUntil(() => printed.length > 0);
    expect(settled).toBe(false);
    writeFileSync(file, records('stdout F late line', 'parafork F end 10'));
    await done;
    expect(printed).toEqual(['late line\n']);
  });

  it('ends with a clear message once the index has ended without printing, and at once when it had already', async () => {
    const store = new TaskLogStore({ directory: path.join(scratch, 'logs'), maxBytesPerAttempt: 2 ** 20 });
    store.arrayLogs(owner);
    const writer = recordingEndedIndexes({ writeStatus: () => Promise.resolve(), addFinalizer: () => Promise.resolve(), removeFinalizer: () => Promise.resolve(), deleteTask: () => Promise.resolve(), claim: () => Promise.resolve(true) }, store);
    const { done } = follow(store, 2);
    const failure = expect(done).rejects.toThrow('index 2 of Task default/waiting succeeded and no log of it is kept: it printed nothing, or its log was removed');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await writer.writeStatus(array(owner.uid), { phase: 'Running', completedIndexes: '0-2', failedIndexes: '4' });
    await failure;
    await expect(follow(store, 4).done).rejects.toThrow('index 4 of Task default/waiting failed and no log of it is kept: it printed nothing');
    // Without -f too: ended, rather than "has not started".
    await expect(showTaskLog({ directories: [store.directory], namespace: 'default', name: 'waiting', index: 0 }, () => undefined)).rejects.toThrow(/index 0 of Task default\/waiting succeeded/);
    // Index 3 has not ended: -f waits until interrupted, then returns printing nothing; once the
    // array has ended (its other indexes stopped with it), it has too.

    const interrupt = new AbortController();
    const waiting = follow(store, 3, interrupt.signal);
    setTimeout(() => interrupt.abort(), 300);
    await waiting.done;
    expect(waiting.printed).toEqual([]);
    await writer.writeStatus(array(owner.uid), { phase: 'Failed', completedIndexes: '0-2', failedIndexes: '4' });
    await expect(follow(store, 3).done).rejects.toThrow('index 3 of Task default/waiting ended with its array and no log of it is kept: it printed nothing');
  });

  it('ends when the Task is deleted before the index printed', async () => {
    const store = new TaskLogStore({ directory: path.join(scratch, 'logs'), maxBytesPerAttempt: 2 ** 20 });
    store.arrayLogs(owner);
    const { done } = follow(store, 1);
    const failure = expect(done).rejects.toThrow('Task default/waiting was deleted before index 1 printed anything');
    await store.forget(owner.namespace, owner.name);
    await failure;
  });
});

async function waitUntil(condition: () => boolean): Promise<void> {
  for (let tries = 0; !condition(); tries++) {
    if (tries > 100) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('which agent kubectl parafork logs asks for an index', () => {
  const array = (spec: Partial<Task['spec']>, status?: Task['status']): Task => ({ apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: 'shards' }, spec: { command: ['true'], completions: 1000, ...spec }, ...(status ? { status } : {}) });
  const renewTime = '2026-12-06T12:00:00Z';

  it('asks the Task\'s node when it has one', () => {
    expect(logNodeName(array({ nodeName: 'node-a' }), 17)).toBe('node-a');
  });

  it('asks the holder of the index\'s range for an array that agents share, and nobody without an index or a holder', () => {
    const shared = array({}, { partitions: [{ start: 0, end: 100, nodeName: 'node-a', launchedThrough: 100, renewTime }, { start: 100, end: 200, nodeName: 'node-b', launchedThrough: 150, renewTime }] });
    expect(logNodeName(shared, 99)).toBe('node-a');
    expect(logNodeName(shared, 100)).toBe('node-b');
    expect(logNodeName(shared, 500)).toBeUndefined();
    expect(logNodeName(shared, undefined)).toBeUndefined();
  });
});

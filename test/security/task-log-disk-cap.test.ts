// The node-wide cap on Task logs (--logs-max-bytes-total) against a Task author who fills the disk
// through them. Each attempt's log is capped (10 MiB by default), but a Task keeps one log per
// attempt, and a Task may have backoffLimit 100 with one-second backoffs: 101 logs, about 1 GiB,
// written within minutes by one Task. The cap removed only the logs of finished Tasks, so while
// such Tasks kept retrying, N of them held N GiB whatever the cap said. Now the logs of a running
// Task's earlier attempts go too (oldest first); only the newest attempt of a running Task, the one
// it may be writing, is kept whatever the total.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { TaskLogStore, taskLogDirectoryName, type TaskLogOwner } from '../../src/logs/task-log-store.js';

const kib = 1024;

describe('the node-wide cap on Task logs', () => {
  let directory: string;
  let store: TaskLogStore;
  beforeEach(() => {
    directory = mkdtempSync(path.join(tmpdir(), 'parafork-log-cap-'));
    store = new TaskLogStore({ directory, maxBytesPerAttempt: 64 * kib });
  });
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  let clock = 1_700_000_000;
  /** Writes an attempt's log (and its rotated half) of `bytes`, each written a second after the last. */
  function writeAttempt(owner: TaskLogOwner, attempt: number, bytes: number, rotated = false): void {
    const taskDirectory = path.join(directory, taskLogDirectoryName(owner));
    mkdirSync(taskDirectory, { recursive: true });
    const files = rotated ? [`${attempt}.log.1`, `${attempt}.log`] : [`${attempt}.log`];
    for (const file of files) {
      writeFileSync(path.join(taskDirectory, file), Buffer.alloc(bytes / files.length, 0x61));
      clock++;
      utimesSync(path.join(taskDirectory, file), clock, clock);
    }
  }
  const logsOf = (owner: TaskLogOwner): string[] => readdirSync(path.join(directory, taskLogDirectoryName(owner))).sort();

  it('removes the earlier attempts of a running Task that retries past the cap, keeping its newest', async () => {
    const retrying = { namespace: 'team-a', name: 'retrying', uid: 'uid-1' };
    for (let attempt = 1; attempt <= 20; attempt++) writeAttempt(retrying, attempt, 64 * kib, attempt % 2 === 0);
    await store.evictOldest(256 * kib, () => false);
    const kept = logsOf(retrying);
    expect(kept).toContain('20.log');
    expect(kept).toContain('20.log.1');
    expect(kept).not.toContain('1.log');
    // Within the cap: the newest attempts, whole (a rotated attempt keeps both halves or neither).
    expect(kept).toEqual(['17.log', '18.log', '18.log.1', '19.log', '20.log', '20.log.1']);
  });

  it('holds many retrying Tasks to the cap together, each keeping only its newest attempt when it must', async () => {
    const owners = Array.from({ length: 8 }, (_, index) => ({ namespace: 'team-a', name: `retrying-${index}`, uid: `uid-${index}` }));
    for (let attempt = 1; attempt <= 10; attempt++) for (const owner of owners) writeAttempt(owner, attempt, 32 * kib);
    await store.evictOldest(8 * 32 * kib, () => false);
    for (const owner of owners) expect(logsOf(owner)).toEqual(['10.log']);
  });

  it('removes a finished Task s logs before a running Task s earlier attempts written later', async () => {
    const finished = { namespace: 'team-a', name: 'finished', uid: 'uid-f' };
    const running = { namespace: 'team-a', name: 'running', uid: 'uid-r' };
    writeAttempt(running, 1, 64 * kib);
    writeAttempt(finished, 1, 64 * kib);
    writeAttempt(running, 2, 64 * kib);
    await store.evictOldest(128 * kib, (owner) => owner.name === 'finished');
    expect(readdirSync(directory)).toEqual([taskLogDirectoryName(running)]);
    expect(logsOf(running)).toEqual(['1.log', '2.log']);
  });

  it('never removes the newest attempt of a running Task, even over the cap', async () => {
    const running = { namespace: 'team-a', name: 'running', uid: 'uid-r' };
    writeAttempt(running, 1, 64 * kib);
    await store.evictOldest(16 * kib, () => false);
    expect(logsOf(running)).toEqual(['1.log']);
  });
});

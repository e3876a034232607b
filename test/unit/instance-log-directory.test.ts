// Log directories of instances that share a folder (src/logs/instance-log-directory.ts): each
// instance's own, held by a flock while it lives; a later instance cleans only the ended ones', and
// keeps the ended ones together within a cap, the oldest going first. Two claims in one process
// are two open file descriptions, which conflict as two processes would.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { FileLock } from '../../src/launcher/file-lock.js';
import { cleanEndedInstances, instanceLogDirectories, OwnedLogDirectory, trimEndedInstances } from '../../src/logs/instance-log-directory.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'parafork-instance-logs-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('instance log directories', () => {
  it('gives each instance a directory of its own, named so no node name can be taken for one', () => {
    const first = OwnedLogDirectory.claim(root, 'run');
    const second = OwnedLogDirectory.claim(root, 'run');
    expect(first.path).not.toBe(second.path);
    expect(path.basename(first.path)).toMatch(new RegExp(`^run_${process.pid}_[0-9a-f]{8}$`));
    mkdirSync(path.join(root, 'worker-1')); // a cluster agent's, by node name: never an instance's
    expect(instanceLogDirectories(root, 'run').sort()).toEqual([first.path, second.path].sort());
    first.release();
    second.release();
  });

  it('cleans only the directories of ended instances, holding each meanwhile, and removes those left empty', async () => {
    const live = OwnedLogDirectory.claim(root, 'manifests');
    const ended = OwnedLogDirectory.claim(root, 'manifests');
    const endedKeeping = OwnedLogDirectory.claim(root, 'manifests');
    for (const owned of [live, ended, endedKeeping]) writeFileSync(path.join(owned.path, 'log'), 'x');
    ended.release();
    endedKeeping.release();
    const cleaned: string[] = [];
    const removed = await cleanEndedInstances(root, 'manifests', (directory) => {
      cleaned.push(directory);
      // While it cleans, the directory is held: no one else can claim or clean it.
      expect(FileLock.tryAcquire(directory)).toBeUndefined();
      if (directory === ended.path) rmSync(path.join(directory, 'log'));
      return Promise.resolve();
    });
    expect(cleaned.sort()).toEqual([ended.path, endedKeeping.path].sort());
    expect(removed).toBe(1);
    expect(readdirSync(root).sort()).toEqual([path.basename(live.path), path.basename(endedKeeping.path)].sort());
    expect(readdirSync(live.path)).toEqual(['log']);
    live.release();
  });

  it('keeps the ended instances\' directories within a cap together, the one written longest ago going first, never a live one', async () => {
    const made = ['oldest', 'middle', 'newest', 'live'].map((name, index) => {
      const owned = OwnedLogDirectory.claim(root, 'run');
      const file = path.join(owned.path, 'default_task_uid', '1.log');
      mkdirSync(path.dirname(file));
      writeFileSync(file, 'x'.repeat(1000));
      const time = new Date(Date.now() - (10 - index) * 60_000);
      utimesSync(file, time, time);
      if (name !== 'live') owned.release();
      return { name, owned };
    });
    expect(await trimEndedInstances(root, 'run', 2500)).toBe(1);
    expect(instanceLogDirectories(root, 'run')).not.toContain(made[0]?.owned.path);
    // Asked not more often than once a minute: the second look within it sizes nothing, removes nothing.
    expect(await trimEndedInstances(root, 'run', 0, 60_000)).toBe(2);
    const again = OwnedLogDirectory.claim(root, 'run');
    writeFileSync(path.join(again.path, 'log'), 'x');
    again.release();
    expect(await trimEndedInstances(root, 'run', 0, 60_000)).toBe(0);
    expect(instanceLogDirectories(root, 'run').sort()).toEqual([made[3]?.owned.path, again.path].sort());
    made[3]?.owned.release();
  });
});

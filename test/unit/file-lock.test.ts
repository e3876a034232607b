// Ownership locks (src/launcher/file-lock.ts): an exclusive flock(2) taken without waiting, its
// holder named from /proc/locks. Two FileLocks in one process are two open file descriptions,
// which conflict as two processes would.
import { mkdirSync, mkdtempSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { FileLock, lockHolder } from '../../src/launcher/file-lock.js';

describe('FileLock', () => {
  let directory: string;
  beforeEach(() => {
    directory = mkdtempSync(path.join(tmpdir(), 'parafork-file-lock-'));
  });
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  it('is held by one taker at a time, until released', () => {
    const held = FileLock.tryAcquire(directory);
    expect(held).toBeDefined();
    expect(FileLock.tryAcquire(directory)).toBeUndefined();
    held?.release();
    held?.release();
    const next = FileLock.tryAcquire(directory);
    expect(next).toBeDefined();
    next?.release();
  });

  it('names its holder: this process, with its command line', () => {
    const held = FileLock.tryAcquire(directory);
    expect(lockHolder(directory)).toMatchObject({ pid: process.pid });
    expect(lockHolder(directory)?.command).toContain('node');
    held?.release();
    expect(lockHolder(directory)).toBeUndefined();
  });

  it('refuses a path that is gone with ENOENT, and locks the directory a path names now', () => {
    const inner = path.join(directory, 'group');
    expect(() => FileLock.tryAcquire(inner)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    mkdirSync(inner);
    const first = FileLock.tryAcquire(inner);
    rmdirSync(inner);
    mkdirSync(inner); // made again: the old lock is on an inode no path names
    const second = FileLock.tryAcquire(inner);
    expect(second).toBeDefined();
    first?.release();
    second?.release();
  });
});

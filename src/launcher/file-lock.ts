// Ownership locks for the agent: an exclusive flock(2) on a file or directory, taken without
// waiting and held until released or until this process ends. The kernel drops a flock with the
// last descriptor of its open file description, so a holder killed with -9 lets go too, and the
// lock is seen by every process that opens the same inode, in any container of the machine.
// Descriptors are close-on-exec (Node opens them so): a Task never inherits a lock of the agent.
// Agent-internal: src/index.ts does not export it (the native code lives behind src/launcher).
import { closeSync, fstatSync, openSync, readFileSync, statSync } from 'node:fs';

import { loadNativeBinding } from '../native/binding.js';

/** How often a path that is removed and made again while we lock it is tried again. */
const replacedRetries = 10;

export class FileLock {
  readonly path: string;
  #fd: number | undefined;

  private constructor(path: string, fd: number) {
    this.path = path;
    this.#fd = fd;
  }

  /**
   * The lock on `path`, an existing file or directory, or undefined when another open file
   * description holds it. Throws ENOENT when the path is gone. A path removed and made again
   * while we locked it (its last owner cleaning up) is locked again, so a lock held is always
   * on the inode the path names.
   */
  static tryAcquire(path: string): FileLock | undefined {
    const binding = loadNativeBinding();
    for (let attempt = 0; attempt < replacedRetries; attempt++) {
      const fd = openSync(path, 'r');
      let kept = false;
      try {
        if (!binding.tryLockExclusive(fd)) return undefined;
        const held = fstatSync(fd);
        const named = statSync(path);
        if (named.ino === held.ino && named.dev === held.dev) {
          kept = true;
          return new FileLock(path, fd);
        }
      } finally {
        if (!kept) closeSync(fd);
      }
    }
    throw Object.assign(new Error(`cannot lock ${path}: it was removed and made again ${replacedRetries} times while it was being locked`), { code: 'EAGAIN' });
  }

  /** Lets go of the lock (a second call does nothing). */
  release(): void {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
  }
}

export interface LockHolder {
  readonly pid: number;
  /** Its command line, when /proc shows it. */
  readonly command: string | undefined;
}

/**
 * The process holding a flock on `path`, as /proc/locks shows it, or undefined when it lists none
 * that this process can see: /proc/locks shows the pid 0 for a holder in another pid namespace
 * (another container), see proc(5).
 */
export function lockHolder(path: string): LockHolder | undefined {
  let locks: string;
  let device: bigint;
  let inode: bigint;
  try {
    locks = readFileSync('/proc/locks', 'utf8');
    ({ dev: device, ino: inode } = statSync(path, { bigint: true }));
  } catch {
    return undefined;
  }
  // A stat device number is the kernel's "new" encoding (12-bit major split around the minor);
  // /proc/locks prints MAJOR:MINOR:INODE with the numbers in hex (fs/locks.c, lock_get_status).
  const major = ((device >> 8n) & 0xfffn) | ((device >> 32n) & ~0xfffn);
  const minor = (device & 0xffn) | ((device >> 12n) & ~0xffn);
  const file = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${inode}`;
  for (const line of locks.split('\n')) {
    // "1: FLOCK  ADVISORY  WRITE 4242 00:26:1234 0 EOF"; a waiter's line has "->" after the number.
    const fields = line.trim().split(/\s+/);
    if (fields[1] !== 'FLOCK' || fields[5] !== file) continue;
    const pid = Number(fields[4]);
    if (!(pid > 0)) return undefined;
    return { pid, command: commandOf(pid) };
  }
  return undefined;
}

function commandOf(pid: number): string | undefined {
  try {
    const words = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const command = words.join(' ');
    return command.length > 200 ? `${command.slice(0, 200)}...` : command || undefined;
  } catch {
    return undefined;
  }
}

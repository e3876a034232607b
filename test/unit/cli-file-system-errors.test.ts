// What `parafork` says when the machine refuses it a file or directory (src/cli/file-system-errors.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { describeFileSystemError, isExplainedFileSystemError, unreadableLogDirectories } from '../../src/cli/file-system-errors.js';

const refused = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: refused`), { code, syscall: 'mkdir', path: '/run/parafork/run-logs' });

describe('file system errors of the parafork command', () => {
  it('tells a user who is not root to run it as root, naming the call and the path', () => {
    const error = refused('EACCES');
    expect(isExplainedFileSystemError(error)).toBe(true);
    expect(describeFileSystemError(error as never, 1000)).toBe(
      'cannot mkdir /run/parafork/run-logs: permission denied (EACCES). parafork needs root to sandbox Tasks (namespaces, mounts, cgroups; its state is in /run/parafork): run it as root, e.g. sudo scripts/parafork ...',
    );
  });

  it('tells root that the directory must be writable (a read-only mount), not to become root', () => {
    for (const code of ['EROFS', 'EACCES', 'EPERM']) {
      const line = describeFileSystemError(refused(code) as never, 0);
      expect(line).toMatch(new RegExp(`^cannot mkdir /run/parafork/run-logs: .* \\(${code}\\): parafork keeps its state and the Tasks' logs there, so it must be writable by root`));
      expect(line).not.toContain('sudo');
    }
  });

  it('says to free space on a full file system', () => {
    expect(describeFileSystemError(refused('ENOSPC') as never, 0)).toBe('cannot mkdir /run/parafork/run-logs: no space left on the device (ENOSPC): free some space there and run it again');
  });

  it('leaves other errors (and errors without a path) to the stack trace: they are faults, not set-up', () => {
    expect(isExplainedFileSystemError(refused('EBADF'))).toBe(false);
    expect(isExplainedFileSystemError(Object.assign(new Error('x'), { code: 'EACCES' }))).toBe(false);
    expect(isExplainedFileSystemError(undefined)).toBe(false);
  });

  it('finds nothing unreadable where the directories are readable or absent', () => {
    const directory = mkdtempSync(path.join(tmpdir(), 'parafork-readable-'));
    try {
      expect(unreadableLogDirectories([directory, path.join(directory, 'absent')], 0)).toBeUndefined();
    } finally {
      rmSync(directory, { recursive: true });
    }
  });
});

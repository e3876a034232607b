// Red team, session 11: the node's page cache as an oracle. A read with RWF_NOWAIT (preadv2(2))
// fails with EAGAIN when its data is not in the page cache and succeeds when it is, without
// reading the disk: a Task asking it of a file of the shared root it may read learns, page by
// page and without timing anything, whether the node or a neighbour read that file since it was
// last evicted (which library a neighbour loads, which pages of it run; the page-cache attacks
// for which Linux 5.0 restricted mincore(2), and cachestat(2), which the default filter refuses).
// The default filter now answers preadv2 with RWF_NOWAIT EOPNOTSUPP, the kernel's answer for a
// file that cannot do it, which programs take as "read as usual"; the same read without the flag
// works. The file is the test's own, under /var/lib/parafork-tests (the host's /tmp and /var/tmp
// are not in a Task's view): the
// test evicts it from the page cache, the Task asks, the test reads it, the Task asks again.
// And the eviction half (posix_fadvise DONTNEED), below. Needs root.
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher } from '../../src/index.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { makeTaskVisibleScratch } from '../helpers/task-visible-scratch.js';
import { python, runSandboxed } from './sandbox-helpers.js';

const skip = missingRequirement('the sandbox needs root', runningAsRoot);

/** The Task: one RWF_NOWAIT read of the file's first page, then one plain read. */
const probe = [
  'import errno, os, sys',
  'fd = os.open(sys.argv[1], os.O_RDONLY)',
  'buffer = bytearray(4096)',
  'try:',
  '    print("nowait", os.preadv(fd, [buffer], 0, os.RWF_NOWAIT))',
  'except OSError as error:',
  '    print("nowait", "EOPNOTSUPP" if error.errno == errno.EOPNOTSUPP else errno.errorcode[error.errno])',
  'print("plain", os.preadv(fd, [buffer], 0, 0))',
].join('\n');

/** The node's side: drop the file's pages from the cache (written back first), or read it. */
function evict(file: string): void {
  execFileSync(python, ['-c', 'import os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nos.fsync(fd)\nos.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)', file]);
}
function readAsTheNode(file: string): void {
  execFileSync(python, ['-c', 'import sys\nopen(sys.argv[1], "rb").read()', file]);
}
/** The node's side: whether the file's first page is cached (the test, as root, may ask). */
function cachedForTheNode(file: string): string {
  const ask = 'import errno, os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\ntry:\n    print(os.preadv(fd, [bytearray(4096)], 0, os.RWF_NOWAIT) == 4096)\nexcept BlockingIOError:\n    print(False)';
  return execFileSync(python, ['-c', ask, file], { encoding: 'utf8' }).trim();
}

describe.skipIf(skip !== undefined)(`a Task and the page cache of the node's files${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;
  let directory: string;
  let file: string;

  beforeAll(() => {
    launcher = new Launcher();
    directory = makeTaskVisibleScratch('parafork-page-cache-');
    execFileSync('chmod', ['0755', directory]);
    file = path.join(directory, 'library');
    writeFileSync(file, Buffer.alloc(1 << 20, 0x5a), { mode: 0o644 });
  });
  afterAll(async () => {
    await launcher.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it('cannot tell whether the node has read a file it may read', async () => {
    evict(file);
    const before = await runSandboxed(launcher, python, ['-c', probe, file]);
    readAsTheNode(file);
    const after = await runSandboxed(launcher, python, ['-c', probe, file]);
    expect(before.stderr).toBe('');
    expect(after.stderr).toBe('');
    // Before the fix: "nowait EAGAIN" and then "nowait 4096", the node's read seen.
    expect(before.stdout.trim().split('\n')).toEqual(['nowait EOPNOTSUPP', 'plain 4096']);
    expect(after.stdout.trim().split('\n')).toEqual(['nowait EOPNOTSUPP', 'plain 4096']);
  });

  // The other half of such an attack, and interference with the node: posix_fadvise(2)
  // POSIX_FADV_DONTNEED drops a file's clean, unmapped pages from the page cache whoever cached
  // them, for any file the caller may open (the kernel lets MADV_PAGEOUT do so only to a file's
  // owner or writer, for this side channel: mm/madvise.c, can_do_file_pageout). A default Task evicted the node's pages of
  // the test's file. The default filter now answers it 0 without making it (advice, which callers
  // cannot tell from a kernel that keeps the pages anyway).
  it("cannot drop the node's cached pages of a file it may read", async () => {
    readAsTheNode(file);
    expect(cachedForTheNode(file)).toBe('True');
    const run = await runSandboxed(launcher, python, ['-c', 'import os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nos.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)\nprint("dontneed ok")', file]);
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('dontneed ok');
    // Before the fix: False, the node's pages gone.
    expect(cachedForTheNode(file)).toBe('True');
  });
});

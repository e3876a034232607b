// Red team, session 13: page cache a default Task pins outside its memory limit. mlock(2) of a
// file mapping locks the node's cached pages of that file, which stay charged to whichever cgroup
// read them first (the node's, a neighbour's), not to the Task's, and which no one can reclaim
// while they are locked. RLIMIT_MEMLOCK bounds it per process, and Tasks inherited the agent's (8
// MiB, the kernel's default since Linux 5.16): probe, on this machine, a default Task in a memory
// cgroup of 64 MiB locked 104 MiB of a library the node had read, in 13 processes, with 10 MiB
// charged to its cgroup (Mlocked in /proc/meminfo +104 MiB); at its 1,024 processes, 8 GiB of the
// node's cache, as much of it as the Task may read. Every sandboxed Task now gets RLIMIT_MEMLOCK
// 64 KiB (the kernel's default before 5.16; gpg's secure memory fits), soft and hard, or the
// agent's own where that is lower: 64 MiB at 1,024 processes. Its own memory it could lock anyway
// is charged to it. Needs root (the sandbox).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher } from '../../src/index.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python, runSandboxed } from './sandbox-helpers.js';

const skip = missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root)', runningAsRoot);

/** Python: the limit, then mlock of the Python binary (6.5 MiB here) and of its first 64 KiB (a file of the node's root), then raising the limit. */
const lockProbe = [
  'import ctypes, errno, os, resource',
  'libc = ctypes.CDLL(None, use_errno=True)',
  'libc.mmap.restype = ctypes.c_void_p',
  'def answer(result): return "ok" if result == 0 else errno.errorcode[ctypes.get_errno()]',
  'print("limit", *resource.getrlimit(resource.RLIMIT_MEMLOCK))',
  'fd = os.open("/usr/bin/python3", os.O_RDONLY)',
  'size = os.fstat(fd).st_size // 4096 * 4096',
  'address = libc.mmap(None, ctypes.c_size_t(size), 1, 1, fd, ctypes.c_long(0))  # PROT_READ, MAP_SHARED',
  'print("mlock the file", answer(libc.mlock(ctypes.c_void_p(address), ctypes.c_size_t(size))))',
  'print("mlock 64 KiB", answer(libc.mlock(ctypes.c_void_p(address), ctypes.c_size_t(64 << 10))))',
  'try: resource.setrlimit(resource.RLIMIT_MEMLOCK, (8 << 20, 8 << 20)); print("raise ok")',
  '# Python answers EPERM from setrlimit with ValueError("not allowed to raise maximum limit").',
  'except (OSError, ValueError): print("raise refused")',
].join('\n');

describe.skipIf(skip !== undefined)(`locked memory of a sandboxed Task${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;

  beforeAll(() => {
    launcher = new Launcher();
  });
  afterAll(async () => {
    await launcher.close();
  });

  it('is at most 64 KiB a process: the node s page cache it locks is charged to no cgroup of its own', async () => {
    const run = await runSandboxed(launcher, python, ['-c', lockProbe]);
    expect(run.stderr).toBe('');
    expect(run.stdout.trim().split('\n')).toEqual(['limit 65536 65536', 'mlock the file ENOMEM', 'mlock 64 KiB ok', 'raise refused']);
  });
});

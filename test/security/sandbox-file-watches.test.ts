// Red team, session 16: file watches a default Task put on the node's own files. A default Task's
// root is the node's root, bound read-only, so the inodes it can watch are the node's: libc,
// ld.so.cache, /etc. An inotify watch (and a dnotify one, fcntl F_NOTIFY on a directory) is a mark
// on the inode, and every open, read and close of that inode by any process of the node walks its
// marks and allocates an event for each (fs/notify/), read or not. The kernel bounds inotify per
// uid (fs.inotify.max_user_instances, 128), and each Task has a uid of its own, so each Task put
// 128 marks on each inode it liked; dnotify is bounded by nothing but its fds and processes.
// Probes on this machine (docs/security.md, session 16): eight default Tasks that each opened 128
// inotify instances watching those files and slept made every process start on the node 10-20x
// slower (posix_spawn of /bin/true and its wait: 0.6-1.2 ms, then 9-12 ms; 24.5 ms beside sixteen),
// and a neighbour's sandboxed spawns 0.2x as many a second beside four; four processes of one Task
// with 1,000 F_NOTIFY each on /etc and /usr/lib/x86_64-linux-gnu made it 2.5-3.4x slower. The
// default filter now answers inotify ENOSYS (a kernel without it) and F_NOTIFY EINVAL (likewise);
// watchers fall back to polling. This test checks the Task cannot place either; the slowdown is
// not measured here (the machine is shared). Needs root (the sandbox).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher } from '../../src/index.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python, runSandboxed } from './sandbox-helpers.js';

const skip = missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root)', runningAsRoot);

/** Python: an inotify instance watching the node's libc, then dnotify on /etc; what each answered. */
const watchProbe = [
  'import ctypes, errno, fcntl, os',
  'libc = ctypes.CDLL(None, use_errno=True)',
  'def answer(result): return "ok" if result >= 0 else errno.errorcode[ctypes.get_errno()]',
  'instance = libc.inotify_init1(os.O_CLOEXEC)',
  'print("inotify_init1", answer(instance))',
  'if instance >= 0: print("inotify_add_watch", answer(libc.inotify_add_watch(instance, b"/etc/ld.so.cache", 0xfff)))',
  'directory = os.open("/etc", os.O_RDONLY | os.O_DIRECTORY)',
  'try: fcntl.fcntl(directory, fcntl.F_NOTIFY, fcntl.DN_ACCESS | fcntl.DN_MODIFY | fcntl.DN_MULTISHOT); print("F_NOTIFY ok")',
  'except OSError as error: print("F_NOTIFY", errno.errorcode[error.errno])',
  '# Every other fcntl still works.',
  'print("F_GETFD", fcntl.fcntl(directory, fcntl.F_GETFD))',
].join('\n');

describe.skipIf(skip !== undefined)(`file watches of a default Task${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;

  beforeAll(() => {
    launcher = new Launcher();
  });
  afterAll(async () => {
    await launcher.close();
  });

  it('are not placed on the node s files: inotify answers ENOSYS and dnotify (F_NOTIFY) EINVAL', async () => {
    const run = await runSandboxed(launcher, python, ['-c', watchProbe]);
    expect(run.stderr).toBe('');
    expect(run.stdout.trim().split('\n')).toEqual(['inotify_init1 ENOSYS', 'F_NOTIFY EINVAL', 'F_GETFD 1']);
  });
});

// Red team, session 16: a sandboxed Task's standard input was the agent's own /dev/null, one open
// file the spawner made at its start and handed to every Task (fd 0). Locks taken with flock(2)
// and open file description locks (F_OFD_SETLK) belong to the open file, not to the process that
// took them, so they last as long as that file is open somewhere: here, in the agent, for its
// whole life. A default Task that locked its stdin and exited left the node's /dev/null locked
// exclusively, for every process of the node that locks it, until the agent stopped (probe: the
// node's `flock -n /dev/null true` failed after the Task had ended). The flags set on it with
// F_SETFL (O_APPEND, O_NONBLOCK, ...) were shared the same way: a later Task, of another author,
// read the flags an earlier one had set, a channel between Tasks that share nothing else, and it
// could lift the earlier one's lock as its own. Each sandboxed Task now gets /dev/null opened for
// it (in the child, before anything of the Task runs): what it does to that file goes with it.
//
// Harmless by construction: the locks are on /dev/null, which nothing waits on, and the Task ends
// at once. Needs root (the sandbox).
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher } from '../../src/index.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python, runSandboxed } from './sandbox-helpers.js';

const skip = missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root)', runningAsRoot);

/** Python: a whole-file write lock through the open file description of `fd` (F_OFD_SETLK), "ok" or the errno's name. */
const ofdLock = [
  'import errno, fcntl, struct',
  'def ofd_lock(fd):',
  '    # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks)',
  '    try: fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0)); return "ok"',
  '    except OSError as error: return errno.errorcode[error.errno]',
  'def flock(fd):',
  '    try: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); return "ok"',
  '    except OSError as error: return errno.errorcode[error.errno]',
].join('\n');

/** The Task: both locks on its stdin, and O_APPEND | O_NONBLOCK set on it; then it exits. */
const locker = [ofdLock, 'import os', 'print("flock", flock(0), "ofd", ofd_lock(0))', 'fcntl.fcntl(0, fcntl.F_SETFL, fcntl.fcntl(0, fcntl.F_GETFL) | os.O_APPEND | os.O_NONBLOCK)'].join('\n');

/** The node, after the Task ended: the same locks on a /dev/null of its own. */
function nodeLocks(): string {
  const probe = [ofdLock, 'import os', 'fd = os.open("/dev/null", os.O_RDWR)', 'print("flock", flock(fd), "ofd", ofd_lock(fd))'].join('\n');
  return execFileSync(python, ['-c', probe], { encoding: 'utf8' }).trim();
}

describe.skipIf(skip !== undefined)(`a sandboxed Task s standard input${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;

  beforeAll(() => {
    launcher = new Launcher();
  });
  afterAll(async () => {
    await launcher.close();
  });

  it('takes its locks with it: the node s /dev/null is not left locked once the Task has ended', async () => {
    const run = await runSandboxed(launcher, python, ['-c', locker]);
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('flock ok ofd ok');
    // The launcher is still open (as an agent is for its whole life).
    expect(nodeLocks()).toBe('flock ok ofd ok');
  });

  it('is a file of its own: a later Task sees none of the flags an earlier one set on its stdin', async () => {
    const first = await runSandboxed(launcher, python, ['-c', locker]);
    expect(first.stdout.trim()).toBe('flock ok ofd ok');
    const later = await runSandboxed(launcher, python, ['-c', 'import fcntl, os\nflags = fcntl.fcntl(0, fcntl.F_GETFL)\nprint("append", bool(flags & os.O_APPEND), "nonblock", bool(flags & os.O_NONBLOCK), "mode", flags & os.O_ACCMODE == os.O_RDWR)']);
    expect(later.stderr).toBe('');
    expect(later.stdout.trim()).toBe('append False nonblock False mode True');
  });
});

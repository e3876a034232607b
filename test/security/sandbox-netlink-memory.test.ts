// Red team, session 13: kernel memory a default Task holds outside its memory limit. A netlink
// socket's receive queue holds buffers the kernel allocates without charging any memory cgroup
// (unix socket buffers, pipes, tmpfs and memory files are charged to the writer's): a Task's own
// netlink socket may send to itself (NETLINK_USERSOCK lets anyone send), and any netlink request
// with an acknowledgement or a dump queues the kernel's answer, each up to the socket's receive
// buffer, which SO_RCVBUF raises to twice net.core.rmem_max (8 MiB on this node). Probe, on this
// machine: a default Task in a memory cgroup of 64 MiB queued 66 MB in 8 sockets while its cgroup
// showed 5 MiB in use, and the node's available memory fell by 80 MiB; at 1,024 fds a process and
// 1,024 processes a Task, that is the node's memory many times over, and the OOM killer, which
// finds no process holding it and ranks Tasks first (oom_score_adj 1000), kills neighbours before
// the Task. The default filter now refuses AF_NETLINK sockets (EAFNOSUPPORT): in a Task's own
// network namespace they listed `lo` and little else. This probe queues at most 32 MiB, freed when
// it exits. Needs root (the sandbox).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher } from '../../src/index.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python, runSandboxed } from './sandbox-helpers.js';

const skip = missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root)', runningAsRoot);

/**
 * Python: fill the receive queues of 16 netlink sockets with messages each sends to itself, at
 * most 2 MiB a socket, and print how much was queued (or why no socket could be made); then try
 * the protocols ordinary tools open (route, sock_diag, generic, uevents).
 */
const queueFiller = [
  'import errno, socket',
  'queued = 0',
  'try:',
  '    for _ in range(16):',
  '        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 2)  # NETLINK_USERSOCK',
  '        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2 << 20)',
  '        sock.bind((0, 0)); sock.setblocking(False)',
  '        port = sock.getsockname()[0]',
  '        for _ in range(16):',
  '            try: sock.sendto(bytes(16) + bytes(131072), (port, 0)); queued += 131088',
  '            except BlockingIOError: break',
  '    print("queued", queued)',
  'except OSError as error:',
  '    print("queued", queued, errno.errorcode[error.errno])',
  'for protocol in (0, 4, 16, 15):',
  '    try: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol); print("protocol", protocol, "ok")',
  '    except OSError as error: print("protocol", protocol, errno.errorcode[error.errno])',
].join('\n');

describe.skipIf(skip !== undefined)(`netlink receive queues of a default Task${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;

  beforeAll(() => {
    launcher = new Launcher();
  });
  afterAll(async () => {
    await launcher.close();
  });

  it('hold nothing: no netlink socket can be made (EAFNOSUPPORT), since the kernel charges their buffers to no memory cgroup', async () => {
    const run = await runSandboxed(launcher, python, ['-c', queueFiller]);
    expect(run.stderr).toBe('');
    expect(run.stdout.trim().split('\n')).toEqual(['queued 0 EAFNOSUPPORT', 'protocol 0 EAFNOSUPPORT', 'protocol 4 EAFNOSUPPORT', 'protocol 16 EAFNOSUPPORT', 'protocol 15 EAFNOSUPPORT']);
  });
});

// Red team, session 13: classic BPF programs a default Task hands the kernel. A socket filter
// (setsockopt SO_ATTACH_FILTER, SO_ATTACH_REUSEPORT_CBPF) and a seccomp filter (seccomp(2)
// SECCOMP_SET_MODE_FILTER, prctl PR_SET_SECCOMP) are compiled to machine code, and the kernel
// counts that code against one budget for the whole node, net.core.bpf_jit_limit (504 MiB here),
// which no cgroup, rlimit or namespace divides, and which a program of the agent's own needs: the
// child attaches each Task's default filter after it has dropped its capabilities, and once the
// budget is full an unprivileged compile fails, which with CONFIG_BPF_JIT_ALWAYS_ON (Debian's,
// Ubuntu's, Fedora's kernels) fails the attach. Probe, on this machine: 1,000 socket filters of
// 1,996 `div #3` held 27 MiB of code for 26 MiB of the Task's memory (1,024 fds a process, so one
// default Task fills the budget with 20 processes), and with the limit at 1 for one spawn the
// agent's next sandboxed spawn failed (`seccomp: ... error -524`, ENOTSUPP) while no one could
// start a Task. The filter now refuses both kinds of program: setsockopt attaching one EPERM,
// seccomp(2) and PR_SET_SECCOMP EINVAL (what a kernel without seccomp filters answers, so that
// programs which sandbox themselves where they can, man-db and sshd, go on without). Nothing here
// fills the budget: each probe attaches one program of two instructions.
// Session 14: the node's other tenants (a container under Docker's profile, any local user) can
// still fill the budget with programs of their own, and then the child's attach of the Task's
// filter failed for every Task. Past the limit the kernel lets a holder of CAP_BPF or CAP_SYS_ADMIN
// through (kernel/bpf/core.c, bpf_jit_charge_modmem), so the child now attaches the filters whose
// rules are ours while it still holds CAP_SYS_ADMIN, before it takes the Task's ids. Shown here by
// the order of the child's calls under strace(1), not by filling the budget: net.core.bpf_jit_limit
// is the node's, and this machine is shared.
// Session 15 (h-jit): a Localhost profile was still attached last, as the Task's user, so a full
// budget still failed every Task that named one. Its compile now judges whether its program allows
// every call the child makes after the privileged attach (native/src/seccomp_attach_point.cc);
// if so it goes there too (allow-all, the allow-list fixture), else last (one call refused or only
// logged), and the child's calls there are checked against that list.
// Needs root (the sandbox) and x86_64 (the probes name x86_64 system call numbers).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher } from '../../src/index.js';
import { loadNativeBinding } from '../../src/native/binding.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python, runSandboxed } from './sandbox-helpers.js';

const skip =
  missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root)', runningAsRoot) ??
  missingRequirement('the probes use x86_64 system call numbers', process.arch === 'x64');

/** Python: each way to hand the kernel a classic BPF program, with a two-instruction one ("accept"), and what it answered. */
const attachProbe = [
  'import ctypes, errno, socket, struct',
  'libc = ctypes.CDLL(None, use_errno=True)',
  'def answer(result): return "ok" if result >= 0 else errno.errorcode[ctypes.get_errno()]',
  'class Program(ctypes.Structure):',
  '    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]',
  '# ld [0]; ret #0x7fff0000: loads seccomp_data.nr (a socket packet\'s first word), accepts everything.',
  'code = ctypes.create_string_buffer(struct.pack("HBBI", 0x20, 0, 0, 0) + struct.pack("HBBI", 0x06, 0, 0, 0x7fff0000))',
  'program = Program(2, ctypes.addressof(code))',
  'size = ctypes.sizeof(program)',
  'unix = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
  'print("SO_ATTACH_FILTER", answer(libc.setsockopt(unix.fileno(), 1, 26, ctypes.byref(program), size)))',
  'udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
  'udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)',
  'print("SO_ATTACH_REUSEPORT_CBPF", answer(libc.setsockopt(udp.fileno(), 1, 51, ctypes.byref(program), size)))',
  'print("seccomp SECCOMP_SET_MODE_FILTER", answer(libc.syscall(317, 1, 0, ctypes.byref(program))))',
  'print("prctl PR_SET_SECCOMP", answer(libc.prctl(22, 2, ctypes.byref(program), 0, 0)))',
].join('\n');

/** Python: the same calls' neighbours, which programs make all the time: still answered by the kernel. */
const neighbourProbe = [
  'import ctypes, errno, socket',
  'libc = ctypes.CDLL(None, use_errno=True)',
  'def answer(result): return "ok" if result >= 0 else errno.errorcode[ctypes.get_errno()]',
  'one = ctypes.c_int(1)',
  'v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)',
  '# IPPROTO_IPV6 options with the numbers of SO_ATTACH_FILTER (26: IPV6_V6ONLY) and SO_ATTACH_REUSEPORT_CBPF (51: IPV6_RECVHOPLIMIT).',
  'print("IPV6_V6ONLY", answer(libc.setsockopt(v6.fileno(), 41, 26, ctypes.byref(one), 4)))',
  'print("IPV6_RECVHOPLIMIT", answer(libc.setsockopt(v6.fileno(), 41, 51, ctypes.byref(one), 4)))',
  'print("SO_REUSEADDR", answer(libc.setsockopt(v6.fileno(), 1, 2, ctypes.byref(one), 4)))',
  '# SO_DETACH_FILTER with nothing attached: the kernel\'s own ENOENT.',
  'print("SO_DETACH_FILTER", answer(libc.setsockopt(v6.fileno(), 1, 27, ctypes.byref(one), 4)))',
  'print("PR_SET_NAME", answer(libc.prctl(15, b"probe", 0, 0, 0)))',
  'print("PR_GET_SECCOMP", libc.prctl(21, 0, 0, 0, 0))',
].join('\n');

describe.skipIf(skip !== undefined)(`classic BPF programs from a default Task${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;

  beforeAll(() => {
    launcher = new Launcher();
  });
  afterAll(async () => {
    await launcher.close();
  });

  it('are refused, socket filters with EPERM and seccomp filters with EINVAL: their code counts against the node-wide bpf_jit_limit', async () => {
    const run = await runSandboxed(launcher, python, ['-c', attachProbe]);
    expect(run.stderr).toBe('');
    expect(run.stdout.trim().split('\n')).toEqual([
      'SO_ATTACH_FILTER EPERM',
      'SO_ATTACH_REUSEPORT_CBPF EPERM',
      'seccomp SECCOMP_SET_MODE_FILTER EINVAL',
      'prctl PR_SET_SECCOMP EINVAL',
    ]);
  });

  it('leaves the options that share their numbers at other levels, and the rest of prctl, to the kernel', async () => {
    const run = await runSandboxed(launcher, python, ['-c', neighbourProbe]);
    expect(run.stderr).toBe('');
    expect(run.stdout.trim().split('\n')).toEqual(['IPV6_V6ONLY ok', 'IPV6_RECVHOPLIMIT ok', 'SO_REUSEADDR ok', 'SO_DETACH_FILTER ENOENT', 'PR_SET_NAME ok', 'PR_GET_SECCOMP 2']);
  });
});

const strace = '/usr/bin/strace';
const orderSkip = skip ?? missingRequirement('the order is read with strace(1)', existsSync(strace));

/** The child's lines, as strace -ff saw them (those of `calls`), when a Launcher in a node of its own spawned one Task of this sandbox. */
function traceChild(kind: string, calls: string): { exit: unknown; lines: string[] } {
  const scratch = mkdtempSync(path.join(tmpdir(), 'parafork-attach-order-'));
  try {
    const trace = path.join(scratch, 'trace');
    const program = path.join(path.dirname(fileURLToPath(import.meta.url)), 'seccomp-attach-order-probe.ts');
    // -ff: a file per process (trace.PID), so no line of the child is split by another's.
    const run = spawnSync(strace, ['-ff', '-qq', '-e', `trace=${calls}`, '-e', 'signal=none', '-o', trace, process.execPath, program, kind], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.stderr).toBe('');
    // The child is the process that attached a filter (libseccomp's probes in node's main thread
    // pass none: NULL); the rest are node's threads and the Task's own processes after the exec.
    // strace shows the program as `{len=...}`, or as its address where it may not read the child's
    // memory: a tracer without CAP_SYS_PTRACE (the agent's Pod) once the child has taken the
    // Task's ids, which makes it non-dumpable (ptrace(2), "Ptrace access mode checking").
    const children = readdirSync(scratch)
      .map((name) => readFileSync(path.join(scratch, name), 'utf8').split('\n'))
      .filter((lines) => lines.some((line) => attachLine.test(line)));
    expect(children).toHaveLength(1);
    return { exit: JSON.parse(run.stdout) as unknown, lines: children[0]!.filter((line) => line !== '') };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

const attachLine = /^seccomp\(SECCOMP_SET_MODE_FILTER, 0, (\{len=|0x[0-9a-f]+\))/;

/** The child's calls, in order, that show where it attached its filter. */
function childCalls(kind: string): { exit: unknown; calls: string[] } {
  const { exit, lines } = traceChild(kind, 'seccomp,setresuid,capset,prctl,execveat');
  // The bounding set's reads and drops are many: of prctl, only no_new_privs matters here.
  const calls = lines
    .filter((line) => !line.startsWith('prctl(') || line.startsWith('prctl(PR_SET_NO_NEW_PRIVS'))
    .map((line) => (line.startsWith('prctl(') ? 'no_new_privs' : line.replace(/\(.*/s, '')));
  return { exit, calls };
}

describe.skipIf(orderSkip !== undefined)(`the child's own filter and the node's JIT budget${orderSkip ? ` (skipped: ${orderSkip})` : ''}`, () => {
  // setresuid twice in a user namespace: the namespace's owner as effective ids before unshare, then the Task's ids inside.
  it.each([
    ['default', "attaches the default filter before it takes the Task's ids, while it holds CAP_SYS_ADMIN, which a full bpf_jit_limit lets through", ['no_new_privs', 'seccomp', 'setresuid', 'capset', 'execveat']],
    ['unconfined', "attaches Unconfined's RLIMIT_CORE guard there too", ['no_new_privs', 'seccomp', 'setresuid', 'capset', 'execveat']],
    ['custom', 'attaches a custom profile that allows every call the child makes after that point there too (Kubernetes-style allow-all)', ['no_new_privs', 'seccomp', 'setresuid', 'capset', 'execveat']],
    ['custom-allow-list', 'and an allow-list in Docker\'s format that lists them (keyctl refused: the Task\'s uid holds no keys to empty)', ['no_new_privs', 'seccomp', 'setresuid', 'capset', 'execveat']],
    ['custom-refusing-capset', "attaches a custom profile that refuses one of them (capset) last, as the Task's user, and the Task runs", ['no_new_privs', 'setresuid', 'capset', 'seccomp', 'execveat']],
    ['custom-logging-setresuid', 'and one that only logs one of them (SCMP_ACT_LOG for setresuid): only SCMP_ACT_ALLOW counts', ['no_new_privs', 'setresuid', 'capset', 'seccomp', 'execveat']],
    ['user-namespace', "attaches it last in a user namespace, where the child no longer holds the node's capabilities", ['setresuid', 'no_new_privs', 'setresuid', 'capset', 'seccomp', 'execveat']],
  ])('%s: %s', (kind, _what, expected) => {
    const { exit, calls } = childCalls(kind);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(calls).toEqual(expected);
  });

  // Session 15: a custom profile goes there when its program allows every call the child makes
  // after that point, as listed in native/src/seccomp_attach_point.cc (the default filter's unit
  // test reads the same list). Every call strace sees between the attach and the exec must be on it,
  // or a profile that refuses the missing one would be attached early and fail every spawn.
  it.each(['default', 'custom'])("%s: makes no call between the attach and the exec that the attach point's list leaves out", (kind) => {
    const listed = loadNativeBinding().childCallsAfterPrivilegedAttach;
    const { exit, lines } = traceChild(kind, 'all');
    expect(exit).toEqual({ code: 0, signal: null });
    const attach = lines.findIndex((line) => attachLine.test(line));
    const exec = lines.findIndex((line, index) => index > attach && line.startsWith('execveat('));
    expect(exec).toBeGreaterThan(attach);
    const made = lines.slice(attach + 1, exec + 1).map((line) => line.replace(/\(.*/s, ''));
    expect(made).toEqual(expect.arrayContaining(['setgroups', 'setresgid', 'setresuid', 'capset', 'chdir', 'getcwd', 'execveat']));
    expect(made.filter((name) => !listed.includes(name))).toEqual([]);
  });
});

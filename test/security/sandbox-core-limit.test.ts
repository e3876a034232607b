// Red team: a Task's RLIMIT_CORE, which keeps a crash from starting the node's crash handler as
// root (sandbox-crash-handler.test.ts crashes Tasks under a pipe core_pattern, which needs the
// node's /proc/sys writable: not so in a Pod). This file checks the limit itself, without a crash,
// so that it runs wherever the sandbox does, the agent's Pod included (test/node/security-in-pod):
// 1 soft and hard in every Task, and nothing the Task calls changes it (the default seccomp filter
// answers setrlimit and prlimit64 of RLIMIT_CORE with 0 and leaves it, and refuses a prlimit64 that
// also asks for the old value; raising the hard limit needs CAP_SYS_RESOURCE, which no Task holds).
// The same under a filter that allows both calls (red team, session 11): a Localhost profile such
// as Kubernetes' audit example (defaultAction SCMP_ACT_LOG) or Docker's default.json, which any
// `restricted` Task may name, and `Unconfined`; the sandbox stacks a guard of its own there.
// Needs root.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher, SeccompFilter, type SandboxOptions } from '../../src/index.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { coreLimitProbe, python, runSandboxed } from './sandbox-helpers.js';

const skip = missingRequirement('the sandbox needs root', runningAsRoot);

// Each call's outcome and the limit after it, "soft hard" as /proc/self/limits shows them.
const payload = [
  ...coreLimitProbe,
  'print("limits", limits())',
  'attempt("prlimit64 soft 0", lambda: libc.syscall(302, 0, 4, ctypes.byref(Limit(0, 1)), None))',
  'attempt("setrlimit 0 0", lambda: libc.syscall(160, 4, ctypes.byref(Limit(0, 0))))',
  'attempt("prlimit64 0 0 with old", lambda: libc.syscall(302, 0, 4, ctypes.byref(Limit(0, 0)), ctypes.byref(Limit())))',
  'attempt("prlimit64 unlimited", lambda: libc.syscall(302, 0, 4, ctypes.byref(Limit(2**64 - 1, 2**64 - 1)), None))',
  'old = Limit()',
  'print("prlimit64 read", "ok" if libc.syscall(302, 0, 4, None, ctypes.byref(old)) == 0 else "failed", old.soft, old.hard)',
].join('\n');

describe.skipIf(skip !== undefined)(`a Task's RLIMIT_CORE${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;

  beforeAll(() => {
    launcher = new Launcher();
  });
  afterAll(async () => {
    await launcher.close();
  });

  const expected = [
    'limits 1 1',
    // Setting it answers success and changes nothing (ssh-agent and gpg-agent stop when they
    // cannot turn core dumps off); a call that also asks for the old value is refused (EPERM).
    'prlimit64 soft 0 ok 1 1',
    'setrlimit 0 0 ok 1 1',
    'prlimit64 0 0 with old errno=1 1 1',
    'prlimit64 unlimited ok 1 1',
    // Reading it is allowed.
    'prlimit64 read ok 1 1',
  ];
  const filters: ReadonlyArray<readonly [string, () => SandboxOptions]> = [
    ['the default filter', () => ({})],
    // A profile that lets everything through, as SCMP_ACT_LOG profiles and Docker's default do for these calls.
    ['a profile that allows setrlimit and prlimit64', () => ({ seccomp: SeccompFilter.compile({ defaultAction: { action: 'SCMP_ACT_ALLOW' }, rules: [] }) })],
    ['no filter (Unconfined)', () => ({ seccomp: 'unconfined' })],
  ];

  it.each(filters)('is 1 soft and hard, and nothing the Task calls lowers or raises it, under %s', async (_name, sandbox) => {
    const run = await runSandboxed(launcher, python, ['-c', payload], sandbox());
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout.trim().split('\n')).toEqual(expected);
  });

  // Unconfined has no filter to kill the i386 ABI: setrlimit (75) and prlimit64 (340) through
  // `int 0x80` from a 64-bit process, with their arguments in the low 4 GiB (MAP_32BIT).
  it.skipIf(process.arch !== 'x64')('is kept under Unconfined through the i386 system calls too', async () => {
    const i386 = [
      ...coreLimitProbe,
      'import struct',
      'libc.mmap.restype = ctypes.c_void_p',
      'libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]',
      'page = libc.mmap(None, 4096, 7, 0x22 | 0x40, -1, 0)  # read, write, exec; private, anonymous, 32-bit',
      'def int80(number, ebx, ecx, edx, esi):',
      '    # push rbx; push rsi; mov eax/ebx/ecx/edx/esi; int 0x80; pop rsi; pop rbx; ret',
      '    code = b"\\x53\\x56" + b"".join(op + struct.pack("<I", value) for op, value in ((b"\\xb8", number), (b"\\xbb", ebx), (b"\\xb9", ecx), (b"\\xba", edx), (b"\\xbe", esi))) + b"\\xcd\\x80\\x5e\\x5b\\xc3"',
      '    ctypes.memmove(page, code, len(code))',
      '    return ctypes.CFUNCTYPE(ctypes.c_int)(page)()',
      'limit = page + 2048',
      'ctypes.memmove(limit + 16, struct.pack("<QQ", 0, 1), 16)',
      'print("i386 prlimit64 soft 0", int80(340, 0, 4, limit + 16, 0), limits())',
      'ctypes.memmove(limit, struct.pack("<II", 0, 0), 8)',
      'print("i386 setrlimit 0 0", int80(75, 4, limit, 0, 0), limits())',
    ].join('\n');
    const run = await runSandboxed(launcher, python, ['-c', i386], { seccomp: 'unconfined' });
    expect(run.stderr).toBe('');
    expect(run.stdout.trim().split('\n')).toEqual(['i386 prlimit64 soft 0 0 1 1', 'i386 setrlimit 0 0 0 1 1']);
  });
});

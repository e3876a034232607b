// Red team: a Task's RLIMIT_CORE, which keeps a crash from starting the node's crash handler as
// root (sandbox-crash-handler.test.ts crashes Tasks under a pipe core_pattern, which needs the
// node's /proc/sys writable: not so in a Pod). This file checks the limit itself, without a crash,
// so that it runs wherever the sandbox does, the agent's Pod included (test/node/security-in-pod):
// 1 soft and hard in every Task, and nothing the Task calls changes it (the default seccomp filter
// answers setrlimit and prlimit64 of RLIMIT_CORE with 0 and leaves it, and refuses a prlimit64 that
// also asks for the old value; raising the hard limit needs CAP_SYS_RESOURCE, which no Task holds).
// Needs root.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher } from '../../src/index.js';
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

  it('is 1 soft and hard, and nothing the Task calls lowers or raises it', async () => {
    const run = await runSandboxed(launcher, python, ['-c', payload]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout.trim().split('\n')).toEqual([
      'limits 1 1',
      // Setting it answers success and changes nothing (ssh-agent and gpg-agent stop when they
      // cannot turn core dumps off); a call that also asks for the old value is refused (EPERM).
      'prlimit64 soft 0 ok 1 1',
      'setrlimit 0 0 ok 1 1',
      'prlimit64 0 0 with old errno=1 1 1',
      'prlimit64 unlimited ok 1 1',
      // Reading it is allowed.
      'prlimit64 read ok 1 1',
    ]);
  });
});

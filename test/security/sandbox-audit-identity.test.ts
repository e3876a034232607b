// A Task's audit identity: the login uid (/proc/self/loginuid, the `auid` of every audit record) and
// the audit session id. The kernel lets a process whose login uid is unset set it once, with no
// capability at all (audit_set_loginuid_perm() in kernel/auditsc.c); only changing a set one needs
// CAP_AUDIT_CONTROL. An agent run by a service manager (systemd, a container runtime) has it unset,
// and so had every Task it started: a default Task wrote 1000 there and from then on the node's
// audit log put everything it did (and everything its children did) under the login of the host's
// user 1000, in a session of its own, which is what audit rules such as the CIS benchmark's
// (`-F auid>=1000 -F auid!=unset`) attribute to a person (red team, session 10). parafork-init now
// sets it to the Task's own uid before the Task runs, so it is set, and the Task, which has no
// capabilities, cannot change it. Where the launcher's own login uid is already set (`parafork run`
// from a login shell), the Task keeps it, as a program run with sudo does, and cannot change it
// either.
//
// Harmless: a process may only write its own login uid, and it goes with the Task. Needs root (the
// sandbox) and a kernel with audit (CONFIG_AUDITSYSCALL: /proc/self/loginuid).
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher, type SandboxOptions } from '../../src/index.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python, runSandboxed } from './sandbox-helpers.js';

const skip =
  missingRequirement('the sandbox needs root', runningAsRoot) ??
  (existsSync('/proc/self/loginuid') ? undefined : 'the kernel has no audit login uid (CONFIG_AUDITSYSCALL)');

const unset = 4294967295;
/** A uid no Task here runs as; what the hostile Task claims to be. */
const claimed = 1000;

/** Prints the login uid before and after an attempt to set it to `claimed`, and the Task's uid: "<before> <outcome> <after> <uid>". */
const claimScript = [
  'import os',
  'def loginuid(): return open("/proc/self/loginuid").read().strip()',
  'before = loginuid()',
  'try:',
  '    descriptor = os.open("/proc/self/loginuid", os.O_WRONLY)',
  `    os.write(descriptor, b"${claimed}")`,
  '    os.close(descriptor)',
  '    outcome = "written"',
  'except OSError as error:',
  '    outcome = "refused-" + str(error.errno)',
  'print(before, outcome, loginuid(), os.getuid())',
].join('\n');

describe.skipIf(skip !== undefined)(`a Task's audit login uid${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;
  const launcherLoginUid = Number(readFileSync('/proc/self/loginuid', 'utf8'));

  beforeAll(() => {
    launcher = new Launcher();
  });

  afterAll(async () => {
    await launcher.close();
  });

  const cases: [string, SandboxOptions][] = [
    ['the default sandbox', {}],
    ['a host uid of its own', { runAsUser: 2_000_000_123, runAsGroup: 2_000_000_123 }],
    ['uid 0 (no capabilities)', { runAsUser: 0, runAsGroup: 0 }],
    ['a user namespace', { userNamespace: true }],
    ['no seccomp filter', { seccomp: 'unconfined' }],
  ];

  it.each(cases)('in %s, cannot claim another login uid, and has its own (or the launcher\'s, when that is set)', async (_name, sandbox) => {
    const run = await runSandboxed(launcher, python, ['-c', claimScript], sandbox);
    expect(run.stderr).toBe('');
    const [before, outcome, after, uid] = run.stdout.trim().split(' ');
    expect(outcome).toBe('refused-1'); // EPERM
    expect(after).toBe(before);
    expect(Number(after)).not.toBe(claimed);
    expect(Number(after)).not.toBe(unset);
    if (launcherLoginUid === unset && sandbox.userNamespace !== true) expect(after).toBe(uid);
    if (launcherLoginUid !== unset) expect(Number(after)).toBe(launcherLoginUid);
  });
});

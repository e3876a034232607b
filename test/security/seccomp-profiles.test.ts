// Custom seccomp profiles (spec.sandbox.seccomp type Localhost) in the real sandbox: a denied call
// fails with the profile's errno, SCMP_ACT_KILL_PROCESS ends the task with SIGSYS, argument
// conditions hold, allowed calls work; and a Task naming a bad path, a missing or an invalid
// profile never starts, with a reason saying why. Needs root: the sandbox builds namespaces.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { TaskSpec } from '../../src/api/task.js';
import { Launcher, SeccompFilter, SpawnError } from '../../src/index.js';
import { SeccompProfileStore } from '../../src/sandbox/seccomp-profile-store.js';
import { sandboxForTask, type TaskSandbox } from '../../src/sandbox/task-sandbox.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python, runSandboxed, syscallProbe } from './sandbox-helpers.js';

interface ProfileRule {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: { index: number; value: number; valueTwo?: number; op: string }[];
}
interface Profile {
  defaultAction: string;
  defaultErrnoRet?: number;
  syscalls: ProfileRule[];
}

/** The hand-written allow-list (defaultAction SCMP_ACT_ERRNO, EPERM), in Docker's format. */
const allowList = JSON.parse(readFileSync(new URL('./fixtures/allow-list-profile.json', import.meta.url), 'utf8')) as Profile;

/** The allow-list with `names` taken out of every rule, and `rules` added. */
function allowListWith(names: readonly string[], ...rules: ProfileRule[]): Profile {
  const kept = allowList.syscalls
    .map((rule) => ({ ...rule, names: rule.names.filter((name) => !names.includes(name)) }))
    .filter((rule) => rule.names.length > 0);
  return { ...allowList, syscalls: [...kept, ...rules] };
}

const EXDEV = 18;
const EAFNOSUPPORT = 97;
const SIGSYS = 31;
const AF_UNIX = 1;

const skip = missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root)', runningAsRoot);

describe.skipIf(skip !== undefined)(`Localhost seccomp profiles in the sandbox${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;
  let profileDirectory: string;
  let profiles: SeccompProfileStore;

  beforeAll(() => {
    launcher = new Launcher();
    profileDirectory = mkdtempSync(path.join(tmpdir(), 'parafork-seccomp-profiles-'));
    const write = (name: string, profile: Profile): void => writeFileSync(path.join(profileDirectory, name), JSON.stringify(profile));
    write('allow-list.json', allowList);
    write('mkdir-exdev.json', allowListWith(['mkdir', 'mkdirat'], { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: EXDEV }));
    write('uname-kills.json', allowListWith(['uname'], { names: ['uname'], action: 'SCMP_ACT_KILL_PROCESS' }));
    write('unix-sockets-only.json', allowListWith(['socket'], { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: AF_UNIX, op: 'SCMP_CMP_EQ' }] }, { names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: EAFNOSUPPORT, args: [{ index: 0, value: AF_UNIX, op: 'SCMP_CMP_NE' }] }));
    profiles = new SeccompProfileStore({ directory: profileDirectory });
  });

  afterAll(async () => {
    await launcher.close();
    rmSync(profileDirectory, { recursive: true, force: true });
  });

  async function sandboxFor(localhostProfile: string): Promise<TaskSandbox> {
    const spec: TaskSpec = { command: ['true'], sandbox: { seccomp: { type: 'Localhost', localhostProfile } } };
    const sandboxed = await sandboxForTask(spec, profiles);
    if ('reason' in sandboxed) throw new Error(`${sandboxed.reason}: ${sandboxed.message}`);
    return sandboxed;
  }

  const probe = async (profile: string, expression: string) => runSandboxed(launcher, python, ['-c', syscallProbe(expression)], (await sandboxFor(profile)).sandbox);

  it('runs ordinary programs under the allow-list (python, a shell and coreutils)', async () => {
    const run = await runSandboxed(launcher, '/bin/sh', ['-c', 'uname -s && mkdir /tmp/d && ls -d /tmp/d && python3 -c "print(6 * 7)"'], (await sandboxFor('allow-list.json')).sandbox);
    expect(run).toMatchObject({ code: 0, stdout: 'Linux\n/tmp/d\n42\n' });
  });

  it('takes a filter built through the package root (SeccompFilter.compile) as sandbox.seccomp', async () => {
    const filter = SeccompFilter.compile({ defaultAction: { action: 'SCMP_ACT_ALLOW' }, rules: [{ names: ['uname'], action: 'SCMP_ACT_ERRNO', errno: 1, args: [] }] });
    const run = await runSandboxed(launcher, '/bin/uname', [], { seccomp: filter });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Operation not permitted');
  });

  it("answers a denied call with the profile's errno", async () => {
    const run = await probe('mkdir-exdev.json', 'libc.mkdir(b"/tmp/d", 0o755)');
    expect(run.stdout.trim()).toBe('errno=EXDEV');
  });

  it('answers a call the allow-list leaves out with defaultErrnoRet (EPERM)', async () => {
    // Harmless, and allowed without any capability: only the filter can refuse it.
    const run = await probe('allow-list.json', 'libc.sched_rr_get_interval(0, ctypes.create_string_buffer(16))');
    expect(run.stdout.trim()).toBe('errno=EPERM');
    const unconfined = await runSandboxed(launcher, python, ['-c', syscallProbe('libc.sched_rr_get_interval(0, ctypes.create_string_buffer(16))')], { seccomp: 'unconfined' });
    expect(unconfined.stdout.trim()).toBe('ok');
  });

  it('kills the task with SIGSYS for a call under SCMP_ACT_KILL_PROCESS', async () => {
    const run = await probe('uname-kills.json', 'libc.uname(ctypes.create_string_buffer(390))');
    expect(run.stdout).toBe('');
    expect(run.code).toBe(128 + SIGSYS); // parafork-init reports the signal as a shell would
  });

  it('lets the same profile allow what it does not name', async () => {
    const run = await probe('uname-kills.json', 'libc.getpid()');
    expect(run).toMatchObject({ code: 0, stdout: 'ok\n' });
  });

  it('compares arguments: AF_UNIX sockets allowed, others answered EAFNOSUPPORT', async () => {
    expect((await probe('unix-sockets-only.json', `libc.socket(${AF_UNIX}, 1, 0)`)).stdout.trim()).toBe('ok');
    expect((await probe('unix-sockets-only.json', 'libc.socket(2, 1, 0)')).stdout.trim()).toBe('errno=EAFNOSUPPORT');
  });

  it('keeps clone from making namespaces (MASKED_EQ on its flags) and answers clone3 ENOSYS', async () => {
    const CLONE_NEWUTS = 0x04000000;
    const SIGCHLD = 17;
    const clone = process.arch === 'arm64' ? 220 : 56;
    const clone3 = 435;
    expect((await probe('allow-list.json', `libc.syscall(${clone}, ${CLONE_NEWUTS | SIGCHLD}, 0, 0, 0, 0)`)).stdout.trim()).toBe('errno=EPERM');
    expect((await probe('allow-list.json', `libc.syscall(${clone3}, 0, 0)`)).stdout.trim()).toBe('errno=ENOSYS');
  });

  it('fails the spawn with EPERM (execve) when a profile refuses the exec of parafork-init; the launcher goes on', async () => {
    writeFileSync(path.join(profileDirectory, 'no-execveat.json'), JSON.stringify(allowListWith(['execveat'])));
    const spawned = launcher.spawn({ file: '/bin/true', sandbox: (await sandboxFor('no-execveat.json')).sandbox });
    await expect(spawned).rejects.toBeInstanceOf(SpawnError);
    await expect(spawned).rejects.toMatchObject({ code: 'EPERM', syscall: 'execve' });
    expect(await runSandboxed(launcher, '/bin/true', [])).toMatchObject({ code: 0 });
  });
});

describe('a Task naming a Localhost profile it cannot have', () => {
  let profileDirectory: string;
  let profiles: SeccompProfileStore;

  beforeAll(() => {
    profileDirectory = mkdtempSync(path.join(tmpdir(), 'parafork-seccomp-profiles-'));
    writeFileSync(path.join(profileDirectory, 'broken.json'), '{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOWED"}]}');
    profiles = new SeccompProfileStore({ directory: profileDirectory });
  });
  afterAll(() => rmSync(profileDirectory, { recursive: true, force: true }));

  const refusalFor = (localhostProfile: string) => sandboxForTask({ command: ['true'], sandbox: { seccomp: { type: 'Localhost', localhostProfile } } }, profiles);

  it.each(['../../etc/seccomp.json', '/etc/seccomp.json'])('refuses the path %j with InvalidSpec', async (localhostProfile) => {
    expect(await refusalFor(localhostProfile)).toEqual({ reason: 'InvalidSpec', message: `sandbox.seccomp.localhostProfile must be a relative path without '..', got ${JSON.stringify(localhostProfile)}` });
  });

  it('fails with SandboxUnavailable when the file is missing', async () => {
    expect(await refusalFor('nothing-here.json')).toMatchObject({ reason: 'SandboxUnavailable', message: expect.stringContaining('"nothing-here.json"') as unknown });
  });

  it('fails with SandboxUnavailable naming the field of an invalid profile', async () => {
    expect(await refusalFor('broken.json')).toMatchObject({ reason: 'SandboxUnavailable', message: expect.stringMatching(/is invalid: syscalls\[0\]\.action: unknown action "SCMP_ACT_ALLOWED"/) as unknown });
  });

  it('fails with SandboxUnavailable when the agent has no profile directory', async () => {
    expect(await sandboxForTask({ command: ['true'], sandbox: { seccomp: { type: 'Localhost', localhostProfile: 'a.json' } } })).toMatchObject({ reason: 'SandboxUnavailable' });
  });
});

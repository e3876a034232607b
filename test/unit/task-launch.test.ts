// One attempt from Task to process and back (src/tasks/task-launch.ts): the spawn options a Task
// becomes, the ending its exit or spawn failure is told as, and what is given back when it ends.
// The launcher, cgroup and id lease are fakes that record what they are asked.
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';

import { describe, expect, it } from 'vitest';

import type { Task, TaskSpec } from '../../src/api/task.js';
import { SlicedWork } from '../../src/controller/sliced-work.js';
import { InvalidSpawnOptionError, SpawnError, type SpawnStep } from '../../src/launcher/spawn-error.js';
import { defaultSearchPath, type SpawnOptions } from '../../src/launcher/spawn-options.js';
import { ResultFile } from '../../src/launcher/result-file.js';
import { SpawnedProcess, type ExitResult } from '../../src/launcher/spawned-process.js';
import type { TaskIdentityLease } from '../../src/sandbox/task-identities.js';
import type { ResultPolicy } from '../../src/tasks/attempt-result.js';
import { StderrTail, type Attempt } from '../../src/tasks/attempts.js';
import { exitEnding, launchAttempt, spawnFailureEnding, taskSpawnOptions, withIdentity, type AttemptCgroup, type TaskLauncher } from '../../src/tasks/task-launch.js';

function spec(fields: Partial<TaskSpec> = {}): TaskSpec {
  return { nodeName: 'node', command: ['work'], ...fields };
}

function task(fields: Partial<TaskSpec> = {}): Task {
  return { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: 'task', namespace: 'ns', uid: 'uid-1' }, spec: spec(fields) };
}

function exit(fields: Partial<ExitResult>): ExitResult {
  return { code: null, signal: null, durationNs: 1, rusage: { userUs: 0, systemUs: 0, maxRssKb: 0 }, ...fields };
}

function newAttempt(): Attempt {
  return { uid: 'uid-1', number: 1, launchedAt: 0, runningRecorded: false, stderr: new StderrTail() };
}

function spawnError(step: SpawnStep, syscall: string, errno: number): SpawnError {
  return new SpawnError({ errno, syscall, step, path: 'work', spawnargs: ['work'] });
}

const ENOENT = 2;
const EPERM = 1;
const EACCES = 13;
const EAGAIN = 11;

describe('the spawn options of an attempt', () => {
  it('run spec.command followed by spec.args, with the Task\'s env and the default PATH when the env sets none', () => {
    const options = taskSpawnOptions(spec({ command: ['sh', '-c'], args: ['echo hi'], env: [{ name: 'A', value: '1' }, { name: 'EMPTY' }] }), { sandbox: undefined, cwd: '/work', cgroup: undefined });
    expect(options).toMatchObject({ file: 'sh', args: ['-c', 'echo hi'], env: { PATH: defaultSearchPath, A: '1', EMPTY: '' }, cwd: '/work', stdout: 'ignore', stderr: 'pipe' });
    expect(options).not.toHaveProperty('sandbox');
  });

  it('keep a PATH the Task sets, and carry the sandbox and the cgroup\'s own spawn options', () => {
    const cgroup: AttemptCgroup = { spawnOptions: { cgroup: '/sys/fs/cgroup/x' }, oomKills: () => 0, memoryPeakBytes: () => undefined, killAll: () => undefined, removeAsync: () => Promise.resolve(true) };
    const options = taskSpawnOptions(spec({ env: [{ name: 'PATH', value: '/opt/bin' }] }), { sandbox: { network: 'none' }, cwd: '/', cgroup });
    expect(options.env).toEqual({ PATH: '/opt/bin' });
    expect(options).toMatchObject({ sandbox: { network: 'none' }, cgroup: '/sys/fs/cgroup/x' });
  });

  it('give the process a result file named by PARAFORK_RESULT, over a spec.env entry of that name, when a result is kept', () => {
    const options = taskSpawnOptions(spec({ env: [{ name: 'PARAFORK_RESULT', value: '/etc/passwd' }] }), { sandbox: undefined, cwd: '/', cgroup: undefined, resultPolicy: 'File' });
    expect(options).toMatchObject({ resultFile: true, env: { PARAFORK_RESULT: '/dev/fd/3' } });
  });

  it('give no result file, and name none, when no result is kept (an array s indexes)', () => {
    const options = taskSpawnOptions(spec(), { sandbox: undefined, cwd: '/', cgroup: undefined });
    expect(options).not.toHaveProperty('resultFile');
    expect(options.env).not.toHaveProperty('PARAFORK_RESULT');
  });
});

describe('the ending of an attempt whose process exited', () => {
  it('is Completed for code 0, Error for another code, Killed for a signal', () => {
    expect(exitEnding(exit({ code: 0 }), undefined)).toMatchObject({ reason: 'Completed', exitCode: 0 });
    expect(exitEnding(exit({ code: 3 }), undefined)).toMatchObject({ reason: 'Error', exitCode: 3, message: 'exited with code 3' });
    expect(exitEnding(exit({ signal: 'SIGSEGV' }), undefined)).toMatchObject({ reason: 'Killed', signal: 'SIGSEGV' });
  });

  it('reads the sandbox init\'s 128 + N as signal N', () => {
    expect(exitEnding(exit({ code: 137 }), undefined)).toMatchObject({ reason: 'Killed', signal: 'SIGKILL' });
    expect(exitEnding(exit({ code: 128 }), undefined)).toMatchObject({ reason: 'Error', exitCode: 128 });
  });

  it('is the agent\'s kill cause, whatever the process died of', () => {
    expect(exitEnding(exit({ signal: 'SIGTERM' }), 'DeadlineExceeded')).toMatchObject({ reason: 'DeadlineExceeded', signal: 'SIGTERM', message: 'activeDeadlineSeconds passed; the process was killed by SIGTERM' });
    expect(exitEnding(exit({ code: 0 }), 'Cancelled')).toMatchObject({ reason: 'Cancelled', exitCode: 0 });
    expect(exitEnding(exit({ code: 143 }), 'Deleted')).toMatchObject({ reason: 'Killed' });
    expect(exitEnding(exit({ code: 143 }), 'AgentShutdown')).toMatchObject({ reason: 'AgentRestarted' });
  });
});

describe('the ending of an attempt whose spawn failed', () => {
  it('is InvalidSpec for options the launcher refused, and for a mount whose path the spec names is missing', () => {
    expect(spawnFailureEnding(new InvalidSpawnOptionError('ERR_INVALID_ARG_VALUE', 'sandbox.mounts[0].hostPath must be absolute'), spec())).toMatchObject({ reason: 'InvalidSpec' });
    expect(spawnFailureEnding(spawnError('filesystem', 'mount', ENOENT), spec())).toMatchObject({ reason: 'InvalidSpec' });
  });

  it('is SandboxUnavailable for a step that builds the sandbox, and for clone3 refused', () => {
    const steps: readonly (readonly [SpawnStep, string])[] = [['filesystem', 'mount'], ['filesystem', 'pivot_root'], ['sandbox', 'seccomp'], ['cgroup', 'cgroup.procs'], ['sandbox', 'user_namespace']];
    for (const [step, syscall] of steps) {
      expect(spawnFailureEnding(spawnError(step, syscall, EPERM), spec()).reason, syscall).toBe('SandboxUnavailable');
    }
    expect(spawnFailureEnding(spawnError('clone', 'clone3', EPERM), spec()).reason).toBe('SandboxUnavailable');
  });

  it('is ExecFailed when exec or its chdir failed, SpawnFailed for anything else', () => {
    expect(spawnFailureEnding(spawnError('exec', 'execve', EACCES), spec())).toMatchObject({ reason: 'ExecFailed', message: expect.stringContaining('EACCES') as string });
    expect(spawnFailureEnding(spawnError('exec', 'chdir', ENOENT), spec()).reason).toBe('ExecFailed');
    expect(spawnFailureEnding(spawnError('clone', 'clone3', EAGAIN), spec()).reason).toBe('SpawnFailed');
    expect(spawnFailureEnding(new Error('engine gone'), spec())).toMatchObject({ reason: 'SpawnFailed', message: 'engine gone' });
  });

  it('says why a command or workingDir under /tmp, a home or /run is not found although the host has it: the sandbox hides it', () => {
    const hidden = ': a Task gets a /tmp of its own, and /home, /root, /run and /var/tmp are masked by default; mount its directory (spec.sandbox.mounts, within the agent\'s --allowed-host-paths) or keep it elsewhere';
    expect(spawnFailureEnding(spawnError('exec', 'execve', ENOENT), spec({ command: ['/tmp/project/job.sh'] })).message).toMatch(/^ENOENT: .*: \/tmp\/project\/job\.sh is not in the Task's root, whatever the host has there/);
    expect(spawnFailureEnding(spawnError('exec', 'execve', ENOENT), spec({ command: ['/home/me/job.sh'] })).message.endsWith(hidden)).toBe(true);
    // The host's root as the CRD's default fills it in.
    expect(spawnFailureEnding(spawnError('exec', 'execve', ENOENT), spec({ command: ['/home/me/job.sh'], sandbox: { rootfs: '/' } })).message.endsWith(hidden)).toBe(true);
    expect(spawnFailureEnding(spawnError('exec', 'chdir', ENOENT), spec({ command: ['sh'], workingDir: '/root/work' })).message).toContain('/root/work is not in the Task\'s root');
    // Elsewhere, mounted in, or in a root of the Task's own: the plain error.
    for (const fields of [{ command: ['/usr/bin/nothing'] }, { command: ['/tmp/job.sh'], sandbox: { mounts: [{ hostPath: '/srv/jobs', mountPath: '/tmp' }] } }, { command: ['/home/job.sh'], sandbox: { rootfs: '/srv/root' } }, { command: ['/tmpfiles/job'] }] as Partial<TaskSpec>[]) {
      expect(spawnFailureEnding(spawnError('exec', 'execve', ENOENT), spec(fields)).message, JSON.stringify(fields)).not.toContain('is not in the Task\'s root');
    }
    expect(spawnFailureEnding(spawnError('exec', 'execve', EACCES), spec({ command: ['/tmp/job.sh'] })).message).not.toContain('is not in the Task\'s root');
  });
});

/** A cgroup that counts what is done to it and reports `oomKills` OOM kills. */
function fakeCgroup(oomKills = 0, memoryPeakBytes?: number): AttemptCgroup & { readonly calls: string[] } {
  const calls: string[] = [];
  return { calls, spawnOptions: { cgroup: '/sys/fs/cgroup/fake' }, oomKills: () => oomKills, memoryPeakBytes: () => memoryPeakBytes, killAll: () => void calls.push('killAll'), removeAsync: () => (calls.push('removeAsync'), Promise.resolve(true)) };
}

function fakeLease(): TaskIdentityLease & { released: number; retired: number } {
  const lease = {
    runAsUser: 1, runAsGroup: 1, userNamespaceHostId: undefined, hostUid: 1, hostGid: 1, ownUid: true, released: 0, retired: 0,
    release: (options?: { readonly retire?: boolean }) => {
      lease.released++;
      if (options?.retire === true) lease.retired++;
    },
  };
  return lease;
}

/** A launcher with one child that writes `stderr` and exits as the test says, or a spawn that fails. */
function fakeLauncher(outcome: { exit: ExitResult; stderr?: string; result?: string } | { error: Error }): TaskLauncher & { readonly spawned: SpawnOptions[] } {
  const spawned: SpawnOptions[] = [];
  return {
    spawned,
    spawn(options) {
      spawned.push(options);
      if ('error' in outcome) return Promise.reject(outcome.error);
      const stderr = new PassThrough();
      stderr.end(outcome.stderr ?? '');
      const resultFile = outcome.result === undefined ? null : resultFileHolding(outcome.result);
      return Promise.resolve(new SpawnedProcess({ pid: 42, timings: { queuedNs: 1, spawnNs: 2 }, stdout: null, stderr, exited: Promise.resolve(outcome.exit), resultFile, kill: () => true }));
    },
  };
}

/** A result file (an unlinked temporary file here, a memory file from the launcher) holding `text`. */
function resultFileHolding(text: string): ResultFile {
  const directory = mkdtempSync(path.join(tmpdir(), 'parafork-result-unit-'));
  const file = path.join(directory, 'result');
  writeFileSync(file, text);
  const fd = openSync(file, 'r');
  rmSync(directory, { recursive: true });
  return new ResultFile(fd);
}

function launchAndWait(launcher: TaskLauncher, attempt: Attempt, cgroup: AttemptCgroup | undefined, fields: Partial<TaskSpec> = {}, resultPolicy?: ResultPolicy): Promise<string[]> {
  const calls: string[] = [];
  return new Promise((resolve) => {
    launchAttempt(launcher, task(fields), attempt, { sandbox: undefined, cwd: '/', cgroup, resultPolicy }, {
      running: () => calls.push('running'),
      ended: () => {
        calls.push('ended');
        resolve(calls);
      },
    });
  });
}

describe('launching an attempt', () => {
  it('hands the work of the attempt s end to the slices it is given: nothing of it runs in the exit s own callback', async () => {
    const slices = new SlicedWork();
    const attempt = newAttempt();
    const cgroup = fakeCgroup();
    const calls: string[] = [];
    const { promise: ended, resolve } = Promise.withResolvers<undefined>();
    launchAttempt(fakeLauncher({ exit: exit({ code: 0 }) }), task(), attempt, { sandbox: undefined, cwd: '/', cgroup }, {
      running: () => calls.push('running'),
      ended: () => resolve(undefined),
    }, slices);
    // The exit and every promise callback it starts, but no turn of the event loop.
    for (let step = 0; step < 20; step++) await Promise.resolve();

    expect(calls).toEqual(['running']);
    expect(attempt.ending).toBeUndefined();
    expect(cgroup.calls).toEqual([]);
    expect(slices.pending).toBe(1);
    await ended;
    expect(attempt.ending).toMatchObject({ reason: 'Completed' });
    expect(cgroup.calls).toEqual(['killAll', 'removeAsync']);
  });

  it('fills in the attempt, keeps its stderr tail, and gives back its cgroup and ids once it ended', async () => {
    const attempt = newAttempt();
    const lease = fakeLease();
    attempt.identity = lease;
    const cgroup = fakeCgroup();
    const calls = await launchAndWait(fakeLauncher({ exit: exit({ code: 2 }), stderr: 'no such input\n' }), attempt, cgroup);
    expect(calls).toEqual(['running', 'ended']);
    expect(attempt.child?.pid).toBe(42);
    expect(attempt.timings).toEqual({ queuedNs: 1, spawnNs: 2 });
    expect(attempt.ending).toMatchObject({ reason: 'Error', exitCode: 2 });
    expect(attempt.stderr.toString()).toBe('no such input\n');
    expect(cgroup.calls).toEqual(['killAll', 'removeAsync']);
    expect(lease.released).toBe(1);
  });

  it('keeps the result file s content and the cgroup s memory peak', async () => {
    const attempt = newAttempt();
    await launchAndWait(fakeLauncher({ exit: exit({ code: 0 }), result: 'rows=42\n' }), attempt, fakeCgroup(0, 5_000_000), {}, 'File');
    expect(attempt.result).toEqual({ text: 'rows=42\n', truncated: false });
    expect(attempt.memoryPeakBytes).toBe(5_000_000);
  });

  it('sets the ending last, once the result is in place: a reconcile that sees the ending records the attempt as it is then', async () => {
    const attempt = newAttempt();
    let resultWhenEnded: unknown = 'never ended';
    let ending: Attempt['ending'];
    Object.defineProperty(attempt, 'ending', {
      get: () => ending,
      set: (value: Attempt['ending']) => {
        resultWhenEnded = attempt.result;
        ending = value;
      },
    });
    await launchAndWait(fakeLauncher({ exit: exit({ code: 0 }), result: 'done\n' }), attempt, fakeCgroup(), {}, 'File');
    expect(resultWhenEnded).toEqual({ text: 'done\n', truncated: false });
  });

  it('takes a failed attempt s result from its stderr tail under FallbackToLogsOnError when the node keeps no log and the file is empty', async () => {
    const attempt = newAttempt();
    await launchAndWait(fakeLauncher({ exit: exit({ code: 1 }), stderr: 'no such input\n', result: '' }), attempt, undefined, {}, 'FallbackToLogsOnError');
    expect(attempt.result).toEqual({ text: 'no such input\n', truncated: false });
  });

  it('ends as OOMKilled when the cgroup counted an OOM kill the agent did not cause', async () => {
    const attempt = newAttempt();
    await launchAndWait(fakeLauncher({ exit: exit({ signal: 'SIGKILL' }) }), attempt, fakeCgroup(1), { resources: { limits: { memory: '64Mi' } } });
    expect(attempt.ending).toMatchObject({ reason: 'OOMKilled', signal: 'SIGKILL', message: expect.stringContaining('64Mi') as string });
  });

  it('keeps the agent\'s kill cause over an OOM kill', async () => {
    const attempt = newAttempt();
    attempt.killCause = 'DeadlineExceeded';
    await launchAndWait(fakeLauncher({ exit: exit({ signal: 'SIGKILL' }) }), attempt, fakeCgroup(1));
    expect(attempt.ending?.reason).toBe('DeadlineExceeded');
  });

  it('on a failed spawn: ends without a child, gives back the cgroup and ids, never says running', async () => {
    const attempt = newAttempt();
    const lease = fakeLease();
    attempt.identity = lease;
    const cgroup = fakeCgroup();
    const calls = await launchAndWait(fakeLauncher({ error: spawnError('exec', 'execve', ENOENT) }), attempt, cgroup);
    expect(calls).toEqual(['ended']);
    expect(attempt.child).toBeUndefined();
    expect(attempt.ending?.reason).toBe('ExecFailed');
    expect(cgroup.calls).toEqual(['killAll', 'removeAsync']);
    expect(lease.released).toBe(1);
    expect(lease.retired).toBe(0);
  });

  it('on keyrings of the leased uid that cannot be emptied: SandboxUnavailable, and the ids retired so that a retry runs as another uid', async () => {
    const attempt = newAttempt();
    const lease = fakeLease();
    attempt.identity = lease;
    await launchAndWait(fakeLauncher({ error: spawnError('sandbox', 'keyctl', EACCES) }), attempt, fakeCgroup());
    expect(attempt.ending?.reason).toBe('SandboxUnavailable');
    expect(attempt.ending?.message).toMatch(/keyrings of the host uid .* could not be emptied/);
    expect(lease.retired).toBe(1);
  });
});

describe('the default PATH', () => {
  it('is one list: parafork-init searches the same one the launcher and the agent use', async () => {
    // parafork_init.c is freestanding C run inside the sandbox: it cannot import the constant,
    // so this test keeps the two in step.
    const { readFile } = await import('node:fs/promises');
    const initSource = await readFile(new URL('../../native/src/init/parafork_init.c', import.meta.url), 'utf8');
    expect(initSource).toContain(`const char* path = "${defaultSearchPath}";`);
  });
});

describe('withIdentity', () => {
  const lease = (fields: Partial<TaskIdentityLease>): TaskIdentityLease => ({ runAsUser: 0x7000_0001, runAsGroup: 0x7000_0001, userNamespaceHostId: undefined, hostUid: 0x7000_0001, hostGid: 0x7000_0001, ownUid: false, release: () => undefined, ...fields });

  it('marks a uid leased to the Task alone as its own, so its keyrings are emptied of an earlier holder s keys', () => {
    expect(withIdentity({}, lease({ ownUid: true }))).toEqual({ runAsUser: 0x7000_0001, runAsGroup: 0x7000_0001, ownUid: true });
  });

  it('leaves a uid the spec named, which others may run as, unmarked', () => {
    expect(withIdentity({}, lease({ runAsUser: 1000, runAsGroup: 1000, hostUid: 1000, hostGid: 1000 }))).toEqual({ runAsUser: 1000, runAsGroup: 1000 });
  });
});

// Which API writes the reconciler makes for a Task (issue 7: writes are what limit Tasks/s): a
// process that ends before its Running write is due costs one write, its final status; one that
// runs on gets the finalizer before its Running status, and the finalizer goes after the final
// status. The launcher and the writer are fakes that record what they are asked.
import { describe, expect, it } from 'vitest';

import type { Task, TaskSpec, TaskStatus } from '../../src/api/task.js';
import { InvalidSpawnOptionError, SpawnError } from '../../src/launcher/spawn-error.js';
import type { InternalSpawnOptions } from '../../src/launcher/spawn-options.js';
import { SpawnedProcess, type ExitResult } from '../../src/launcher/spawned-process.js';
import type { CgroupLimits, CgroupManager, TaskCgroup } from '../../src/sandbox/cgroup-manager.js';
import { fixedSandboxPolicy } from '../../src/sandbox/sandbox-policy-source.js';
import type { TaskLauncher } from '../../src/tasks/task-launch.js';
import type { TaskReconcilerOptions } from '../../src/tasks/task-reconciler.js';
import type { TaskWriter } from '../../src/store/task-store.js';
import { oneTaskReconciler } from '../helpers/reconciler-harness.js';

const key = 'ns/task';

function makeTask(spec: Partial<TaskSpec> = {}): Task {
  return { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: 'task', namespace: 'ns', uid: 'uid-1', generation: 1 }, spec: { nodeName: 'node', command: ['work'], ...spec } };
}

/** A launcher whose one child exits when the test says so. */
class FakeLauncher implements TaskLauncher {
  readonly spawned: InternalSpawnOptions[] = [];
  readonly #exit = Promise.withResolvers<ExitResult>();
  /** Set: every spawn is refused with it, as the real launcher refuses options it cannot take. */
  refusal: Error | undefined;

  spawn(options: InternalSpawnOptions): Promise<SpawnedProcess> {
    this.spawned.push(options);
    if (this.refusal) return Promise.reject(this.refusal);
    return Promise.resolve(new SpawnedProcess({ pid: 4242, timings: { queuedNs: 1, spawnNs: 1 }, stdout: null, stderr: null, exited: this.#exit.promise, kill: () => true }));
  }

  exit(code: number): void {
    this.#exit.resolve({ code, signal: null, durationNs: 1, rusage: { userUs: 0, systemUs: 0, maxRssKb: 0 } });
  }
}

/** Records each write and applies it to the cached Task, as the watch would deliver it. */
function recordingWriter(cache: Map<string, Task>): TaskWriter & { readonly writes: string[] } {
  const writes: string[] = [];
  const update = (change: (task: Task) => Task): void => {
    const task = cache.get(key);
    if (task) cache.set(key, change(task));
  };
  return {
    writes,
    writeStatus(_task: Task, status: TaskStatus) {
      writes.push(`status ${status.phase ?? ''}`);
      update((task) => ({ ...task, status }));
      return Promise.resolve();
    },
    addFinalizer() {
      writes.push('add finalizer');
      update((task) => ({ ...task, metadata: { ...task.metadata, finalizers: ['parafork.dev/process'] } }));
      return Promise.resolve();
    },
    removeFinalizer(task: Task) {
      if ((task.metadata.finalizers ?? []).length > 0) writes.push('remove finalizer');
      update((current) => ({ ...current, metadata: { ...current.metadata, finalizers: [] } }));
      return Promise.resolve();
    },
    deleteTask() {
      writes.push('delete');
      return Promise.resolve();
    },
    claim() {
      return Promise.resolve(false);
    },
  };
}

/** Runs the reconciler on every requeue until nothing more is asked for (a one-key work queue). */
function harness(runningWriteDelayMs: number, extra: Partial<Pick<TaskReconcilerOptions, 'unsandboxed' | 'launcherSandboxes' | 'journal' | 'cgroups' | 'taskLimits' | 'sandboxMaskedPaths' | 'sandboxPolicy'>> & { spec?: Partial<TaskSpec> } = {}) {
  const { spec, ...options } = extra;
  const cache = new Map<string, Task>([[key, makeTask(spec)]]);
  const writer = recordingWriter(cache);
  const launcher = new FakeLauncher();
  const { reconciler, settle } = oneTaskReconciler(key, cache, { writer, launcher, runningWriteDelayMs, ...options });
  return { cache, writer, launcher, reconciler, settle };
}

describe('the API writes for one Task', () => {
  it('are one status write when the process ends before its Running write is due', async () => {
    const { writer, launcher, reconciler, settle, cache } = harness(60_000);
    expect(await reconciler.reconcile(key)).toBeUndefined();
    await settle();
    launcher.exit(0);
    await settle();
    await reconciler.reconcile(key); // the watch delivering our own final status
    expect(writer.writes).toEqual(['status Succeeded']);
    expect(cache.get(key)?.status).toMatchObject({ phase: 'Succeeded', exitCode: 0, attempts: 1 });
  });

  it('add the finalizer before the Running status for a process still running, and remove it after the final status', async () => {
    const { writer, launcher, reconciler, settle } = harness(0);
    await reconciler.reconcile(key);
    await settle();
    expect(writer.writes).toEqual(['add finalizer', 'status Running']);
    launcher.exit(3);
    await settle();
    expect(writer.writes).toEqual(['add finalizer', 'status Running', 'status Failed', 'remove finalizer']);
  });

  it('ask for a reconcile when the Running write comes due, and write nothing before', async () => {
    const { writer, reconciler, settle } = harness(5_000);
    await reconciler.reconcile(key);
    await settle();
    const result = await reconciler.reconcile(key);
    expect(result?.requeueAfterMs).toBeGreaterThan(4_000);
    expect(result?.requeueAfterMs).toBeLessThanOrEqual(5_000);
    expect(writer.writes).toEqual([]);
  });
});

describe('a launcher that cannot sandbox', () => {
  it('fails a sandboxed Task with SandboxUnavailable and never spawns', async () => {
    const { launcher, reconciler, cache } = harness(0, { launcherSandboxes: false });
    await reconciler.reconcile(key);
    expect(launcher.spawned).toEqual([]);
    expect(cache.get(key)?.status).toMatchObject({ phase: 'Failed', reason: 'SandboxUnavailable' });
    expect(cache.get(key)?.status?.message).toContain('--launcher native');
  });

  it('runs the Task without sandbox options when Tasks are unsandboxed', async () => {
    const { launcher, reconciler } = harness(0, { launcherSandboxes: false, unsandboxed: true });
    await reconciler.reconcile(key);
    expect(launcher.spawned).toHaveLength(1);
    expect(launcher.spawned[0]?.sandbox).toBeUndefined();
    expect(launcher.spawned[0]?.cgroup).toBeUndefined();
  });
});

describe('an attempt launched by an agent that died before writing any status', () => {
  it('is ended as AgentRestarted with its number, never run again as new', async () => {
    const launched = new Map<string, number>([['uid-1', 1]]);
    const { cache, launcher, reconciler } = harness(250, {
      journal: { launched: (uid, attempt) => launched.set(uid, attempt), lastLaunched: (uid) => launched.get(uid), forget: (uid) => launched.delete(uid) },
    });
    await reconciler.reconcile(key);
    expect(launcher.spawned).toEqual([]);
    expect(cache.get(key)?.status).toMatchObject({ phase: 'Failed', reason: 'AgentRestarted', attempts: 1 });
    await reconciler.reconcile(key);
    expect(launched.has('uid-1')).toBe(false);
  });
});

/** Task cgroups that record the limits asked for and do nothing else. */
function recordingCgroups(): { readonly manager: CgroupManager; readonly asked: CgroupLimits[] } {
  const asked: CgroupLimits[] = [];
  const cgroup = { spawnOptions: {}, oomKills: () => 0, memoryPeakBytes: () => undefined, killAll: () => undefined, remove: () => true } as unknown as TaskCgroup;
  const manager = { placement: { memory: 'v2', pids: 'v2', cpu: 'v2' }, create: (_name: string, limits: CgroupLimits) => (asked.push(limits), cgroup) } as unknown as CgroupManager;
  return { manager, asked };
}

const retried: Partial<TaskSpec> = { backoffLimit: 3, backoff: { initialSeconds: 1, maxSeconds: 1 } };
const defaults = { defaults: { memoryBytes: 2 ** 30, pids: 1024, cpuMillicores: 1000 }, maxTmpBytes: 2 ** 30 };

describe('a spec no attempt can run', () => {
  it('fails as InvalidSpec naming the field before any spawn, whatever backoffLimit says', async () => {
    const { launcher, reconciler, cache } = harness(0, { spec: { ...retried, args: ['a\0b'] } });
    await reconciler.reconcile(key);
    expect(launcher.spawned).toEqual([]);
    expect(cache.get(key)?.status).toMatchObject({ phase: 'Failed', reason: 'InvalidSpec', attempts: 0 });
    expect(cache.get(key)?.status?.message).toContain('spec.args[0]');
  });

  it('a host path the agent s launcher masks is refused before launch, as that launcher would refuse it', async () => {
    const { launcher, reconciler, cache } = harness(0, { sandboxMaskedPaths: ['/srv/secrets'], spec: { ...retried, sandbox: { mounts: [{ hostPath: '/srv/secrets/db', mountPath: '/mnt' }] } } });
    await reconciler.reconcile(key);
    expect(launcher.spawned).toHaveLength(0);
    expect(cache.get(key)?.status).toMatchObject({ phase: 'Failed', reason: 'InvalidSpec', attempts: 0 });
    expect(cache.get(key)?.status?.message).toMatch(/^spec\.sandbox\.mounts\[0\]\.hostPath must not be a masked path or lie inside one: \/srv\/secrets\/db is inside the masked path \/srv\/secrets/);
  });

  it('refused by the launcher all the same ends as InvalidSpec naming the spec s field, and is never retried', async () => {
    const { launcher, reconciler, cache, settle } = harness(0, { spec: retried });
    // A rule the checks before launch missed (the launcher's masked paths changed meanwhile, say).
    launcher.refusal = new InvalidSpawnOptionError('ERR_INVALID_ARG_VALUE', 'sandbox.mounts[0].hostPath must not be a masked path or lie inside one');
    await reconciler.reconcile(key);
    await settle();
    expect(launcher.spawned).toHaveLength(1);
    expect(cache.get(key)?.status).toMatchObject({ phase: 'Failed', reason: 'InvalidSpec', attempts: 1, message: 'spec.sandbox.mounts[0].hostPath must not be a masked path or lie inside one' });
    expect(cache.get(key)?.status?.nextRetryTime).toBeUndefined();
  });
});

describe('a mount that fails for want of a path the spec names', () => {
  it('is InvalidSpec naming the missing path, not the agent\'s privileges, and is never retried', async () => {
    // Privileged: below it, a host path outside the allowed ones is Forbidden before any mount.
    const { launcher, reconciler, cache, settle } = harness(0, { sandboxPolicy: fixedSandboxPolicy({ level: 'privileged', allowedHostPaths: [] }), spec: { ...retried, sandbox: { mounts: [{ hostPath: '/nonexistent/parafork-test', mountPath: '/mnt' }] } } });
    launcher.refusal = new SpawnError({ errno: 2, syscall: 'mount', step: 'filesystem', path: 'work', spawnargs: ['work'] });
    await reconciler.reconcile(key);
    await settle();
    expect(cache.get(key)?.status).toMatchObject({ phase: 'Failed', reason: 'InvalidSpec', attempts: 1 });
    expect(cache.get(key)?.status?.message).toBe('spec.sandbox.mounts[0].hostPath "/nonexistent/parafork-test" does not exist on this node (ENOENT in mount)');
  });
});

describe('the agent\'s default limits', () => {
  it('fill in each limit the spec leaves unset, and the status shows what the attempt ran under', async () => {
    const cgroups = recordingCgroups();
    const { launcher, reconciler, cache, settle } = harness(60_000, { cgroups: cgroups.manager, taskLimits: defaults, spec: { resources: { limits: { pids: 10 } } } });
    await reconciler.reconcile(key);
    await settle();
    expect(cgroups.asked).toEqual([{ memoryBytes: 2 ** 30, cpuMillicores: 1000, pids: 10 }]);
    launcher.exit(0);
    await settle();
    expect(cache.get(key)?.status?.resources).toEqual({ limits: { cpu: '1', memory: '1Gi', pids: 10 }, defaulted: ['cpu', 'memory'] });
  });

  it('fail closed without cgroups: the Task is refused, not run unlimited, and the message says how to turn them off', async () => {
    const { launcher, reconciler, cache } = harness(0, { taskLimits: defaults });
    await reconciler.reconcile(key);
    expect(launcher.spawned).toEqual([]);
    expect(cache.get(key)?.status).toMatchObject({ phase: 'Failed', reason: 'SandboxUnavailable' });
    expect(cache.get(key)?.status?.message).toMatch(/default limits \(cpu, memory, pids\).*--default-memory none/);
  });

  it('do not apply to unsandboxed Tasks (--task-sandbox off: no cgroups at all)', async () => {
    const { launcher, reconciler } = harness(0, { taskLimits: defaults, unsandboxed: true });
    await reconciler.reconcile(key);
    expect(launcher.spawned).toHaveLength(1);
    expect(launcher.spawned[0]?.cgroupSetup).toBeUndefined();
  });
});

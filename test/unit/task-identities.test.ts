// Host ids for Tasks (src/sandbox/task-identities.ts): one of their own per attempt, from blocks
// of the range that each parafork instance locks, reused least recently used first; and how the
// reconciler leases them at launch and gives them back when the attempt ends. The blocks' lock
// files go to a temp folder (real flock(2), through the native addon).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import type { Task, TaskStatus } from '../../src/api/task.js';
import type { SpawnOptions } from '../../src/launcher/spawn-options.js';
import { SpawnedProcess, type ExitResult } from '../../src/launcher/spawned-process.js';
import type { CgroupLimits, CgroupManager } from '../../src/sandbox/cgroup-manager.js';
import { fixedSandboxPolicy } from '../../src/sandbox/sandbox-policy-source.js';
import { idBlockSize, TaskIdentities, TaskIdRangeConflictError, taskIdRangesInUse, TaskIdsExhaustedError, type TaskIdentityLease, type TaskIdentityRequest, type TaskIdentitySource } from '../../src/sandbox/task-identities.js';
import type { TaskReconcilerOptions } from '../../src/tasks/task-reconciler.js';
import { oneTaskReconciler, statusRecordingWriter } from '../helpers/reconciler-harness.js';

const first = 2_000_000_000;

describe('TaskIdentities', () => {
  let lockDirectory: string;
  const opened: TaskIdentities[] = [];

  function identities(blocks = 4, hostIds: readonly number[] = []): TaskIdentities {
    const made = new TaskIdentities({ first, last: first + blocks * idBlockSize - 1, lockDirectory, hostIds: () => new Set(hostIds) });
    opened.push(made);
    return made;
  }

  const plain: TaskIdentityRequest = { userNamespace: false };

  beforeEach(() => {
    lockDirectory = mkdtempSync(path.join(tmpdir(), 'parafork-task-ids-'));
  });
  afterEach(() => {
    for (const made of opened.splice(0)) made.close();
    rmSync(lockDirectory, { recursive: true, force: true });
  });

  it('gives each lease an id of its own, the same number for uid and gid, from the range', () => {
    const source = identities();
    const leases = [source.lease(plain), source.lease(plain), source.lease(plain)];
    expect(new Set(leases.map((lease) => lease.runAsUser)).size).toBe(3);
    for (const lease of leases) {
      expect(lease.runAsGroup).toBe(lease.runAsUser);
      expect(lease.runAsUser).toBeGreaterThanOrEqual(first);
      expect(lease.runAsUser).toBeLessThan(first + idBlockSize);
      expect({ hostUid: lease.hostUid, hostGid: lease.hostGid }).toEqual({ hostUid: lease.runAsUser, hostGid: lease.runAsUser });
      expect(lease.userNamespaceHostId).toBeUndefined();
    }
    expect(source.leased).toBe(3);
  });

  it('says the uid is the lease\'s own only when it was leased: not a runAsUser the spec names, not a userNamespace Task', () => {
    const source = identities();
    expect(source.lease(plain).ownUid).toBe(true);
    expect(source.lease({ ...plain, runAsGroup: 1000 }).ownUid).toBe(true);
    expect(source.lease({ ...plain, runAsUser: 1000 }).ownUid).toBe(false);
    expect(source.lease({ ...plain, runAsUser: 1000, runAsGroup: 1000 }).ownUid).toBe(false);
    expect(source.lease({ userNamespace: true }).ownUid).toBe(false);
  });

  it('never hands out an id of the host\'s accounts or groups', () => {
    const source = identities(4, [first, first + 1, first + 3]);
    expect([source.lease(plain).runAsUser, source.lease(plain).runAsUser]).toEqual([first + 2, first + 4]);
  });

  it('hands out ids never used first, then the ones given back longest ago, and claims another block only when all are running', () => {
    const source = identities();
    const leases: TaskIdentityLease[] = [];
    for (let index = 0; index < idBlockSize; index++) leases.push(source.lease(plain));
    expect(source.blocks).toBe(1);
    leases[7]?.release();
    leases[3]?.release();
    leases[3]?.release(); // a second release gives nothing back twice
    expect(source.lease(plain).runAsUser).toBe(first + 7);
    expect(source.lease(plain).runAsUser).toBe(first + 3);
    expect(source.lease(plain).runAsUser).toBeGreaterThanOrEqual(first + idBlockSize);
    expect(source.blocks).toBe(2);
  });

  it('keeps a runAsUser and runAsGroup given, and leases only what is missing', () => {
    const source = identities();
    expect(source.lease({ userNamespace: false, runAsUser: 0, runAsGroup: 1000 })).toMatchObject({ runAsUser: 0, runAsGroup: 1000, hostUid: 0, hostGid: 1000 });
    expect(source.blocks).toBe(0);
    const onlyUser = source.lease({ userNamespace: false, runAsUser: 1000 });
    expect(onlyUser.runAsUser).toBe(1000);
    expect(onlyUser.runAsGroup).toBeGreaterThanOrEqual(first);
  });

  it('gives a userNamespace lease a whole block of host ids, whose first id is root inside', () => {
    const source = identities();
    const left = source.lease({ userNamespace: true });
    const right = source.lease({ userNamespace: true, runAsUser: 0, runAsGroup: 5 });
    expect(left).toMatchObject({ runAsUser: 65534, runAsGroup: 65534 });
    expect((left.userNamespaceHostId ?? 0) % idBlockSize).toBe(first % idBlockSize);
    expect(left.hostUid).toBe((left.userNamespaceHostId ?? 0) + 65534);
    expect(right).toMatchObject({ runAsUser: 0, runAsGroup: 5, hostUid: right.userNamespaceHostId, hostGid: (right.userNamespaceHostId ?? 0) + 5 });
    expect(Math.abs((left.userNamespaceHostId ?? 0) - (right.userNamespaceHostId ?? 0))).toBeGreaterThanOrEqual(idBlockSize);
    left.release();
    expect(source.lease({ userNamespace: true }).userNamespaceHostId).toBe(left.userNamespaceHostId);
  });

  it('skips a block that holds a host account\'s id for userNamespace Tasks', () => {
    const source = identities(4, [first + 100]);
    expect(source.lease({ userNamespace: true }).userNamespaceHostId).toBe(first + idBlockSize);
  });

  it('shares the range out between instances: a block is one instance\'s until it lets go', () => {
    const one = identities(2);
    const two = identities(2);
    const three = identities(2);
    const fromOne = one.lease(plain).runAsUser;
    const fromTwo = two.lease(plain).runAsUser;
    expect(Math.floor((fromOne - first) / idBlockSize)).not.toBe(Math.floor((fromTwo - first) / idBlockSize));
    expect(() => three.lease(plain)).toThrow(TaskIdsExhaustedError);
    one.close();
    expect(three.lease(plain).runAsUser).toBe(fromOne);
  });

  it('never leases again an id given back retired (keyrings no holder of the uid can empty), not even to a retry that had it', () => {
    const source = identities();
    const retired = source.lease(plain);
    const given = source.lease(plain);
    retired.release({ retire: true });
    given.release();
    expect(source.lease({ ...plain, previous: { uid: retired.hostUid, gid: retired.hostGid }, owner: undefined }).runAsUser).not.toBe(retired.runAsUser);
    const later = Array.from({ length: idBlockSize }, () => source.lease(plain).runAsUser);
    expect(later).not.toContain(retired.runAsUser);
    expect(later).toContain(given.runAsUser);
  });

  it('gives a retry the id its previous attempt had once it is given back, ahead of ids given back before it', () => {
    const source = identities();
    const earlier = source.lease(plain);
    const previous = source.lease(plain);
    earlier.release();
    previous.release();
    expect(source.lease({ ...plain, previous: { uid: previous.hostUid, gid: previous.hostGid } }).runAsUser).toBe(previous.runAsUser);
    expect(source.lease(plain).runAsUser).toBe(first + 2); // the next never used; the one given back, once those run out
  });

  it('gives a retry its previous id never handed out yet, and then skips it in the order of new ids', () => {
    const source = identities();
    const retry = source.lease({ ...plain, previous: { uid: first + 2, gid: first + 2 } });
    expect(retry.runAsUser).toBe(first + 2);
    expect([source.lease(plain).runAsUser, source.lease(plain).runAsUser, source.lease(plain).runAsUser]).toEqual([first, first + 1, first + 3]);
    retry.release();
    expect(source.lease({ ...plain, previous: { uid: first + 2, gid: first + 2 } }).runAsUser).toBe(first + 2);
  });

  it('gives a retry another id while its previous one is leased to someone else', () => {
    const source = identities();
    const holder = source.lease(plain);
    const retry = source.lease({ ...plain, previous: { uid: holder.hostUid, gid: holder.hostGid } });
    expect(retry.runAsUser).not.toBe(holder.runAsUser);
    holder.release();
    retry.release();
    const again = source.lease({ ...plain, previous: { uid: holder.hostUid, gid: holder.hostGid } });
    const other = source.lease({ ...plain, previous: { uid: holder.hostUid, gid: holder.hostGid } });
    expect(again.runAsUser).toBe(holder.runAsUser);
    expect(other.runAsUser).not.toBe(holder.runAsUser);
  });

  it('never gives a retry an id or block this instance last leased to another Task, whatever its status names (a user may patch tasks/status)', () => {
    const source = identities();
    const victim = source.lease({ ...plain, owner: 'victim-uid' });
    victim.release();
    const patched = source.lease({ ...plain, owner: 'thief-uid', previous: { uid: victim.hostUid, gid: victim.hostGid } });
    expect(patched.runAsUser).not.toBe(victim.runAsUser);
    patched.release();
    expect(source.lease({ ...plain, owner: 'victim-uid', previous: { uid: victim.hostUid, gid: victim.hostGid } }).runAsUser).toBe(victim.runAsUser);

    // Blocks given back are reused least recently given back first: the patched status does not
    // pick the one just given back.
    const earlierBlock = source.lease({ userNamespace: true, owner: 'earlier-uid' });
    const victimBlock = source.lease({ userNamespace: true, owner: 'victim-uid' });
    earlierBlock.release();
    victimBlock.release();
    const patchedBlock = source.lease({ userNamespace: true, owner: 'thief-uid', previous: { uid: victimBlock.hostUid, gid: victimBlock.hostGid } });
    expect(patchedBlock.userNamespaceHostId).toBe(earlierBlock.userNamespaceHostId);
    expect(source.lease({ userNamespace: true, owner: 'victim-uid', previous: { uid: victimBlock.hostUid, gid: victimBlock.hostGid } }).userNamespaceHostId).toBe(victimBlock.userNamespaceHostId);
  });

  it('keeps the leased gid of a Task that names only its runAsUser', () => {
    const source = identities();
    const previous = source.lease({ userNamespace: false, runAsUser: 1000 });
    previous.release();
    source.lease(plain).release();
    expect(source.lease({ userNamespace: false, runAsUser: 1000, previous: { uid: 1000, gid: previous.hostGid } }).runAsGroup).toBe(previous.runAsGroup);
  });

  it('never gives a retry a previous id out of the range, of a host account, or of a userNamespace Task\'s block', () => {
    const source = identities(4, [first + 5]);
    for (const id of [0, 65534, first - 1, first + 4 * idBlockSize, first + 5]) {
      const lease = source.lease({ ...plain, previous: { uid: id, gid: id } });
      expect(lease.runAsUser, String(id)).not.toBe(id);
      expect(lease.runAsUser).toBeGreaterThanOrEqual(first);
    }
    const namespaced = source.lease({ userNamespace: true });
    namespaced.release();
    expect(source.lease({ ...plain, previous: { uid: namespaced.hostUid, gid: namespaced.hostGid } }).runAsUser).not.toBe(namespaced.hostUid);
  });

  it('gives a userNamespace retry the block its previous attempt had once it is given back', () => {
    const source = identities();
    const earlier = source.lease({ userNamespace: true });
    const previous = source.lease({ userNamespace: true });
    earlier.release();
    previous.release();
    const retry = source.lease({ userNamespace: true, previous: { uid: previous.hostUid, gid: previous.hostGid } });
    expect(retry).toMatchObject({ userNamespaceHostId: previous.userNamespaceHostId, hostUid: previous.hostUid });
    expect(source.lease({ userNamespace: true }).userNamespaceHostId).toBe(earlier.userNamespaceHostId);
  });

  it('claims the block of a retry\'s previous id when no instance holds it (the agent restarted), but not from another instance', () => {
    const before = identities(4);
    before.lease(plain);
    const previous = before.lease(plain);
    before.close(); // the agent that ran the first attempt is gone
    const after = identities(4);
    expect(after.lease({ ...plain, previous: { uid: previous.hostUid, gid: previous.hostGid } }).runAsUser).toBe(previous.runAsUser);
    expect(after.blocks).toBe(1);

    const holder = identities(4);
    const held = holder.lease({ ...plain, previous: { uid: first + 2 * idBlockSize, gid: first + 2 * idBlockSize } });
    expect(held.runAsUser).toBe(first + 2 * idBlockSize);
    const retry = after.lease({ ...plain, previous: { uid: held.hostUid + 1, gid: held.hostGid + 1 } });
    expect(Math.floor((retry.runAsUser - first) / idBlockSize)).not.toBe(2);
  });

  it('declares its range while it runs: every instance sees the ranges of those running, and a declaration whose holder is gone is removed', () => {
    const one = identities(4);
    const other = new TaskIdentities({ first: first + 8 * idBlockSize, last: first + 9 * idBlockSize - 1, lockDirectory, hostIds: () => new Set() });
    writeFileSync(path.join(lockDirectory, 'range-1-65536-999999-gone'), ''); // its holder is gone: no lock on it
    expect(taskIdRangesInUse(lockDirectory).sort((left, right) => left.first - right.first)).toEqual([
      { first, last: first + 4 * idBlockSize - 1 },
      { first: first + 8 * idBlockSize, last: first + 9 * idBlockSize - 1 },
    ]);
    expect(existsSync(path.join(lockDirectory, 'range-1-65536-999999-gone'))).toBe(false);
    other.close();
    expect(taskIdRangesInUse(lockDirectory)).toEqual([{ first, last: first + 4 * idBlockSize - 1 }]);
    one.close();
    expect(taskIdRangesInUse(lockDirectory)).toEqual([]);
  });

  // Red team, session 16: blocks are locked by the name of their first id, so two ranges that
  // overlap with blocks out of step locked different files for the same ids and leased them both.
  it('refuses a range that overlaps a running instance\'s with blocks out of step, naming it, and leaves no declaration behind', () => {
    const running = identities(2);
    const ids = running.lease(plain).runAsUser;
    const outOfStep = { first: first + 1, last: first + 2 * idBlockSize, lockDirectory, hostIds: () => new Set<number>() };
    expect(() => opened.push(new TaskIdentities(outOfStep))).toThrow(TaskIdRangeConflictError);
    expect(() => new TaskIdentities(outOfStep)).toThrow(`overlaps ${first}-${first + 2 * idBlockSize - 1}, the range of another parafork instance running on this machine (pid ${process.pid}`);
    expect(taskIdRangesInUse(lockDirectory)).toEqual([{ first, last: first + 2 * idBlockSize - 1 }]);
    expect(ids).toBe(first);
  });

  it('lets ranges overlap in step (their blocks lock the same files), and a range begin in the ids past another\'s last whole block', () => {
    const running = identities(2);
    running.lease(plain); // its block at first
    expect(running.lease({ userNamespace: true }).userNamespaceHostId).toBe(first + idBlockSize);
    const inStep = new TaskIdentities({ first: first + idBlockSize, last: first + 3 * idBlockSize - 1, lockDirectory, hostIds: () => new Set() });
    opened.push(inStep);
    expect(inStep.lease(plain).runAsUser).toBe(first + 2 * idBlockSize); // the block they share is held by the other
    const withTail = new TaskIdentities({ first: first + 8 * idBlockSize, last: first + 9 * idBlockSize + 99, lockDirectory, hostIds: () => new Set() });
    opened.push(withTail);
    const pastTail = new TaskIdentities({ first: first + 9 * idBlockSize + 10, last: first + 10 * idBlockSize + 9, lockDirectory, hostIds: () => new Set() });
    opened.push(pastTail);
    expect(pastTail.lease(plain).runAsUser).toBe(first + 9 * idBlockSize + 10);
  });

  it('claims the blocks never used before those used, and among those the one let go longest ago', async () => {
    const pause = (): Promise<unknown> => new Promise((resolve) => setTimeout(resolve, 5)); // mtimes apart
    const one = identities(3);
    one.lease({ userNamespace: true });
    one.lease({ userNamespace: true });
    one.close(); // blocks 0 and 1 now used, block 2 never
    await pause();
    const two = identities(3);
    expect(two.lease(plain).runAsUser).toBe(first + 2 * idBlockSize);
    const three = identities(3);
    const fromThree = three.lease({ userNamespace: true }).userNamespaceHostId ?? 0;
    expect([first, first + idBlockSize]).toContain(fromThree);
    three.close();
    await pause();
    const four = identities(3);
    expect(four.lease({ userNamespace: true }).userNamespaceHostId).toBe(fromThree === first ? first + idBlockSize : first);
  });
});

describe('the reconciler and Task ids', () => {
  const key = 'ns/task';

  function makeTask(sandbox: NonNullable<Task['spec']['sandbox']> = {}): Task {
    return { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: 'task', namespace: 'ns', uid: 'uid-1', generation: 1 }, spec: { nodeName: 'node', command: ['work'], sandbox } };
  }

  /** Leases host id 3000000000 + n and records what was asked and given back. */
  class RecordingSource implements TaskIdentitySource {
    readonly requests: TaskIdentityRequest[] = [];
    released = 0;

    lease(request: TaskIdentityRequest): TaskIdentityLease {
      this.requests.push(request);
      const id = 3_000_000_000 + this.requests.length;
      return { runAsUser: request.runAsUser ?? id, runAsGroup: request.runAsGroup ?? id, userNamespaceHostId: request.userNamespace ? id : undefined, hostUid: id, hostGid: id, ownUid: request.runAsUser === undefined && !request.userNamespace, release: () => this.released++ };
    }
  }

  function harness(task: Task, spawnFails = false, extra: Partial<Pick<TaskReconcilerOptions, 'cgroups' | 'taskLimits' | 'sandboxPolicy'>> = {}) {
    const cache = new Map<string, Task>([[key, task]]);
    const statuses: TaskStatus[] = [];
    const spawned: SpawnOptions[] = [];
    const exit = Promise.withResolvers<ExitResult>();
    const identities = new RecordingSource();
    const { reconciler, settle } = oneTaskReconciler(key, cache, {
      writer: statusRecordingWriter(key, cache, statuses),
      launcher: {
        spawn: (options) => {
          spawned.push(options);
          if (spawnFails) return Promise.reject(new Error('no fork today'));
          return Promise.resolve(new SpawnedProcess({ pid: 4242, timings: { queuedNs: 1, spawnNs: 1 }, stdout: null, stderr: null, exited: exit.promise, kill: () => true }));
        },
      },
      runningWriteDelayMs: 0,
      identities,
      ...extra,
    });
    const end = (code: number): void => exit.resolve({ code, signal: null, durationNs: 1, rusage: { userUs: 0, systemUs: 0, maxRssKb: 0 } });
    return { reconciler, statuses, spawned, identities, settle, end };
  }

  it('leases ids at launch, runs the process as them, shows them in the status, and gives them back when it exits', async () => {
    const { reconciler, statuses, spawned, identities, settle, end } = harness(makeTask());
    await reconciler.reconcile(key);
    await settle();
    expect(identities.requests).toEqual([{ runAsUser: undefined, runAsGroup: undefined, userNamespace: false, owner: 'uid-1' }]);
    expect(spawned[0]?.sandbox).toMatchObject({ runAsUser: 3_000_000_001, runAsGroup: 3_000_000_001 });
    expect(statuses.at(-1)).toMatchObject({ phase: 'Running', hostIdentity: { uid: 3_000_000_001, gid: 3_000_000_001 } });
    expect(identities.released).toBe(0);
    end(0);
    await settle();
    expect(identities.released).toBe(1);
    expect(statuses.at(-1)).toMatchObject({ phase: 'Succeeded', hostIdentity: { uid: 3_000_000_001, gid: 3_000_000_001 } });
  });

  it('gives a default pids limit as RLIMIT_NPROC of the leased uid where pids is on cgroup v1, and keeps it in the cgroup for a uid the spec names', async () => {
    for (const [sandbox, expected] of [[{}, { cgroup: {}, maxProcesses: 64 }], [{ runAsUser: 1000 }, { cgroup: { pids: 64 }, maxProcesses: undefined }]] as const) {
      const asked: CgroupLimits[] = [];
      const cgroups = { placement: { memory: 'v1', pids: 'v1', cpu: 'v1' }, create: (_name: string, limits: CgroupLimits) => (asked.push(limits), { spawnOptions: {}, oomKills: () => 0, memoryPeakBytes: () => undefined, killAll: () => undefined, remove: () => true }) } as unknown as CgroupManager;
      // A uid the spec names needs the baseline sandbox policy level.
      const { reconciler, spawned, settle } = harness(makeTask(sandbox), false, { cgroups, taskLimits: { defaults: { pids: 64 }, maxTmpBytes: 2 ** 30 }, sandboxPolicy: fixedSandboxPolicy({ level: 'baseline', allowedHostPaths: [] }) });
      await reconciler.reconcile(key);
      await settle();
      expect(asked).toEqual([expected.cgroup]);
      expect(spawned[0]?.sandbox?.maxProcesses).toBe(expected.maxProcesses);
    }
  });

  it('passes the ids a Task names, and a userNamespace Task\'s host range, on to the spawn', async () => {
    const { reconciler, spawned, identities, settle } = harness(makeTask({ userNamespace: true, runAsUser: 0 }));
    await reconciler.reconcile(key);
    await settle();
    expect(identities.requests).toEqual([{ runAsUser: 0, runAsGroup: undefined, userNamespace: true, owner: 'uid-1' }]);
    expect(spawned[0]?.sandbox).toMatchObject({ runAsUser: 0, userNamespace: true, userNamespaceHostId: 3_000_000_001 });
  });

  it('asks for the ids of the previous attempt when it launches a retry, naming the Task they are for', async () => {
    const retrying: Task = { ...makeTask(), status: { phase: 'Pending', attempts: 1, hostIdentity: { uid: 3_000_000_007, gid: 3_000_000_008 } } };
    const { reconciler, identities, settle } = harness(retrying);
    await reconciler.reconcile(key);
    await settle();
    expect(identities.requests).toEqual([{ runAsUser: undefined, runAsGroup: undefined, userNamespace: false, previous: { uid: 3_000_000_007, gid: 3_000_000_008 }, owner: 'uid-1' }]);
  });

  it('gives the ids back when the spawn fails', async () => {
    const { reconciler, identities, settle } = harness(makeTask(), true);
    await reconciler.reconcile(key);
    await settle();
    expect(identities.released).toBe(1);
  });
});

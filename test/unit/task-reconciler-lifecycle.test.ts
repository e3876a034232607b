// The reconciler's deadline, suspend, uid-reuse and capacity paths, checked in milliseconds: the
// launcher and the writer are fakes that record what they are asked (each child exits, or not,
// when the test says), the cache is a Map the writer updates as the watch would, and the work
// queue is the test itself, reconciling each key it was asked to.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';

import type { Task, TaskSpec, TaskStatus } from '../../src/api/task.js';
import type { SpawnOptions } from '../../src/launcher/spawn-options.js';
import { SpawnedProcess, type ExitResult } from '../../src/launcher/spawned-process.js';
import type { TaskWriter } from '../../src/store/task-store.js';
import { AttemptTable } from '../../src/tasks/attempts.js';
import type { TaskLauncher } from '../../src/tasks/task-launch.js';
import { claimKey, reconcileKey, type TaskQueueKey } from '../../src/tasks/task-queue-key.js';
import { TaskReconciler, type TaskReconcilerOptions } from '../../src/tasks/task-reconciler.js';

interface FakeChild {
  readonly options: SpawnOptions;
  readonly signals: (NodeJS.Signals | number)[];
  exit(result: { code?: number | null; signal?: NodeJS.Signals | null }): void;
}

/** A launcher whose children record the signals sent to them and exit when the test says. */
class FakeLauncher implements TaskLauncher {
  readonly children: FakeChild[] = [];

  spawn(options: SpawnOptions): Promise<SpawnedProcess> {
    const exited = Promise.withResolvers<ExitResult>();
    const signals: (NodeJS.Signals | number)[] = [];
    this.children.push({
      options,
      signals,
      exit: ({ code = null, signal = null }) => exited.resolve({ code, signal, durationNs: 1, rusage: { userUs: 0, systemUs: 0, maxRssKb: 0 } }),
    });
    return Promise.resolve(new SpawnedProcess({ pid: 4000 + this.children.length, timings: { queuedNs: 1, spawnNs: 1 }, stdout: null, stderr: null, exited: exited.promise, kill: (signal) => (signals.push(signal), true) }));
  }
}

function keyOf(task: Task): string {
  return `${task.metadata.namespace ?? ''}/${task.metadata.name ?? ''}`;
}

function makeTask(name: string, spec: Partial<TaskSpec> = {}, uid = `uid-${name}`): Task {
  return { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name, namespace: 'ns', uid, generation: 1 }, spec: { nodeName: 'node', command: ['work'], ...spec } };
}

/** A Task no node has yet: one to claim. */
function unboundTask(name: string, spec: Partial<TaskSpec> = {}): Task {
  return { ...makeTask(name), spec: { command: ['work'], ...spec } };
}

/** Records each write and applies it to the cached Task, as the watch would deliver it. */
class RecordingWriter implements TaskWriter {
  readonly writes: string[] = [];
  readonly claims: string[] = [];
  /** Each claim waits for this before it answers (true: won). */
  claimAnswer: Promise<boolean> = Promise.resolve(true);

  readonly #cache: Map<string, Task>;

  constructor(cache: Map<string, Task>) {
    this.#cache = cache;
  }

  writeStatus(task: Task, status: TaskStatus): Promise<void> {
    this.writes.push(`${task.metadata.name ?? ''}: status ${status.phase ?? ''} ${status.reason ?? ''}`.trimEnd());
    this.#update(task, (current) => ({ ...current, status }));
    return Promise.resolve();
  }

  addFinalizer(task: Task): Promise<void> {
    this.#update(task, (current) => ({ ...current, metadata: { ...current.metadata, finalizers: ['parafork.dev/process'] } }));
    return Promise.resolve();
  }

  removeFinalizer(task: Task): Promise<void> {
    this.#update(task, (current) => ({ ...current, metadata: { ...current.metadata, finalizers: [] } }));
    return Promise.resolve();
  }

  deleteTask(): Promise<void> {
    return Promise.resolve();
  }

  claim(task: Task): Promise<boolean> {
    this.claims.push(task.metadata.name ?? '');
    return this.claimAnswer;
  }

  #update(task: Task, change: (task: Task) => Task): void {
    const current = this.#cache.get(keyOf(task));
    // A write for a Task since replaced under the same name would be refused by the API (uid precondition).
    if (current && current.metadata.uid === task.metadata.uid) this.#cache.set(keyOf(task), change(current));
  }
}

/** The reconciler over a cache of bound Tasks and one of unbound ones; requeued keys are collected, not run. */
function reconcilerFor(tasks: Task[], options: Partial<TaskReconcilerOptions> = {}) {
  const cache = new Map(tasks.map((task) => [keyOf(task), task]));
  const unbound = new Map<string, Task>();
  const writer = new RecordingWriter(cache);
  const launcher = new FakeLauncher();
  const requeued: TaskQueueKey[] = [];
  const reconciler = new TaskReconciler({
    nodeName: 'node',
    writer,
    launcher,
    runningWriteDelayMs: 0,
    tasks: { get: (key) => cache.get(key) },
    unboundTasks: { get: (key) => unbound.get(key) },
    attempts: new AttemptTable(),
    events: { record: () => undefined },
    logger: pino({ level: 'silent' }),
    maxConcurrent: 10,
    terminationGraceMs: 5_000,
    nodeLabels: () => ({ zone: 'a' }),
    requeue: (key) => requeued.push(key),
    ...options,
  });
  /** Runs the reconciles and claims asked for until none are left. */
  const drain = async (): Promise<void> => {
    for (let round = 0; round < 50; round++) {
      await new Promise((resolve) => setImmediate(resolve));
      const key = requeued.shift();
      if (key === undefined) continue;
      await (key.kind === 'claim' ? reconciler.claim(key.name) : reconciler.reconcile(key.name));
    }
  };
  return { cache, unbound, writer, launcher, requeued, reconciler, drain };
}

afterEach(() => {
  vi.useRealTimers();
});

/**
 * Lets the reconciler take in the exit just made, until it asks for a reconcile (a few turns at
 * most): an exit's work runs in the reconciler's slices of the event loop (src/controller/sliced-work.ts),
 * one turn to read the attempt's end and one to record it.
 */
async function exitTakenIn(requeued: readonly TaskQueueKey[]): Promise<void> {
  for (let turn = 0; turn < 10 && requeued.length === 0; turn++) await new Promise((resolve) => setImmediate(resolve));
}

/** Moves the wall clock (Date.now) on; the monotonic clock the attempts are timed by stays. */
function wallClockMovesOn(milliseconds: number): void {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(Date.now() + milliseconds);
}

describe('activeDeadlineSeconds', () => {
  it('asks for a reconcile when the deadline of a running attempt comes due', async () => {
    const task = makeTask('deadline', { activeDeadlineSeconds: 30 });
    const { launcher, reconciler, drain, cache } = reconcilerFor([task]);
    await reconciler.reconcile('ns/deadline');
    await drain();
    expect(cache.get('ns/deadline')?.status?.phase).toBe('Running');
    const result = await reconciler.reconcile('ns/deadline');
    expect(result?.requeueAfterMs).toBeGreaterThan(28_000);
    expect(result?.requeueAfterMs).toBeLessThanOrEqual(30_000);
    expect(launcher.children[0]?.signals).toEqual([]);
  });

  it('sends SIGTERM once the deadline has passed and ends the Task as DeadlineExceeded, never retried', async () => {
    const task = makeTask('deadline', { activeDeadlineSeconds: 30, backoffLimit: 5 });
    const { launcher, reconciler, drain, cache } = reconcilerFor([task]);
    await reconciler.reconcile('ns/deadline');
    await drain();
    wallClockMovesOn(31_000);
    expect(await reconciler.reconcile('ns/deadline')).toEqual({ requeueAfterMs: 5_000 });
    expect(launcher.children[0]?.signals).toEqual(['SIGTERM']);
    launcher.children[0]?.exit({ signal: 'SIGTERM' });
    await drain();
    expect(cache.get('ns/deadline')?.status).toMatchObject({ phase: 'Failed', reason: 'DeadlineExceeded', signal: 'SIGTERM', attempts: 1, message: 'activeDeadlineSeconds passed; the process was killed by SIGTERM' });
    expect(cache.get('ns/deadline')?.status?.nextRetryTime).toBeUndefined();
    expect(launcher.children).toHaveLength(1);
  });

  it('sends SIGKILL to a process still running when the termination grace period is over', async () => {
    const { launcher, reconciler, drain } = reconcilerFor([makeTask('deadline', { activeDeadlineSeconds: 30 })]);
    await reconciler.reconcile('ns/deadline');
    await drain();
    wallClockMovesOn(31_000);
    await reconciler.reconcile('ns/deadline');
    const early = await reconciler.reconcile('ns/deadline');
    expect(early?.requeueAfterMs).toBeGreaterThan(0);
    expect(launcher.children[0]?.signals).toEqual(['SIGTERM']);
    vi.setSystemTime(Date.now() + 5_000);
    await reconciler.reconcile('ns/deadline');
    expect(launcher.children[0]?.signals).toEqual(['SIGTERM', 'SIGKILL']);
  });

  it('counts from the first attempt s start: a retry due after the deadline fails as DeadlineExceeded without a launch', async () => {
    const startTime = new Date(Date.now() - 60_000).toISOString();
    const waiting = { ...makeTask('deadline', { activeDeadlineSeconds: 30, backoffLimit: 5 }), status: { phase: 'Pending' as const, attempts: 1, startTime, nextRetryTime: new Date(Date.now() - 1_000).toISOString(), reason: 'Error' as const } };
    const { launcher, reconciler, cache } = reconcilerFor([waiting]);
    await reconciler.reconcile('ns/deadline');
    expect(launcher.children).toHaveLength(0);
    expect(cache.get('ns/deadline')?.status).toMatchObject({ phase: 'Failed', reason: 'DeadlineExceeded', attempts: 1 });
    expect(cache.get('ns/deadline')?.status?.message).toBe('activeDeadlineSeconds (30) passed before another attempt could start');
    expect(cache.get('ns/deadline')?.status?.nextRetryTime).toBeUndefined();
  });
});

describe('suspend', () => {
  it('keeps a suspended Task from launching, saying so once (Pending, Suspended), and launches it once suspend is cleared', async () => {
    const task = makeTask('paused', { suspend: true });
    const { launcher, reconciler, cache, writer } = reconcilerFor([task]);
    expect(await reconciler.reconcile('ns/paused')).toBeUndefined();
    expect(await reconciler.reconcile('ns/paused')).toBeUndefined();
    expect(launcher.children).toHaveLength(0);
    expect(writer.writes).toEqual(['paused: status Pending Suspended']);
    const suspended = cache.get('ns/paused') as Task;
    cache.set('ns/paused', { ...suspended, spec: { ...suspended.spec, suspend: false } });
    await reconciler.reconcile('ns/paused');
    expect(launcher.children).toHaveLength(1);
  });

  it('set on a running Task sends SIGTERM and ends it as Cancelled, never retried', async () => {
    const { launcher, reconciler, drain, cache } = reconcilerFor([makeTask('paused', { backoffLimit: 5 })]);
    await reconciler.reconcile('ns/paused');
    await drain();
    const running = cache.get('ns/paused') as Task;
    cache.set('ns/paused', { ...running, spec: { ...running.spec, suspend: true } });
    expect(await reconciler.reconcile('ns/paused')).toEqual({ requeueAfterMs: 5_000 });
    expect(launcher.children[0]?.signals).toEqual(['SIGTERM']);
    launcher.children[0]?.exit({ code: 143 });
    await drain();
    expect(cache.get('ns/paused')?.status).toMatchObject({ phase: 'Failed', reason: 'Cancelled', attempts: 1 });
    expect(cache.get('ns/paused')?.status?.message).toMatch(/^suspend was set; the process /);
    expect(launcher.children).toHaveLength(1);
  });

  it('keeps a retry waiting for its time from launching while set, even once that time has passed', async () => {
    const past = new Date(Date.now() - 1_000).toISOString();
    const waiting = { ...makeTask('paused', { suspend: true, backoffLimit: 5 }), status: { phase: 'Pending' as const, attempts: 1, nextRetryTime: past, reason: 'Error' as const } };
    const { launcher, reconciler, writer } = reconcilerFor([waiting]);
    expect(await reconciler.reconcile('ns/paused')).toBeUndefined();
    expect(launcher.children).toHaveLength(0);
    expect(writer.writes).toEqual([]);
  });
});

describe('a Task deleted and created again under the same name', () => {
  it('has the old Task s process killed with SIGKILL and gets a first attempt of its own', async () => {
    const { launcher, reconciler, drain, cache } = reconcilerFor([makeTask('reused', {}, 'uid-old')]);
    await reconciler.reconcile('ns/reused');
    await drain();
    cache.set('ns/reused', makeTask('reused', {}, 'uid-new'));
    await reconciler.reconcile('ns/reused');
    expect(launcher.children[0]?.signals).toEqual(['SIGKILL']);
    expect(launcher.children).toHaveLength(2);
    await drain();
    expect(cache.get('ns/reused')?.status).toMatchObject({ phase: 'Running', attempts: 1 });
  });

  it('is not ended by the old process s exit', async () => {
    const { launcher, reconciler, drain, cache, writer } = reconcilerFor([makeTask('reused', {}, 'uid-old')]);
    await reconciler.reconcile('ns/reused');
    await drain();
    cache.set('ns/reused', makeTask('reused', {}, 'uid-new'));
    await reconciler.reconcile('ns/reused');
    await drain();
    writer.writes.length = 0;
    launcher.children[0]?.exit({ signal: 'SIGKILL' });
    await drain();
    expect(writer.writes).toEqual([]);
    expect(cache.get('ns/reused')?.status).toMatchObject({ phase: 'Running', attempts: 1 });
    expect(launcher.children[1]?.signals).toEqual([]);
    launcher.children[1]?.exit({ code: 0 });
    await drain();
    expect(cache.get('ns/reused')?.status).toMatchObject({ phase: 'Succeeded', attempts: 1 });
  });
});

describe('a Task deleted and created again under the same name, with a launch journal', () => {
  it('has the old Task s journal entry forgotten: that Task is gone', async () => {
    const launched = new Map<string, number>();
    const journal = { launched: (uid: string, attempt: number) => launched.set(uid, attempt), lastLaunched: (uid: string) => launched.get(uid), forget: (uid: string) => launched.delete(uid) };
    const { launcher, reconciler, drain, cache } = reconcilerFor([makeTask('reused', {}, 'uid-old')], { journal });
    await reconciler.reconcile('ns/reused');
    await drain();
    cache.set('ns/reused', makeTask('reused', {}, 'uid-new'));
    await reconciler.reconcile('ns/reused');
    launcher.children[0]?.exit({ signal: 'SIGKILL' });
    await drain();
    expect([...launched.keys()]).toEqual(['uid-new']);
  });
});

describe('capacity (maxConcurrent)', () => {
  it('keeps a bound Task waiting while every slot is taken, and says so once: Pending, WaitingForCapacity', async () => {
    const { launcher, reconciler, drain, writer, cache } = reconcilerFor([makeTask('first'), makeTask('second')], { maxConcurrent: 1 });
    await reconciler.reconcile('ns/first');
    await drain();
    writer.writes.length = 0;
    expect(await reconciler.reconcile('ns/second')).toBeUndefined();
    expect(await reconciler.reconcile('ns/second')).toBeUndefined();
    expect(launcher.children).toHaveLength(1);
    expect(writer.writes).toEqual(['second: status Pending WaitingForCapacity']);
    expect(cache.get('ns/second')?.status?.message).toBe('all 1 slots of node node (its --max-concurrent) are taken; the Task starts when one is free');
  });

  it('writes nothing while a Task that has run before waits for a slot: its status says how its last attempt ended', async () => {
    const retried = makeTask('retried', { backoffLimit: 3 });
    const { reconciler, drain, writer } = reconcilerFor([makeTask('first'), { ...retried, status: { phase: 'Pending', attempts: 1, reason: 'Error', message: 'exited with code 1' } }], { maxConcurrent: 1 });
    await reconciler.reconcile('ns/first');
    await drain();
    writer.writes.length = 0;
    await reconciler.reconcile('ns/retried');
    expect(writer.writes).toEqual([]);
  });

  it('once a slot is free, runs a Task that waited and shows Running without the waiting reason', async () => {
    const { launcher, reconciler, drain, cache } = reconcilerFor([makeTask('first'), makeTask('second')], { maxConcurrent: 1 });
    await reconciler.reconcile('ns/first');
    await drain();
    await reconciler.reconcile('ns/second');
    launcher.children[0]?.exit({ code: 0 });
    await drain();
    expect(launcher.children).toHaveLength(2);
    expect(cache.get('ns/second')?.status).toMatchObject({ phase: 'Running' });
    expect(cache.get('ns/second')?.status?.reason).toBeUndefined();
  });

  it('gives a freed slot to the Task that has waited longest, one Task per slot', async () => {
    const { launcher, reconciler, drain, requeued } = reconcilerFor([makeTask('first', { command: ['first'] }), makeTask('second', { command: ['second'] }), makeTask('third', { command: ['third'] })], { maxConcurrent: 1 });
    await reconciler.reconcile('ns/first');
    await drain();
    await reconciler.reconcile('ns/second');
    await reconciler.reconcile('ns/third');
    launcher.children[0]?.exit({ code: 0 });
    await exitTakenIn(requeued);
    expect(requeued).toEqual([reconcileKey('ns/first'), reconcileKey('ns/second')]);
    await drain();
    expect(launcher.children.map((child) => child.options.file)).toEqual(['first', 'second']);
  });

  it('passes a freed slot on when the Task it was kept for is gone by then', async () => {
    const { launcher, reconciler, drain, cache } = reconcilerFor([makeTask('first', { command: ['first'] }), makeTask('second', { command: ['second'] }), makeTask('third', { command: ['third'] })], { maxConcurrent: 1 });
    await reconciler.reconcile('ns/first');
    await drain();
    await reconciler.reconcile('ns/second');
    await reconciler.reconcile('ns/third');
    cache.delete('ns/second'); // deleted while it waited
    launcher.children[0]?.exit({ code: 0 });
    await drain();
    expect(launcher.children.map((child) => child.options.file)).toEqual(['first', 'third']);
  });

  it('does not claim an unbound Task while every slot is taken, and claims it once a slot is free', async () => {
    const { launcher, reconciler, drain, unbound, writer, requeued } = reconcilerFor([makeTask('running')], { maxConcurrent: 1 });
    unbound.set('ns/free', unboundTask('free'));
    await reconciler.reconcile('ns/running');
    await drain();
    await reconciler.claim('ns/free');
    expect(writer.claims).toEqual([]);
    launcher.children[0]?.exit({ code: 0 });
    await exitTakenIn(requeued);
    expect(requeued).toContainEqual(claimKey('ns/free'));
    await drain();
    expect(writer.claims).toEqual(['free']);
  });

  it('counts claims still in flight as taken slots', async () => {
    const { reconciler, unbound, writer } = reconcilerFor([], { maxConcurrent: 1 });
    unbound.set('ns/one', unboundTask('one'));
    unbound.set('ns/two', unboundTask('two'));
    const answer = Promise.withResolvers<boolean>();
    writer.claimAnswer = answer.promise;
    const first = reconciler.claim('ns/one');
    await reconciler.claim('ns/two');
    expect(writer.claims).toEqual(['one']);
    answer.resolve(true);
    await first;
    await reconciler.claim('ns/two');
    expect(writer.claims).toEqual(['one', 'two']);
  });
});

/** A Task of namespace `namespace` (makeTask's are all in 'ns'). */
function inNamespace(namespace: string, task: Task): Task {
  return { ...task, metadata: { ...task.metadata, namespace } };
}

/**
 * Red team, session 15 (h-api), fairness: waiting keys were served first come, first served, and an
 * array took every free slot at each pass; its own requeue after an index ended ran before the
 * waiting Task's wake-up, so another namespace's Task waited for the whole array.
 */
describe('capacity shared between namespaces (fairness)', () => {
  /** Ends the oldest still running child whose command is `file`, and lets the reconciler take it in. */
  function turnover(launcher: FakeLauncher, ended: Set<FakeChild>, file: string, requeued: readonly TaskQueueKey[], drain: () => Promise<void>): Promise<void> {
    const child = launcher.children.find((candidate) => candidate.options.file === file && !ended.has(candidate));
    if (child === undefined) throw new Error(`no ${file} child running`);
    ended.add(child);
    child.exit({ code: 0 });
    return exitTakenIn(requeued).then(drain);
  }
  const files = (launcher: FakeLauncher): string[] => launcher.children.map((child) => child.options.file);

  it('starts another namespace s Task at the next index turnover of an array that holds every slot, and the array goes on', async () => {
    const array = inNamespace('a', makeTask('array', { command: ['index'], completions: 200 }));
    const single = inNamespace('b', makeTask('single', { command: ['single'] }));
    const { launcher, reconciler, drain, requeued } = reconcilerFor([array, single], { maxConcurrent: 4 });
    const ended = new Set<FakeChild>();
    await reconciler.reconcile('a/array');
    await drain();
    expect(files(launcher)).toEqual(['index', 'index', 'index', 'index']);
    await reconciler.reconcile('b/single');
    await drain();
    for (let turnovers = 0; turnovers < 2 && !files(launcher).includes('single'); turnovers++) await turnover(launcher, ended, 'index', requeued, drain);
    expect(files(launcher)).toContain('single');
    // Nobody else waits: the array takes every slot again as indexes end, beside the Task.
    const before = launcher.children.length;
    for (let turnovers = 0; turnovers < 3; turnovers++) await turnover(launcher, ended, 'index', requeued, drain);
    expect(launcher.children.length).toBe(before + 3);
    expect(launcher.children.length - ended.size).toBe(4);
  });

  it('serves waiting keys round-robin by namespace: a flood of one namespace does not keep another s Task waiting, nor an array', async () => {
    const array = inNamespace('a', makeTask('array', { command: ['index'], completions: 200 }));
    const flood = Array.from({ length: 10 }, (_, n) => inNamespace('b', makeTask(`flood-${n}`, { command: ['flood'] })));
    const single = inNamespace('c', makeTask('single', { command: ['single'] }));
    const { launcher, reconciler, drain, requeued } = reconcilerFor([array, ...flood, single], { maxConcurrent: 4 });
    const ended = new Set<FakeChild>();
    await reconciler.reconcile('a/array');
    await drain();
    for (const task of flood) await reconciler.reconcile(`b/${task.metadata.name ?? ''}`);
    await reconciler.reconcile('c/single');
    await drain();
    expect(files(launcher)).toEqual(['index', 'index', 'index', 'index']);
    // Each namespace in turn: within a few turnovers the single Task of c runs, and the array
    // (a key of namespace a) still starts indexes while b's ten wait.
    for (let turnovers = 0; turnovers < 12; turnovers++) {
      const file = launcher.children.find((child) => !ended.has(child))?.options.file ?? '';
      await turnover(launcher, ended, file, requeued, drain);
    }
    const started = files(launcher).slice(4);
    expect(started.slice(0, 3)).toContain('single');
    expect(started.filter((file) => file === 'index').length).toBeGreaterThanOrEqual(3);
    expect(started.filter((file) => file === 'flood').length).toBeGreaterThanOrEqual(3);
  });
});

describe('claiming an unbound Task', () => {
  const cases: [string, Partial<TaskSpec>, Partial<Task>][] = [
    ['whose nodeSelector does not match the node s labels', { nodeSelector: { zone: 'b' } }, {}],
    ['already bound to a node', { nodeName: 'other' }, {}],
    ['that has finished', {}, { status: { phase: 'Failed' } }],
    ['that is being deleted', {}, { metadata: { name: 'task', namespace: 'ns', uid: 'uid', deletionTimestamp: new Date().toISOString() } }],
  ];
  for (const [situation, spec, overrides] of cases) {
    it(`is never tried for a Task ${situation}`, async () => {
      const { reconciler, unbound, writer } = reconcilerFor([]);
      unbound.set('ns/task', { ...(spec.nodeName === undefined ? unboundTask('task', spec) : makeTask('task', spec)), ...overrides });
      await reconciler.claim('ns/task');
      expect(writer.claims).toEqual([]);
    });
  }

  it('is tried for a Task whose nodeSelector matches the node s labels', async () => {
    const { reconciler, unbound, writer } = reconcilerFor([]);
    unbound.set('ns/task', unboundTask('task', { nodeSelector: { zone: 'a' } }));
    await reconciler.claim('ns/task');
    expect(writer.claims).toEqual(['task']);
  });

  it('is never tried once the agent drains', async () => {
    const { reconciler, unbound, writer } = reconcilerFor([]);
    unbound.set('ns/task', unboundTask('task'));
    reconciler.startDraining();
    await reconciler.claim('ns/task');
    expect(writer.claims).toEqual([]);
  });
});

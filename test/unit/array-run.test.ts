// One Task array run by the agent (src/tasks/array-run.ts), with a launcher and clock of the test's
// own: every index launched once with its own number, parallelism and the node's free slots
// respected, suspend pausing and resuming, the deadline and a failed array stopping what runs,
// the launch fence recorded before a launch, and status writes paced.
import pino from 'pino';
import { describe, expect, it } from 'vitest';

import type { Task, TaskReason, TaskStatus } from '../../src/api/task.js';
import { ArrayRun, defaultMaxSpawning, type IndexCallbacks, type IndexLauncher, type LaunchFence } from '../../src/tasks/array-run.js';
import type { KillCause } from '../../src/tasks/attempts.js';

interface Launched {
  readonly index: number;
  readonly attempt: number;
  readonly callbacks: IndexCallbacks;
  kills: { cause: KillCause; signal: string }[];
}

class FakeLauncher implements IndexLauncher {
  readonly launched: Launched[] = [];
  readonly fenceAtLaunch: number[] = [];
  readonly #fence: FakeFence | undefined;

  constructor(fence?: FakeFence) {
    this.#fence = fence;
  }

  launch(_task: Task, index: number, attempt: number, callbacks: IndexCallbacks): void {
    this.launched.push({ index, attempt, callbacks, kills: [] });
    this.fenceAtLaunch.push(this.#fence?.through ?? Infinity);
  }

  /** Starts and ends the launched attempt of `index` that is still open. */
  finish(index: number, reason: TaskReason = 'Completed', clock?: Clock): void {
    const entry = this.open(index);
    entry.callbacks.running({ kill: (cause, signal) => entry.kills.push({ cause, signal }) }, 500_000);
    entry.callbacks.ended({ reason, message: reason === 'Completed' ? 'exited with code 0' : 'exited with code 1', finishedAt: clock?.now ?? 0, ...(reason === 'Error' ? { exitCode: 1 } : {}) }, '', 1_000_000);
  }

  run(index: number): Launched {
    const entry = this.open(index);
    entry.callbacks.running({ kill: (cause, signal) => entry.kills.push({ cause, signal }) }, 500_000);
    return entry;
  }

  open(index: number): Launched {
    const entry = this.launched.findLast((launched) => launched.index === index);
    if (entry === undefined) throw new Error(`index ${index} was never launched`);
    return entry;
  }
}

class FakeFence implements LaunchFence {
  through: number | undefined;
  read(): number | undefined {
    return this.through;
  }
  record(_uid: string, through: number): void {
    this.through = through;
  }
}

class Clock {
  now = 1_000_000;
}

function arrayTask(spec: Partial<Task['spec']> = {}, status?: TaskStatus): Task {
  return { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: 'array', namespace: 'default', uid: 'uid-1', generation: 1 }, spec: { command: ['x'], completions: 10, ...spec }, ...(status ? { status } : {}) };
}

function harness(options: { fence?: FakeFence; clock?: Clock; holdWrites?: boolean } = {}) {
  const clock = options.clock ?? new Clock();
  const launcher = new FakeLauncher(options.fence);
  const writes: TaskStatus[] = [];
  // With holdWrites, each status write stays on its way until releaseWrites().
  const heldWrites: (() => void)[] = [];
  let requeues = 0;
  let finalizers = 0;
  const finished: TaskStatus[] = [];
  const makeRun = (task: Task): ArrayRun =>
    new ArrayRun(task, {
      nodeName: 'node-a',
      writeStatus: (_task, status) => {
        writes.push(status);
        if (options.holdWrites !== true) return Promise.resolve();
        return new Promise<void>((resolve) => heldWrites.push(resolve));
      },
      addFinalizer: () => {
        finalizers++;
        return Promise.resolve();
      },
      finished: (_task, status) => finished.push(status),
      launcher,
      requeue: () => {
        requeues++;
      },
      terminationGraceMs: 2_000,
      retryable: (reason) => reason !== 'ExecFailed',
      retryDelayMs: (_task, failures) => 1_000 * failures,
      ...(options.fence ? { fence: options.fence } : {}),
      logger: pino({ level: 'silent' }),
      clock: () => clock.now,
    });
  const releaseWrites = (): void => {
    for (const release of heldWrites.splice(0)) release();
  };
  return { clock, launcher, writes, finished, makeRun, releaseWrites, requeues: () => requeues, finalizers: () => finalizers };
}

const room = { freeSlots: 1_000, draining: false };

describe('an array run', () => {
  it('hands the launcher at most defaultMaxSpawning indexes at once that are not yet running (8 per CPU)', async () => {
    const { launcher, makeRun } = harness();
    const task = arrayTask({ completions: 1_000 });
    const run = makeRun(task);
    await run.reconcile(task, room);
    expect(launcher.launched).toHaveLength(defaultMaxSpawning);
    for (let index = 0; index < 10; index++) launcher.run(index);
    await run.reconcile(task, room);
    expect(launcher.launched).toHaveLength(defaultMaxSpawning + 10);
    expect(run.active).toBe(defaultMaxSpawning + 10);
  });

  it('lets another index in for each whose spawn failed before it ran', async () => {
    const { launcher, makeRun } = harness();
    const task = arrayTask({ completions: 1_000, backoffLimitPerIndex: 1 });
    const run = makeRun(task);
    await run.reconcile(task, room);
    for (let index = 0; index < 5; index++) {
      launcher.open(index).callbacks.ended({ reason: 'SpawnFailed', message: 'EAGAIN', finishedAt: 0 }, '', undefined);
    }
    await run.reconcile(task, room);
    expect(launcher.launched).toHaveLength(defaultMaxSpawning + 5);
    expect(run.active).toBe(defaultMaxSpawning);
  });

  it('launches every index once, with its own number, and writes one final status when it ends quickly', async () => {
    const { launcher, writes, finished, makeRun } = harness();
    const task = arrayTask();
    const run = makeRun(task);
    await run.reconcile(task, room);
    expect(launcher.launched.map((entry) => [entry.index, entry.attempt])).toEqual(Array.from({ length: 10 }, (_, index) => [index, 1]));
    for (let index = 0; index < 10; index++) launcher.finish(index);
    const result = await run.reconcile(task, room);
    expect(result.finished).toBe(true);
    await run.reconcile(task, room);
    expect(writes).toHaveLength(1);
    expect(finished).toEqual(writes);
    expect(writes[0]).toMatchObject({ phase: 'Succeeded', reason: 'Completed', progress: '10/10', completedIndexes: '0-9', attempts: 10, active: 0 });
  });

  it('runs at most parallelism indexes at once, and no more than the node\'s free slots', async () => {
    const { launcher, makeRun } = harness();
    const task = arrayTask({ parallelism: 3 });
    const run = makeRun(task);
    await run.reconcile(task, room);
    expect(run.active).toBe(3);
    launcher.finish(0);
    await run.reconcile(task, { freeSlots: 0, draining: false });
    expect(launcher.launched).toHaveLength(3);
    await run.reconcile(task, room);
    expect(launcher.launched).toHaveLength(4);
    expect(run.active).toBe(3);
  });

  it('starts nothing while suspended, lets running indexes finish, and continues where it stopped once resumed', async () => {
    const { launcher, writes, makeRun, clock } = harness();
    const running = arrayTask({ parallelism: 2 });
    const run = makeRun(running);
    await run.reconcile(running, room);
    const suspended = arrayTask({ parallelism: 2, suspend: true });
    launcher.finish(0);
    launcher.finish(1);
    clock.now += 300;
    await run.reconcile(suspended, room);
    expect(launcher.launched).toHaveLength(2);
    expect(writes.at(-1)).toMatchObject({ phase: 'Pending', completedIndexes: '0,1' });
    expect(writes.at(-1)?.conditions?.[0]).toMatchObject({ type: 'Running', status: 'False', reason: 'Suspended' });
    await run.reconcile(running, room);
    expect(launcher.launched.map((entry) => entry.index)).toEqual([0, 1, 2, 3]);
  });

  it('says so in its status when created suspended: Pending, Running False with reason Suspended', async () => {
    const { launcher, writes, makeRun, clock } = harness();
    const task = arrayTask({ suspend: true });
    const run = makeRun(task);
    await run.reconcile(task, room);
    clock.now += 300;
    await run.reconcile(task, room);
    expect(launcher.launched).toHaveLength(0);
    expect(writes.at(-1)).toMatchObject({ phase: 'Pending', progress: '0/10' });
    expect(writes.at(-1)?.conditions?.[0]).toMatchObject({ type: 'Running', status: 'False', reason: 'Suspended' });
  });

  it('retries a failed index after its backoff, as attempt 2', async () => {
    const { launcher, makeRun, clock } = harness();
    const task = arrayTask({ completions: 2, backoffLimitPerIndex: 1 });
    const run = makeRun(task);
    await run.reconcile(task, room);
    launcher.finish(0, 'Error', clock);
    const waiting = await run.reconcile(task, room);
    expect(waiting.requeueAfterMs).toBeLessThanOrEqual(1_000);
    clock.now += 1_000;
    await run.reconcile(task, room);
    expect(launcher.launched.at(-1)).toMatchObject({ index: 0, attempt: 2 });
  });

  it('stops the running indexes when more than maxFailedIndexes failed, and writes Failed once they are gone', async () => {
    const { launcher, writes, makeRun } = harness();
    const task = arrayTask({ completions: 4, backoffLimitPerIndex: 0, maxFailedIndexes: 0 });
    const run = makeRun(task);
    await run.reconcile(task, room);
    const other = launcher.run(1);
    launcher.finish(0, 'Error');
    const stopping = await run.reconcile(task, room);
    expect(other.kills).toEqual([{ cause: 'Cancelled', signal: 'SIGTERM' }]);
    expect(stopping.finished).toBe(false);
    expect(stopping.requeueAfterMs).toBeLessThanOrEqual(2_000);
    other.callbacks.ended({ reason: 'Cancelled', message: 'stopped', finishedAt: 0, signal: 'SIGTERM' }, '', 1);
    // Indexes 2 and 3 were launched but never ran: the launcher ends them when killed; here by hand.
    for (const index of [2, 3]) launcher.open(index).callbacks.ended({ reason: 'Cancelled', message: 'stopped', finishedAt: 0 }, '', undefined);
    expect((await run.reconcile(task, room)).finished).toBe(true);
    expect(writes.at(-1)).toMatchObject({ phase: 'Failed', reason: 'MaxFailedIndexesExceeded', failedIndexes: '0', failed: 1 });
  });

  it('kills what runs with DeadlineExceeded when activeDeadlineSeconds passes, SIGKILL after the grace period', async () => {
    const { launcher, writes, makeRun, clock } = harness();
    const task = arrayTask({ completions: 1, activeDeadlineSeconds: 5 });
    const run = makeRun(task);
    await run.reconcile(task, room);
    const only = launcher.run(0);
    const waiting = await run.reconcile(task, room);
    expect(waiting.requeueAfterMs).toBeLessThanOrEqual(5_000);
    clock.now += 5_000;
    await run.reconcile(task, room);
    expect(only.kills).toEqual([{ cause: 'DeadlineExceeded', signal: 'SIGTERM' }]);
    clock.now += 2_000;
    await run.reconcile(task, room);
    expect(only.kills.at(-1)).toEqual({ cause: 'DeadlineExceeded', signal: 'SIGKILL' });
    only.callbacks.ended({ reason: 'DeadlineExceeded', message: 'killed', finishedAt: clock.now, signal: 'SIGKILL' }, '', 1);
    await run.reconcile(task, room);
    expect(writes.at(-1)).toMatchObject({ phase: 'Failed', reason: 'DeadlineExceeded' });
  });

  it('records the launch fence before launching any index at or above it', async () => {
    const fence = new FakeFence();
    const { launcher, makeRun } = harness({ fence });
    const task = arrayTask({ completions: 600 });
    const run = makeRun(task);
    const started = new Set<number>();
    await run.reconcile(task, room);
    // At most defaultMaxSpawning spawning at once: each start lets the next in.
    for (let round = 0; launcher.launched.length < 600 && round < 600; round++) {
      for (const entry of launcher.launched) if (entry.kills.length === 0 && !started.has(entry.index)) {
        started.add(entry.index);
        launcher.run(entry.index);
      }
      await run.reconcile(task, room);
    }
    expect(launcher.launched).toHaveLength(600);
    launcher.launched.forEach((entry, position) => expect(launcher.fenceAtLaunch[position]).toBeGreaterThan(entry.index));
    expect(fence.through).toBe(600);
  });

  it('after a restart, never launches again an index the status or the fence shows handed out; one in doubt is a lost attempt', async () => {
    const fence = new FakeFence();
    fence.through = 6;
    const { launcher, writes, makeRun } = harness({ fence });
    const task = arrayTask({ completions: 10, backoffLimitPerIndex: 0 }, { phase: 'Running', completedIndexes: '0-3', attempts: 6 });
    const run = makeRun(task);
    await run.reconcile(task, room);
    expect(launcher.launched.map((entry) => entry.index)).toEqual([6, 7, 8, 9]);
    for (const index of [6, 7, 8, 9]) launcher.finish(index);
    await run.reconcile(task, room);
    expect(writes.at(-1)).toMatchObject({ phase: 'Failed', reason: 'FailedIndexes', completedIndexes: '0-3,6-9', failedIndexes: '4,5', attempts: 10 });
    expect(writes.at(-1)?.failures?.map((failure) => [failure.index, failure.reason])).toEqual([[4, 'AgentRestarted'], [5, 'AgentRestarted']]);
  });

  it('writes at most one status a second while it runs, with the finalizer added before the first', async () => {
    const { launcher, writes, makeRun, clock, finalizers } = harness();
    const task = arrayTask({ completions: 1_000, parallelism: 10 });
    const run = makeRun(task);
    let next = 0;
    for (let millisecond = 0; millisecond < 3_000; millisecond += 10) {
      clock.now += 10;
      await run.reconcile(task, room);
      while (next < launcher.launched.length && next < (millisecond + 10) / 10 * 3) launcher.finish(launcher.launched[next++]?.index ?? 0);
    }
    await Promise.resolve();
    expect(writes.length).toBeGreaterThanOrEqual(2);
    expect(writes.length).toBeLessThanOrEqual(3);
    expect(finalizers()).toBe(1);
    expect(writes[0]).toMatchObject({ phase: 'Running' });
  });

  // Seen on the integration suite under load: the last running index of a suspended array ended
  // while a status write was on its way, and the status said Running with an index active for good.
  it('writes a change made while a status write was on its way once that write has ended', async () => {
    const { launcher, writes, makeRun, clock, releaseWrites, requeues } = harness({ holdWrites: true });
    const task = arrayTask({ completions: 4, parallelism: 2 });
    const run = makeRun(task);
    await run.reconcile(task, room);
    launcher.run(0);
    launcher.run(1);
    clock.now += 300; // past the first write's delay
    await run.reconcile(task, room);
    expect(writes).toHaveLength(1); // on its way
    const suspended = arrayTask({ completions: 4, parallelism: 2, suspend: true });
    await run.reconcile(suspended, room);
    for (const index of [0, 1]) launcher.open(index).callbacks.ended({ reason: 'Completed', message: 'exited with code 0', finishedAt: clock.now }, '', 1_000_000);
    await run.reconcile(suspended, room); // the pass the endings asked for, while the write is still on its way
    const requeuesBefore = requeues();
    releaseWrites();
    await new Promise((resolve) => setImmediate(resolve));
    // The write's end asks for a pass, which arms the next write.
    expect(requeues()).toBeGreaterThan(requeuesBefore);
    const pass = await run.reconcile(suspended, room);
    expect(pass.requeueAfterMs).toBeGreaterThan(0);
    clock.now += pass.requeueAfterMs ?? 0;
    await run.reconcile(suspended, room);
    expect(writes).toHaveLength(2);
    expect(writes[1]).toMatchObject({ phase: 'Pending', active: 0, succeeded: 2 });
    expect(launcher.launched).toHaveLength(2);
  });
});

// Agents sharing one Task array (src/tasks/shared-array-run.ts), against a fake apiserver that
// applies status the way server-side apply does for status.partitions (an entry belongs to the
// managers that applied its value; an apply without force that changes another manager's field is
// refused; fields a manager stops sending are given up; a resourceVersion is a precondition), with
// launchers and a clock of the test's own: every index launched once as new, the array
// completed by its coordinator, a dead agent's unfinished range taken over only after its lease
// expired, and a holder cut off from the apiserver stopping its indexes before any takeover.
import pino from 'pino';
import { describe, expect, it } from 'vitest';

import type { Task, TaskIndexPartition, TaskStatus } from '../../src/api/task.js';
import type { ApplyConflict, ApplyOutcome } from '../../src/store/task-store.js';
import { arrayLeaseTimings } from '../../src/tasks/array-partitions.js';
import { IndexSet } from '../../src/tasks/index-ranges.js';
import type { IndexCallbacks, IndexLauncher } from '../../src/tasks/array-run.js';
import { SharedArrayRun } from '../../src/tasks/shared-array-run.js';

/**
 * Server-side apply on status.partitions as the apiserver does it, field by field: a field belongs
 * to every manager that applied its present value; an apply without force that changes a field
 * another manager owns is refused with the conflicts; with force it takes the field; a manager
 * that stops sending a field gives it up, and a field nobody owns goes (an entry left without its
 * required nodeName fails validation, as on the apiserver; the fake then is broken for good,
 * which a test notices). A resourceVersion is a precondition.
 */
class FakeApiserver {
  resourceVersion = 1;
  readonly #entries = new Map<number, Map<string, { value: unknown; owners: Set<string> }>>();
  #merged: TaskStatus = {};

  apply(status: TaskStatus, manager: string, force: boolean, resourceVersion: string | undefined): ApplyOutcome {
    if (resourceVersion !== undefined && resourceVersion !== String(this.resourceVersion)) return { applied: false, conflicts: [] };
    const entries = status.partitions;
    if (entries === undefined) {
      this.#merged = status;
    } else {
      const conflicts: ApplyConflict[] = [];
      for (const entry of entries) {
        const fields = this.#entries.get(entry.start);
        for (const [name, value] of Object.entries(entry)) {
          const field = fields?.get(name);
          if (field === undefined || field.value === value) continue;
          for (const owner of field.owners) if (owner !== manager) conflicts.push({ manager: owner, field: `.status.partitions[start=${entry.start}].${name}` });
        }
      }
      if (conflicts.length > 0 && !force) return { applied: false, conflicts };
      for (const [start, fields] of this.#entries) {
        const sent = entries.find((entry) => entry.start === start) as Record<string, unknown> | undefined;
        for (const [name, field] of fields) {
          if (sent !== undefined && name in sent) continue;
          field.owners.delete(manager);
          if (field.owners.size === 0) fields.delete(name);
        }
        if (fields.size === 0) this.#entries.delete(start);
        // The schema requires nodeName: the real apiserver refuses the whole write (422).
        else if (!fields.has('nodeName')) throw new Error(`422 status.partitions[start=${start}].nodeName: Required value`);
      }
      for (const entry of entries) {
        const fields = this.#entries.get(entry.start) ?? new Map<string, { value: unknown; owners: Set<string> }>();
        this.#entries.set(entry.start, fields);
        for (const [name, value] of Object.entries(entry)) {
          const field = fields.get(name);
          if (field !== undefined && field.value === value) field.owners.add(manager);
          else fields.set(name, { value, owners: new Set([manager]) });
        }
      }
    }
    this.resourceVersion++;
    return { applied: true };
  }

  task(completions: number, spec: Partial<Task['spec']> = {}): Task {
    const partitions = [...this.#entries.values()].map((fields) => Object.fromEntries([...fields].map(([name, field]) => [name, field.value])) as unknown as TaskIndexPartition);
    return {
      apiVersion: 'parafork.dev/v1alpha1',
      kind: 'Task',
      metadata: { name: 'shared', namespace: 'default', uid: 'uid-1', generation: 1, resourceVersion: String(this.resourceVersion) },
      spec: { command: ['x'], completions, indexPlacement: 'AcrossNodes', ...spec },
      status: { ...this.#merged, partitions: partitions.sort((a, b) => a.start - b.start) },
    };
  }
}

interface Launched {
  readonly node: string;
  readonly index: number;
  readonly attempt: number;
  readonly callbacks: IndexCallbacks;
  readonly at: number;
  killed?: string;
  state: 'launched' | 'running' | 'ended';
}

class Clock {
  now = 1_000_000;
}

/** Every launch of every agent, in order. */
class Launches {
  readonly all: Launched[] = [];

  launcherFor(node: string, clock: Clock): IndexLauncher {
    return {
      launch: (_task, index, attempt, callbacks) => {
        this.all.push({ node, index, attempt, callbacks, at: clock.now, state: 'launched' });
      },
    };
  }

  /** The launched indexes of `node` start running, and those already running end Completed. */
  advance(node: string, clock: Clock): void {
    for (const launched of this.all) {
      if (launched.node !== node || launched.killed !== undefined) continue;
      if (launched.state === 'running') {
        launched.state = 'ended';
        launched.callbacks.ended({ reason: 'Completed', message: 'exited with code 0', finishedAt: clock.now }, '', 1_000_000);
      } else if (launched.state === 'launched') {
        launched.state = 'running';
        launched.callbacks.running({ kill: (_cause, signal) => (launched.killed = signal) }, 500_000);
      }
    }
  }
}

const lease = arrayLeaseTimings(6);

function agent(node: string, server: FakeApiserver, launches: Launches, clock: Clock, options: { failWrites?: () => boolean } = {}): SharedArrayRun {
  return new SharedArrayRun(server.task(300), {
    nodeName: node,
    applyStatus: (_task, status, manager, force, resourceVersion) => {
      if (options.failWrites?.() === true) return Promise.reject(new Error('connection refused'));
      // Applied at once, as the call is made: a later pass sees it (a real write lands during the pass, or after).
      try {
        return Promise.resolve(server.apply(status, manager, force, resourceVersion));
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
    },
    launcher: launches.launcherFor(node, clock),
    requeue: () => undefined,
    retryable: () => true,
    retryDelayMs: () => 1_000,
    lease,
    fenceChunk: 20,
    logger: pino({ level: 'silent' }),
    clock: () => clock.now,
  });
}

/** Lets the writes that were started (not awaited by a pass) finish. */
async function settle(): Promise<void> {
  for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * Runs passes of the `live` agents, 100 ms apart, until the array has its final phase (or `steps`
 * run out). With `staleCache`, every other pass sees the Task as it was a step earlier, as an
 * informer's cache may (an agent's own takeover not in it yet).
 */
async function runUntilDone(server: FakeApiserver, launches: Launches, clock: Clock, live: ReadonlyMap<string, SharedArrayRun>, steps = 2_000, spec: Partial<Task['spec']> = {}, staleCache = false): Promise<Task> {
  let previous = server.task(300, spec);
  for (let step = 0; step < steps; step++) {
    const stale = previous;
    previous = server.task(300, spec);
    for (const [node, run] of live) {
      await run.reconcile(staleCache && step % 2 === 1 ? stale : server.task(300, spec), { freeSlots: 16, draining: false });
      await settle();
      launches.advance(node, clock);
    }
    clock.now += 100;
    const task = server.task(300, spec);
    if (task.status?.phase === 'Succeeded' || task.status?.phase === 'Failed') return task;
  }
  return server.task(300, spec);
}

function firstAttempts(launches: Launches): number[] {
  return launches.all.filter((launched) => launched.attempt === 1).map((launched) => launched.index);
}

describe('two agents sharing an array', () => {
  it('claim ranges of it, launch each index once, and the coordinator writes it Complete', async () => {
    const server = new FakeApiserver();
    const launches = new Launches();
    const clock = new Clock();
    const live = new Map([['node-a', agent('node-a', server, launches, clock)], ['node-b', agent('node-b', server, launches, clock)]]);

    const task = await runUntilDone(server, launches, clock, live);

    expect(task.status).toMatchObject({ phase: 'Succeeded', progress: '300/300', succeeded: 300, completedIndexes: '0-299', failedIndexes: '' });
    expect(task.status?.conditions?.find((condition) => condition.type === 'Complete')).toMatchObject({ status: 'True' });
    expect(launches.all.map((launched) => launched.index).sort((a, b) => a - b)).toEqual([...Array(300).keys()]);
    expect(new Set(launches.all.filter((launched) => launched.node === 'node-a').map((launched) => launched.index)).size).toBeGreaterThan(0);
    expect(new Set(launches.all.filter((launched) => launched.node === 'node-b').map((launched) => launched.index)).size).toBeGreaterThan(0);
    for (const entry of task.status?.partitions ?? []) expect(entry.launchedThrough).toBe(entry.end);
  });

  it('launch an index only below the fence its range\'s entry records', async () => {
    const server = new FakeApiserver();
    const launches = new Launches();
    const clock = new Clock();
    const run = agent('node-a', server, launches, clock);
    const launchedBelow: boolean[] = [];
    for (let step = 0; step < 6; step++) {
      const before = launches.all.length;
      // What this pass launches must be below the fence its range's entry had before the pass (a
      // range claimed in the pass: the fence its claim recorded, its first chunk of 20).
      const entries = server.task(300).status?.partitions ?? [];
      const fenceOf = (index: number): number => entries.find((entry) => index >= entry.start && index < entry.end)?.launchedThrough ?? Math.floor(index / 100) * 100 + 20;
      await run.reconcile(server.task(300), { freeSlots: 1_000, draining: false });
      for (const launched of launches.all.slice(before)) launchedBelow.push(launched.index < fenceOf(launched.index));
      await settle();
      launches.advance('node-a', clock);
      clock.now += 100;
    }
    // The claim recorded the first chunk (20); each later chunk is recorded before its indexes start.
    expect(launches.all.slice(0, 20).map((launched) => launched.index)).toEqual([...Array(20).keys()]);
    expect(launchedBelow.every(Boolean)).toBe(true);
    expect(launches.all.length).toBeGreaterThan(20);
  });
});

describe('an agent that dies holding a range', () => {
  it('has its unfinished range taken over only after its lease expired, and kept though the cache shows the takeover late: fresh indexes once, the ones in doubt retried as lost attempts', async () => {
    const server = new FakeApiserver();
    const launches = new Launches();
    const clock = new Clock();
    const a = agent('node-a', server, launches, clock);
    const b = agent('node-b', server, launches, clock);
    const live = new Map([['node-a', a], ['node-b', b]]);
    // Run both until B has ended some of its indexes and runs others, then B dies: those never report.
    for (let step = 0; step < 7; step++) {
      for (const [node, run] of live) {
        await run.reconcile(server.task(300), { freeSlots: 16, draining: false });
        await settle();
        launches.advance(node, clock);
      }
      clock.now += 100;
    }
    const diedAt = clock.now;
    // In doubt: what B launched and its entry does not show ended, whether it ran to its end (B
    // had not written that yet) or not. Nobody can tell those apart once B is gone.
    const entryOfB = server.task(300).status?.partitions?.find((entry) => entry.nodeName === 'node-b');
    const reported = IndexSet.parse(entryOfB?.completedIndexes ?? '', 300);
    const inDoubt = launches.all.filter((launched) => launched.node === 'node-b' && !reported.has(launched.index)).map((launched) => launched.index);
    expect(inDoubt.length).toBeGreaterThan(0);
    live.delete('node-b');

    const task = await runUntilDone(server, launches, clock, live, 2_000, { backoffLimitPerIndex: 1 }, true);

    expect(task.status).toMatchObject({ phase: 'Succeeded', succeeded: 300, completedIndexes: '0-299' });
    // No index started twice as new. The ones in doubt ran again as attempt 2, on A, only once B's
    // lease had expired; so did the indexes below B's recorded fence that B never got to. Nothing
    // B's entry showed ended ran again.
    const fresh = firstAttempts(launches);
    expect(fresh.length).toBe(new Set(fresh).size);
    const retried = launches.all.filter((launched) => launched.attempt === 2);
    const retriedIndexes = new Set(retried.map((launched) => launched.index));
    for (const index of inDoubt) expect(retriedIndexes.has(index), `index ${index}`).toBe(true);
    for (const index of retriedIndexes) {
      expect(index >= (entryOfB?.start ?? 0) && index < (entryOfB?.launchedThrough ?? 0) && !reported.has(index), `index ${index}`).toBe(true);
    }
    for (const launched of retried) {
      expect(launched.node).toBe('node-a');
      expect(launched.at - diedAt).toBeGreaterThanOrEqual(lease.durationMs - lease.renewIntervalMs);
    }
    // Every index ended; only one in doubt can have ended twice.
    const endings = new Map<number, number>();
    for (const launched of launches.all) if (launched.state === 'ended') endings.set(launched.index, (endings.get(launched.index) ?? 0) + 1);
    expect([...endings.keys()].sort((x, y) => x - y)).toEqual([...Array(300).keys()]);
    for (const [index, count] of endings) if (count > 1) expect(inDoubt, `index ${index}`).toContain(index);
    // A's writes after the takeover were not refused for the fields B still co-owned
    // (decideOnConflicts): every entry, the taken one too, shows its range done, and A never had
    // to stop its own indexes for want of a renew.
    for (const entry of task.status?.partitions ?? []) expect(entry, `range ${entry.start}`).toMatchObject({ nodeName: 'node-a', succeeded: entry.end - entry.start });
    expect(launches.all.filter((launched) => launched.node === 'node-a' && launched.killed !== undefined)).toEqual([]);
  });
});

describe('an agent cut off from the apiserver', () => {
  it('kills its indexes before another agent can take its range over', async () => {
    const server = new FakeApiserver();
    const launches = new Launches();
    const clock = new Clock();
    let cutOff = false;
    const a = agent('node-a', server, launches, clock);
    const b = agent('node-b', server, launches, clock, { failWrites: () => cutOff });
    for (let step = 0; step < 5; step++) {
      for (const [node, run] of [['node-a', a], ['node-b', b]] as const) {
        await run.reconcile(server.task(300), { freeSlots: 16, draining: false });
        await settle();
        if (node === 'node-a' || step < 4) launches.advance(node, clock);
      }
      clock.now += 100;
    }
    cutOff = true;
    let killedAt: number | undefined;
    let takenOverAt: number | undefined;
    for (let step = 0; step < 200 && takenOverAt === undefined; step++) {
      // A pass of the cut-off agent fails as its writes do (the work queue retries it); its fence check comes first.
      await b.reconcile(server.task(300), { freeSlots: 16, draining: false }).catch(() => undefined);
      await a.reconcile(server.task(300), { freeSlots: 16, draining: false });
      await settle();
      launches.advance('node-a', clock);
      if (killedAt === undefined && launches.all.some((launched) => launched.node === 'node-b' && launched.killed === 'SIGKILL')) killedAt = clock.now;
      if (server.task(300).status?.partitions?.some((entry) => entry.nodeName === 'node-a' && launches.all.some((launched) => launched.node === 'node-b' && launched.index >= entry.start && launched.index < entry.end))) takenOverAt = clock.now;
      clock.now += 100;
    }
    expect(killedAt).toBeDefined();
    expect(takenOverAt).toBeDefined();
    expect(killedAt as number).toBeLessThan(takenOverAt as number);
    // Every index B had running was killed: none of them can still be running when A starts them again.
    expect(launches.all.filter((launched) => launched.node === 'node-b' && launched.state === 'running').every((launched) => launched.killed === 'SIGKILL')).toBe(true);
  });
});

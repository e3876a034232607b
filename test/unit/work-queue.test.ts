// The work queue's contract (see the header of src/controller/work-queue.ts), one behaviour per
// test. Time is faked so that delays are exact; the burst tests run on the real event loop because
// what they check is how the queue shares it.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import {
  TerminalError,
  WorkQueue,
  type ReconcileResult,
  type WorkHandler,
  type WorkOutcome,
  type WorkQueueObserver,
  type WorkQueueOptions,
} from '../../src/controller/work-queue.js';

/** One handler run the test settles by hand. */
interface ControlledRun {
  readonly key: string;
  readonly signal: AbortSignal;
  readonly startedAt: number;
  succeed(result?: ReconcileResult): void;
  fail(error: unknown): void;
}

/** A handler whose runs stay pending until the test settles them, or the queue aborts them. */
function controlledHandler(): { handler: WorkHandler; runs: ControlledRun[] } {
  const runs: ControlledRun[] = [];
  const handler: WorkHandler = (key, signal) => {
    const { promise, resolve, reject } = Promise.withResolvers<ReconcileResult | undefined>();
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
    runs.push({ key, signal, startedAt: performance.now(), succeed: resolve, fail: reject });
    return promise;
  };
  return { handler, runs };
}

/** A handler that plays one scripted step per run, in order, and records when each run started. */
function scriptedHandler(steps: readonly ((key: string) => ReconcileResult | undefined)[]): {
  handler: WorkHandler;
  startTimes: number[];
} {
  const startTimes: number[] = [];
  const handler: WorkHandler = (key) => {
    const step = steps[startTimes.length] ?? (() => undefined);
    startTimes.push(performance.now());
    return Promise.resolve().then(() => step(key));
  };
  return { handler, startTimes };
}

const failing = (): never => {
  throw new Error('the apiserver is unreachable');
};
const succeeding = (): undefined => undefined;

function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

const queues: WorkQueue[] = [];

function newQueue(handler: WorkHandler, options: WorkQueueOptions): WorkQueue {
  const queue = new WorkQueue(handler, options);
  queues.push(queue);
  return queue;
}

/** Runs the immediates and timers due now, and the promise callbacks in between. */
async function settle(): Promise<void> {
  await vi.advanceTimersByTimeAsync(0);
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(async () => {
  const shutDowns = Promise.all(queues.splice(0).map((queue) => queue.shutDown()));
  if (vi.isFakeTimers()) await vi.runAllTimersAsync();
  await shutDowns;
  vi.useRealTimers();
});

describe('WorkQueue dedupe', () => {
  it('handles a key added several times before a worker takes it only once', async () => {
    const { handler, runs } = controlledHandler();
    const queue = newQueue(handler, { concurrency: 4 });
    queue.start();

    queue.add('default/a');
    queue.add('default/a');
    queue.add('default/a');
    expect(queue.depth).toBe(1);
    await settle();
    runs[0]!.succeed();
    await settle();

    expect(runs.map((run) => run.key)).toEqual(['default/a']);
  });

  it('handles a key again once its run ends when it was added during the run', async () => {
    const { handler, runs } = controlledHandler();
    const queue = newQueue(handler, { concurrency: 4 });
    queue.start();
    queue.add('default/a');
    await settle();

    queue.add('default/a');
    queue.add('default/a');
    await settle();
    expect(runs).toHaveLength(1);
    expect(queue.depth).toBe(0);

    runs[0]!.succeed();
    await settle();
    expect(runs).toHaveLength(2);
    runs[1]!.succeed();
    await settle();
    expect(runs).toHaveLength(2);
  });

  it('never runs two handlers for the same key at once, however often it is added', async () => {
    let running = 0;
    let mostRunning = 0;
    let runCount = 0;
    const queue = newQueue(
      async () => {
        running += 1;
        runCount += 1;
        mostRunning = Math.max(mostRunning, running);
        await sleep(10);
        running -= 1;
        return undefined;
      },
      { concurrency: 8 },
    );
    queue.start();

    for (let round = 0; round < 40; round += 1) {
      queue.add('default/a');
      await vi.advanceTimersByTimeAsync(3);
    }
    await vi.advanceTimersByTimeAsync(100);

    expect(mostRunning).toBe(1);
    expect(runCount).toBeGreaterThan(5);
  });
});

describe('WorkQueue concurrency and order', () => {
  it('runs at most `concurrency` handlers at once and starts the next as one finishes', async () => {
    const { handler, runs } = controlledHandler();
    const queue = newQueue(handler, { concurrency: 3 });
    queue.start();
    for (let index = 0; index < 10; index += 1) queue.add(`default/task-${index}`);
    await settle();
    expect(runs).toHaveLength(3);
    expect(queue.processing).toBe(3);
    expect(queue.depth).toBe(7);

    runs[1]!.succeed();
    await settle();
    expect(runs).toHaveLength(4);
    expect(queue.processing).toBe(3);
    expect(queue.depth).toBe(6);
  });

  it('hands ready keys to handlers in the order they became ready', async () => {
    const { handler, runs } = controlledHandler();
    const queue = newQueue(handler, { concurrency: 1 });
    queue.start();
    queue.add('default/first');
    await settle();

    queue.add('default/c');
    queue.addAfter('default/late', 5);
    queue.add('default/a');
    queue.add('default/b');
    queue.add('default/c');
    await vi.advanceTimersByTimeAsync(5);
    for (let index = 0; index < 5; index += 1) {
      runs[index]!.succeed();
      await settle();
    }

    expect(runs.map((run) => run.key)).toEqual(['default/first', 'default/c', 'default/a', 'default/b', 'default/late']);
  });
});

describe('WorkQueue retries', () => {
  it('retries a failing key after delays that double from baseRetryDelayMs up to maxRetryDelayMs', async () => {
    const { handler, startTimes } = scriptedHandler(Array.from({ length: 6 }, () => failing));
    const queue = newQueue(handler, { concurrency: 1, baseRetryDelayMs: 10, maxRetryDelayMs: 50 });
    queue.start();

    queue.add('default/a');
    await vi.advanceTimersByTimeAsync(10 + 20 + 40 + 50 + 50);

    const delays = startTimes.slice(1).map((time, index) => time - startTimes[index]!);
    expect(delays).toEqual([10, 20, 40, 50, 50]);
    expect(queue.retries('default/a')).toBe(6);
  });

  it("resets a key's failure count when its handler succeeds, so its next failure waits baseRetryDelayMs again", async () => {
    const { handler, startTimes } = scriptedHandler([failing, failing, succeeding, failing, succeeding]);
    const queue = newQueue(handler, { concurrency: 1, baseRetryDelayMs: 10 });
    queue.start();
    queue.add('default/a');
    await vi.advanceTimersByTimeAsync(10 + 20);
    expect(startTimes).toHaveLength(3);
    expect(queue.retries('default/a')).toBe(0);

    queue.add('default/a');
    await settle();
    expect(queue.retries('default/a')).toBe(1);
    await vi.advanceTimersByTimeAsync(10);
    expect(startTimes).toHaveLength(5);
    expect(startTimes[4]! - startTimes[3]!).toBe(10);
  });

  it('handles a key again requeueAfterMs after a run that asks for it, and resets its failure count', async () => {
    const { handler, startTimes } = scriptedHandler([failing, () => ({ requeueAfterMs: 1_000 }), succeeding]);
    const queue = newQueue(handler, { concurrency: 1, baseRetryDelayMs: 10 });
    queue.start();
    queue.add('default/a');
    await vi.advanceTimersByTimeAsync(10);
    expect(startTimes).toHaveLength(2);
    expect(queue.retries('default/a')).toBe(0);

    await vi.advanceTimersByTimeAsync(999);
    expect(startTimes).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(startTimes).toHaveLength(3);
    expect(startTimes[2]! - startTimes[1]!).toBe(1_000);
  });

  it('does not retry a key whose handler throws a TerminalError, and resets its failure count', async () => {
    const terminal = (): never => {
      throw new TerminalError('spec.command is empty');
    };
    const { handler, startTimes } = scriptedHandler([failing, failing, terminal]);
    const queue = newQueue(handler, { concurrency: 1, baseRetryDelayMs: 10 });
    queue.start();
    queue.add('default/a');
    await vi.advanceTimersByTimeAsync(10 + 20);
    expect(startTimes).toHaveLength(3);

    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(startTimes).toHaveLength(3);
    expect(queue.retries('default/a')).toBe(0);
  });

  it('handles a key added during a failing run again at once, without waiting for its backoff, and counts the failure', async () => {
    const { handler, runs } = controlledHandler();
    const queue = newQueue(handler, { concurrency: 1, baseRetryDelayMs: 1_000 });
    queue.start();
    queue.add('default/a');
    await settle();

    queue.add('default/a');
    runs[0]!.fail(new Error('conflict'));
    await settle();

    expect(runs).toHaveLength(2);
    expect(queue.retries('default/a')).toBe(1);
  });
});

describe('WorkQueue delayed adds', () => {
  it('makes a key waiting for a retry ready at once when it is added, keeping its failure count', async () => {
    const { handler, startTimes } = scriptedHandler([failing, failing, succeeding]);
    const queue = newQueue(handler, { concurrency: 1, baseRetryDelayMs: 1_000 });
    queue.start();
    queue.add('default/a');
    await settle();
    expect(queue.retries('default/a')).toBe(1);

    await vi.advanceTimersByTimeAsync(100);
    queue.add('default/a');
    await settle();
    expect(startTimes).toEqual([startTimes[0], startTimes[0]! + 100]);
    expect(queue.retries('default/a')).toBe(2);

    // The retry the first failure asked for is gone; the second failure waits 2 × base.
    await vi.advanceTimersByTimeAsync(1_999);
    expect(startTimes).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(startTimes).toHaveLength(3);
  });

  it('makes a key waiting for its requeueAfterMs ready at once when it is added', async () => {
    const { handler, startTimes } = scriptedHandler([() => ({ requeueAfterMs: 60_000 }), succeeding]);
    const queue = newQueue(handler, { concurrency: 1 });
    queue.start();
    queue.add('default/a');
    await settle();

    queue.add('default/a');
    await settle();
    expect(startTimes).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(startTimes).toHaveLength(2);
  });

  it('handles a key added with several delays once, at the earliest of them', async () => {
    const { handler, startTimes } = scriptedHandler([]);
    const queue = newQueue(handler, { concurrency: 1 });
    queue.start();
    const addedAt = performance.now();

    queue.addAfter('default/a', 500);
    queue.addAfter('default/a', 100);
    queue.addAfter('default/a', 300);
    await vi.advanceTimersByTimeAsync(1_000);

    expect(startTimes).toEqual([addedAt + 100]);
  });

  it('hands delayed keys to handlers in the order they come due, in the order they were asked for at equal times', async () => {
    const handledKeys: string[] = [];
    const queue = newQueue(
      (key) => {
        handledKeys.push(key);
        return Promise.resolve(undefined);
      },
      { concurrency: 1 },
    );
    queue.start();
    const delays = Array.from({ length: 300 }, (_, index) => ((index * 7_919) % 50) * 10 + 10);
    delays.forEach((delayMs, index) => queue.addAfter(`default/task-${index}`, delayMs));
    await vi.advanceTimersByTimeAsync(1_000);

    const expected = delays
      .map((delayMs, index) => ({ delayMs, key: `default/task-${index}` }))
      .sort((first, second) => first.delayMs - second.delayMs)
      .map(({ key }) => key);
    expect(handledKeys).toEqual(expected);
  });

  it('drops a delayed add for a key that is already waiting to be handled', async () => {
    const { handler, runs } = controlledHandler();
    const queue = newQueue(handler, { concurrency: 1 });
    queue.start();
    queue.add('default/busy');
    queue.add('default/a');
    await settle();

    queue.addAfter('default/a', 100);
    runs[0]!.succeed();
    await settle();
    runs[1]!.succeed();
    await vi.advanceTimersByTimeAsync(1_000);

    expect(runs.map((run) => run.key)).toEqual(['default/busy', 'default/a']);
  });
});

describe('WorkQueue shutDown', () => {
  it('aborts the signal given to running handlers and resolves once they have finished', async () => {
    const signals: AbortSignal[] = [];
    const queue = newQueue(
      async (_key, signal) => {
        signals.push(signal);
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        await sleep(50); // cleanup the handler does after the abort
        throw signal.reason;
      },
      { concurrency: 2 },
    );
    queue.start();
    queue.add('default/a');
    queue.add('default/b');
    await settle();
    expect(queue.processing).toBe(2);

    let shutDownResolved = false;
    void queue.shutDown().then(() => (shutDownResolved = true));
    expect(signals.map((signal) => signal.aborted)).toEqual([true, true]);
    await vi.advanceTimersByTimeAsync(49);
    expect(shutDownResolved).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(shutDownResolved).toBe(true);
    expect(queue.processing).toBe(0);
  });

  it('ignores adds after shutDown and leaves no timer behind', async () => {
    const { handler, startTimes } = scriptedHandler([failing]);
    const queue = newQueue(handler, { concurrency: 1, baseRetryDelayMs: 1_000 });
    queue.start();
    queue.add('default/a');
    queue.addAfter('default/b', 5_000);
    await settle();
    expect(queue.retries('default/a')).toBe(1);

    await queue.shutDown();
    queue.add('default/d');
    queue.addAfter('default/e', 10);

    expect(vi.getTimerCount()).toBe(0);
    expect(queue.depth).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(startTimes).toHaveLength(1);
  });

  it('drops ready keys that no worker has taken yet', async () => {
    const { handler, runs } = controlledHandler();
    const queue = newQueue(handler, { concurrency: 1 });
    queue.start();
    queue.add('default/a');
    queue.add('default/b');
    await settle();
    expect(queue.depth).toBe(1);

    await queue.shutDown();
    await settle();

    expect(queue.depth).toBe(0);
    expect(runs.map((run) => run.key)).toEqual(['default/a']);
  });

  it('refuses to start again once shut down', async () => {
    const queue = newQueue(() => Promise.resolve(undefined), { concurrency: 1 });
    queue.start();
    await queue.shutDown();

    expect(() => queue.start()).toThrow(/shut down/);
  });
});

describe('WorkQueue observer', () => {
  it('reports adds, depth, waiting time, working time and the outcome of every run', async () => {
    const added: string[] = [];
    const depths: number[] = [];
    const started: [string, number][] = [];
    const finished: [string, number, WorkOutcome][] = [];
    const observer: WorkQueueObserver = {
      added: (key) => added.push(key),
      depthChanged: (depth) => depths.push(depth),
      started: (key, waitedMs) => started.push([key, waitedMs]),
      finished: (key, workedMs, outcome) => finished.push([key, workedMs, outcome]),
    };
    const { handler, runs } = controlledHandler();
    const queue = newQueue(handler, { concurrency: 1, baseRetryDelayMs: 20, observer });
    queue.add('succeeds');
    queue.add('succeeds');
    queue.add('requeues');
    queue.add('retries');
    queue.add('ends');
    queue.start();
    await settle();

    await vi.advanceTimersByTimeAsync(30);
    runs[0]!.succeed();
    await settle();
    runs[1]!.succeed({ requeueAfterMs: 100 });
    await settle();
    runs[2]!.fail(new Error('the apiserver is unreachable'));
    await settle();
    runs[3]!.fail(new TerminalError('spec.command is empty'));
    await settle();
    await vi.advanceTimersByTimeAsync(20);

    expect(added).toEqual(['succeeds', 'succeeds', 'requeues', 'retries', 'ends', 'retries']);
    expect(depths).toEqual([1, 2, 3, 4, 3, 2, 1, 0, 1, 0]);
    expect(started).toEqual([
      ['succeeds', 0],
      ['requeues', 30],
      ['retries', 30],
      ['ends', 30],
      ['retries', 0],
    ]);
    expect(finished).toEqual([
      ['succeeds', 30, 'success'],
      ['requeues', 0, 'requeue'],
      ['retries', 0, 'retry'],
      ['ends', 0, 'terminal'],
    ]);
  });
});

describe('WorkQueue options', () => {
  it('refuses options that cannot work, saying which one', () => {
    const handler: WorkHandler = () => Promise.resolve(undefined);

    expect(() => new WorkQueue(handler, { concurrency: 0 })).toThrow(/concurrency/);
    expect(() => new WorkQueue(handler, { concurrency: 1.5 })).toThrow(/concurrency/);
    expect(() => new WorkQueue(handler, { concurrency: 1, baseRetryDelayMs: 0 })).toThrow(/baseRetryDelayMs/);
    expect(() => new WorkQueue(handler, { concurrency: 1, baseRetryDelayMs: 100, maxRetryDelayMs: 50 })).toThrow(
      /maxRetryDelayMs/,
    );
    expect(() => new WorkQueue(handler, { concurrency: 1, dispatchSliceMs: 0 })).toThrow(/dispatchSliceMs/);
  });

  it('refuses a delay that is not a number of milliseconds', () => {
    const queue = newQueue(() => Promise.resolve(undefined), { concurrency: 1 });

    expect(() => queue.addAfter('default/a', Number.NaN)).toThrow(RangeError);
    expect(() => queue.addAfter('default/a', Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });
});

describe('WorkQueue under a burst of keys (real event loop)', () => {
  const burstSize = 10_000;

  beforeEach(() => {
    vi.useRealTimers();
  });

  it('starts no handler inside add(), and hands out a burst in batches that let other callbacks run between them', async () => {
    let handlerCalls = 0;
    const queue = newQueue(
      () => {
        handlerCalls += 1;
        return Promise.resolve(undefined);
      },
      { concurrency: burstSize },
    );
    queue.start();

    for (let index = 0; index < burstSize; index += 1) queue.add(`default/task-${index}`);
    expect(handlerCalls).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));

    expect(handlerCalls).toBeGreaterThan(0);
    expect(handlerCalls).toBeLessThan(burstSize);
  });

  /** Starts 100 handlers that each take 2 ms of the queue's clock (`work` spends them), and counts the starts between other callbacks. */
  async function startsPerLoopTurn(work: (spend: () => void) => Promise<undefined>): Promise<number[]> {
    let time = 0;
    const startsPerTurn: number[] = [0];
    const queue = newQueue(
      () => {
        startsPerTurn[startsPerTurn.length - 1] = (startsPerTurn.at(-1) ?? 0) + 1;
        return work(() => {
          time += 2;
        });
      },
      { concurrency: burstSize, dispatchSliceMs: 5, clock: () => time },
    );
    queue.start();

    for (let index = 0; index < 100; index += 1) queue.add(`default/task-${index}`);
    await Promise.resolve(); // the queue plans its first turn once the adds are over
    while (queue.depth > 0) {
      await new Promise((resolve) => setImmediate(resolve)); // another callback between the queue's turns
      startsPerTurn.push(0);
    }
    return startsPerTurn.filter((starts) => starts > 0);
  }

  it('starts no more handlers in a turn once the synchronous part of those it started used up the turn s slice', async () => {
    const turns = await startsPerLoopTurn((spend) => {
      spend(); // before its first await
      return Promise.resolve(undefined);
    });

    // 2, 4, then 6 >= 5 ms: three handlers a turn, each turn a stretch of ~5 ms of the event loop.
    expect(turns.slice(0, -1).every((starts) => starts === 3)).toBe(true);
    expect(turns.reduce((sum, starts) => sum + starts, 0)).toBe(100);
  });

  it('counts in a turn s slice what the handlers it started did after their first await, before the next macrotask', async () => {
    const turns = await startsPerLoopTurn(async (spend) => {
      await Promise.resolve();
      await Promise.resolve();
      spend(); // a launch after the reconcile's first await, as the Task reconciler's
      return undefined;
    });

    expect(turns).toEqual([...Array.from({ length: 33 }, () => 3), 1]);
  });

  it('handles each of 10,000 keys exactly once when every key is added twice', async () => {
    const runsPerKey = new Map<string, number>();
    const { promise: allFinished, resolve } = Promise.withResolvers<undefined>();
    let finishedRuns = 0;
    const queue = newQueue(
      async (key) => {
        runsPerKey.set(key, (runsPerKey.get(key) ?? 0) + 1);
        await new Promise((next) => setImmediate(next));
        return undefined;
      },
      {
        concurrency: 64,
        observer: {
          finished: () => {
            finishedRuns += 1;
            if (finishedRuns === burstSize) resolve(undefined);
          },
        },
      },
    );
    queue.start();

    for (let index = 0; index < burstSize; index += 1) queue.add(`default/task-${index}`);
    for (let index = 0; index < burstSize; index += 1) queue.add(`default/task-${index}`);
    await allFinished;
    await new Promise((settled) => setTimeout(settled, 20));

    expect(runsPerKey.size).toBe(burstSize);
    expect([...runsPerKey.values()].every((runs) => runs === 1)).toBe(true);
    expect(queue.depth).toBe(0);
    expect(queue.processing).toBe(0);
  });
});

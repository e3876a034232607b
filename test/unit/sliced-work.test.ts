// SlicedWork's contract (src/controller/sliced-work.ts): a burst of small pieces runs in order, in
// turns of the event loop that each stop once their time is up, with other callbacks between them.
// Time is a clock the test moves (each piece "costs" what the test says), so the slices are exact.
import { describe, expect, it } from 'vitest';

import { SlicedWork } from '../../src/controller/sliced-work.js';

/** A clock the pieces move on by hand. */
function manualClock(): { now: () => number; advance: (milliseconds: number) => void } {
  let time = 0;
  return { now: () => time, advance: (milliseconds) => (time += milliseconds) };
}

/** Resolves after the immediates queued before it have run: one turn of the queue's pieces. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('SlicedWork', () => {
  it('runs nothing inside schedule(), then every piece in the order it was scheduled', async () => {
    const work = new SlicedWork();
    const ran: number[] = [];
    for (let index = 0; index < 100; index++) work.schedule(() => ran.push(index));
    expect(ran).toEqual([]);
    expect(work.pending).toBe(100);

    while (work.pending > 0) await nextTurn();

    expect(ran).toEqual(Array.from({ length: 100 }, (_, index) => index));
  });

  it('stops a turn once its slice is used up and lets other callbacks run before the next one', async () => {
    const clock = manualClock();
    const work = new SlicedWork({ sliceMs: 5, clock: clock.now });
    const timeline: string[] = [];
    // 1,000 exits of 2 ms each: three fit in a 5 ms slice (2, 4, then 6 >= 5 ends it).
    for (let index = 0; index < 1000; index++) {
      work.schedule(() => {
        clock.advance(2);
        timeline.push('piece');
      });
    }

    const perTurn: number[] = [];
    while (work.pending > 0) {
      const before = timeline.length;
      await nextTurn(); // another callback of the event loop, between the queue's turns
      perTurn.push(timeline.length - before);
    }

    expect(perTurn.slice(0, -1).every((pieces) => pieces === 3)).toBe(true);
    expect(perTurn.reduce((sum, pieces) => sum + pieces, 0)).toBe(1000);
  });

  it('runs at least one piece a turn, however long it takes', async () => {
    const clock = manualClock();
    const work = new SlicedWork({ sliceMs: 1, clock: clock.now });
    let ran = 0;
    for (let index = 0; index < 3; index++) {
      work.schedule(() => {
        clock.advance(50);
        ran++;
      });
    }

    await nextTurn();
    expect(ran).toBe(1);
    await nextTurn();
    await nextTurn();
    expect(ran).toBe(3);
  });

  it('goes on with the next pieces when one throws, and lets the error be seen', async () => {
    const work = new SlicedWork();
    const ran: string[] = [];
    const seen: unknown[] = [];
    const onUncaught = (error: unknown): void => void seen.push(error);
    process.prependListener('uncaughtException', onUncaught);
    try {
      work.schedule(() => {
        throw new Error('a bug in a piece');
      });
      work.schedule(() => ran.push('next'));
      while (work.pending > 0) await nextTurn();
      await nextTurn();
    } finally {
      process.removeListener('uncaughtException', onUncaught);
    }

    expect(ran).toEqual(['next']);
    expect(seen).toEqual([new Error('a bug in a piece')]);
  });

  it('runs a piece scheduled by a running piece once, and the turn armed for it finds the queue empty without error', async () => {
    // An array's index ends in a piece, and its end launches the next index, whose exit schedules again.
    const work = new SlicedWork();
    const ran: string[] = [];
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown): void => {
      uncaught.push(error);
    };
    process.on('uncaughtException', onUncaught);
    try {
      work.schedule(() => {
        ran.push('first');
        work.schedule(() => ran.push('scheduled by the first'));
      });
      for (let turn = 0; turn < 4; turn++) await nextTurn();
    } finally {
      process.off('uncaughtException', onUncaught);
    }
    expect(ran).toEqual(['first', 'scheduled by the first']);
    expect(uncaught).toEqual([]);
    expect(work.pending).toBe(0);
  });

  it('refuses a slice that is not a positive number of milliseconds', () => {
    expect(() => new SlicedWork({ sliceMs: 0 })).toThrow(/sliceMs/);
    expect(() => new SlicedWork({ sliceMs: Number.NaN })).toThrow(/sliceMs/);
  });
});

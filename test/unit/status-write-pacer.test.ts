// When a Task array's status is written (src/tasks/status-write-pacer.ts): at most once per
// interval while it runs, the interval stretching with the array's age so that the writes stay
// bounded however long it runs, its final status at once, one write at a time.
import { describe, expect, it } from 'vitest';

import { StatusWritePacer } from '../../src/tasks/status-write-pacer.js';

describe('StatusWritePacer', () => {
  it('writes nothing until something changed', () => {
    expect(new StatusWritePacer(0).dueAt()).toBeUndefined();
  });

  it('holds the first write until firstWriteDelayMs after the start', () => {
    const pacer = new StatusWritePacer(1_000);
    pacer.changed();
    expect(pacer.dueAt()).toBe(1_250);
  });

  it('writes the final status of an array that ended sooner at once: one write in all', () => {
    const pacer = new StatusWritePacer(1_000);
    pacer.changed();
    pacer.finished();
    expect(pacer.dueAt()).toBe(0);
  });

  it('spaces writes by the interval however many changes come', () => {
    const pacer = new StatusWritePacer(0);
    pacer.changed();
    pacer.writeStarted(250);
    pacer.writeFinished(true);
    for (let change = 0; change < 1_000; change++) pacer.changed();
    expect(pacer.dueAt()).toBe(1_250);
  });

  it('writes once a second for the first 20 seconds, then at most every 5% of the array\'s age', () => {
    const pacer = new StatusWritePacer(0);
    wroteAndChanged(pacer, 10_000);
    expect(pacer.dueAt()).toBe(11_000);
    wroteAndChanged(pacer, 100_000);
    expect(pacer.dueAt()).toBe(105_000);
  });

  it('keeps a 100,000-index array that runs 5 minutes (346 indexes/s, as measured on a loaded machine) under 80 writes', () => {
    expect(writesOverRun(new StatusWritePacer(0), 289_000)).toBeLessThanOrEqual(80);
  });

  it('writes 20 + 20.5 ln(T / 20 s) times at most, plus the final one: 34 for 40 s, 127 for an hour, 193 for a day', () => {
    for (const [runMs, bound] of [[40_000, 35], [3_600_000, 127], [86_400_000, 193]] as const) {
      const writes = writesOverRun(new StatusWritePacer(0), runMs);
      expect(writes).toBeLessThanOrEqual(bound);
      expect(writes).toBeGreaterThanOrEqual(bound - 3);
    }
  });

  it('writes a change people wait to see (suspend) one interval after the last write, not stretched', () => {
    const pacer = new StatusWritePacer(0);
    wroteAndChanged(pacer, 600_000);
    expect(pacer.dueAt()).toBe(630_000);
    pacer.changed({ urgent: true });
    expect(pacer.dueAt()).toBe(601_000);
    wroteAndChanged(pacer, 601_000);
    expect(pacer.dueAt()).toBe(631_050);
  });

  it('never stretches the interval past the heartbeat', () => {
    const pacer = new StatusWritePacer(0, { heartbeatMs: 10_000 });
    wroteAndChanged(pacer, 600_000);
    expect(pacer.dueAt()).toBe(610_000);
  });

  it('with stretch 0, writes once per interval however long the array runs', () => {
    expect(writesOverRun(new StatusWritePacer(0, { stretch: 0 }), 70_000)).toBeGreaterThanOrEqual(69);
  });

  it('never has two writes in flight: a change during a write waits for it', () => {
    const pacer = new StatusWritePacer(0);
    pacer.changed();
    pacer.writeStarted(300);
    pacer.changed();
    pacer.finished();
    expect(pacer.dueAt()).toBeUndefined();
    pacer.writeFinished(true);
    expect(pacer.dueAt()).toBe(0);
  });

  it('writes again after the interval when a write failed, final or not', () => {
    const pacer = new StatusWritePacer(0);
    pacer.finished();
    pacer.writeStarted(500);
    pacer.writeFinished(false);
    expect(pacer.dueAt()).toBe(1_500);
  });

  it('with a heartbeat, writes that often even without a change', () => {
    const pacer = new StatusWritePacer(0, { heartbeatMs: 10_000 });
    pacer.changed();
    pacer.writeStarted(250);
    pacer.writeFinished(true);
    expect(pacer.dueAt()).toBe(10_250);
  });

  it('refuses a heartbeat shorter than the interval, and a stretch outside 0 to 1', () => {
    expect(() => new StatusWritePacer(0, { heartbeatMs: 500 })).toThrow(RangeError);
    expect(() => new StatusWritePacer(0, { stretch: -0.1 })).toThrow(RangeError);
    expect(() => new StatusWritePacer(0, { stretch: Number.NaN })).toThrow(RangeError);
  });
});

/** A change, its write at `now` (successful), and a change after it. */
function wroteAndChanged(pacer: StatusWritePacer, now: number): void {
  pacer.changed();
  pacer.writeStarted(now);
  pacer.writeFinished(true);
  pacer.changed();
}

/** Writes (the final one included) for an array running `runMs` with a change every 100 ms, each write taking no time. */
function writesOverRun(pacer: StatusWritePacer, runMs: number): number {
  let writes = 0;
  for (let now = 0; now < runMs; now += 100) {
    pacer.changed();
    const due = pacer.dueAt();
    if (due !== undefined && due <= now) {
      pacer.writeStarted(now);
      pacer.writeFinished(true);
      writes++;
    }
  }
  pacer.finished();
  expect(pacer.dueAt()).toBe(0);
  return writes + 1;
}

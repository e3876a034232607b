// When a Task array's status is written (src/tasks/status-write-pacer.ts): at most once per
// interval while it runs, its final status at once, one write at a time.
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

  it('counts about one write per second for a 70-second array of 100,000 indexes, plus the final one', () => {
    const pacer = new StatusWritePacer(0);
    let writes = 0;
    for (let now = 0; now < 70_000; now++) {
      pacer.changed(); // an index event every millisecond
      const due = pacer.dueAt();
      if (due !== undefined && due <= now) {
        pacer.writeStarted(now);
        pacer.writeFinished(true);
        writes++;
      }
    }
    pacer.finished();
    expect(pacer.dueAt()).toBe(0);
    writes++;
    expect(writes).toBeGreaterThanOrEqual(69);
    expect(writes).toBeLessThanOrEqual(71);
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

  it('refuses a heartbeat shorter than the interval', () => {
    expect(() => new StatusWritePacer(0, { heartbeatMs: 500 })).toThrow(RangeError);
  });
});

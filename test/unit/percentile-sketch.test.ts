// Percentiles of spawn latencies and run times for Task array status (src/tasks/percentile-sketch.ts):
// within 1% of the exact nearest-rank percentile, in memory that does not grow with the values.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { PercentileSketch, percentileRelativeError } from '../../src/tasks/percentile-sketch.js';

function exactQuantile(sorted: readonly number[], q: number): number {
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1] ?? 0;
}

describe('PercentileSketch', () => {
  it('has no quantile before a value is added', () => {
    expect(new PercentileSketch().quantile(0.5)).toBeUndefined();
    expect(new PercentileSketch().max).toBe(0);
  });

  it('keeps the maximum exactly and never estimates above it', () => {
    const sketch = new PercentileSketch();
    for (const value of [1_000, 2_000, 123_456_789]) sketch.add(value);
    expect(sketch.max).toBe(123_456_789);
    expect(sketch.quantile(1)).toBeLessThanOrEqual(123_456_789);
  });

  it('estimates every percentile within 1% of the exact nearest-rank value', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 2 ** 40 }), { minLength: 1, maxLength: 2_000 }), fc.double({ min: 0, max: 1, noNaN: true }), (values, q) => {
        const sketch = new PercentileSketch();
        for (const value of values) sketch.add(value);
        const exact = exactQuantile([...values].sort((a, b) => a - b), q);
        expect(Math.abs((sketch.quantile(q) ?? 0) - exact)).toBeLessThanOrEqual(exact * percentileRelativeError * 1.0001);
      }),
    );
  });

  it('takes a million values in the same memory as one (a fixed bucket array)', () => {
    const sketch = new PercentileSketch();
    for (let value = 1; value <= 1_000_000; value++) sketch.add(value * 1_000);
    expect(sketch.count).toBe(1_000_000);
    expect(sketch.quantile(0.99)).toBeCloseTo(990_000_000, -7);
  });

  it('refuses a negative or NaN duration (a clock bug upstream)', () => {
    expect(() => new PercentileSketch().add(-1)).toThrow(RangeError);
    expect(() => new PercentileSketch().add(Number.NaN)).toThrow(RangeError);
  });
});

// Index sets of Task arrays (src/tasks/index-ranges.ts): what they hold, the compressed text an
// Indexed Job writes in status.completedIndexes, reading it back strictly, and memory that grows
// with the number of runs, not of indexes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { IndexRangesError, IndexSet } from '../../src/tasks/index-ranges.js';

function setOf(...indexes: number[]): IndexSet {
  const set = new IndexSet();
  for (const index of indexes) set.add(index);
  return set;
}

describe('IndexSet text form', () => {
  it('is empty for an empty set', () => {
    expect(new IndexSet().toString()).toBe('');
  });

  it('writes runs of three or more as first-last, and pairs and singles as they are, as Kubernetes does', () => {
    expect(setOf(1, 3, 4, 5, 7, 9, 10).toString()).toBe('1,3-5,7,9,10');
  });

  it('writes a whole 100,000-index array as one range', () => {
    const set = new IndexSet();
    for (let index = 0; index < 100_000; index++) set.add(index);
    expect(set.toString()).toBe('0-99999');
    expect(set.size).toBe(100_000);
    expect(set.rangeCount).toBe(1);
  });

  it('reads back what it writes', () => {
    const text = '0,2-6,8,9,11,20-29';
    expect(IndexSet.parse(text, 30).toString()).toBe(text);
  });

  it.each([
    ['1,x', 'neither an index nor first-last'],
    ['5-3', 'ends before it starts'],
    ['3,2', 'must ascend without repeats'],
    ['1-3,3', 'must ascend without repeats'],
    ['1,,2', 'neither an index nor first-last'],
    ['-1', 'neither an index nor first-last'],
    ['0-10', 'outside the array (completions 10)'],
  ])('refuses %s, saying why', (text, why) => {
    expect(() => IndexSet.parse(text, 10)).toThrow(IndexRangesError);
    expect(() => IndexSet.parse(text, 10)).toThrow(why);
  });
});

describe('IndexSet membership', () => {
  it('merges touching runs into one', () => {
    const set = setOf(1, 2, 4, 5);
    expect(set.rangeCount).toBe(2);
    set.add(3);
    expect(set.rangeCount).toBe(1);
    expect([...set.ranges()]).toEqual([{ start: 1, end: 6 }]);
  });

  it('says whether an add was new', () => {
    const set = setOf(4);
    expect(set.add(4)).toBe(false);
    expect(set.add(5)).toBe(true);
    expect(set.size).toBe(2);
  });

  it('adds a range over several runs, counting each index once', () => {
    const set = setOf(1, 5, 9);
    set.addRange(0, 7);
    expect(set.toString()).toBe('0-6,9');
    expect(set.size).toBe(8);
  });

  it('finds the first index it does not hold within bounds', () => {
    const set = IndexSet.parse('0-4,6,8-9', 10);
    expect(set.firstAbsent(0, 10)).toBe(5);
    expect(set.firstAbsent(6, 10)).toBe(7);
    expect(set.firstAbsent(8, 10)).toBeUndefined();
    expect(set.firstAbsent(2, 5)).toBeUndefined();
  });

  it('refuses an index that is not a whole number >= 0', () => {
    expect(() => new IndexSet().add(-1)).toThrow(RangeError);
    expect(() => new IndexSet().add(1.5)).toThrow(RangeError);
  });

  it('agrees with a plain Set on any sequence of adds', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 300 }), (indexes) => {
        const set = new IndexSet();
        const reference = new Set<number>();
        for (const index of indexes) {
          expect(set.add(index)).toBe(!reference.has(index));
          reference.add(index);
        }
        expect(set.size).toBe(reference.size);
        for (let index = 0; index <= 201; index++) expect(set.has(index)).toBe(reference.has(index));
        expect(IndexSet.parse(set.toString(), 201).size).toBe(reference.size);
        const ranges = [...set.ranges()];
        // Disjoint, ascending and never touching: the text form is the shortest there is.
        for (let position = 1; position < ranges.length; position++) {
          expect(ranges[position]?.start ?? 0).toBeGreaterThan(ranges[position - 1]?.end ?? 0);
        }
      }),
    );
  });
});

describe('IndexSet.overlaps', () => {
  it('is true only when some index is in both sets', () => {
    const set = IndexSet.parse('1,3-5,9', 10);
    expect(set.overlaps(IndexSet.parse('0,2,6-8', 10))).toBe(false);
    expect(set.overlaps(IndexSet.parse('5', 10))).toBe(true);
    expect(set.overlaps(IndexSet.parse('6-9', 10))).toBe(true);
    expect(set.overlaps(IndexSet.parse('', 10))).toBe(false);
    expect(IndexSet.parse('0-9', 10).overlaps(IndexSet.parse('4', 10))).toBe(true);
  });
});

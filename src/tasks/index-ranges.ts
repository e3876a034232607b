// Sets of array indexes kept as sorted, disjoint ranges, and their text form: the compressed list
// an Indexed Job writes in status.completedIndexes ("1,3-5,7"), which Task arrays write too.
//
// Memory and the text grow with the number of separate runs, not of indexes: a 100,000-index array
// that succeeded whole is one range and "0-99999". Indexes finish roughly in the order they start,
// so an add almost always lands at or next to the last range; it is found by binary search and
// costs O(log ranges), plus O(ranges) for the rare splice in the middle.

/** A text form of an index set that cannot be read, or lies outside the array. */
export class IndexRangesError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IndexRangesError';
  }
}

/** One run of consecutive indexes: `start` up to, not including, `end`. */
export interface IndexRange {
  readonly start: number;
  readonly end: number;
}

export class IndexSet {
  /** start0, end0, start1, end1, ...: ascending, disjoint and never touching (end_i < start_i+1). */
  readonly #bounds: number[] = [];
  #size = 0;

  /** The set written as `text` ("1,3-5,7"); every index must be below `limit` (the array's completions). */
  static parse(text: string, limit: number): IndexSet {
    const set = new IndexSet();
    if (text === '') return set;
    let previousLast = -1;
    for (const part of text.split(',')) {
      const match = /^(\d+)(?:-(\d+))?$/.exec(part);
      if (match === null) throw new IndexRangesError(`"${part}" in "${abbreviate(text)}" is neither an index nor first-last`);
      const first = Number(match[1]);
      const last = match[2] === undefined ? first : Number(match[2]);
      if (last < first) throw new IndexRangesError(`the range ${part} ends before it starts`);
      if (first <= previousLast) throw new IndexRangesError(`${part} is not above the index before it (${previousLast}): indexes must ascend without repeats`);
      if (last >= limit) throw new IndexRangesError(`index ${last} is outside the array (completions ${limit})`);
      set.addRange(first, last + 1);
      previousLast = last;
    }
    return set;
  }

  /** How many indexes the set holds. */
  get size(): number {
    return this.#size;
  }

  /** How many separate runs it holds: what its memory and text grow with. */
  get rangeCount(): number {
    return this.#bounds.length / 2;
  }

  has(index: number): boolean {
    const position = this.#rangeAtOrBefore(index);
    return position >= 0 && index < (this.#bounds[position * 2 + 1] ?? 0);
  }

  /** Adds one index; false when it was there already. */
  add(index: number): boolean {
    if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`an index is a whole number >= 0, not ${index}`);
    if (this.has(index)) return false;
    this.addRange(index, index + 1);
    return true;
  }

  /** Adds every index from `start` up to, not including, `end`. */
  addRange(start: number, end: number): void {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
      throw new RangeError(`a range is whole numbers 0 <= start <= end, not [${start}, ${end})`);
    }
    if (start === end) return;
    const bounds = this.#bounds;
    // The first range that ends at or after `start` (touching counts: [1,3) and [3,5) merge).
    const first = this.#firstEndingAtOrAfter(start);
    let mergedStart = start;
    let mergedEnd = end;
    let last = first;
    let covered = 0;
    while (last < bounds.length / 2 && (bounds[last * 2] ?? 0) <= end) {
      const rangeStart = bounds[last * 2] ?? 0;
      const rangeEnd = bounds[last * 2 + 1] ?? 0;
      mergedStart = Math.min(mergedStart, rangeStart);
      mergedEnd = Math.max(mergedEnd, rangeEnd);
      covered += rangeEnd - rangeStart;
      last++;
    }
    bounds.splice(first * 2, (last - first) * 2, mergedStart, mergedEnd);
    this.#size += mergedEnd - mergedStart - covered;
  }

  /** The smallest index >= `from` and < `end` that the set does not hold; undefined when all are held. */
  firstAbsent(from: number, end: number): number | undefined {
    const position = this.#rangeAtOrBefore(from);
    const candidate = position >= 0 && from < (this.#bounds[position * 2 + 1] ?? 0) ? (this.#bounds[position * 2 + 1] ?? 0) : from;
    return candidate < end ? candidate : undefined;
  }

  /** The runs, ascending. */
  *ranges(): IterableIterator<IndexRange> {
    for (let position = 0; position < this.#bounds.length; position += 2) {
      yield { start: this.#bounds[position] ?? 0, end: this.#bounds[position + 1] ?? 0 };
    }
  }

  /** Whether some index is in both sets: one walk over both lists of runs. */
  overlaps(other: IndexSet): boolean {
    const mine = this.#bounds;
    const theirs = other.#bounds;
    let i = 0;
    let j = 0;
    while (i < mine.length && j < theirs.length) {
      const [start, end, otherStart, otherEnd] = [mine[i] ?? 0, mine[i + 1] ?? 0, theirs[j] ?? 0, theirs[j + 1] ?? 0];
      if (start < otherEnd && otherStart < end) return true;
      if (end <= otherEnd) i += 2;
      else j += 2;
    }
    return false;
  }

  /** The Indexed Job text form: ascending, comma-separated, runs of three or more as first-last. */
  toString(): string {
    const parts: string[] = [];
    for (const { start, end } of this.ranges()) {
      const last = end - 1;
      if (last === start) parts.push(String(start));
      else if (last === start + 1) parts.push(`${start},${last}`); // as Kubernetes writes a pair
      else parts.push(`${start}-${last}`);
    }
    return parts.join(',');
  }

  /** Index (in ranges) of the last range starting at or before `index`; -1 when none does. */
  #rangeAtOrBefore(index: number): number {
    let low = 0;
    let high = this.#bounds.length / 2 - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if ((this.#bounds[middle * 2] ?? 0) <= index) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found;
  }

  /** Index (in ranges) of the first range whose end is >= `index`; the range count when none. */
  #firstEndingAtOrAfter(index: number): number {
    let low = 0;
    let high = this.#bounds.length / 2;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((this.#bounds[middle * 2 + 1] ?? 0) < index) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}

function abbreviate(text: string): string {
  return text.length <= 64 ? text : `${text.slice(0, 61)}...`;
}

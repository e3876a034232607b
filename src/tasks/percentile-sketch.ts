// Percentiles of a stream of durations in fixed memory, for the status of a Task array: its
// spawn latencies and run times over up to 100,000 indexes (and their retries), summarised as
// p50/p90/p99/max without keeping the values.
//
// A logarithmic histogram, as DDSketch (Masson et al., VLDB 2019) builds it: value v goes to
// bucket ceil(log_gamma(v)) with gamma = (1 + a) / (1 - a), and a bucket's estimate is within
// relative error a of every value in it; here a = 1%. Durations in nanoseconds from 1 ns to
// 2^53 ns (104 days) need about 1,840 buckets: one fixed Float64Array of ~15 KiB per sketch, the
// same for 10 values or 10 million. Adding is one log and one increment; a quantile walks the
// buckets (done about once a second, when the status is written). The maximum is kept exactly.

/** Relative accuracy of every estimate: within 1% of the true value at that rank. */
export const percentileRelativeError = 0.01;

const gamma = (1 + percentileRelativeError) / (1 - percentileRelativeError);
const logGamma = Math.log(gamma);
/** Bucket 0 holds values below 1 (sub-nanosecond: nothing measured is that short). */
const bucketCount = Math.ceil(Math.log(2 ** 53) / logGamma) + 2;

export class PercentileSketch {
  readonly #counts = new Float64Array(bucketCount);
  #count = 0;
  #max = 0;

  /** How many values were added. */
  get count(): number {
    return this.#count;
  }

  /** The largest value added, exactly; 0 when none. */
  get max(): number {
    return this.#max;
  }

  /** Adds one value (>= 0; NaN and negative values are refused: they would be a clock bug upstream). */
  add(value: number): void {
    if (!(value >= 0)) throw new RangeError(`a duration is a number >= 0, not ${value}`);
    const bucket = value < 1 ? 0 : Math.min(bucketCount - 1, Math.max(1, Math.ceil(Math.log(value) / logGamma)));
    this.#counts[bucket] = (this.#counts[bucket] ?? 0) + 1;
    this.#count++;
    if (value > this.#max) this.#max = value;
  }

  /**
   * The value at quantile `q` (0 to 1) by the nearest-rank method, within 1%; never above the
   * maximum. undefined when nothing was added.
   */
  quantile(q: number): number | undefined {
    if (!(q >= 0 && q <= 1)) throw new RangeError(`a quantile is between 0 and 1, not ${q}`);
    if (this.#count === 0) return undefined;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let bucket = 0; bucket < bucketCount; bucket++) {
      seen += this.#counts[bucket] ?? 0;
      if (seen >= rank) return Math.min(this.#max, bucketEstimate(bucket));
    }
    return this.#max;
  }
}

/** The value that represents bucket k: 2 gamma^k / (gamma + 1), within 1% of all of (gamma^(k-1), gamma^k]. */
function bucketEstimate(bucket: number): number {
  return bucket === 0 ? 0 : (2 * gamma ** bucket) / (gamma + 1);
}

// A token bucket: `qps` tokens a second, up to `burst` saved. take() resolves when a token is free,
// in arrival order, so a burst of callers is paced rather than refused.

export class TokenBucket {
  readonly #qps: number;
  readonly #burst: number;
  #tokens: number;
  #refilledAt = performance.now();
  #waiting: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(qps: number, burst: number) {
    if (!(qps > 0) || !(burst >= 1)) throw new RangeError(`TokenBucket needs qps > 0 and burst >= 1, got ${qps}/${burst}`);
    this.#qps = qps;
    this.#burst = burst;
    this.#tokens = burst;
  }

  take(): Promise<void> {
    this.#refill();
    if (this.#waiting.length === 0 && this.#tokens >= 1) {
      this.#tokens -= 1;
      return Promise.resolve();
    }
    const { promise, resolve } = Promise.withResolvers<undefined>();
    this.#waiting.push(() => resolve(undefined));
    this.#schedule();
    return promise;
  }

  #refill(): void {
    const now = performance.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#refilledAt) / 1000) * this.#qps);
    this.#refilledAt = now;
  }

  #schedule(): void {
    if (this.#timer !== undefined) return;
    const waitMs = Math.max(0, ((1 - this.#tokens) / this.#qps) * 1000);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#refill();
      while (this.#waiting.length > 0 && this.#tokens >= 1) {
        this.#tokens -= 1;
        this.#waiting.shift()?.();
      }
      if (this.#waiting.length > 0) this.#schedule();
    }, waitMs);
  }
}

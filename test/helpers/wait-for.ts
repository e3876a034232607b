// Polling for a condition with a timeout that says what was awaited and what the last look saw.
// Used by tests with and without a cluster; helpers/cluster.ts re-exports it.
import { inspect } from 'node:util';

export interface WaitForOptions {
  /** What is awaited, for the timeout's message: "Task x to be Running". */
  readonly description: string;
  /** @defaultValue 10 000 */
  readonly timeoutMs?: number;
  /** Pause between the end of one probe and the start of the next. @defaultValue 100 */
  readonly intervalMs?: number;
}

/**
 * One look at what is awaited: a value when it is there, undefined when not yet. Since "not yet" is
 * always undefined, a probe may pass what it saw instead to `observed` (a Task's status, say), so a
 * timeout can say what the last look found.
 */
export type Probe<T> = (observed: (seen: unknown) => void) => Promise<T | undefined> | T | undefined;

/**
 * Calls `probe` until it returns something other than undefined, and returns that. A probe that
 * throws counts as not yet (an apiserver may refuse a request for a moment); its error is kept.
 * On timeout, fails with the description and what the last probe returned, observed or threw.
 */
export async function waitFor<T>(probe: Probe<T>, options: WaitForOptions): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 100;
  const deadline = performance.now() + timeoutMs;
  let lastOutcome = 'the probe never ran';
  for (;;) {
    let seen: { readonly value: unknown } | undefined;
    try {
      const value = await probe((value) => (seen = { value }));
      if (value !== undefined) return value;
      lastOutcome = seen === undefined ? 'the last probe returned undefined' : `the last probe saw ${describeValue(seen.value)}`;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      lastOutcome = `the last probe threw: ${message}`;
    }
    if (performance.now() + intervalMs > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.description}; ${lastOutcome}`);
}

function describeValue(value: unknown): string {
  const text = inspect(value, { depth: 8, breakLength: Infinity });
  return text.length > 2000 ? `${text.slice(0, 2000)}...` : text;
}

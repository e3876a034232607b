// Which attempt endings are retried and after how long (src/tasks/retry-policy.ts), as Jobs do:
// up to backoffLimit retries, exponential backoff from backoff.initialSeconds capped at
// backoff.maxSeconds, and never a retry for an ending another attempt cannot change.
import { describe, expect, it } from 'vitest';

import type { TaskReason, TaskSpec } from '../../src/api/task.js';
import { defaultBackoffInitialSeconds, defaultBackoffMaxSeconds, mayRetry, retryDelaySeconds } from '../../src/tasks/retry-policy.js';

function spec(fields: Partial<TaskSpec> = {}): TaskSpec {
  return { command: ['work'], ...fields };
}

describe('mayRetry', () => {
  it('allows no retry when backoffLimit is unset', () => {
    expect(mayRetry(spec(), 'Error', 1)).toBe(false);
  });

  it('allows backoffLimit retries: attempt backoffLimit may be followed, attempt backoffLimit + 1 may not', () => {
    expect(mayRetry(spec({ backoffLimit: 2 }), 'Error', 1)).toBe(true);
    expect(mayRetry(spec({ backoffLimit: 2 }), 'Error', 2)).toBe(true);
    expect(mayRetry(spec({ backoffLimit: 2 }), 'Error', 3)).toBe(false);
  });

  for (const reason of ['ExecFailed', 'InvalidSpec', 'Cancelled', 'DeadlineExceeded', 'Completed'] satisfies TaskReason[]) {
    it(`never retries an attempt that ended as ${reason}, whatever backoffLimit says`, () => {
      expect(mayRetry(spec({ backoffLimit: 10 }), reason, 1)).toBe(false);
    });
  }

  for (const reason of ['Error', 'Killed', 'OOMKilled', 'SpawnFailed', 'AgentRestarted', 'SandboxUnavailable'] satisfies TaskReason[]) {
    it(`retries an attempt that ended as ${reason} while backoffLimit allows`, () => {
      expect(mayRetry(spec({ backoffLimit: 1 }), reason, 1)).toBe(true);
    });
  }
});

describe('retryDelaySeconds', () => {
  it('waits backoff.initialSeconds after the first failure and doubles it after each one more', () => {
    const backoff = spec({ backoff: { initialSeconds: 3, maxSeconds: 1000 } });
    expect([1, 2, 3, 4].map((failures) => retryDelaySeconds(backoff, failures))).toEqual([3, 6, 12, 24]);
  });

  it('never waits longer than backoff.maxSeconds', () => {
    expect(retryDelaySeconds(spec({ backoff: { initialSeconds: 10, maxSeconds: 25 } }), 3)).toBe(25);
    expect(retryDelaySeconds(spec({ backoff: { initialSeconds: 10, maxSeconds: 25 } }), 60)).toBe(25);
  });

  it('defaults to 10 s doubling up to 6 min, as Jobs do', () => {
    expect(defaultBackoffInitialSeconds).toBe(10);
    expect(defaultBackoffMaxSeconds).toBe(360);
    expect([1, 2, 3, 6, 7].map((failures) => retryDelaySeconds(spec(), failures))).toEqual([10, 20, 40, 320, 360]);
  });

  it('takes a count below one as the first failure', () => {
    expect(retryDelaySeconds(spec(), 0)).toBe(10);
  });

  it('waits not at all with backoff.initialSeconds 0', () => {
    expect(retryDelaySeconds(spec({ backoff: { initialSeconds: 0 } }), 5)).toBe(0);
  });
});

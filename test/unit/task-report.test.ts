// What `parafork run` prints: a row per Task while they fit on a screen, past that a summary (counts
// by phase and reason, the failed Tasks with their message and stderr, the slowest) that -o wide
// replaces with every row; a progress line counting pending, running, retrying, succeeded and failed
// Tasks with the rate; and a line of totals. Pure functions of the Tasks: no process runs here.
import { describe, expect, it } from 'vitest';

import type { Task, TaskStatus } from '../../src/api/task.js';
import type { RunProgress } from '../../src/standalone/run-tasks.js';
import { formatDuration } from '../../src/tasks/time-format.js';
import { countTasks, formatTasks, progressLine, summaryLine, tableRowLimit } from '../../src/standalone/task-report.js';

const started = Date.parse('2026-12-06T12:00:00Z');

function task(name: string, status?: TaskStatus, namespace = 'default'): Task {
  return { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name, namespace }, spec: { command: ['/bin/true'] }, ...(status ? { status } : {}) };
}

/** A Task that ran for `milliseconds`, with the times and duration the reconciler records. */
function finished(name: string, milliseconds: number, status: Partial<TaskStatus> = {}): Task {
  return task(name, {
    phase: 'Succeeded',
    reason: 'Completed',
    exitCode: 0,
    attempts: 1,
    startTime: new Date(started).toISOString(),
    completionTime: new Date(started + milliseconds).toISOString(),
    duration: formatDuration(milliseconds),
    ...status,
  });
}

/** 1,000 Tasks as a burst ends: 987 succeeded, 10 exited 1 with stderr, 3 ran out of retries. */
function burstOfAThousand(): Task[] {
  return Array.from({ length: 1000 }, (_, index) => {
    const name = `burst-${String(index).padStart(4, '0')}`;
    const milliseconds = 2 + ((index * 7919) % 97);
    if (index % 100 === 42) {
      return finished(name, milliseconds, { phase: 'Failed', reason: 'Error', exitCode: 1, message: 'exited with code 1', stderrTail: `reading input ${index}\nerror: input ${index} is empty\n` });
    }
    if (index === 999 || index === 500 || index === 7) {
      return finished(name, 6087, { phase: 'Failed', reason: 'BackoffLimitExceeded', exitCode: 3, attempts: 3, message: 'exited with code 3 on attempt 3 of 3', stderrTail: 'cannot open /data/input.csv: no such file\n' });
    }
    return finished(name, milliseconds);
  });
}

function progress(tasks: readonly Task[], elapsedMs = 4400, held = 0): RunProgress {
  const counts = countTasks(tasks);
  return { total: counts.total, running: counts.running, succeeded: counts.succeeded, failed: counts.failed, held, elapsedMs, spawnP99Ms: 1.2, tasks };
}

describe('the table at the end of parafork run', () => {
  it('summarises 1,000 Tasks: counts by phase and reason, the first failed with message and stderr, the slowest', () => {
    const output = formatTasks(burstOfAThousand(), 'table');
    expect(output.split('\n').length).toBeLessThan(60);
    expect(output).toMatchSnapshot();
  });

  it('lists every Task, a row each, with -o wide', () => {
    const tasks = burstOfAThousand();
    const rows = formatTasks(tasks, 'wide')
      .split('\n')
      .filter((line) => /^burst-\d{4}\s/.test(line));
    expect(rows).toHaveLength(1000);
  });

  it(`lists every Task when there are ${tableRowLimit} or fewer, a failed one with its message and stderr tail beneath`, () => {
    const tasks = [finished('ok', 3), finished('broken', 5, { phase: 'Failed', reason: 'Error', exitCode: 4, message: 'exited with code 4', stderrTail: 'first\nsecond\nthird\n' })];
    expect(formatTasks(tasks, 'table')).toBe(
      [
        'NAME     PHASE       EXIT   ATTEMPTS   DURATION   REASON      MESSAGE',
        'ok       Succeeded   0      1          3ms        Completed',
        'broken   Failed      4      1          5ms        Error       exited with code 4',
        '    stderr: second',
        '    stderr: third',
        '',
      ].join('\n'),
    );
  });

  it('shows NAMESPACE only when the Tasks are in more than one', () => {
    expect(formatTasks([finished('a', 1), finished('b', 1)], 'table')).not.toContain('NAMESPACE');
    const twoNamespaces = [finished('a', 1), task('b', undefined, 'batch')];
    expect(formatTasks(twoNamespaces, 'table')).toMatch(/^NAMESPACE\s+NAME\s+PHASE/);
    expect(formatTasks(twoNamespaces, 'table')).toMatch(/\nbatch\s+b\s+Pending/);
  });

  it('keeps control characters from a Task stderr away from the terminal', () => {
    const hostile = finished('hostile', 1, { phase: 'Failed', reason: 'Error', exitCode: 1, message: 'exited with code 1', stderrTail: 'clear\u001b[2J\u001b]0;title\u0007 done\n' });
    expect(formatTasks([hostile], 'table').replaceAll('\n', '')).toMatch(/^\P{Cc}*$/u); // no control character
  });

  it('shows a Task s result beneath its row on one line, saying when it was cut, and keeps its control characters away too', () => {
    const output = formatTasks([finished('counted', 1, { result: '{"rows":42}\n' }), finished('long', 1, { result: 'x\u001b[2Jy', resultTruncated: true })], 'table');
    expect(output).toContain('    result: {"rows":42}\n');
    expect(output).toContain('    result: x [2Jy (truncated)\n');
    expect(output.replaceAll('\n', '')).toMatch(/^\P{Cc}*$/u);
  });
});

describe('a failed Task\'s message in the table', () => {
  it('is shown whole beneath the row, wrapped, when the MESSAGE column cuts it', () => {
    const long = `spec.resources.limits.memory must be a Kubernetes quantity (a number with an optional suffix: m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei, or an exponent such as e3), got "64MB"`;
    const lines = formatTasks([task('limits', { phase: 'Failed', reason: 'InvalidSpec', message: long, attempts: 0 })], 'table').trimEnd().split('\n');
    expect(lines[1]).toContain('…');
    expect(lines.slice(2).map((line) => line.replace(/^ {4}(message: | {9})/, '')).join(' ')).toBe(long);
    for (const line of lines.slice(2)) expect(line.length).toBeLessThanOrEqual(4 + 9 + 120);
  });

  it('is not repeated beneath the row when it fits', () => {
    const lines = formatTasks([task('short', { phase: 'Failed', reason: 'Error', message: 'exited with code 2', exitCode: 2, attempts: 1 })], 'table').trimEnd().split('\n');
    expect(lines).toHaveLength(2);
  });
});

describe('the progress line and the totals', () => {
  const inFlight = [
    task('waiting'),
    task('claimed', { phase: 'Pending' }),
    task('backing-off', { phase: 'Pending', attempts: 1, nextRetryTime: '2026-12-06T12:00:10Z' }),
    task('running', { phase: 'Running', attempts: 1 }),
    finished('done', 3),
    finished('broken', 3, { phase: 'Failed', reason: 'Error', exitCode: 1 }),
  ];

  it('counts pending, running, retrying, succeeded and failed Tasks, with the rate', () => {
    expect(progressLine(progress(inFlight, 2000))).toBe('2/6 done: 2 pending, 1 running, 1 retrying, 1 succeeded, 1 failed | 1.0 Tasks/s | spawn p99 1.20 ms | 2.0 s');
  });

  it('ends with a line of totals, naming Tasks that did not finish', () => {
    expect(summaryLine(progress(burstOfAThousand()))).toBe('1000 Tasks in 4.4 s: 987 succeeded, 13 failed | 227 Tasks/s | spawn p99 1.20 ms');
    expect(summaryLine(progress(inFlight, 2000))).toBe('6 Tasks in 2.0 s: 1 succeeded, 1 failed, 4 not finished | 1.0 Tasks/s | spawn p99 1.20 ms');
  });

  it('counts Tasks bound to another node apart: held, not pending, and not "not finished"', () => {
    const heldTask = task('elsewhere', { phase: 'Pending', reason: 'WaitingForAgent' });
    const done = task('done', { phase: 'Succeeded', reason: 'Completed' });
    expect(progressLine(progress([heldTask, done], 1000, 1))).toBe('1/2 done: 0 pending, 1 held for another node, 0 running, 0 retrying, 1 succeeded, 0 failed | 1.0 Tasks/s | spawn p99 1.20 ms | 1.0 s');
    expect(summaryLine(progress([heldTask, done], 1000, 1))).toBe('2 Tasks in 1.0 s: 1 succeeded, 0 failed, 1 held for another node | 1.0 Tasks/s | spawn p99 1.20 ms');
  });

  it('with an array among them, counts processes (its indexes) and says how many Tasks they are, not "1000 Tasks" for one array', () => {
    const array: Task = { ...task('array', { phase: 'Succeeded', reason: 'Completed', succeeded: 1000 }), spec: { command: ['/bin/true'], completions: 1000 } };
    expect(summaryLine(progress([array], 2000))).toBe('1 Task, 1000 processes in 2.0 s: 1000 succeeded, 0 failed | 500 processes/s | spawn p99 1.20 ms');
    expect(summaryLine(progress([array, finished('done', 3)], 2000))).toBe('2 Tasks, 1001 processes in 2.0 s: 1001 succeeded, 0 failed | 500 processes/s | spawn p99 1.20 ms');
    expect(progressLine(progress([array], 2000))).toBe('1000/1000 done: 0 pending, 0 running, 0 retrying, 1000 succeeded, 0 failed | 500 processes/s | spawn p99 1.20 ms | 2.0 s');
  });
});

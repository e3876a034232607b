// Task arrays' API (issue 17) as a real kube-apiserver serves it: the array fields accepted, the
// rules between them refused with the field named, completions frozen, the status of a 100,000-
// index array accepted and shown in the COMPLETIONS column, and `kubectl explain` teaching it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { taskApiVersion, taskKind, type TaskStatus } from '../../src/api/task.js';
import { ArrayProgress } from '../../src/tasks/array-progress.js';
import { createTestNamespace, getTask, kubectl, kubectlResult, waitFor, type KubectlResult, type TestNamespace } from '../helpers/cluster.js';

let namespace: TestNamespace;

beforeAll(async () => {
  namespace = await createTestNamespace('task-array-crd');
});

afterAll(async () => {
  await namespace.cleanup();
});

function applyTask(name: string, spec: object): Promise<KubectlResult> {
  return kubectlResult(['apply', '--namespace', namespace.name, '--filename', '-'], {
    input: JSON.stringify({ apiVersion: taskApiVersion, kind: taskKind, metadata: { name }, spec }),
  });
}

describe('an array Task', () => {
  it('is stored with its array fields', async () => {
    const result = await applyTask('array', { command: ['/bin/true'], completions: 1000, parallelism: 50, backoffLimitPerIndex: 2, maxFailedIndexes: 10 });
    expect(result.status, result.stderr).toBe(0);
    expect((await getTask(namespace.name, 'array')).spec).toMatchObject({ completions: 1000, parallelism: 50, backoffLimitPerIndex: 2, maxFailedIndexes: 10 });
  });

  it.each([
    ['parallelism without completions', { parallelism: 5 }, 'spec.parallelism', 'allowed only with completions'],
    ['backoffLimitPerIndex without completions', { backoffLimitPerIndex: 1 }, 'spec.backoffLimitPerIndex', 'allowed only with completions'],
    ['maxFailedIndexes without backoffLimitPerIndex', { completions: 5, maxFailedIndexes: 1 }, 'spec.maxFailedIndexes', 'allowed only with backoffLimitPerIndex'],
    ['maxFailedIndexes above completions', { completions: 5, backoffLimitPerIndex: 0, maxFailedIndexes: 6 }, 'spec.maxFailedIndexes', 'cannot be more than completions'],
    ['completions above 100,000', { completions: 100_001 }, 'spec.completions', 'less than or equal to 100000'],
    ['completions of 0', { completions: 0 }, 'spec.completions', 'greater than or equal to 1'],
    ['indexPlacement without completions', { indexPlacement: 'AcrossNodes' }, 'spec.indexPlacement', 'allowed only with completions'],
    ['indexPlacement AcrossNodes and a nodeName', { completions: 5, indexPlacement: 'AcrossNodes', nodeName: 'node1' }, 'spec.indexPlacement', 'nodeName cannot be set'],
    ['an indexPlacement it does not know', { completions: 5, indexPlacement: 'Everywhere' }, 'spec.indexPlacement', 'supported values'],
  ])('is refused with %s, naming the field', async (_, fields, field, why) => {
    const result = await applyTask('refused', { command: ['/bin/true'], ...fields });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(field);
    expect(result.stderr).toContain(why);
  });

  it('cannot change completions, or become an array, after creation; parallelism can change', async () => {
    expect((await applyTask('frozen', { command: ['/bin/true'], completions: 10 })).status).toBe(0);
    const changed = await applyTask('frozen', { command: ['/bin/true'], completions: 11 });
    expect(changed.stderr).toContain('completions cannot be changed after the Task is created');
    expect((await applyTask('frozen', { command: ['/bin/true'], completions: 10, parallelism: 3 })).status).toBe(0);

    expect((await applyTask('single', { command: ['/bin/true'] })).status).toBe(0);
    const made = await applyTask('single', { command: ['/bin/true'], completions: 10 });
    expect(made.stderr).toContain('completions cannot be changed after the Task is created');
  });

  it('cannot change indexPlacement after creation', async () => {
    expect((await applyTask('placed', { command: ['/bin/true'], completions: 10, indexPlacement: 'AcrossNodes' })).status).toBe(0);
    const moved = await applyTask('placed', { command: ['/bin/true'], completions: 10, indexPlacement: 'SingleNode' });
    expect(moved.stderr).toContain('indexPlacement cannot be changed after the Task is created');
  });
});

describe('the status of a 100,000-index array', () => {
  it('is accepted by the apiserver, under 32 KiB, and shows as COMPLETIONS in kubectl get', async () => {
    expect((await applyTask('big', { command: ['/bin/true'], completions: 100_000, nodeName: 'node-big', backoffLimitPerIndex: 0 })).status).toBe(0);
    const progress = new ArrayProgress({ policy: { completions: 100_000, backoffLimitPerIndex: 0, backoffLimit: 0, maxFailedIndexes: undefined }, retryDelayMs: () => 1_000 });
    for (let next = progress.startNext(0); next !== undefined && next.index < 73_100; next = progress.startNext(0)) {
      progress.started(next.index, 700_000);
      if (next.index % 997 === 3) progress.failed(next.index, { reason: 'Error', retryable: true, message: 'exited with code 1', exitCode: 1, stderrTail: 'x'.repeat(600), finishedAt: 0 });
      else if (next.index < 73_100 - 100) progress.succeeded(next.index, 2_000_000);
    }
    const status: TaskStatus = { phase: 'Running', ...progress.snapshot() };
    expect(Buffer.byteLength(JSON.stringify(status))).toBeLessThan(32 * 1024);

    await kubectl(['patch', 'task', 'big', '--namespace', namespace.name, '--subresource', 'status', '--type', 'merge', '--patch', JSON.stringify({ status })]);

    const stored = (await getTask(namespace.name, 'big')).status;
    expect(stored?.completedIndexes).toBe(status.completedIndexes);
    const table = await kubectl(['get', 'ptask', 'big', '--namespace', namespace.name, '--no-headers']);
    expect(table).toContain(`${status.succeeded}/100000`);
  });

  it('is accepted at its worst: every other index failed, all 100,000 written singly', async () => {
    expect((await applyTask('worst', { command: ['/bin/true'], completions: 100_000, nodeName: 'node-worst' })).status).toBe(0);
    const evens = Array.from({ length: 50_000 }, (_, position) => position * 2).join(',');
    const odds = Array.from({ length: 50_000 }, (_, position) => position * 2 + 1).join(',');
    const status = { phase: 'Failed', completedIndexes: evens, failedIndexes: odds, succeeded: 50_000, failed: 50_000, progress: '50000/100000' };
    // ~590 KB: too long for an argument, so kubectl reads it from a file.
    const directory = mkdtempSync(path.join(os.tmpdir(), 'parafork-array-status-'));
    try {
      const patchFile = path.join(directory, 'status.json');
      writeFileSync(patchFile, JSON.stringify({ status }));
      const result = await kubectlResult(['patch', 'task', 'worst', '--namespace', namespace.name, '--subresource', 'status', '--type', 'merge', '--patch-file', patchFile]);
      expect(result.status, result.stderr).toBe(0);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
    expect((await getTask(namespace.name, 'worst')).status?.failedIndexes?.length).toBe(odds.length);
  });
});

describe('kubectl explain', () => {
  it('teaches spec.completions and the variables an index gets', async () => {
    const output = await waitFor(
      async (observed) => {
        const result = await kubectlResult(['explain', 'task.spec.completions']);
        observed(result);
        return result.status === 0 ? result.stdout : undefined;
      },
      { description: '`kubectl explain task.spec.completions` to succeed', timeoutMs: 30_000, intervalMs: 250 },
    );
    const text = output.replace(/\s+/g, ' ');
    expect(text).toContain('PARAFORK_TASK_INDEX');
    expect(text).toContain('JOB_COMPLETION_INDEX');
    expect(text).toContain('PARAFORK_TASK_COUNT');
    expect(text).toContain('suspend pauses an array');
  });
});

// What the multi-agent protocol for Task arrays (docs/arrays.md, src/tasks/array-partitions.ts)
// assumes of a real apiserver's server-side apply on status.partitions, checked before anything is
// built on it: of two agents claiming the same range at once exactly one wins; each agent's apply
// of its own entry leaves the other agents' entries alone; a takeover (apply with force) moves the
// range, and the old holder's next renew is refused, so it learns it lost the range.
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { taskApiVersion, taskKind, type Task, type TaskIndexPartition } from '../../src/api/task.js';
import { ApiClient, ApiError } from '../../src/k8s/api-client.js';
import { taskStatusPath } from '../../src/k8s/task-resources.js';
import { fieldManagerFor, partitionApplyBody } from '../../src/tasks/array-partitions.js';
import { createTestNamespace, getTask, type TestNamespace } from '../helpers/cluster.js';

let namespace: TestNamespace;
let client: ApiClient;

beforeAll(async () => {
  namespace = await createTestNamespace('array-ssa');
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(inject('kubeconfigPath'));
  client = new ApiClient({ kubeConfig, qps: 1_000, burst: 1_000, userAgent: 'parafork-test', maxAttempts: 1 });
});

afterAll(async () => {
  await namespace.cleanup();
});

const task = (name: string): Pick<Task, 'apiVersion' | 'kind' | 'metadata'> => ({ apiVersion: taskApiVersion, kind: taskKind, metadata: { name, namespace: namespace.name } });

function entry(start: number, nodeName: string, renewTime: string, fields: Partial<TaskIndexPartition> = {}): TaskIndexPartition {
  return { start, end: start + 100, nodeName, launchedThrough: start, renewTime, ...fields };
}

/** Server-side apply of all of one agent's entries, as that agent's field manager; the HTTP status it got. */
async function applyEntries(name: string, entries: readonly TaskIndexPartition[], force = false): Promise<number> {
  try {
    await client.request({
      method: 'PATCH',
      path: taskStatusPath(namespace.name, name),
      body: partitionApplyBody(task(name), entries),
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager: fieldManagerFor(entries[0]?.nodeName ?? ''), ...(force ? { force: true } : {}) },
    });
    return 200;
  } catch (error) {
    if (error instanceof ApiError) return error.status;
    throw error;
  }
}

/** An unbound array Task (no spec.nodeName): the kind several agents share. */
async function createArray(name: string): Promise<void> {
  await client.request({ method: 'POST', path: `/apis/parafork.dev/v1alpha1/namespaces/${namespace.name}/tasks`, body: { ...task(name), spec: { command: ['/bin/true'], completions: 1000 } } });
}

async function partitionsOf(name: string): Promise<readonly TaskIndexPartition[]> {
  return (await getTask(namespace.name, name)).status?.partitions ?? [];
}

describe('server-side apply on status.partitions', () => {
  it('lets exactly one of two agents claiming the same range at once have it; the other gets 409 Conflict', async () => {
    await createArray('race');
    const held = new Map<string, TaskIndexPartition[]>([['node-a', []], ['node-b', []]]);
    for (let round = 0; round < 10; round++) {
      const start = round * 100;
      const claims = (['node-a', 'node-b'] as const).map((node, position) => entry(start, node, `2026-01-01T00:00:0${round}.${position}Z`));
      const results = await Promise.all(claims.map((claim) => applyEntries('race', [...(held.get(claim.nodeName) ?? []), claim])));
      expect([...results].sort()).toEqual([200, 409]);
      const winner = claims[results.indexOf(200)];
      if (winner !== undefined) held.get(winner.nodeName)?.push(winner);
    }
    const partitions = await partitionsOf('race');
    expect(partitions).toHaveLength(10);
    for (const partition of partitions) expect(held.get(partition.nodeName)?.map((claim) => claim.start)).toContain(partition.start);
  });

  it('removes an entry its holder stops sending: an agent applies all its entries every time', async () => {
    await createArray('dropped');
    expect(await applyEntries('dropped', [entry(0, 'node-a', '2026-01-01T00:00:00Z'), entry(100, 'node-a', '2026-01-01T00:00:00Z')])).toBe(200);
    expect(await applyEntries('dropped', [entry(100, 'node-a', '2026-01-01T00:00:10Z')])).toBe(200);
    expect((await partitionsOf('dropped')).map((partition) => partition.start)).toEqual([100]);
  });

  it('keeps every agent\'s entries when each applies only its own', async () => {
    await createArray('shared');
    expect(await applyEntries('shared', [entry(0, 'node-a', '2026-01-01T00:00:00Z')])).toBe(200);
    expect(await applyEntries('shared', [entry(100, 'node-b', '2026-01-01T00:00:00Z')])).toBe(200);
    // node-a renews its entry with progress; node-b's stays as it was.
    expect(await applyEntries('shared', [entry(0, 'node-a', '2026-01-01T00:00:10Z', { launchedThrough: 60, succeeded: 50, completedIndexes: '0-49' })])).toBe(200);
    const partitions = await partitionsOf('shared');
    expect(partitions.map((partition) => [partition.start, partition.nodeName, partition.launchedThrough])).toEqual([[0, 'node-a', 60], [100, 'node-b', 100]]);
  });

  it('moves a range on a forced takeover, and refuses the old holder\'s next renew', async () => {
    await createArray('takeover');
    expect(await applyEntries('takeover', [entry(0, 'node-a', '2026-01-01T00:00:00Z', { launchedThrough: 80, succeeded: 70, completedIndexes: '0-69' })])).toBe(200);
    // node-b saw no renew for the lease duration: it takes the range over, keeping the fence and progress.
    expect(await applyEntries('takeover', [entry(0, 'node-b', '2026-01-01T00:01:00Z', { launchedThrough: 80, succeeded: 70, completedIndexes: '0-69' })], true)).toBe(200);
    expect((await partitionsOf('takeover'))[0]).toMatchObject({ nodeName: 'node-b', launchedThrough: 80 });
    // node-a was only cut off, not dead: its renew conflicts, so it stops.
    expect(await applyEntries('takeover', [entry(0, 'node-a', '2026-01-01T00:01:05Z', { launchedThrough: 90, succeeded: 75, completedIndexes: '0-74' })])).toBe(409);
    expect((await partitionsOf('takeover'))[0]).toMatchObject({ nodeName: 'node-b', launchedThrough: 80 });
  });
});

// Task arrays and the sandbox policy (issues 14 and 17): an array asking more than its namespace's
// level is refused as a single Task is (Failed, Forbidden, before any index is spawned); it must
// not be a way around the policy. Hostile input: network "host" under level restricted.
import { describe, expect, it } from 'vitest';

import type { Task, TaskStatus } from '../../src/api/task.js';
import type { SpawnOptions } from '../../src/launcher/spawn-options.js';
import type { SandboxPolicy } from '../../src/sandbox/sandbox-policy.js';
import { oneTaskReconciler, statusRecordingWriter } from '../helpers/reconciler-harness.js';

const key = 'team/array';

function arrayHarness(policy: SandboxPolicy) {
  const task: Task = { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: 'array', namespace: 'team', uid: 'uid-1', generation: 1 }, spec: { nodeName: 'node', command: ['work'], completions: 10, sandbox: { network: 'host' } } };
  const cache = new Map<string, Task>([[key, task]]);
  const statuses: TaskStatus[] = [];
  const spawned: SpawnOptions[] = [];
  const forbidden: string[] = [];
  const { reconciler, settle } = oneTaskReconciler(key, cache, {
    writer: statusRecordingWriter(key, cache, statuses),
    launcher: {
      spawn: (options) => {
        spawned.push(options);
        return Promise.reject(new Error('spawns are only counted here'));
      },
    },
    observer: { taskForbidden: ({ field }) => void forbidden.push(field) },
    sandboxPolicy: { policyFor: () => policy, confirmedPolicyFor: () => Promise.resolve(policy) },
  });
  return { reconciler, settle, statuses, spawned, forbidden };
}

describe('an array Task and its namespace\'s sandbox policy level', () => {
  it('starts its indexes when the level allows what it asks', async () => {
    const { reconciler, settle, spawned } = arrayHarness({ level: 'privileged', allowedHostPaths: [] });
    await reconciler.reconcile(key);
    await settle();
    expect(spawned.length).toBeGreaterThan(0);
  });

  it('fails as Forbidden before any index is spawned when it asks more, counted and told as for a single Task', async () => {
    const { reconciler, settle, statuses, spawned, forbidden } = arrayHarness({ level: 'restricted', allowedHostPaths: [] });
    await reconciler.reconcile(key);
    await settle();
    expect(spawned).toHaveLength(0);
    expect(statuses.at(-1)).toMatchObject({ phase: 'Failed', reason: 'Forbidden' });
    expect(forbidden).toEqual(['spec.sandbox.network']);
  });
});

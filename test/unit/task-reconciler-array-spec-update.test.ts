// Red team: an array is checked against its namespace's sandbox policy once, before its first
// index (task-reconciler.ts), and its indexes run with the sandbox that check made. The host ids
// the node leases each index were read from the Task as it is at the launch instead: a spec whose
// sandbox changed after the check ran its later indexes as the new runAsUser, 0 (root's) too. The
// CRD makes spec.sandbox immutable and `agent --manifests` makes an edited manifest a new Task
// (new uid), so no path reaches it today; the agent's check is the last line, and must not hang on
// either. Hostile input: runAsUser 0 and runAsGroup 0 patched in after the check, level restricted.
import { describe, expect, it } from 'vitest';

import type { Task, TaskStatus } from '../../src/api/task.js';
import type { SpawnOptions } from '../../src/launcher/spawn-options.js';
import type { TaskIdentityRequest, TaskIdentitySource } from '../../src/sandbox/task-identities.js';
import { oneTaskReconciler, statusRecordingWriter } from '../helpers/reconciler-harness.js';

const key = 'team/array';
const leasedId = 200_000;

/** Ids as TaskIdentities gives them: the spec's when it names them, else one of the Task's own. */
const identities: TaskIdentitySource = {
  lease: (request: TaskIdentityRequest) => {
    const runAsUser = request.runAsUser ?? leasedId;
    const runAsGroup = request.runAsGroup ?? leasedId;
    return { runAsUser, runAsGroup, userNamespaceHostId: undefined, hostUid: runAsUser, hostGid: runAsGroup, ownUid: request.runAsUser === undefined, release: () => undefined };
  },
};

describe('an array whose spec.sandbox is edited after the sandbox policy checked it', () => {
  it('runs every later index with the host ids of the checked spec, not root\'s', async () => {
    const task: Task = { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: 'array', namespace: 'team', uid: 'uid-1', generation: 1 }, spec: { nodeName: 'node', command: ['work'], completions: 3, parallelism: 1, backoffLimitPerIndex: 0, sandbox: {} } };
    const cache = new Map<string, Task>([[key, task]]);
    const statuses: TaskStatus[] = [];
    const spawned: SpawnOptions[] = [];
    const { reconciler, settle } = oneTaskReconciler(key, cache, {
      writer: statusRecordingWriter(key, cache, statuses),
      identities,
      launcher: {
        spawn: (options) => {
          spawned.push(options);
          if (spawned.length === 1) {
            // The attacker's patch lands while the first index runs.
            const current = cache.get(key) ?? task;
            cache.set(key, { ...current, metadata: { ...current.metadata, generation: 2 }, spec: { ...current.spec, sandbox: { runAsUser: 0, runAsGroup: 0 } } });
          }
          return Promise.reject(new Error('spawns are only counted here'));
        },
      },
      sandboxPolicy: { policyFor: () => ({ level: 'restricted', allowedHostPaths: [] }), confirmedPolicyFor: () => Promise.resolve({ level: 'restricted', allowedHostPaths: [] }) },
    });
    await reconciler.reconcile(key);
    await settle();
    await reconciler.reconcile(key);
    await settle();
    expect(spawned.length).toBeGreaterThan(1);
    for (const options of spawned) {
      expect(options.sandbox?.runAsUser).toBe(leasedId);
      expect(options.sandbox?.runAsGroup).toBe(leasedId);
    }
  });
});

// The reconciler and the sandbox policy (issue 14): a Task asking more than its namespace's level
// is refused before any spawn (Failed, Forbidden, an Event, the metric's hook), the refusal is
// confirmed against the namespace read afresh, the level is asked again at every attempt, and a
// host path that leads out of its allowed directory at the mount (openat2 EXDEV) is Forbidden too.
import { describe, expect, it } from 'vitest';

import type { Task, TaskSpec, TaskStatus } from '../../src/api/task.js';
import { SpawnError } from '../../src/launcher/spawn-error.js';
import type { SpawnOptions } from '../../src/launcher/spawn-options.js';
import { SpawnedProcess, type ExitResult } from '../../src/launcher/spawned-process.js';
import type { SandboxPolicy, SandboxPolicyLevel } from '../../src/sandbox/sandbox-policy.js';
import type { SandboxPolicySource } from '../../src/sandbox/sandbox-policy-source.js';
import { oneTaskReconciler, statusRecordingWriter } from '../helpers/reconciler-harness.js';

const key = 'team/task';

function makeTask(spec: Partial<TaskSpec>): Task {
  return { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: 'task', namespace: 'team', uid: 'uid-1', generation: 1 }, spec: { nodeName: 'node', command: ['work'], ...spec } };
}

/** A source whose cached and fresh levels the test sets, counting how often each is asked. */
class Levels implements SandboxPolicySource {
  cached: SandboxPolicyLevel = 'restricted';
  fresh: SandboxPolicyLevel = 'restricted';
  asked = { cached: 0, fresh: 0 };

  policyFor(): SandboxPolicy {
    this.asked.cached++;
    return { level: this.cached, allowedHostPaths: [] };
  }

  confirmedPolicyFor(): Promise<SandboxPolicy> {
    this.asked.fresh++;
    return Promise.resolve({ level: this.fresh, allowedHostPaths: [] });
  }
}

function harness(spec: Partial<TaskSpec>, levels: SandboxPolicySource, spawnError?: Error) {
  const cache = new Map<string, Task>([[key, makeTask(spec)]]);
  const statuses: TaskStatus[] = [];
  const events: { type: string; reason: string; note: string }[] = [];
  const forbidden: string[] = [];
  const spawned: SpawnOptions[] = [];
  const exit = Promise.withResolvers<ExitResult>();
  const { reconciler, settle } = oneTaskReconciler(key, cache, {
    writer: statusRecordingWriter(key, cache, statuses),
    launcher: {
      spawn: (options) => {
        spawned.push(options);
        if (spawnError) return Promise.reject(spawnError);
        return Promise.resolve(new SpawnedProcess({ pid: 7, timings: { queuedNs: 1, spawnNs: 1 }, stdout: null, stderr: null, exited: exit.promise, kill: () => true }));
      },
    },
    events: { record: (_subject, type, reason, note) => void events.push({ type, reason, note }) },
    observer: { taskForbidden: ({ field }) => void forbidden.push(field) },
    sandboxPolicy: levels,
    runningWriteDelayMs: 60_000,
  });
  const end = (code: number): void => exit.resolve({ code, signal: null, durationNs: 1, rusage: { userUs: 0, systemUs: 0, maxRssKb: 0 } });
  return { reconciler, settle, statuses, events, forbidden, spawned, end };
}

describe('a Task asking more than its sandbox policy level', () => {
  it('fails as Forbidden before any spawn, with a Warning Event and the field counted, never retried', async () => {
    const { reconciler, settle, statuses, events, forbidden, spawned } = harness({ sandbox: { network: 'host' }, backoffLimit: 3 }, new Levels());
    await reconciler.reconcile(key);
    await settle();
    expect(spawned).toHaveLength(0);
    expect(statuses.at(-1)).toMatchObject({ phase: 'Failed', reason: 'Forbidden', attempts: 0 });
    expect(statuses.at(-1)?.message).toBe('spec.sandbox.network "host" is not allowed at sandbox policy level restricted: it is the node\'s own network; it needs level privileged');
    expect(statuses.at(-1)?.nextRetryTime).toBeUndefined();
    expect(events).toEqual([{ type: 'Warning', reason: 'Forbidden', note: statuses.at(-1)?.message }]);
    expect(forbidden).toEqual(['spec.sandbox.network']);
  });

  it('is confirmed against the namespace read afresh: a level the cache does not show yet lets it run', async () => {
    const levels = new Levels();
    levels.fresh = 'privileged';
    const { reconciler, settle, statuses, spawned } = harness({ sandbox: { network: 'host' } }, levels);
    await reconciler.reconcile(key);
    await settle();
    expect(levels.asked).toEqual({ cached: 1, fresh: 1 });
    expect(spawned).toHaveLength(1);
    expect(statuses.some((status) => status.reason === 'Forbidden')).toBe(false);
  });

  it('reads no namespace afresh for a Task its cached level allows', async () => {
    const levels = new Levels();
    const { reconciler, settle, spawned } = harness({}, levels);
    await reconciler.reconcile(key);
    await settle();
    expect(spawned).toHaveLength(1);
    expect(levels.asked).toEqual({ cached: 1, fresh: 0 });
  });

  it('asks again at every attempt: a retry after the namespace was relabelled lower is Forbidden', async () => {
    const levels = new Levels();
    levels.cached = levels.fresh = 'privileged';
    const { reconciler, settle, statuses, spawned, end } = harness({ sandbox: { network: 'host' }, backoffLimit: 2, backoff: { initialSeconds: 1, maxSeconds: 1 } }, levels);
    await reconciler.reconcile(key);
    await settle();
    expect(spawned).toHaveLength(1);
    end(1);
    await settle();
    expect(statuses.at(-1)).toMatchObject({ phase: 'Pending', attempts: 1 });
    levels.cached = levels.fresh = 'restricted';
    // The retry is due after its one second of backoff.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await reconciler.reconcile(key);
    await settle();
    expect(spawned).toHaveLength(1);
    expect(statuses.at(-1)).toMatchObject({ phase: 'Failed', reason: 'Forbidden', attempts: 1 });
  });

  it('ends an attempt whose host path led out of its allowed directory at the mount (EXDEV in openat2) as Forbidden, never retried', async () => {
    const levels = new Levels();
    levels.cached = 'privileged';
    const error = new SpawnError({ errno: 18, syscall: 'openat2', step: 'filesystem', path: 'work', spawnargs: ['work'] });
    const { reconciler, settle, statuses } = harness({ backoffLimit: 3 }, levels, error);
    await reconciler.reconcile(key);
    await settle();
    expect(statuses.at(-1)).toMatchObject({ phase: 'Failed', reason: 'Forbidden', attempts: 1 });
    expect(statuses.at(-1)?.message).toContain('led out of the agent\'s allowed host paths');
  });
});

// The composition root (src/runtime/task-runtime.ts): what one buildTaskRuntime gives every entry
// point. It runs unsandboxed here, on Node's child_process launcher (no root, no cgroups: harmless
// `sh` payloads), over the standalone in-memory store, with a fake unbound cache for claims.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';

import type { Task, TaskSpec } from '../../src/api/task.js';
import { defaultTaskIds, parseTaskLimitPolicy, taskIdRange } from '../../src/config/agent-config.js';
import { MetricsRegistry } from '../../src/metrics/registry.js';
import { buildTaskRuntime, type TaskRuntimeSettings } from '../../src/runtime/task-runtime.js';
import { InMemoryTasks } from '../../src/standalone/in-memory-tasks.js';
import type { TaskCache } from '../../src/store/task-store.js';
import { waitFor } from '../helpers/wait-for.js';

const settings: TaskRuntimeSettings = {
  nodeName: 'node-a',
  maxConcurrent: 10,
  workers: 4,
  terminationGraceSeconds: 1,
  shutdownGraceSeconds: 30,
  cgroupParent: undefined,
  taskIds: taskIdRange('task-ids', defaultTaskIds),
  taskIdLockDirectory: '/nonexistent/ids',
  sandboxStagingDirectory: '/run/parafork/root',
  seccompProfileDirectory: '/nonexistent/seccomp',
  launcher: 'child_process',
  taskSandbox: false,
  taskLimits: parseTaskLimitPolicy({ 'default-memory': 'none', 'default-pids': 'none', 'default-cpu': 'none' }),
  sandboxMaskedPaths: [],
  sandboxPolicy: { level: 'restricted', allowedHostPaths: [] },
  taskLogMaxBytes: 10 * 2 ** 20,
  logsMaxBytesTotal: 2 * 2 ** 30,
};

function task(name: string, spec: Partial<TaskSpec>): Task {
  return { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name, namespace: 'ns' }, spec: { command: ['true'], ...spec } };
}

/** A runtime over an in-memory store holding `tasks`; `unbound`, when given, is the cache of Tasks to claim. */
function runtimeOver(tasks: Task[], options: { shutdownGraceSeconds?: number; unbound?: TaskCache; claims?: string[] } = {}) {
  const claims = options.claims ?? [];
  return buildTaskRuntime({
    settings: { ...settings, shutdownGraceSeconds: options.shutdownGraceSeconds ?? settings.shutdownGraceSeconds },
    logger: pino({ level: 'silent' }),
    metrics: new MetricsRegistry({ processMetrics: false }),
    connectStores: (changes) => {
      const store = new InMemoryTasks(tasks, settings.nodeName, changes.bound);
      const writer = {
        writeStatus: store.writeStatus.bind(store),
        addFinalizer: store.addFinalizer.bind(store),
        removeFinalizer: store.removeFinalizer.bind(store),
        deleteTask: store.deleteTask.bind(store),
        claim: (claimed: Task, nodeName: string) => {
          claims.push(`${claimed.metadata.name ?? ''} -> ${nodeName}`);
          return Promise.resolve(true);
        },
      };
      if (options.unbound) setImmediate(() => changes.unbound('ns/unbound'));
      return { tasks: store, unboundTasks: options.unbound, writer, events: { record: () => undefined } };
    },
  });
}

function phases(store: InMemoryTasks): Record<string, string | undefined> {
  return Object.fromEntries(store.list().map((listed) => [listed.metadata.name ?? '', `${listed.status?.phase ?? ''} ${listed.status?.reason ?? ''}`]));
}

describe('the task runtime', () => {
  it('runs the store\'s Tasks to their end through its reconciler and queue, and leaves one bound to another node Pending', async () => {
    const runtime = runtimeOver([task('ok', { command: ['sh', '-c', 'exit 0'] }), task('bad', { command: ['sh', '-c', 'exit 3'] }), task('elsewhere', { nodeName: 'node-b' })]);
    runtime.start();
    const ended = (name: string): boolean => /^(Succeeded|Failed)/.test(phases(runtime.stores.tasks)[name] ?? '');
    await waitFor(() => (ended('ok') && ended('bad')) || undefined, { timeoutMs: 10_000, description: 'ok and bad to end' });
    expect(phases(runtime.stores.tasks)).toEqual({ ok: 'Succeeded Completed', bad: 'Failed Error', elsewhere: 'Pending WaitingForAgent' });
    expect(runtime.stores.tasks.list().find((listed) => listed.metadata.name === 'elsewhere')?.status?.message).toMatch(/bound to node node-b by spec\.nodeName; this machine is node-a/);
    await runtime.shutDown();
  });

  it('hands a key for an unbound Task to the reconciler\'s claim, which binds it to this node', async () => {
    const claims: string[] = [];
    const unbound = task('unbound', {});
    const runtime = runtimeOver([], { unbound: { get: (key) => (key === 'ns/unbound' ? unbound : undefined) }, claims });
    runtime.start();
    await waitFor(() => claims.length > 0 || undefined, { timeoutMs: 5_000, description: 'a claim' });
    expect(claims).toEqual(['unbound -> node-a']);
    await runtime.shutDown();
  });

  it('stops at once when nothing runs, whatever the shutdown grace, and once only', async () => {
    const runtime = runtimeOver([task('quick', {})], { shutdownGraceSeconds: 30 });
    runtime.start();
    await waitFor(() => phases(runtime.stores.tasks).quick?.startsWith('Succeeded') || undefined, { timeoutMs: 10_000, description: 'quick to succeed' });
    const started = performance.now();
    const first = runtime.shutDown();
    expect(runtime.shutDown()).toBe(first);
    await first;
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('drains what runs: past the grace the process is killed, its ending recorded as AgentRestarted, then afterDrain runs', async () => {
    const runtime = runtimeOver([task('sleeper', { command: ['sleep', '30'] })], { shutdownGraceSeconds: 0 });
    runtime.start();
    await waitFor(() => runtime.reconciler.runningAttempts === 1 || undefined, { timeoutMs: 10_000, description: 'the sleeper to run' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const order: string[] = [];
    await runtime.shutDown(() => {
      order.push(`after drain: ${runtime.reconciler.runningAttempts} running`);
    });
    expect(order).toEqual(['after drain: 0 running']);
    expect(runtime.stores.tasks.list()[0]?.status).toMatchObject({ reason: 'AgentRestarted' });
  });
});

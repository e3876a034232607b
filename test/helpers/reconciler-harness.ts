// A TaskReconciler for unit tests on one Task key: the cache stands in for the informer, quiet
// fakes for events and logs, and a requeue that reconciles the key again (a one-key work queue).
import { pino } from 'pino';

import type { Task, TaskStatus } from '../../src/api/task.js';
import type { TaskWriter } from '../../src/store/task-store.js';
import { AttemptTable } from '../../src/tasks/attempts.js';
import { TaskReconciler, type TaskReconcilerOptions } from '../../src/tasks/task-reconciler.js';

export interface OneTaskReconciler {
  readonly reconciler: TaskReconciler;
  /** Waits until the reconciles asked for have run and nothing more is asked for. */
  readonly settle: () => Promise<void>;
}

export function oneTaskReconciler(key: string, cache: ReadonlyMap<string, Task>, options: Pick<TaskReconcilerOptions, 'writer' | 'launcher'> & Partial<TaskReconcilerOptions>): OneTaskReconciler {
  let pending: Promise<unknown> = Promise.resolve();
  const reconciler: TaskReconciler = new TaskReconciler({
    nodeName: 'node',
    tasks: { get: (name) => cache.get(name) },
    unboundTasks: { get: () => undefined },
    attempts: new AttemptTable(),
    events: { record: () => undefined },
    logger: pino({ level: 'silent' }),
    maxConcurrent: 10,
    terminationGraceMs: 1000,
    nodeLabels: () => ({}),
    requeue: () => {
      pending = pending.then(() => reconciler.reconcile(key));
    },
    ...options,
  });
  const settle = async (): Promise<void> => {
    for (let round = 0; round < 20; round++) {
      await pending;
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  return { reconciler, settle };
}

/** A writer that records each status into `statuses` and shows it in the cached Task, as the watch would; its other writes do nothing. */
export function statusRecordingWriter(key: string, cache: Map<string, Task>, statuses: TaskStatus[]): TaskWriter {
  return {
    writeStatus: (task, status) => {
      statuses.push(status);
      cache.set(key, { ...(cache.get(key) ?? task), status });
      return Promise.resolve();
    },
    addFinalizer: () => Promise.resolve(),
    removeFinalizer: () => Promise.resolve(),
    deleteTask: () => Promise.resolve(),
    claim: () => Promise.resolve(false),
  };
}

// The Task store of standalone mode: what the apiserver and the informer are to the agent. It
// holds the Tasks read from manifests (bound to this machine), applies the reconciler's writes at
// once, and reports each change as a key, as a watch would.
import { randomUUID } from 'node:crypto';

import type { Task, TaskStatus } from '../api/task.js';
import { processFinalizer, type TaskCache, type TaskWriter } from '../k8s/task-writer.js';
import { objectKey } from '../k8s/task-resources.js';

function withoutNodeSelector(spec: Task['spec']): Task['spec'] {
  return Object.fromEntries(Object.entries(spec).filter(([field]) => field !== 'nodeSelector')) as unknown as Task['spec'];
}

export class InMemoryTasks implements TaskCache, TaskWriter {
  readonly #tasks = new Map<string, Task>();
  readonly #onChange: (key: string) => void;
  #version = 0;

  constructor(tasks: readonly Task[], nodeName: string, onChange: (key: string) => void) {
    this.#onChange = onChange;
    const created = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    for (const task of tasks) {
      const key = objectKey(task.metadata.namespace ?? 'default', task.metadata.name ?? '');
      this.#tasks.set(key, {
        ...task,
        metadata: { ...task.metadata, uid: randomUUID(), generation: 1, creationTimestamp: created, resourceVersion: String(++this.#version) },
        // Every Task of a standalone run is this machine's: bound to it, whatever node it selects.
        spec: { ...withoutNodeSelector(task.spec), nodeName },
      });
    }
  }

  keys(): string[] {
    return [...this.#tasks.keys()];
  }

  list(): Task[] {
    return [...this.#tasks.values()];
  }

  get(key: string): Task | undefined {
    return this.#tasks.get(key);
  }

  writeStatus(task: Task, status: TaskStatus): Promise<void> {
    return this.#update(task, (stored) => ({ ...stored, status }));
  }

  addFinalizer(task: Task): Promise<void> {
    return this.#update(task, (stored) => ({ ...stored, metadata: { ...stored.metadata, finalizers: [...(stored.metadata.finalizers ?? []), processFinalizer] } }));
  }

  removeFinalizer(task: Task): Promise<void> {
    return this.#update(task, (stored) => ({ ...stored, metadata: { ...stored.metadata, finalizers: (stored.metadata.finalizers ?? []).filter((finalizer) => finalizer !== processFinalizer) } }));
  }

  /** A finished Task's TTL passed: kept all the same, for the run's report. */
  deleteTask(): Promise<void> {
    return Promise.resolve();
  }

  /** Nothing is unbound in a standalone run. */
  claim(): Promise<boolean> {
    return Promise.resolve(false);
  }

  #update(task: Task, change: (stored: Task) => Task): Promise<void> {
    const key = objectKey(task.metadata.namespace ?? 'default', task.metadata.name ?? '');
    const stored = this.#tasks.get(key);
    if (stored) {
      const updated = change(stored);
      this.#tasks.set(key, { ...updated, metadata: { ...updated.metadata, resourceVersion: String(++this.#version) } });
      // As a watch event would arrive: after the writer's caller has carried on.
      queueMicrotask(() => this.#onChange(key));
    }
    return Promise.resolve();
  }
}

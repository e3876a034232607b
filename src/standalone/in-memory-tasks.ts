// The Task store of standalone mode: what the apiserver and the informer are to the agent. It
// holds the Tasks read from manifests, applies the reconciler's writes at once, and reports each
// change as a key, as a watch would (the Tasks it starts with too, as an informer's first list).
// A Task that names no node is bound to this machine, whatever node it selects; one bound to
// another node by spec.nodeName is held Pending, out of the reconciler's sight, as the cluster's
// field selector keeps it from this node's agent. A watched manifest folder adds, replaces and
// deletes Tasks as its files change; a deleted Task stays until our finalizer is gone (its
// process stopped), as on the apiserver.
import { randomUUID } from 'node:crypto';

import type { Task, TaskStatus } from '../api/task.js';
import { processFinalizer, taskKeyOf, type TaskCache, type TaskWriter } from '../store/task-store.js';
import { boundElsewhereStatus, notTakenUpStatus } from '../tasks/task-status.js';

function withoutNodeSelector(spec: Task['spec']): Task['spec'] {
  return Object.fromEntries(Object.entries(spec).filter(([field]) => field !== 'nodeSelector')) as unknown as Task['spec'];
}

function taskKey(task: Task): string {
  return taskKeyOf(task, 'default');
}

/** RFC 3339 at whole seconds, as the apiserver writes timestamps. */
function wholeSecondsNow(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

export class InMemoryTasks implements TaskCache, TaskWriter {
  readonly #tasks = new Map<string, Task>();
  readonly #onChange: (key: string) => void;
  readonly #nodeName: string;
  #version = 0;

  constructor(tasks: readonly Task[], nodeName: string, onChange: (key: string) => void) {
    this.#onChange = onChange;
    this.#nodeName = nodeName;
    for (const task of tasks) this.put(task);
  }

  /** Whether this machine runs the Task: bound to it, not to another node. */
  runsHere(task: Task): boolean {
    return task.spec.nodeName === this.#nodeName;
  }

  /**
   * Adds a Task, or replaces one of the same name as a new object (a new uid: the reconciler ends
   * the old one's process and runs the new one), as deleting and re-creating it would.
   */
  put(task: Task): void {
    const key = taskKey(task);
    this.#tasks.set(key, this.#admit(task));
    queueMicrotask(() => this.#onChange(key));
  }

  /** Deletes a Task: at once when nothing holds it, else once our finalizer is removed. */
  delete(key: string): void {
    const stored = this.#tasks.get(key);
    if (!stored) return;
    if ((stored.metadata.finalizers ?? []).length === 0) this.#tasks.delete(key);
    else if (stored.metadata.deletionTimestamp === undefined) {
      this.#tasks.set(key, { ...stored, metadata: { ...stored.metadata, deletionTimestamp: wholeSecondsNow(), resourceVersion: String(++this.#version) } });
    }
    queueMicrotask(() => this.#onChange(key));
  }

  /** As the apiserver creates it: its own metadata, the status it starts with (the CRD's default); bound here unless bound elsewhere. */
  #admit(task: Task): Task {
    const admitted: Task = {
      apiVersion: task.apiVersion,
      kind: task.kind,
      metadata: { ...task.metadata, uid: randomUUID(), generation: 1, creationTimestamp: wholeSecondsNow(), resourceVersion: String(++this.#version) },
      spec: task.spec.nodeName === undefined ? { ...withoutNodeSelector(task.spec), nodeName: this.#nodeName } : task.spec,
      status: notTakenUpStatus,
    };
    return this.runsHere(admitted) ? admitted : { ...admitted, status: boundElsewhereStatus(admitted, this.#nodeName) };
  }

  list(): Task[] {
    return [...this.#tasks.values()];
  }

  /** The reconciler's view: Tasks this machine runs (held ones are not there, as for another node's informer). */
  get(key: string): Task | undefined {
    const task = this.#tasks.get(key);
    return task !== undefined && this.runsHere(task) ? task : undefined;
  }

  writeStatus(task: Task, status: TaskStatus): Promise<void> {
    return this.#update(task, (stored) => ({ ...stored, status }));
  }

  addFinalizer(task: Task): Promise<void> {
    if (this.get(taskKey(task))?.metadata.finalizers?.includes(processFinalizer) === true) return Promise.resolve();
    return this.#update(task, (stored) => ({ ...stored, metadata: { ...stored.metadata, finalizers: [...(stored.metadata.finalizers ?? []), processFinalizer] } }));
  }

  /** A no-op (and no change event) when the finalizer is not there, as the apiserver writer skips it. */
  removeFinalizer(task: Task): Promise<void> {
    if (this.get(taskKey(task))?.metadata.finalizers?.includes(processFinalizer) !== true) return Promise.resolve();
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
    const key = taskKey(task);
    const stored = this.#tasks.get(key);
    if (stored) {
      const updated = change(stored);
      if (updated.metadata.deletionTimestamp !== undefined && (updated.metadata.finalizers ?? []).length === 0) this.#tasks.delete(key);
      else this.#tasks.set(key, { ...updated, metadata: { ...updated.metadata, resourceVersion: String(++this.#version) } });
      // As a watch event would arrive: after the writer's caller has carried on.
      queueMicrotask(() => this.#onChange(key));
    }
    return Promise.resolve();
  }
}

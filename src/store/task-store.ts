// The Task store as the reconciler sees it: where it reads Tasks (TaskCache), where its decisions
// go (TaskWriter), the Events it records (TaskEventSink), and the key a Task goes by. Contracts
// only, no I/O: src/k8s implements them on the apiserver (informers, KubernetesTaskWriter,
// EventRecorder), src/standalone in memory (InMemoryTasks), and one reconciler serves both.
import type { Task, TaskStatus } from '../api/task.js';

/** Present while this agent may have a process for the Task: deletion waits for the kill. */
export const processFinalizer = 'parafork.dev/process';

export interface TaskCache {
  get(key: string): Task | undefined;
}

export interface TaskWriter {
  /** Replaces the whole status: fields the new status lacks are removed. */
  writeStatus(task: Task, status: TaskStatus): Promise<void>;
  addFinalizer(task: Task): Promise<void>;
  removeFinalizer(task: Task): Promise<void>;
  /** Deletes the Task (the TTL after it finished); gone already is fine. */
  deleteTask(task: Task): Promise<void>;
  /** Binds an unbound Task to `nodeName`; false when another agent won it or it is gone. */
  claim(task: Task, nodeName: string): Promise<boolean>;
  /**
   * Server-side apply of `status` under `fieldManager` (arrays shared by several agents,
   * docs/arrays.md): the manager then owns exactly these fields. Without `force`, false when the
   * apply would change a field another manager owns (409 Conflict); with it, it takes them over.
   * With `resourceVersion`, only if the Task is still at that version (else false, as a conflict).
   * Absent where there is no apiserver (standalone): such a store shares no array.
   */
  applyStatus?(task: Task, status: TaskStatus, fieldManager: string, force: boolean, resourceVersion?: string): Promise<ApplyOutcome>;
}

/** A field another manager owns that an apply would have changed (server-side apply's 409 Conflict). */
export interface ApplyConflict {
  readonly manager: string;
  /** The field's path as the apiserver names it, e.g. `.status.partitions[start=500].succeeded`. */
  readonly field: string;
}

/** How a server-side apply went: applied, or refused with the conflicts (none listed: the resourceVersion precondition failed). */
export type ApplyOutcome = { readonly applied: true } | { readonly applied: false; readonly conflicts: readonly ApplyConflict[] };


/** The object an Event is about. */
export interface EventSubject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

export type EventType = 'Normal' | 'Warning';

/** Where Events go: Kubernetes Events (k8s/event-recorder.ts), the log, or nowhere. Never blocks, never throws. */
export interface TaskEventSink {
  record(subject: EventSubject, type: EventType, reason: string, note: string): void;
}

/** The key of a namespaced object in caches and the work queue: "namespace/name". */
export function objectKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** A Task's key: the namespace it was created in ("default" when its manifest names none) and its name. */
export function taskKeyOf(task: Task, defaultNamespace = ''): string {
  return objectKey(task.metadata.namespace ?? defaultNamespace, task.metadata.name ?? '');
}

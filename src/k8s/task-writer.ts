// The reconciler's TaskWriter (src/store/task-store.ts) on the apiserver: status writes, the
// process finalizer, the TTL delete, and claims. Reads come from the informers, never from here.
import type { Task, TaskStatus } from '../api/task.js';
import { processFinalizer, type ApplyConflict, type ApplyOutcome, type TaskWriter } from '../store/task-store.js';
import { ApiError, type ApiClient } from './api-client.js';
import { taskPath, taskStatusPath } from './task-resources.js';

/**
 * Every key status writes may carry; absent ones are sent as null so a merge patch removes them.
 * A record over keyof TaskStatus, so the compiler refuses a status field added to the CRD but not
 * here (hostIdentity once went unwritten that way).
 */
const statusFieldSet: Record<keyof TaskStatus, true> = {
  phase: true, conditions: true, observedGeneration: true, nodeName: true, attempts: true, startTime: true, lastAttemptStartTime: true,
  nextRetryTime: true, completionTime: true, duration: true, exitCode: true, signal: true, reason: true, message: true, stderrTail: true,
  hostIdentity: true, resources: true, spawnTimings: true, usage: true, result: true, resultTruncated: true,
  // Task arrays (issue 17).
  progress: true, active: true, succeeded: true, failed: true, completedIndexes: true, failedIndexes: true, failures: true,
  indexTimings: true, partitions: true,
};
const statusFields = Object.keys(statusFieldSet) as (keyof TaskStatus)[];

function pathOf(task: Task): string {
  return taskPath(task.metadata.namespace ?? '', task.metadata.name ?? '');
}

export class KubernetesTaskWriter implements TaskWriter {
  readonly #client: ApiClient;

  constructor(client: ApiClient) {
    this.#client = client;
  }

  async writeStatus(task: Task, status: TaskStatus): Promise<void> {
    const body: Record<string, unknown> = {};
    for (const field of statusFields) body[field] = status[field] ?? null;
    await this.#client.request({ method: 'PATCH', path: taskStatusPath(task.metadata.namespace ?? '', task.metadata.name ?? ''), body: { status: body } });
  }

  async addFinalizer(task: Task): Promise<void> {
    const finalizers = task.metadata.finalizers ?? [];
    if (finalizers.includes(processFinalizer)) return;
    // JSON Patch appends without replacing anyone else's finalizers, and needs no resourceVersion,
    // so our own status writes (which bump it) cannot make it conflict.
    const operations = task.metadata.finalizers === undefined
      ? [{ op: 'add', path: '/metadata/finalizers', value: [processFinalizer] }]
      : [{ op: 'add', path: '/metadata/finalizers/-', value: processFinalizer }];
    await this.#patchFinalizers(task, operations);
  }

  async removeFinalizer(task: Task): Promise<void> {
    const index = (task.metadata.finalizers ?? []).indexOf(processFinalizer);
    if (index < 0) return;
    // The test op makes the removal exact. A 422 means the list is no longer what our cache shows
    // (most often: we removed it a moment ago and the watch has not caught up); the informer will
    // deliver the fresh object and its reconcile decides again.
    try {
      await this.#patchFinalizers(task, [
        { op: 'test', path: `/metadata/finalizers/${index}`, value: processFinalizer },
        { op: 'remove', path: `/metadata/finalizers/${index}` },
      ]);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 422)) throw error;
    }
  }

  async deleteTask(task: Task): Promise<void> {
    try {
      await this.#client.request({ method: 'DELETE', path: pathOf(task), body: { propagationPolicy: 'Background', preconditions: { uid: task.metadata.uid } } });
    } catch (error) {
      if (!(error instanceof ApiError && (error.status === 404 || error.status === 409))) throw error;
    }
  }

  async claim(task: Task, nodeName: string): Promise<boolean> {
    try {
      // The resourceVersion makes this a compare-and-swap: of two agents racing, one gets 409.
      await this.#client.request({ method: 'PATCH', path: pathOf(task), body: { metadata: { resourceVersion: task.metadata.resourceVersion }, spec: { nodeName } } });
      return true;
    } catch (error) {
      if (error instanceof ApiError && (error.status === 409 || error.status === 404 || error.status === 422)) return false;
      throw error;
    }
  }

  async applyStatus(task: Task, status: TaskStatus, fieldManager: string, force: boolean, resourceVersion?: string): Promise<ApplyOutcome> {
    try {
      await this.#client.request({
        method: 'PATCH',
        path: taskStatusPath(task.metadata.namespace ?? '', task.metadata.name ?? ''),
        // JSON is YAML: the apply content type takes it as it is.
        contentType: 'application/apply-patch+yaml',
        query: { fieldManager, ...(force ? { force: true } : {}) },
        // A resourceVersion in an apply is a precondition, as in an update: 409 when the object moved on.
        body: { apiVersion: task.apiVersion, kind: task.kind, metadata: { name: task.metadata.name, namespace: task.metadata.namespace, ...(resourceVersion !== undefined ? { resourceVersion } : {}) }, status },
      });
      return { applied: true };
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) return { applied: false, conflicts: parseApplyConflicts(error.message) };
      throw error;
    }
  }

  async #patchFinalizers(task: Task, operations: readonly object[]): Promise<void> {
    try {
      await this.#client.request({ method: 'PATCH', path: pathOf(task), contentType: 'application/json-patch+json', body: operations });
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return;
      throw error;
    }
  }
}

/**
 * The conflicts in the message of a refused apply, as the apiserver words them (apimachinery's
 * merge.Conflicts): `Apply failed with 2 conflicts: conflicts with "m" using v1:\n- .a\n- .b`, or
 * for one: `conflict with "m" using v1: .a`, one such part per manager.
 */
export function parseApplyConflicts(message: string): ApplyConflict[] {
  const conflicts: ApplyConflict[] = [];
  let manager: string | undefined;
  for (const match of message.matchAll(/conflicts? with "([^"]+)"|(?:^|[\s:])(\.[^\s]+)/g)) {
    if (match[1] !== undefined) manager = match[1];
    else if (match[2] !== undefined && manager !== undefined) conflicts.push({ manager, field: match[2] });
  }
  return conflicts;
}

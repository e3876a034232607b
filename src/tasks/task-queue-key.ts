// What the work queue holds for Tasks: a Task this node holds, to reconcile, or an unbound Task,
// to consider claiming. The same Task may be both (seen unbound, then bound here): two keys.

export interface TaskQueueKey {
  /** 'task': reconcile a Task bound to this node; 'claim': an unbound Task this node may claim. */
  readonly kind: 'task' | 'claim';
  /** The Task's key, "namespace/name" (src/store/task-store.ts). */
  readonly name: string;
}

export function reconcileKey(name: string): TaskQueueKey {
  return { kind: 'task', name };
}

export function claimKey(name: string): TaskQueueKey {
  return { kind: 'claim', name };
}

/**
 * Tells keys apart in the work queue (its keyId). Never parsed back: the queue hands the key
 * itself to its handler. A space is in no namespace or name, so no two keys share an id.
 */
export function taskQueueKeyId(key: TaskQueueKey): string {
  return `${key.kind} ${key.name}`;
}

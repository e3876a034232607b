// The status writes of Task arrays also record, beside their index logs, which indexes have ended
// (TaskLogStore.recordEndedIndexes): a reader on the node waiting for an index's output learns
// from it that an index which printed nothing is done. Status writes of an array are batched (about
// one a second and one at its end: docs/arrays.md), so this costs a small file write at that rate.
import type { Task, TaskStatus } from '../api/task.js';
import type { TaskWriter } from '../store/task-store.js';
import type { TaskLogStore } from './task-log-store.js';

/** `writer`, its status writes of arrays whose logs `logs` keeps recorded there once written. */
export function recordingEndedIndexes(writer: TaskWriter, logs: TaskLogStore): TaskWriter {
  const applyStatus = writer.applyStatus?.bind(writer);
  return {
    writeStatus: async (task: Task, status: TaskStatus): Promise<void> => {
      await writer.writeStatus(task, status);
      if (task.spec.completions === undefined) return;
      try {
        const owner = { namespace: task.metadata.namespace ?? 'default', name: task.metadata.name ?? '', uid: task.metadata.uid ?? '' };
        const arrayEnded = status.phase === 'Succeeded' || status.phase === 'Failed';
        logs.recordEndedIndexes(owner, { completed: status.completedIndexes ?? '', failed: status.failedIndexes ?? '', arrayEnded });
      } catch {
        // A full or read-only disk: a reader waiting on an index that printed nothing waits until interrupted.
      }
    },
    addFinalizer: (task) => writer.addFinalizer(task),
    removeFinalizer: (task) => writer.removeFinalizer(task),
    deleteTask: (task) => writer.deleteTask(task),
    claim: (task, nodeName) => writer.claim(task, nodeName),
    ...(applyStatus ? { applyStatus } : {}),
  };
}

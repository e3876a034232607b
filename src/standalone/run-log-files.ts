// Where a run's Tasks' output is, for `parafork run -o json|yaml`: each Task gets two annotations,
// as a tool adds to the objects it prints (the Task's status stays what an agent would write):
//   parafork.dev/log-directory  the Task's log directory (src/logs/task-log-store.ts)
//   parafork.dev/log-files      its attempts' logs, oldest first, comma-separated: `1.log`, and
//                               `1.log.1` before it once the cap rotated it (native/src/log_file.h);
//                               none for an array, whose indexes' logs are in the directory's
//                               `indexes/` folder (issue 17)
// The files hold chunks tagged by stream and time (native/src/log_file.h); `parafork logs TASK`
// prints them as the Task wrote them.
import { readdirSync } from 'node:fs';
import path from 'node:path';

import type { Task } from '../api/task.js';
import type { TaskLogOwner } from '../logs/task-log-store.js';

export const logDirectoryAnnotation = 'parafork.dev/log-directory';
export const logFilesAnnotation = 'parafork.dev/log-files';

/** The Tasks with their log annotations; a Task that never started (no log directory) gets none. */
export function withLogFiles(tasks: readonly Task[], taskDirectory: (owner: TaskLogOwner) => string): Task[] {
  return tasks.map((task) => {
    const directory = taskDirectory({ namespace: task.metadata.namespace ?? 'default', name: task.metadata.name ?? '', uid: task.metadata.uid ?? '' });
    const files = attemptLogFiles(directory);
    if (files === undefined) return task;
    const annotations = {
      ...task.metadata.annotations,
      [logDirectoryAnnotation]: directory,
      ...(files.length > 0 ? { [logFilesAnnotation]: files.map((file) => path.join(directory, file)).join(',') } : {}),
    };
    return { ...task, metadata: { ...task.metadata, annotations } };
  });
}

/** `N.log.1` and `N.log` in attempt order, the rotated one first; undefined without the directory. */
function attemptLogFiles(directory: string): string[] | undefined {
  let entries: string[];
  try {
    entries = readdirSync(directory);
  } catch {
    return undefined;
  }
  const logs = entries
    .map((file) => ({ file, match: /^(\d+)\.log(\.1)?$/.exec(file) }))
    .filter((entry): entry is { file: string; match: RegExpExecArray } => entry.match !== null)
    .map(({ file, match }) => ({ file, attempt: Number(match[1]), rotated: match[2] !== undefined }));
  return logs.sort((a, b) => a.attempt - b.attempt || Number(b.rotated) - Number(a.rotated)).map((log) => log.file);
}

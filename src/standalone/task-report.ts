// How a standalone run shows itself: one progress line, and at the end a kubectl-get-like table or
// the Tasks themselves as JSON or YAML (a v1 List, as `kubectl get -o` prints).
import { dump } from 'js-yaml';

import type { Task } from '../api/task.js';
import type { RunProgress } from './run-tasks.js';

export type OutputFormat = 'table' | 'json' | 'yaml';

export function progressLine(progress: RunProgress): string {
  const finished = progress.succeeded + progress.failed;
  const rate = progress.elapsedMs > 0 ? (finished / progress.elapsedMs) * 1000 : 0;
  const p99 = progress.spawnP99Ms === undefined ? '-' : `${progress.spawnP99Ms.toFixed(2)} ms`;
  return `${finished}/${progress.total} done: ${progress.succeeded} succeeded, ${progress.failed} failed, ${progress.running} running | ${rate.toFixed(0)} tasks/s | spawn p99 ${p99} | ${(progress.elapsedMs / 1000).toFixed(1)} s`;
}

export function formatTasks(tasks: readonly Task[], format: OutputFormat): string {
  if (format === 'json') return `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: tasks }, null, 2)}\n`;
  if (format === 'yaml') return dump({ apiVersion: 'v1', kind: 'List', items: tasks }, { noRefs: true, lineWidth: 120 });
  const rows = [['NAMESPACE', 'NAME', 'PHASE', 'EXIT', 'ATTEMPTS', 'DURATION', 'REASON']];
  for (const task of tasks) {
    const status = task.status;
    rows.push([
      task.metadata.namespace ?? 'default',
      task.metadata.name ?? '',
      status?.phase ?? 'Pending',
      status?.exitCode !== undefined ? String(status.exitCode) : (status?.signal ?? ''),
      String(status?.attempts ?? 0),
      status?.duration ?? '',
      status?.reason ?? '',
    ]);
  }
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('   ').trimEnd()).join('\n') + '\n';
}

// How a standalone run shows itself: one progress line while it runs; at the end a kubectl-get-like
// table of the Tasks (all of them when they fit on a screen or with -o wide, else a summary: counts
// by phase and reason, the failed Tasks with their message and stderr, the slowest), or the Tasks
// themselves as JSON or YAML (a v1 List, as `kubectl get -o` prints); and one summary line, last.
import { dump } from 'js-yaml';

import type { Task } from '../api/task.js';
import { terminalSafeJson } from '../http/terminal-safe-json.js';
import { parseTimestamp } from '../tasks/time-format.js';
import { progressUnits } from './progress-units.js';
import type { RunProgress } from './run-tasks.js';
import { wrapWords } from './wrap-words.js';

export type OutputFormat = 'table' | 'wide' | 'json' | 'yaml';
const outputFormats: readonly OutputFormat[] = ['table', 'wide', 'json', 'yaml'];

export function isOutputFormat(text: string | undefined): text is OutputFormat {
  return outputFormats.includes(text as OutputFormat);
}

/** More Tasks than this get the summary instead of a row each (about a screenful). */
export const tableRowLimit = 50;
/** Failed Tasks listed in the summary, each with its message and stderr tail. */
const failedShown = 10;
/** Slowest Tasks listed in the summary. */
const slowestShown = 5;
/** Lines of a failed Task's stderr tail shown, and the width each is cut to. */
const stderrLinesShown = 2;
const stderrLineWidth = 120;

/** Where each Task stands; retrying is Pending with a nextRetryTime (waiting out its backoff). */
export interface TaskCounts {
  readonly total: number;
  readonly pending: number;
  readonly running: number;
  readonly retrying: number;
  readonly succeeded: number;
  readonly failed: number;
}

/** An array (issue 17) counts as its indexes (progress-units.ts), so the counts are of processes. */
export function countTasks(tasks: readonly Task[]): TaskCounts {
  let total = 0;
  let running = 0;
  let retrying = 0;
  let succeeded = 0;
  let failed = 0;
  for (const task of tasks) {
    const status = task.status;
    if (task.spec.completions !== undefined) {
      const units = progressUnits(task);
      total += units.total;
      running += units.running;
      succeeded += units.succeeded;
      failed += units.failed;
      continue;
    }
    total++;
    if (status?.phase === 'Running') running++;
    else if (status?.phase === 'Succeeded') succeeded++;
    else if (status?.phase === 'Failed') failed++;
    else if (status?.nextRetryTime !== undefined) retrying++;
  }
  return { total, pending: total - running - retrying - succeeded - failed, running, retrying, succeeded, failed };
}

/**
 * What the lines count: Tasks, or where an array's indexes are among them, processes (a Task that
 * is not an array is one). "1000 Tasks" said of one array of 1,000 indexes was wrong by 999.
 */
function unitOf(tasks: readonly Task[]): 'Tasks' | 'processes' {
  return tasks.some((task) => task.spec.completions !== undefined) ? 'processes' : 'Tasks';
}

function rate(finished: number, elapsedMs: number, unit: 'Tasks' | 'processes'): string {
  const perSecond = elapsedMs > 0 ? (finished / elapsedMs) * 1000 : 0;
  return `${perSecond.toFixed(perSecond < 10 ? 1 : 0)} ${unit}/s`;
}

function spawnP99(progress: RunProgress): string {
  return progress.spawnP99Ms === undefined ? '-' : `${progress.spawnP99Ms.toFixed(2)} ms`;
}

/** "412/1000 done: 3 pending, 580 running, 5 retrying, 410 succeeded, 2 failed | 205 Tasks/s | spawn p99 1.20 ms | 2.0 s" */
export function progressLine(progress: RunProgress): string {
  const counts = countTasks(progress.tasks);
  const finished = counts.succeeded + counts.failed;
  // Tasks bound to another node (spec.nodeName) wait for that node's agent, not for this run.
  const held = progress.held > 0 ? `, ${progress.held} held for another node` : '';
  return (
    `${finished}/${counts.total} done: ${counts.pending - progress.held} pending${held}, ${counts.running} running, ${counts.retrying} retrying, ` +
    `${counts.succeeded} succeeded, ${counts.failed} failed | ${rate(finished, progress.elapsedMs, unitOf(progress.tasks))} | spawn p99 ${spawnP99(progress)} | ${(progress.elapsedMs / 1000).toFixed(1)} s`
  );
}

/**
 * The run's last line: "1000 Tasks in 4.4 s: 998 succeeded, 2 failed | 225 Tasks/s | spawn p99 1.20 ms";
 * with arrays, "1 Task, 1000 processes in 1.6 s: ..." (the counts are of processes, as the progress line's).
 */
export function summaryLine(progress: RunProgress): string {
  const counts = countTasks(progress.tasks);
  const unfinished = counts.total - counts.succeeded - counts.failed - progress.held;
  const unit = unitOf(progress.tasks);
  const tasks = progress.tasks.length;
  const what = unit === 'Tasks' ? `${counts.total} Task${counts.total === 1 ? '' : 's'}` : `${tasks} Task${tasks === 1 ? '' : 's'}, ${counts.total} processes`;
  return (
    `${what} in ${(progress.elapsedMs / 1000).toFixed(1)} s: ${counts.succeeded} succeeded, ${counts.failed} failed` +
    `${progress.held > 0 ? `, ${progress.held} held for another node` : ''}${unfinished > 0 ? `, ${unfinished} not finished` : ''} | ${rate(counts.succeeded + counts.failed, progress.elapsedMs, unit)} | spawn p99 ${spawnP99(progress)}`
  );
}

export function formatTasks(tasks: readonly Task[], format: OutputFormat): string {
  if (format === 'json') return `${terminalSafeJson({ apiVersion: 'v1', kind: 'List', items: tasks })}\n`;
  if (format === 'yaml') return dump({ apiVersion: 'v1', kind: 'List', items: tasks }, { noRefs: true, lineWidth: 120 });
  if (format === 'table' && tasks.length > tableRowLimit) return formatSummary(tasks);
  // A failed Task's row says why in words (MESSAGE) and shows the end of its stderr beneath.
  const anyMessage = tasks.some((task) => task.status?.message !== undefined && task.status.phase === 'Failed');
  return formatTable(tasks, [...identityColumns(tasks), phase, exit, attempts, duration, reason, ...(anyMessage ? [failedMessage] : [])], (task) => [...resultLine(task), ...failedMessageWhole(task), ...failedStderrTail(task)]);
}

// ---------------------------------------------------------------- tables

interface Column {
  readonly header: string;
  readonly cell: (task: Task) => string;
  /** Right-aligned (counts). */
  readonly numeric?: boolean;
}

const namespaceColumn: Column = { header: 'NAMESPACE', cell: (task) => task.metadata.namespace ?? 'default' };
const nameColumn: Column = { header: 'NAME', cell: (task) => task.metadata.name ?? '' };
const phase: Column = { header: 'PHASE', cell: (task) => task.status?.phase ?? 'Pending' };
const exit: Column = { header: 'EXIT', cell: (task) => (task.status?.exitCode !== undefined ? String(task.status.exitCode) : (task.status?.signal ?? '')) };
const attempts: Column = { header: 'ATTEMPTS', cell: (task) => String(task.status?.attempts ?? 0) };
const duration: Column = { header: 'DURATION', cell: (task) => task.status?.duration ?? '' };
const reason: Column = { header: 'REASON', cell: (task) => task.status?.reason ?? '' };
const message: Column = { header: 'MESSAGE', cell: (task) => oneLine(task.status?.message ?? '', stderrLineWidth) };
const failedMessage: Column = { header: 'MESSAGE', cell: (task) => (task.status?.phase === 'Failed' ? message.cell(task) : '') };

/** NAMESPACE only when the Tasks are in more than one (kubectl's -A shows it; one namespace needs no column). */
function identityColumns(tasks: readonly Task[]): Column[] {
  const namespaces = new Set(tasks.map((task) => task.metadata.namespace ?? 'default'));
  return namespaces.size > 1 ? [namespaceColumn, nameColumn] : [nameColumn];
}

function layOut(rows: readonly (readonly string[])[], numeric: readonly boolean[] = []): string[] {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  return rows.map((row, index) =>
    row
      .map((cell, column) => (numeric[column] && index > 0 ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0)))
      .join('   ')
      .trimEnd(),
  );
}

function formatTable(tasks: readonly Task[], columns: readonly Column[], afterRow?: (task: Task) => readonly string[]): string {
  const rows = [columns.map((column) => column.header), ...tasks.map((task) => columns.map((column) => column.cell(task)))];
  const lines = layOut(
    rows,
    columns.map((column) => column.numeric === true),
  );
  const out = [lines[0] ?? ''];
  tasks.forEach((task, index) => out.push(lines[index + 1] ?? '', ...(afterRow?.(task) ?? [])));
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------- summary

function formatSummary(tasks: readonly Task[]): string {
  const sections = [countsByPhaseAndReason(tasks)];
  const failed = tasks.filter((task) => task.status?.phase === 'Failed');
  if (failed.length > 0) {
    const shown = failed.slice(0, failedShown);
    sections.push(
      `Failed: ${failed.length}${failed.length > shown.length ? ` (the first ${shown.length})` : ''}\n` +
        formatTable(shown, [...identityColumns(tasks), exit, attempts, duration, reason, message], stderrTailLines),
    );
  }
  const slowest = tasks
    .filter((task) => runMilliseconds(task) !== undefined)
    .sort((a, b) => (runMilliseconds(b) ?? 0) - (runMilliseconds(a) ?? 0))
    .slice(0, slowestShown);
  if (slowest.length > 0) sections.push(`Slowest:\n${formatTable(slowest, [...identityColumns(tasks), phase, exit, duration, reason])}`);
  sections.push(`-o wide lists all ${tasks.length} Tasks, -o yaml or json with their status.\n`);
  return sections.join('\n');
}

function countsByPhaseAndReason(tasks: readonly Task[]): string {
  const counts = new Map<string, { phase: string; reason: string; tasks: number }>();
  for (const task of tasks) {
    const taskPhase = phase.cell(task);
    const taskReason = task.status?.reason ?? (task.status?.nextRetryTime !== undefined ? '(retrying)' : '');
    const key = `${taskPhase}\u0000${taskReason}`;
    const entry = counts.get(key) ?? { phase: taskPhase, reason: taskReason, tasks: 0 };
    entry.tasks++;
    counts.set(key, entry);
  }
  const phaseOrder = ['Succeeded', 'Failed', 'Running', 'Pending'];
  const entries = [...counts.values()].sort((a, b) => phaseOrder.indexOf(a.phase) - phaseOrder.indexOf(b.phase) || b.tasks - a.tasks || a.reason.localeCompare(b.reason));
  const lines = layOut([['PHASE', 'REASON', 'TASKS'], ...entries.map((entry) => [entry.phase, entry.reason, String(entry.tasks)])], [false, false, true]);
  return `${lines.join('\n')}\n`;
}

/** Wall-clock time from start to completion, for ranking; undefined while a Task has not finished. */
function runMilliseconds(task: Task): number | undefined {
  const { startTime, completionTime } = task.status ?? {};
  return startTime === undefined || completionTime === undefined ? undefined : parseTimestamp(completionTime) - parseTimestamp(startTime);
}

/** A Task's status.result beneath its row, on one line (-o json and yaml give it whole). */
function resultLine(task: Task): string[] {
  const result = task.status?.result;
  if (result === undefined || result.trim() === '') return [];
  return [`    result: ${oneLine(result, stderrLineWidth)}${task.status?.resultTruncated === true ? ' (truncated)' : ''}`];
}

/**
 * A failed Task's message, whole, beneath its row when the MESSAGE column had to cut it: its end
 * is often what to do (an InvalidSpec's accepted forms, the path a sandbox hides).
 */
function failedMessageWhole(task: Task): string[] {
  const text = task.status?.phase === 'Failed' ? task.status.message : undefined;
  if (text === undefined || oneLine(text, stderrLineWidth) === oneLine(text, Number.MAX_SAFE_INTEGER)) return [];
  const lines = wrapWords(oneLine(text, Number.MAX_SAFE_INTEGER), stderrLineWidth);
  return lines.map((entry, index) => `    ${index === 0 ? 'message: ' : '         '}${entry}`);
}

function failedStderrTail(task: Task): string[] {
  return task.status?.phase === 'Failed' ? stderrTailLines(task) : [];
}

function stderrTailLines(task: Task): string[] {
  const tail = task.status?.stderrTail;
  if (tail === undefined || tail.trim() === '') return [];
  return tail
    .split('\n')
    .filter((line) => line.trim() !== '')
    .slice(-stderrLinesShown)
    .map((line) => `    stderr: ${oneLine(line, stderrLineWidth)}`);
}

function oneLine(text: string, width: number): string {
  // A Task's message or stderr may hold any bytes; a terminal gets none of its controls: C0, DEL
  // and C1 (U+0080-U+009F: xterm obeys U+009B as CSI and U+009D as OSC in UTF-8).
  // eslint-disable-next-line no-control-regex -- the controls are what is removed
  const flat = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
}

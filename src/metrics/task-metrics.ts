// parafork_task_* and parafork_tasks_*: what happened to Tasks on this node, from the reconciler's
// observer hooks (start latency, outcomes) and, at scrape time, how many run now. Labels are a
// Task's result and reason, both from closed sets: never its namespace, name or uid.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

import type { TaskReason } from '../api/task.js';
import { sandboxPolicyFields } from '../sandbox/sandbox-policy.js';
import type { TaskOutcome, TaskReconcilerObserver, TaskRefusal, TaskStartLatency } from '../tasks/task-reconciler.js';
import { endingReasons } from '../tasks/task-status.js';
import { runDurationBuckets, startLatencyBuckets } from './buckets.js';

export const taskMetricNames = {
  startLatency: 'parafork_task_start_latency_seconds',
  duration: 'parafork_task_duration_seconds',
  running: 'parafork_tasks_running',
  finished: 'parafork_tasks_finished_total',
  forbidden: 'parafork_tasks_forbidden_total',
  arrayIndexesStarted: 'parafork_array_indexes_started_total',
  arrayIndexesFinished: 'parafork_array_indexes_finished_total',
} as const;

type TaskResult = 'succeeded' | 'failed';

export class TaskMetrics implements TaskReconcilerObserver {
  readonly #startLatency: Histogram<'since'>;
  readonly #duration: Histogram<'result'>;
  readonly #finished: Counter<'result' | 'reason'>;
  readonly #forbidden: Counter<'field'>;
  readonly #indexesStarted: Counter;
  readonly #indexesFinished: Counter<'result' | 'reason'>;
  /** #indexesFinished's child for each reason, bound once: an index's end costs no label lookup. */
  readonly #indexesFinishedByReason = new Map<TaskReason, Counter.Internal>();

  /** `running`: how many Tasks have a process (or one being spawned) now; read at each scrape. */
  constructor(registry: Registry, running: () => number) {
    const registers = [registry];
    this.#startLatency = new Histogram({
      name: taskMetricNames.startLatency,
      help: 'From a Task being first seen by this agent (since="observed": bound to this node or claimed by it) or created (since="created": creationTimestamp, whole seconds) to its first process running.',
      labelNames: ['since'],
      buckets: [...startLatencyBuckets],
      registers,
    });
    this.#duration = new Histogram({
      name: taskMetricNames.duration,
      help: 'From a finished Task\'s first attempt starting to its final ending, by result (succeeded, failed); Tasks that never started are not included.',
      labelNames: ['result'],
      buckets: [...runDurationBuckets],
      registers,
    });
    this.#finished = new Counter({
      name: taskMetricNames.finished,
      help: 'Tasks that reached Succeeded or Failed on this node, by result and the reason written to their status.',
      labelNames: ['result', 'reason'],
      registers,
    });
    this.#forbidden = new Counter({
      name: taskMetricNames.forbidden,
      help: 'Tasks refused on this node for asking more than their sandbox policy level allows (reason Forbidden), by the first field refused, without list indexes (spec.sandbox.mounts[].hostPath).',
      labelNames: ['field'],
      registers,
    });
    new Gauge({
      name: taskMetricNames.running,
      help: 'Tasks with a process on this node (running, or being spawned) at the time of the scrape.',
      registers,
      collect() {
        this.set(running());
      },
    });
    // Task arrays (issue 17): an array is one Task above, and each of its indexes' attempts here.
    this.#indexesStarted = new Counter({
      name: taskMetricNames.arrayIndexesStarted,
      help: 'Attempts of Task array indexes whose process started on this node (retries included).',
      registers,
    });
    this.#indexesFinished = new Counter({
      name: taskMetricNames.arrayIndexesFinished,
      help: 'Attempts of Task array indexes that ended on this node, by result and the reason of their ending (Completed, Error, OOMKilled, ...).',
      labelNames: ['result', 'reason'],
      registers,
    });
    // Every series a Task can produce exists from the start, so that rate() and increase() see
    // the first occurrence of each outcome.
    for (const since of ['observed', 'created']) this.#startLatency.zero({ since });
    for (const result of ['succeeded', 'failed'] as const) this.#duration.zero({ result });
    for (const reason of endingReasons) this.#finished.inc({ result: resultOf(reason), reason }, 0);
    for (const field of sandboxPolicyFields) this.#forbidden.inc({ field }, 0);
    for (const reason of endingReasons) {
      const child = this.#indexesFinished.labels({ result: resultOf(reason), reason });
      child.inc(0);
      this.#indexesFinishedByReason.set(reason, child);
    }
  }

  taskStarted(latency: TaskStartLatency): void {
    this.#startLatency.observe({ since: 'observed' }, Math.max(0, latency.sinceObservedMs) / 1000);
    // creationTimestamp has whole seconds, so a Task started within its creation second can come
    // out slightly negative: that is "at once".
    if (latency.sinceCreatedMs !== undefined) this.#startLatency.observe({ since: 'created' }, Math.max(0, latency.sinceCreatedMs) / 1000);
  }

  taskFinished(outcome: TaskOutcome): void {
    const result: TaskResult = outcome.phase === 'Succeeded' ? 'succeeded' : 'failed';
    // The reason comes from the CRD's closed list; anything else would be a bug, not a new series.
    const reason = (endingReasons as readonly string[]).includes(outcome.reason) ? outcome.reason : 'Error';
    this.#finished.inc({ result, reason });
    if (outcome.durationMs !== undefined) this.#duration.observe({ result }, Math.max(0, outcome.durationMs) / 1000);
  }

  taskForbidden(refusal: TaskRefusal): void {
    // The field comes from sandboxPolicyFields; anything else would be a bug, not a new series.
    if ((sandboxPolicyFields as readonly string[]).includes(refusal.field)) this.#forbidden.inc({ field: refusal.field });
  }

  arrayIndexStarted(): void {
    this.#indexesStarted.inc();
  }

  arrayIndexFinished(reason: TaskReason): void {
    // The reason comes from the CRD's closed list; anything else would be a bug, not a new series.
    (this.#indexesFinishedByReason.get(reason) ?? this.#indexesFinishedByReason.get('Error'))?.inc();
  }

}

/** Only a Completed Task succeeds; every other reason ends one as Failed. */
function resultOf(reason: TaskReason): TaskResult {
  return reason === 'Completed' ? 'succeeded' : 'failed';
}

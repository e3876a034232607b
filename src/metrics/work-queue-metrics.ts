// parafork_workqueue_* and parafork_reconcile_total: the Task work queue, in the spirit of
// client-go's workqueue and controller-runtime's reconcile metrics, from the queue's observer
// hooks. There is one queue (Tasks), so no `name` label; keys never become labels.
//
// A Task array's every index start and end asks for a pass, so started/finished run about twice
// an index: the two histograms are LeanHistograms and each outcome's counter child is bound once
// (prom-client's observe and labelled inc cost ~2-4 us each there: docs/benchmarks.md, Task arrays).
import { Counter, Gauge, type Registry } from 'prom-client';

import { workOutcomes, type WorkOutcome, type WorkQueueObserver } from '../controller/work-queue.js';
import { workQueueBuckets } from './buckets.js';
import { LeanHistogram } from './lean-histogram.js';

export const workQueueMetricNames = {
  depth: 'parafork_workqueue_depth',
  adds: 'parafork_workqueue_adds_total',
  queueDuration: 'parafork_workqueue_queue_duration_seconds',
  workDuration: 'parafork_workqueue_work_duration_seconds',
  retries: 'parafork_workqueue_retries_total',
  reconciles: 'parafork_reconcile_total',
} as const;

/** Keys never become labels: it observes a queue of any key type. */
export class WorkQueueMetrics implements WorkQueueObserver<unknown> {
  readonly #depth: Gauge;
  readonly #adds: Counter;
  readonly #queueDuration: LeanHistogram;
  readonly #workDuration: LeanHistogram;
  readonly #retries: Counter;
  /** parafork_reconcile_total's child for each outcome, bound once. */
  readonly #reconcilesByOutcome: ReadonlyMap<WorkOutcome, Counter.Internal>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.#depth = new Gauge({ name: workQueueMetricNames.depth, help: 'Task keys ready and waiting for a worker.', registers });
    this.#adds = new Counter({ name: workQueueMetricNames.adds, help: 'Requests to reconcile a Task key, deduplicated or not.', registers });
    this.#queueDuration = new LeanHistogram({
      name: workQueueMetricNames.queueDuration,
      help: 'How long a Task key waited in the queue before a worker took it.',
      buckets: workQueueBuckets,
      registers,
    });
    this.#workDuration = new LeanHistogram({
      name: workQueueMetricNames.workDuration,
      help: 'How long one reconcile of a Task key took.',
      buckets: workQueueBuckets,
      registers,
    });
    this.#retries = new Counter({ name: workQueueMetricNames.retries, help: 'Reconciles that failed and were queued again with backoff.', registers });
    const reconciles = new Counter({
      name: workQueueMetricNames.reconciles,
      help: 'Reconciles by result: success, requeue (asked to look again later), retry (failed, backoff), terminal (failed, not retried).',
      labelNames: ['result'],
      registers,
    });
    // Every outcome's series exists from the start, at 0.
    this.#reconcilesByOutcome = new Map(workOutcomes.map((result) => {
      const child = reconciles.labels({ result });
      child.inc(0);
      return [result, child];
    }));
  }

  added(): void {
    this.#adds.inc();
  }

  depthChanged(depth: number): void {
    this.#depth.set(depth);
  }

  started(_key: unknown, waitedMs: number): void {
    this.#queueDuration.observe(waitedMs / 1000);
  }

  finished(_key: unknown, workedMs: number, outcome: WorkOutcome): void {
    this.#workDuration.observe(workedMs / 1000);
    this.#reconcilesByOutcome.get(outcome)?.inc();
    if (outcome === 'retry') this.#retries.inc();
  }
}

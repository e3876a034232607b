// parafork_workqueue_* and parafork_reconcile_total: the Task work queue, in the spirit of
// client-go's workqueue and controller-runtime's reconcile metrics, from the queue's observer
// hooks. There is one queue (Tasks), so no `name` label; keys never become labels.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

import { workOutcomes, type WorkOutcome, type WorkQueueObserver } from '../controller/work-queue.js';
import { workQueueBuckets } from './buckets.js';

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
  readonly #queueDuration: Histogram;
  readonly #workDuration: Histogram;
  readonly #retries: Counter;
  readonly #reconciles: Counter<'result'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.#depth = new Gauge({ name: workQueueMetricNames.depth, help: 'Task keys ready and waiting for a worker.', registers });
    this.#adds = new Counter({ name: workQueueMetricNames.adds, help: 'Requests to reconcile a Task key, deduplicated or not.', registers });
    this.#queueDuration = new Histogram({
      name: workQueueMetricNames.queueDuration,
      help: 'How long a Task key waited in the queue before a worker took it.',
      buckets: [...workQueueBuckets],
      registers,
    });
    this.#workDuration = new Histogram({
      name: workQueueMetricNames.workDuration,
      help: 'How long one reconcile of a Task key took.',
      buckets: [...workQueueBuckets],
      registers,
    });
    this.#retries = new Counter({ name: workQueueMetricNames.retries, help: 'Reconciles that failed and were queued again with backoff.', registers });
    this.#reconciles = new Counter({
      name: workQueueMetricNames.reconciles,
      help: 'Reconciles by result: success, requeue (asked to look again later), retry (failed, backoff), terminal (failed, not retried).',
      labelNames: ['result'],
      registers,
    });
    for (const result of workOutcomes) this.#reconciles.inc({ result }, 0);
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
    this.#reconciles.inc({ result: outcome });
    if (outcome === 'retry') this.#retries.inc();
  }
}

// The agent's metrics registry, built in one place: a prom-client Registry of its own (never the
// global one) with every parafork metric family registered on it. Families are plain objects that
// implement the observer hooks of the layer they watch; the composition root hands each to its
// layer (Launcher, WorkQueue, ApiClient, TaskReconciler).
//
// No series carries the node's name: which agent a series came from is the scraper's to say, as a
// target label (the chart's ServiceMonitor sets `node` from the Pod's node name). Exposing it here
// as well would collide with that label and come out as `exported_node`.
import { Registry } from 'prom-client';

import { ApiClientMetrics } from './api-client-metrics.js';
import { trackLauncher, type LauncherState } from './launcher-metrics.js';
import { trackLogDiskUsage, trackLogs, type LogDiskUsageSource, type LogStatsSource } from './log-metrics.js';
import { collectProcessMetrics } from './process-metrics.js';
import { SpawnMetrics } from './spawn-metrics.js';
import { TaskMetrics } from './task-metrics.js';
import { WorkQueueMetrics } from './work-queue-metrics.js';

export interface MetricsOptions {
  /** Tasks with a process now, read at each scrape (the reconciler's count); 0 when absent. */
  readonly runningTasks?: () => number;
  /** prom-client's process and Node.js metrics; default true. */
  readonly processMetrics?: boolean;
}

/** What /metrics serves. */
export interface MetricsScrape {
  readonly contentType: string;
  readonly body: string;
}

export class MetricsRegistry {
  readonly registry = new Registry();
  /** The Launcher's observer. */
  readonly spawn: SpawnMetrics;
  /** The TaskReconciler's observer. */
  readonly tasks: TaskMetrics;
  /** The WorkQueue's observer. */
  readonly workQueue: WorkQueueMetrics;
  /** The ApiClient's observer. */
  readonly apiClient: ApiClientMetrics;

  constructor(options: MetricsOptions = {}) {
    const runningTasks = options.runningTasks ?? (() => 0);
    this.spawn = new SpawnMetrics(this.registry);
    this.tasks = new TaskMetrics(this.registry, runningTasks);
    this.workQueue = new WorkQueueMetrics(this.registry);
    this.apiClient = new ApiClientMetrics(this.registry);
    if (options.processMetrics ?? true) collectProcessMetrics(this.registry);
  }

  /** Reports the launcher's threads, queue and configuration, read at each scrape. Once per registry. */
  trackLauncher(launcher: LauncherState): void {
    trackLauncher(this.registry, launcher);
  }

  /** Reports the Task logs' bytes, dropped bytes and open logs, read at each scrape. Once per registry. */
  trackLogs(source: LogStatsSource): void {
    trackLogs(this.registry, source);
  }

  /** Reports the node's Task log files and their bytes, read at each scrape. Once per registry. */
  trackLogDiskUsage(source: LogDiskUsageSource): void {
    trackLogDiskUsage(this.registry, source);
  }

  /** The render that scrapes coming now will share: queued behind the one under way, not yet started. */
  #queuedRender: Promise<MetricsScrape> | undefined;
  /** The render under way or last made (settled or not): the next one starts after it. */
  #lastRender: Promise<unknown> = Promise.resolve();
  #lastRenderEndedAt = Number.NEGATIVE_INFINITY;
  #lastRenderMs = 0;

  /**
   * The text exposition format (version 0.0.4) of every series, rendered after the call: what was
   * counted before it is in it. A render walks every series on the one JavaScript thread (~4 ms
   * for the agent's under load), and whoever reaches the port may scrape back to back: 32 such
   * clients kept /healthz at 74 ms p50 (docs/security.md). So scrapes that come while a render
   * waits to start share it, and a render starts no sooner than nine times the last one's length
   * after it ended: renders take at most about a tenth of the thread however many scrape, and a
   * lone scraper (Prometheus, every 15-60 s) never waits (metrics-scrape-flood.test.ts).
   */
  scrape(): Promise<MetricsScrape> {
    if (this.#queuedRender !== undefined) return this.#queuedRender;
    const render = this.#lastRender.then(async () => {
      const waitMs = this.#lastRenderEndedAt + this.#lastRenderMs * renderSpacingFactor - performance.now();
      if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
      // From here, a scrape that comes is after this render's start: it waits for the next.
      if (this.#queuedRender === render) this.#queuedRender = undefined;
      const startedAt = performance.now();
      try {
        return { contentType: this.registry.contentType, body: await this.registry.metrics() };
      } finally {
        this.#lastRenderEndedAt = performance.now();
        this.#lastRenderMs = this.#lastRenderEndedAt - startedAt;
      }
    });
    this.#queuedRender = render;
    this.#lastRender = render.catch(() => undefined);
    return render;
  }
}

/** A render starts no sooner than this many times the last one's length after it ended (MetricsRegistry.scrape). */
const renderSpacingFactor = 9;

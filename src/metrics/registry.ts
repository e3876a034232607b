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

  /** The text exposition format (version 0.0.4) of every series. */
  async scrape(): Promise<MetricsScrape> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

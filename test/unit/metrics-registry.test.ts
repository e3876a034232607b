// The agent's metric families as specifications: what each observer hook counts, that names follow
// parafork_<thing>_<unit>, and that labels stay bounded (an errno outside the known list is
// "other"; a Task's key never becomes a label). Hooks are called directly here; the launcher's
// hooks with real spawns are in metrics-spawn-observer.test.ts, Prometheus in integration/.
import { describe, expect, it } from 'vitest';

import { taskReasons } from '../../src/api/task.js';
import { Histogram, Registry } from 'prom-client';

import { WorkQueue } from '../../src/controller/work-queue.js';
import { apiClientMetricNames } from '../../src/metrics/api-client-metrics.js';
import { spawnBuckets } from '../../src/metrics/buckets.js';
import { LeanHistogram } from '../../src/metrics/lean-histogram.js';
import { launcherMetricNames } from '../../src/metrics/launcher-metrics.js';
import { processMetricNames } from '../../src/metrics/process-metrics.js';
import { MetricsRegistry } from '../../src/metrics/registry.js';
import { spawnErrorLabel, spawnMetricNames } from '../../src/metrics/spawn-metrics.js';
import { taskMetricNames } from '../../src/metrics/task-metrics.js';
import { workQueueMetricNames } from '../../src/metrics/work-queue-metrics.js';
import { pendingReasons } from '../../src/tasks/task-status.js';

const paraforkFamilies = [spawnMetricNames, launcherMetricNames, taskMetricNames, workQueueMetricNames, apiClientMetricNames].flatMap((names) => Object.values(names));

/** The value of one series (labels matched exactly, le included for buckets), or undefined. */
async function valueOf(metrics: MetricsRegistry, series: string, labels: Readonly<Record<string, string | number>> = {}): Promise<number | undefined> {
  const family = series.replace(/_(bucket|sum|count)$/, '');
  const metric = metrics.registry.getSingleMetric(family) ?? metrics.registry.getSingleMetric(series);
  if (!metric) return undefined;
  const { values } = await metric.get();
  const wanted = Object.entries(labels);
  const found = values.find(
    (value) =>
      ((value as { metricName?: string }).metricName ?? family) === series &&
      Object.keys(value.labels).length === wanted.length &&
      wanted.every(([name, expected]) => String(value.labels[name]) === String(expected)),
  );
  return found?.value;
}

function launcherState(busyThreads: number, queued: number) {
  return { lockMode: 'xor' as const, clonePath: 'clone' as const, threads: 4, stats: () => ({ threads: 4, busyThreads, queued, running: 0 }) };
}

describe('metric names', () => {
  it('are parafork_<thing>_<unit>, each exported by its family\'s file: _total for counters, _seconds for histograms', async () => {
    const metrics = new MetricsRegistry({ processMetrics: false });
    metrics.trackLauncher(launcherState(0, 0));
    const registered = (await metrics.registry.getMetricsAsJSON()).map((metric) => ({ name: metric.name, type: String(metric.type) }));
    expect(registered.map((metric) => metric.name).sort()).toEqual([...paraforkFamilies].sort());
    for (const { name, type } of registered) {
      expect(name).toMatch(/^parafork_[a-z]+(_[a-z]+)*$/);
      if (type === 'counter') expect(name).toMatch(/_total$/);
      if (type === 'histogram') expect(name).toMatch(/_seconds$/);
      if (type === 'gauge') expect(name).not.toMatch(/_total$/);
    }
  });

  it('include the process and Node.js metrics the dashboard relies on, under their standard names', async () => {
    const metrics = new MetricsRegistry();
    const { body } = await metrics.scrape();
    for (const name of Object.values(processMetricNames)) expect(body).toContain(`# TYPE ${name} `);
    // Gauges named like counters are left out: promtool rejects them.
    expect(body).not.toContain('nodejs_active_handles_total');
  });

  it('count the event loop\'s turns between scrapes', async () => {
    const metrics = new MetricsRegistry();
    const first = (await valueOf(metrics, processMetricNames.eventLoopIterations)) ?? Number.NaN;
    await metrics.scrape();
    for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setTimeout(resolve, 1));
    await metrics.scrape();
    expect((await valueOf(metrics, processMetricNames.eventLoopIterations)) ?? Number.NaN).toBeGreaterThanOrEqual(first + 3);
  });

  it('are owned by one registry per MetricsRegistry, never the global one', async () => {
    const first = new MetricsRegistry({ processMetrics: false });
    const second = new MetricsRegistry({ processMetrics: false });
    first.spawn.spawned({ queuedNs: 1_000, spawnNs: 50_000 });
    expect(await valueOf(first, 'parafork_spawn_duration_seconds_count')).toBe(1);
    expect(await valueOf(second, 'parafork_spawn_duration_seconds_count')).toBe(0);
  });
});

describe('LeanHistogram (the spawn path\'s histogram)', () => {
  it('exposes exactly what prom-client\'s Histogram exposes for the same values', async () => {
    const values = [0, 0.000004, 0.00001, 0.00007, 0.0001, 0.0003, 0.0003, 0.002, 0.9, 2.5, 3, 120];
    const [lean, reference] = [new Registry(), new Registry()];
    const leanHistogram = new LeanHistogram({ name: 'parafork_example_seconds', help: 'An example.', buckets: spawnBuckets, registers: [lean] });
    const referenceHistogram = new Histogram({ name: 'parafork_example_seconds', help: 'An example.', buckets: [...spawnBuckets], registers: [reference] });
    for (const value of values) {
      leanHistogram.observe(value);
      referenceHistogram.observe(value);
    }
    expect(await lean.metrics()).toBe(await reference.metrics());
  });

  it('drops a value that is not a finite number instead of corrupting the sum', async () => {
    const registry = new Registry();
    const histogram = new LeanHistogram({ name: 'parafork_example_seconds', help: 'An example.', buckets: [1], registers: [registry] });
    histogram.observe(Number.NaN);
    histogram.observe(Number.POSITIVE_INFINITY);
    histogram.observe(0.5);
    expect(await registry.metrics()).toContain('parafork_example_seconds_sum 0.5\nparafork_example_seconds_count 1\n');
  });

  it('refuses bucket bounds out of order', () => {
    expect(() => new LeanHistogram({ name: 'parafork_example_seconds', help: 'An example.', buckets: [1, 0.5], registers: [] })).toThrow(/ascending/);
  });

  it('starts again from zero when the registry resets its metrics', async () => {
    const registry = new Registry();
    const histogram = new LeanHistogram({ name: 'parafork_example_seconds', help: 'An example.', buckets: [1], registers: [registry] });
    histogram.observe(0.5);
    registry.resetMetrics();
    expect(await registry.metrics()).toContain('parafork_example_seconds_count 0\n');
  });
});

describe('spawn metrics (the launcher observer)', () => {
  it('observe the natively measured spawn and queue times in seconds', async () => {
    const metrics = new MetricsRegistry({ processMetrics: false });
    metrics.spawn.spawned({ queuedNs: 3_000_000, spawnNs: 120_000 });
    expect(await valueOf(metrics, 'parafork_spawn_duration_seconds_count')).toBe(1);
    expect(await valueOf(metrics, 'parafork_spawn_duration_seconds_sum')).toBeCloseTo(0.00012, 9);
    expect(await valueOf(metrics, 'parafork_spawn_duration_seconds_bucket', { le: 0.0001 })).toBe(0);
    expect(await valueOf(metrics, 'parafork_spawn_duration_seconds_bucket', { le: 0.00025 })).toBe(1);
    expect(await valueOf(metrics, 'parafork_spawn_queue_seconds_sum')).toBeCloseTo(0.003, 9);
  });

  it('bucket spawn durations from 10 us to 2.5 s', () => {
    expect(spawnBuckets[0]).toBe(0.00001);
    expect(spawnBuckets.at(-1)).toBe(2.5);
    expect([...spawnBuckets].sort((a, b) => a - b)).toEqual(spawnBuckets);
  });

  it('count a failed spawn by its errno name, and its queue wait, but not as a spawn duration', async () => {
    const metrics = new MetricsRegistry({ processMetrics: false });
    metrics.spawn.spawnFailed('ENOENT', { queuedNs: 1_000, spawnNs: 80_000 });
    expect(await valueOf(metrics, 'parafork_spawn_errors_total', { code: 'ENOENT' })).toBe(1);
    expect(await valueOf(metrics, 'parafork_spawn_queue_seconds_count')).toBe(1);
    expect(await valueOf(metrics, 'parafork_spawn_duration_seconds_count')).toBe(0);
  });

  it('count an errno outside the known list as "other", keeping the code label bounded', async () => {
    const metrics = new MetricsRegistry({ processMetrics: false });
    metrics.spawn.spawnFailed('Unknown system error -531', { queuedNs: 0, spawnNs: 0 });
    metrics.spawn.spawnFailed('EHWPOISON', { queuedNs: 0, spawnNs: 0 });
    expect(await valueOf(metrics, 'parafork_spawn_errors_total', { code: 'other' })).toBe(2);
    expect(spawnErrorLabel('EACCES')).toBe('EACCES');
  });

  it('show every known code at 0 from the start, so that rate() sees a first failure', async () => {
    const metrics = new MetricsRegistry({ processMetrics: false });
    expect(await valueOf(metrics, 'parafork_spawn_errors_total', { code: 'EACCES' })).toBe(0);
    expect(await valueOf(metrics, 'parafork_spawn_errors_total', { code: 'other' })).toBe(0);
  });

  it('observe a child\'s natively measured run time at its exit', async () => {
    const metrics = new MetricsRegistry({ processMetrics: false });
    metrics.spawn.exited({ code: 0, signal: null, durationNs: 2_500_000_000, rusage: { userUs: 0, systemUs: 0, maxRssKb: 0 } });
    expect(await valueOf(metrics, 'parafork_process_duration_seconds_sum')).toBe(2.5);
  });
});

describe('launcher metrics (read at scrape time)', () => {
  it('report busy threads, waiting requests and the configuration from the launcher at each scrape', async () => {
    const metrics = new MetricsRegistry({ processMetrics: false });
    let busy = 1;
    metrics.trackLauncher({ ...launcherState(0, 7), stats: () => ({ threads: 4, busyThreads: busy, queued: 7, running: 0 }) });
    expect(await valueOf(metrics, 'parafork_spawn_threads_busy')).toBe(1);
    busy = 3;
    const { body } = await metrics.scrape();
    expect(body).toContain('parafork_spawn_threads_busy 3\n');
    expect(body).toContain('parafork_spawn_queue_depth 7\n');
    expect(body).toContain('parafork_spawn_threads 4\n');
    expect(body).toContain('parafork_launcher_info{lock_mode="xor",clone_path="clone",threads="4"} 1\n');
  });

  it('refuse a second launcher on one registry', () => {
    const metrics = new MetricsRegistry({ processMetrics: false });
    metrics.trackLauncher(launcherState(0, 0));
    expect(() => metrics.trackLauncher(launcherState(0, 0))).toThrow(/already been registered/);
  });
});

describe('task metrics (the reconciler observer)', () => {
  it('observe a first start since the Task was observed and since it was created', async () => {
    const metrics = new MetricsRegistry({ processMetrics: false });
    metrics.tasks.taskStarted({ sinceObservedMs: 4, sinceCreatedMs: 1_200 });
    expect(await valueOf(metrics, 'parafork_task_start_latency_seconds_sum', { since: 'observed' })).toBeCloseTo(0.004, 9);
    expect(await valueOf(metrics, 'parafork_task_start_latency_seconds_sum', { since: 'created' })).toBeCloseTo(1.2, 9);
  });

  it('count a start within the creation second (whole-second creationTimestamp) as immediate, not negative', async () => {
    const metrics = new MetricsRegistry({ processMetrics: false });
    metrics.tasks.taskStarted({ sinceObservedMs: 2, sinceCreatedMs: -300 });
    expect(await valueOf(metrics, 'parafork_task_start_latency_seconds_sum', { since: 'created' })).toBe(0);
    expect(await valueOf(metrics, 'parafork_task_start_latency_seconds_count', { since: 'created' })).toBe(1);
  });

  it('count finished Tasks by result and reason, with their duration by result', async () => {
    const metrics = new MetricsRegistry({ processMetrics: false });
    metrics.tasks.taskFinished({ phase: 'Succeeded', reason: 'Completed', durationMs: 1_500 });
    metrics.tasks.taskFinished({ phase: 'Failed', reason: 'BackoffLimitExceeded', durationMs: 9_000 });
    metrics.tasks.taskFinished({ phase: 'Failed', reason: 'DeadlineExceeded', durationMs: undefined });
    expect(await valueOf(metrics, 'parafork_tasks_finished_total', { result: 'succeeded', reason: 'Completed' })).toBe(1);
    expect(await valueOf(metrics, 'parafork_tasks_finished_total', { result: 'failed', reason: 'BackoffLimitExceeded' })).toBe(1);
    expect(await valueOf(metrics, 'parafork_tasks_finished_total', { result: 'failed', reason: 'DeadlineExceeded' })).toBe(1);
    expect(await valueOf(metrics, 'parafork_task_duration_seconds_sum', { result: 'succeeded' })).toBe(1.5);
    expect(await valueOf(metrics, 'parafork_task_duration_seconds_count', { result: 'failed' })).toBe(1);
  });

  it('start every result and reason at 0: one series per reason in the CRD a Task can end with, no more', async () => {
    const metrics = new MetricsRegistry({ processMetrics: false });
    const { values } = await metrics.registry.getSingleMetric(taskMetricNames.finished)!.get();
    expect(values.map((value) => value.labels.reason).sort()).toEqual(taskReasons.filter((reason) => !(pendingReasons as readonly string[]).includes(reason)).sort());
    expect(values.every((value) => value.value === 0)).toBe(true);
  });

  it('read the running count at each scrape', async () => {
    let running = 2;
    const metrics = new MetricsRegistry({ processMetrics: false, runningTasks: () => running });
    expect(await valueOf(metrics, 'parafork_tasks_running')).toBe(2);
    running = 5;
    expect(await valueOf(metrics, 'parafork_tasks_running')).toBe(5);
  });
});

describe('work-queue metrics (the work queue observer)', () => {
  it('count adds, depth, waits, runs and outcomes of a real queue, and never label a key', async () => {
    const metrics = new MetricsRegistry({ processMetrics: false });
    let failOnce = true;
    const queue = new WorkQueue<string>(
      (key) => {
        if (key === 'tenant-a/flaky-task' && failOnce) {
          failOnce = false;
          return Promise.reject(new Error('the apiserver is unreachable'));
        }
        return Promise.resolve(key === 'tenant-a/later-task' ? { requeueAfterMs: 60_000 } : undefined);
      },
      { concurrency: 2, baseRetryDelayMs: 1, observer: metrics.workQueue },
    );
    queue.add('tenant-a/flaky-task');
    queue.add('tenant-a/flaky-task');
    queue.add('tenant-a/later-task');
    expect(await valueOf(metrics, 'parafork_workqueue_depth')).toBe(2);
    queue.start();
    await expect.poll(() => valueOf(metrics, 'parafork_reconcile_total', { result: 'success' })).toBe(1);
    await queue.shutDown();
    expect(await valueOf(metrics, 'parafork_workqueue_adds_total')).toBe(4); // 3 adds and the retry coming due
    expect(await valueOf(metrics, 'parafork_workqueue_retries_total')).toBe(1);
    expect(await valueOf(metrics, 'parafork_reconcile_total', { result: 'retry' })).toBe(1);
    expect(await valueOf(metrics, 'parafork_reconcile_total', { result: 'requeue' })).toBe(1);
    expect(await valueOf(metrics, 'parafork_workqueue_work_duration_seconds_count')).toBe(3);
    expect(await valueOf(metrics, 'parafork_workqueue_queue_duration_seconds_count')).toBe(3);
    expect(await valueOf(metrics, 'parafork_workqueue_depth')).toBe(0);
    expect((await metrics.scrape()).body).not.toMatch(/tenant-a|flaky|later-task/);
  });
});

describe('API client metrics (the API client observer)', () => {
  it('count responses by verb and status code, and time them by verb', async () => {
    const metrics = new MetricsRegistry({ processMetrics: false });
    metrics.apiClient.responded('PATCH', 200, 12);
    metrics.apiClient.responded('PATCH', 409, 8);
    metrics.apiClient.responded('GET', 404, 3);
    expect(await valueOf(metrics, 'parafork_api_requests_total', { verb: 'PATCH', code: '409' })).toBe(1);
    expect(await valueOf(metrics, 'parafork_api_requests_total', { verb: 'GET', code: '404' })).toBe(1);
    expect(await valueOf(metrics, 'parafork_api_request_duration_seconds_count', { verb: 'PATCH' })).toBe(2);
    expect(await valueOf(metrics, 'parafork_api_request_duration_seconds_sum', { verb: 'PATCH' })).toBeCloseTo(0.02, 9);
  });

  it('count watches as verb WATCH and how their streams ended, every reason from the first scrape', async () => {
    const metrics = new MetricsRegistry({ processMetrics: false });
    expect(await valueOf(metrics, 'parafork_api_watch_ends_total', { reason: 'silent' })).toBe(0);
    metrics.apiClient.watchOpened(200);
    metrics.apiClient.watchOpened(200);
    metrics.apiClient.watchOpened(410);
    metrics.apiClient.watchEnded('closed');
    metrics.apiClient.watchEnded('silent');
    expect(await valueOf(metrics, 'parafork_api_requests_total', { verb: 'WATCH', code: '200' })).toBe(2);
    expect(await valueOf(metrics, 'parafork_api_requests_total', { verb: 'WATCH', code: '410' })).toBe(1);
    expect(await valueOf(metrics, 'parafork_api_watch_ends_total', { reason: 'closed' })).toBe(1);
    expect(await valueOf(metrics, 'parafork_api_watch_ends_total', { reason: 'silent' })).toBe(1);
    expect(await valueOf(metrics, 'parafork_api_watch_ends_total', { reason: 'expired' })).toBe(0);
  });
});

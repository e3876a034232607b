// The agent process itself: prom-client's default metrics (CPU, resident memory, open fds, heap,
// GC, event-loop lag), under their standard names (process_*, nodejs_*) so that existing dashboards
// and alerts recognise them. The names below are the ones parafork's dashboard relies on.
import { performance } from 'node:perf_hooks';

import { collectDefaultMetrics, Counter, type Registry } from 'prom-client';

export const processMetricNames = {
  cpu: 'process_cpu_seconds_total',
  residentMemory: 'process_resident_memory_bytes',
  openFds: 'process_open_fds',
  heapUsed: 'nodejs_heap_size_used_bytes',
  eventLoopLagP50: 'nodejs_eventloop_lag_p50_seconds',
  eventLoopLagP99: 'nodejs_eventloop_lag_p99_seconds',
  eventLoopLagMax: 'nodejs_eventloop_lag_max_seconds',
  gcDuration: 'nodejs_gc_duration_seconds',
  eventLoopIterations: 'parafork_event_loop_iterations_total',
} as const;

/**
 * The event-loop lag percentiles come from perf_hooks' monitorEventLoopDelay, a timer that records
 * how late it fires, and cover the time since the previous scrape. Every 20 ms, not prom-client's
 * 10: on a 2-vCPU VM each wake-up of an idle agent costs ~40 us of CPU (4.5 ms/s at 10 ms, 3 ms/s
 * at 20), and a stall of the loop shows just the same, since it delays the next tick by its length.
 */
const eventLoopSamplingMs = 20;

/** Registers the default metrics on the registry. */
export function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: eventLoopSamplingMs });
  // Gauges named like counters, which `promtool check metrics` rejects; each is the sum of its
  // by-type sibling (nodejs_active_handles{type}, ...), which stays.
  for (const name of gaugesNamedLikeCounters) registry.removeSingleMetric(name);
  countEventLoopIterations(registry);
}

/**
 * Turns of the event loop (libuv's loop count, read at each scrape): each is a wake-up of the
 * JS thread, a context switch on a busy node, so turns per Task array index say how well the
 * native results are batched (bench:array prints them).
 */
function countEventLoopIterations(registry: Registry): void {
  let counted = 0;
  new Counter({
    name: processMetricNames.eventLoopIterations,
    help: 'Turns of the agent\'s event loop (libuv\'s loop count).',
    registers: [registry],
    collect() {
      const loopCount = performance.nodeTiming.uvMetricsInfo.loopCount;
      this.inc(Math.max(0, loopCount - counted));
      counted = loopCount;
    },
  });
}

const gaugesNamedLikeCounters = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

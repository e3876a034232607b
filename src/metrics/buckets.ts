// Histogram bucket layouts, one per kind of duration, in seconds. Bounds follow a 1-2.5-5 series so
// that a quantile Prometheus interpolates is never off by more than one bucket's width, and each
// layout spans what its durations really do, no wider: every bucket is a series per agent.

/** Spawn steps measured natively: 10 us (an idle thread's clone to exec) to 2.5 s (a machine out of memory). */
export const spawnBuckets: readonly number[] = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

/** A Task waiting to start: 1 ms (claimed and launched at once) to 5 minutes (waiting for capacity). */
export const startLatencyBuckets: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
];

/** A Task's or a process's run: 1 ms (`true`) to a day. */
export const runDurationBuckets: readonly number[] = [
  0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400,
];

/** Work-queue waits and reconcile runs, as controller-runtime buckets them: 10 us to 1,000 s by factors of ten. */
export const workQueueBuckets: readonly number[] = [0.00001, 0.0001, 0.001, 0.01, 0.1, 1, 10, 100, 1000];

/** Requests to the apiserver, as client-go buckets them: 5 ms to 60 s. */
export const apiRequestBuckets: readonly number[] = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60];

// parafork_spawn_*: what the native spawn path measured for each spawn, failure and exit, counted
// from the Launcher's observer hooks. The timings arrive in the native event batches, so observing
// is a histogram increment on the JS thread and nothing more: no clock is read here, and the
// histograms are LeanHistograms, which allocate nothing (see lean-histogram.ts for the numbers).
import { Counter, type Registry } from 'prom-client';

import type { LauncherObserver } from '../launcher/launcher.js';
import type { ExitResult, SpawnTimings } from '../launcher/spawned-process.js';
import { runDurationBuckets, spawnBuckets } from './buckets.js';
import { LeanHistogram } from './lean-histogram.js';

export const spawnMetricNames = {
  spawnDuration: 'parafork_spawn_duration_seconds',
  queue: 'parafork_spawn_queue_seconds',
  errors: 'parafork_spawn_errors_total',
  processDuration: 'parafork_process_duration_seconds',
} as const;

/**
 * The errno names a spawn can fail with (execve(2), clone3(2), open(2), chdir(2), pipe2(2),
 * cgroup.procs). Anything else is counted as "other", so the code label stays bounded whatever a
 * kernel returns; the agent's log line has the exact error.
 */
export const spawnErrorCodes: readonly string[] = [
  'E2BIG', 'EACCES', 'EAGAIN', 'EBADF', 'EBUSY', 'EDQUOT', 'EFAULT', 'EINTR', 'EINVAL', 'EIO', 'EISDIR',
  'ELIBBAD', 'ELOOP', 'EMFILE', 'ENAMETOOLONG', 'ENFILE', 'ENODEV', 'ENOENT', 'ENOEXEC', 'ENOMEM', 'ENOSPC',
  'ENOSYS', 'ENOTDIR', 'ENXIO', 'EOPNOTSUPP', 'EPERM', 'EROFS', 'ESRCH', 'ETXTBSY',
];
const otherCode = 'other';
const knownCodes = new Set(spawnErrorCodes);

/** The code label for an errno name: itself when known, else "other". */
export function spawnErrorLabel(code: string): string {
  return knownCodes.has(code) ? code : otherCode;
}

export class SpawnMetrics implements LauncherObserver {
  readonly #spawnDuration: LeanHistogram;
  readonly #queue: LeanHistogram;
  readonly #errors: Counter<'code'>;
  readonly #processDuration: LeanHistogram;

  constructor(registry: Registry) {
    const registers = [registry];
    this.#spawnDuration = new LeanHistogram({
      name: spawnMetricNames.spawnDuration,
      help: 'From clone to the child having exec\'d, measured on the spawn thread; failed spawns are not included.',
      buckets: spawnBuckets,
      registers,
    });
    this.#queue = new LeanHistogram({
      name: spawnMetricNames.queue,
      help: 'From a spawn request to a spawn thread picking it up, measured natively; failed spawns included.',
      buckets: spawnBuckets,
      registers,
    });
    this.#errors = new Counter({
      name: spawnMetricNames.errors,
      help: 'Spawns that failed, by errno name (ENOENT, EACCES, ...; "other" for any errno not in the known list).',
      labelNames: ['code'],
      registers,
    });
    this.#processDuration = new LeanHistogram({
      name: spawnMetricNames.processDuration,
      help: 'From clone to the child\'s exit being observed, measured natively, for every child the launcher spawned.',
      buckets: runDurationBuckets,
      registers,
    });
    // Series that exist from the start: a rate() over a counter that appears with its first
    // increment would miss that increment.
    for (const code of [...spawnErrorCodes, otherCode]) this.#errors.inc({ code }, 0);
  }

  spawned(timings: SpawnTimings): void {
    this.#spawnDuration.observe(timings.spawnNs / 1e9);
    this.#queue.observe(timings.queuedNs / 1e9);
  }

  spawnFailed(code: string, timings: SpawnTimings): void {
    this.#errors.inc({ code: spawnErrorLabel(code) });
    this.#queue.observe(timings.queuedNs / 1e9);
  }

  exited(result: ExitResult): void {
    this.#processDuration.observe(result.durationNs / 1e9);
  }
}

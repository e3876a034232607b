// The launcher's state, read when Prometheus scrapes (a gauge's collect), never on the spawn path:
// how many spawn threads are inside a spawn, how many requests wait for one, and an info metric
// with the configuration the launcher runs with (lock mode, clone path, thread count).
import { Gauge, type Registry } from 'prom-client';

import type { ClonePath, LauncherStats, LockMode } from '../launcher/launcher.js';

export const launcherMetricNames = {
  threadsBusy: 'parafork_spawn_threads_busy',
  threads: 'parafork_spawn_threads',
  queueDepth: 'parafork_spawn_queue_depth',
  info: 'parafork_launcher_info',
} as const;

/** The part of a Launcher these metrics read. */
export interface LauncherState {
  readonly lockMode: LockMode;
  readonly clonePath: ClonePath;
  readonly threads: number;
  stats(): LauncherStats;
}

/** Registers the launcher's gauges; they read `launcher` at every scrape. One launcher per registry. */
export function trackLauncher(registry: Registry, launcher: LauncherState): void {
  const registers = [registry];
  new Gauge({
    name: launcherMetricNames.threadsBusy,
    help: 'Spawn threads inside a spawn (clone to exec) at the time of the scrape.',
    registers,
    collect() {
      this.set(launcher.stats().busyThreads);
    },
  });
  new Gauge({
    name: launcherMetricNames.queueDepth,
    help: 'Spawn requests waiting for a spawn thread at the time of the scrape.',
    registers,
    collect() {
      this.set(launcher.stats().queued);
    },
  });
  new Gauge({
    name: launcherMetricNames.threads,
    help: 'Spawn threads in the launcher\'s pool.',
    registers,
  }).set(launcher.threads);
  new Gauge({
    name: launcherMetricNames.info,
    help: 'The launcher\'s configuration: lock mode (free, xor, serial), clone path (clone3, clone) and spawn thread count; always 1.',
    labelNames: ['lock_mode', 'clone_path', 'threads'],
    registers,
  }).set({ lock_mode: launcher.lockMode, clone_path: launcher.clonePath, threads: String(launcher.threads) }, 1);
}

// The Task logs' totals, read when Prometheus scrapes (never on the write path, which is the
// native log pump's): from the launcher, bytes Tasks wrote into logs, bytes the caps dropped, logs
// open; from the node's log store, the log files on disk and their size, as its last walk found them.
import { Counter, Gauge, type Registry } from 'prom-client';

import type { LogStats } from '../launcher/launcher.js';

export const logMetricNames = {
  bytes: 'parafork_task_log_bytes_total',
  droppedBytes: 'parafork_task_log_dropped_bytes_total',
  open: 'parafork_task_logs_open',
  files: 'parafork_task_log_files',
  diskBytes: 'parafork_task_log_disk_bytes',
} as const;

/** The part of a Launcher these metrics read. */
export interface LogStatsSource {
  logStats(): LogStats;
}

/** The node's Task logs on disk (src/logs/task-log-store.ts). */
export interface LogDiskUsage {
  readonly files: number;
  readonly bytes: number;
}

/** The part of a TaskLogStore these metrics read: undefined before its first walk of the logs. */
export interface LogDiskUsageSource {
  readonly diskUsage: LogDiskUsage | undefined;
}

/** Registers the gauges of the node's log files and bytes; they read `source` at every scrape. One source per registry. */
export function trackLogDiskUsage(registry: Registry, source: LogDiskUsageSource): void {
  const registers = [registry];
  new Gauge({
    name: logMetricNames.files,
    help: 'Task log files on the node (every attempt\'s log and its rotated part), as the log store last counted them (every 30 s).',
    registers,
    collect() {
      this.set(source.diskUsage?.files ?? 0);
    },
  });
  new Gauge({
    name: logMetricNames.diskBytes,
    help: 'Bytes of those files; --logs-max-bytes-total bounds it (the logs of the finished Tasks written longest ago go first).',
    registers,
    collect() {
      this.set(source.diskUsage?.bytes ?? 0);
    },
  });
}

/** Registers the log metrics; they read `source` at every scrape. One source per registry. */
export function trackLogs(registry: Registry, source: LogStatsSource): void {
  const registers = [registry];
  // The launcher's totals only grow: each scrape adds what was written since the last.
  let counted = { bytes: 0, droppedBytes: 0 };
  const catchUp = (): void => {
    const { bytes, droppedBytes } = source.logStats();
    bytesCounter.inc(Math.max(0, bytes - counted.bytes));
    droppedCounter.inc(Math.max(0, droppedBytes - counted.droppedBytes));
    counted = { bytes, droppedBytes };
  };
  const bytesCounter: Counter = new Counter({
    name: logMetricNames.bytes,
    help: 'Bytes Tasks wrote to stdout and stderr, taken into their logs by the native log pump.',
    registers,
    collect: catchUp,
  });
  const droppedCounter: Counter = new Counter({
    name: logMetricNames.droppedBytes,
    help: 'Of those bytes, the ones no longer on disk: rotated away by a log\'s cap (the oldest first) or refused by the disk.',
    registers,
    collect: catchUp,
  });
  new Gauge({
    name: logMetricNames.open,
    help: 'Task logs being written: attempts whose stdout or stderr is still open.',
    registers,
    collect() {
      this.set(source.logStats().openLogs);
    },
  });
}

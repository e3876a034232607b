// The Task logs' totals, read from the launcher when Prometheus scrapes (never on the write path,
// which is the native log pump's): bytes Tasks wrote into logs, bytes the caps dropped, logs open.
import { Counter, Gauge, type Registry } from 'prom-client';

import type { LogStats } from '../launcher/launcher.js';

export const logMetricNames = {
  bytes: 'parafork_task_log_bytes_total',
  droppedBytes: 'parafork_task_log_dropped_bytes_total',
  open: 'parafork_task_logs_open',
} as const;

/** The part of a Launcher these metrics read. */
export interface LogStatsSource {
  logStats(): LogStats;
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

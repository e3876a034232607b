// The Task log metrics read the launcher's log totals at scrape time and count them as they grow.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';

import { TaskLogStore } from '../../src/logs/task-log-store.js';
import { logMetricNames, trackLogDiskUsage, trackLogs } from '../../src/metrics/log-metrics.js';

describe('the Task log metrics', () => {
  it('count the bytes written and dropped as the launcher reports them, and gauge the open logs', async () => {
    const registry = new Registry();
    let stats = { openLogs: 2, bytes: 1000, droppedBytes: 0 };
    trackLogs(registry, { logStats: () => stats });
    expect(await registry.metrics()).toContain(`${logMetricNames.bytes} 1000`);
    stats = { openLogs: 0, bytes: 5000, droppedBytes: 1200 };
    const text = await registry.metrics();
    expect(text).toContain(`${logMetricNames.bytes} 5000`);
    expect(text).toContain(`${logMetricNames.droppedBytes} 1200`);
    expect(text).toContain(`${logMetricNames.open} 0`);
  });

  it('gauge the log files on the node and their bytes as the log store\'s last walk found them, 0 before it', async () => {
    const directory = mkdtempSync(path.join(os.tmpdir(), 'parafork-log-metrics-'));
    try {
      const store = new TaskLogStore({ directory, maxBytesPerAttempt: 1 << 20 });
      const registry = new Registry();
      trackLogDiskUsage(registry, store);
      expect(await registry.metrics()).toContain(`${logMetricNames.files} 0`);
      const owner = { namespace: 'default', name: 'writer', uid: 'f00d' };
      mkdirSync(store.taskDirectory(owner));
      writeFileSync(store.attemptPath(owner, 1), 'x'.repeat(300));
      writeFileSync(`${store.attemptPath(owner, 1)}.1`, 'x'.repeat(200));
      writeFileSync(store.attemptPath(owner, 2), 'x'.repeat(100));
      await store.evictOldest(1 << 30, () => true);
      const text = await registry.metrics();
      expect(text).toContain(`${logMetricNames.files} 3`);
      expect(text).toContain(`${logMetricNames.diskBytes} 600`);
      // Past the node's cap the walk removes the finished Task's logs, and counts what is left.
      await store.evictOldest(500, () => true);
      expect(await registry.metrics()).toContain(`${logMetricNames.diskBytes} 0`);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

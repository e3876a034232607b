// The Task log metrics read the launcher's log totals at scrape time and count them as they grow.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';

import { logMetricNames, trackLogs } from '../../src/metrics/log-metrics.js';

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
});

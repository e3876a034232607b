// Task array metrics (issue 17): index attempts started, and ended by result and reason, fed by the
// reconciler's observer hooks; every ending reason's series exists from the start.
import { describe, expect, it } from 'vitest';

import { MetricsRegistry } from '../../src/metrics/registry.js';
import { taskMetricNames } from '../../src/metrics/task-metrics.js';

async function samples(metrics: MetricsRegistry, name: string): Promise<{ labels: Record<string, string | number>; value: number }[]> {
  const metric = metrics.registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`${name} is not registered`);
  return (await metric.get()).values.map((value) => ({ labels: { ...value.labels } as Record<string, string | number>, value: value.value }));
}

describe('array index metrics', () => {
  it('count index attempts started and ended, by result and reason', async () => {
    const metrics = new MetricsRegistry({ processMetrics: false });
    metrics.tasks.arrayIndexStarted();
    metrics.tasks.arrayIndexStarted();
    metrics.tasks.arrayIndexFinished('Completed');
    metrics.tasks.arrayIndexFinished('OOMKilled');
    expect((await samples(metrics, taskMetricNames.arrayIndexesStarted))[0]?.value).toBe(2);
    const finished = await samples(metrics, taskMetricNames.arrayIndexesFinished);
    expect(finished.find((sample) => sample.labels.reason === 'Completed')).toMatchObject({ labels: { result: 'succeeded' }, value: 1 });
    expect(finished.find((sample) => sample.labels.reason === 'OOMKilled')).toMatchObject({ labels: { result: 'failed' }, value: 1 });
    expect(finished.find((sample) => sample.labels.reason === 'Error')?.value).toBe(0);
  });
});

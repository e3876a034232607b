// /metrics under a flood of scrapers (docs/security.md, "Left open": 32 clients scraping back to
// back kept the agent's JS thread rendering, /healthz at 74 ms p50 and 0.9 s at worst). Each
// render walks every series on the one JavaScript thread, so renders are shared: a scrape that
// comes while one is waiting to start gets that one, and renders are spaced so that they take at
// most about a tenth of the thread. Every scrape still sees what was counted before it came.
import { Counter } from 'prom-client';
import { describe, expect, it, vi } from 'vitest';

import { MetricsRegistry } from '../../src/metrics/registry.js';

describe('MetricsRegistry.scrape under a flood', () => {
  it('renders once for scrapes that come together, and every one gets the same text', async () => {
    const metrics = new MetricsRegistry({ processMetrics: false });
    const render = vi.spyOn(metrics.registry, 'metrics');
    const scrapes = await Promise.all(Array.from({ length: 50 }, () => metrics.scrape()));
    expect(render.mock.calls.length).toBeLessThanOrEqual(2);
    expect(new Set(scrapes.map((scrape) => scrape.body)).size).toBe(1);
  });

  it('shows in every scrape what was counted before it came', async () => {
    const metrics = new MetricsRegistry({ processMetrics: false });
    const counter = new Counter({ name: 'test_flood_total', help: 'counted by the test', registers: [metrics.registry] });
    for (let count = 1; count <= 20; count++) {
      counter.inc();
      const { body } = await metrics.scrape();
      expect(body).toContain(`test_flood_total ${count}\n`);
    }
  });

  it('spends at most about a tenth of the thread on renders when scrapers never stop', async () => {
    const metrics = new MetricsRegistry({ processMetrics: false });
    // A registry as slow to render as the agent's under load: 4 ms of the thread each.
    const original = metrics.registry.metrics.bind(metrics.registry);
    let renderMs = 0;
    vi.spyOn(metrics.registry, 'metrics').mockImplementation(async () => {
      const started = performance.now();
      while (performance.now() - started < 4) {
        // busy, as a render is
      }
      renderMs += performance.now() - started;
      return original();
    });
    const started = performance.now();
    const deadline = started + 1_000;
    // 16 scrapers, each scraping again as soon as it has its answer.
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (performance.now() < deadline) await metrics.scrape();
    }));
    const elapsed = performance.now() - started;
    expect(renderMs / elapsed).toBeLessThan(0.2);
  });
});

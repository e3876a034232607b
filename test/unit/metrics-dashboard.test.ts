// The Grafana dashboard (charts/parafork/dashboards/parafork.json) as a specification: real Grafana
// 10+ JSON whose every query goes through the datasource variable, is filtered by the node
// variable, and asks only for metrics the agent exports. That each query also runs and returns
// data on a real Prometheus is test/integration/metrics-prometheus.test.ts.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { apiClientMetricNames } from '../../src/metrics/api-client-metrics.js';
import { launcherMetricNames } from '../../src/metrics/launcher-metrics.js';
import { logMetricNames } from '../../src/metrics/log-metrics.js';
import { processMetricNames } from '../../src/metrics/process-metrics.js';
import { spawnMetricNames } from '../../src/metrics/spawn-metrics.js';
import { taskMetricNames } from '../../src/metrics/task-metrics.js';
import { workQueueMetricNames } from '../../src/metrics/work-queue-metrics.js';

const dashboardPath = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../charts/parafork/dashboards/parafork.json');

interface Target {
  readonly expr?: string;
  readonly refId?: string;
  readonly datasource?: { readonly type?: string; readonly uid?: string };
}
interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly gridPos: { readonly x: number; readonly y: number; readonly w: number; readonly h: number };
  readonly datasource?: { readonly type?: string; readonly uid?: string };
  readonly targets?: readonly Target[];
  readonly panels?: readonly Panel[];
}
interface Variable {
  readonly name: string;
  readonly type: string;
  readonly query: unknown;
  readonly datasource?: { readonly uid?: string };
}
interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly schemaVersion: number;
  readonly panels: readonly Panel[];
  readonly templating: { readonly list: readonly Variable[] };
}

const dashboard = JSON.parse(readFileSync(dashboardPath, 'utf8')) as Dashboard;
const panels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
const queryPanels = panels.filter((panel) => panel.type !== 'row');
const targets = queryPanels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel, target })));

const exported = new Set<string>(
  [spawnMetricNames, launcherMetricNames, taskMetricNames, workQueueMetricNames, apiClientMetricNames, processMetricNames, logMetricNames].flatMap((names) => Object.values(names)),
);

/** Metric names in a PromQL expression: identifiers followed by a selector or a range, not functions or labels. */
function metricNamesIn(expression: string): string[] {
  const withoutStrings = expression.replace(/"[^"]*"/g, '""');
  return [...withoutStrings.matchAll(/\b([a-z_][a-z0-9_]*)\s*(?=\{|\[)/g)].map((match) => match[1] ?? '');
}

describe('the Grafana dashboard', () => {
  it('is Grafana 10+ JSON with a stable uid and a title', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(38);
    expect(dashboard.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(dashboard.title).toBe('parafork');
  });

  it('has a Prometheus datasource variable and a multi-value node variable listing the agents', () => {
    const [datasource, node] = ['datasource', 'node'].map((name) => dashboard.templating.list.find((variable) => variable.name === name));
    expect(datasource).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(node).toMatchObject({ type: 'query', multi: true, includeAll: true, allValue: '.*', datasource: { uid: '${datasource}' } });
    expect(JSON.stringify(node?.query)).toContain('label_values(parafork_launcher_info, node)');
  });

  it('asks every query through the datasource variable', () => {
    for (const { panel, target } of targets) {
      expect(target.datasource, `${panel.title} ${target.refId ?? ''}`).toEqual({ type: 'prometheus', uid: '${datasource}' });
    }
  });

  it('filters every metric selector by the node variable', () => {
    for (const { panel, target } of targets) {
      const expression = target.expr ?? '';
      const selectors = expression.match(/\b[a-z_][a-z0-9_]*\{[^}]*\}/g) ?? [];
      // parafork_launcher_info on the right of `and on (instance)` only restricts the left side.
      const filtered = selectors.filter((selector) => !expression.includes(`and on (instance) ${selector}`));
      expect(filtered.length, panel.title).toBeGreaterThan(0);
      for (const selector of filtered) expect(selector, panel.title).toContain('node=~"$node"');
    }
  });

  it('queries only metrics the agent exports', () => {
    for (const { panel, target } of targets) {
      for (const name of metricNamesIn(target.expr ?? '')) {
        expect(exported.has(name.replace(/_(bucket|sum|count)$/, '')) || exported.has(name), `${panel.title}: ${name}`).toBe(true);
      }
    }
  });

  it('shows what the issue asks for: spawn latency quantiles and heatmap, spawns/s, tasks running, outcomes, start latency, queue depth, API errors, event-loop lag, RSS and CPU', () => {
    const expressions = targets.map(({ target }) => target.expr ?? '');
    const wanted = [
      /histogram_quantile\(0\.5, .*parafork_spawn_duration_seconds_bucket/,
      /histogram_quantile\(0\.9, .*parafork_spawn_duration_seconds_bucket/,
      /histogram_quantile\(0\.99, .*parafork_spawn_duration_seconds_bucket/,
      /rate\(parafork_spawn_duration_seconds_count/,
      /parafork_tasks_running/,
      /parafork_tasks_finished_total/,
      /parafork_task_start_latency_seconds_bucket/,
      /parafork_workqueue_depth/,
      /parafork_api_requests_total\{[^}]*code=~"\[45\]\.\."/,
      /nodejs_eventloop_lag_p99_seconds/,
      /process_resident_memory_bytes/,
      /rate\(process_cpu_seconds_total/,
    ];
    for (const pattern of wanted) expect(expressions.some((expression) => pattern.test(expression)), String(pattern)).toBe(true);
    expect(queryPanels.some((panel) => panel.type === 'heatmap' && panel.targets?.some((target) => target.expr?.includes('parafork_spawn_duration_seconds_bucket')))).toBe(true);
  });

  it('has a Task output row with what issue 15 asks for: bytes written, bytes dropped by the cap, log files and their size on the node', () => {
    const row = dashboard.panels.find((panel) => panel.type === 'row' && panel.title === 'Task output');
    expect(row).toBeDefined();
    const below = queryPanels.filter((panel) => panel.gridPos.y > (row?.gridPos.y ?? Infinity));
    const expressions = below.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr ?? ''));
    for (const name of [logMetricNames.bytes, logMetricNames.droppedBytes, logMetricNames.files, logMetricNames.diskBytes, logMetricNames.open]) {
      expect(expressions.some((expression) => metricNamesIn(expression).includes(name)), name).toBe(true);
    }
  });

  it('gives every panel a unique id and a place inside the 24-column grid, without overlaps', () => {
    const ids = panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const panel of panels) {
      const { x, y, w, h } = panel.gridPos;
      expect(x + w, panel.title).toBeLessThanOrEqual(24);
      for (let column = x; column < x + w; column++) {
        for (let row = y; row < y + h; row++) {
          const cell = `${column},${row}`;
          expect(cells.has(cell), `${panel.title} overlaps at ${cell}`).toBe(false);
          cells.add(cell);
        }
      }
    }
  });

  it('gives every target a unique refId within its panel', () => {
    for (const panel of queryPanels) {
      const refIds = (panel.targets ?? []).map((target) => target.refId);
      expect(refIds.length, panel.title).toBeGreaterThan(0);
      expect(new Set(refIds).size, panel.title).toBe(refIds.length);
    }
  });
});

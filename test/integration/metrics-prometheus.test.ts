// The metrics as an operator meets them: a real Prometheus (Debian's /usr/bin/prometheus, its own
// data directory, loopback only, scraping every second) scrapes a real agent that ran Tasks, and
// everything is checked through Prometheus's HTTP API: the spawn histogram has samples, outcomes
// are counted by reason, and every PromQL expression of the Grafana dashboard parses and returns
// data. `promtool check metrics` lints the agent's /metrics. A second Prometheus scrapes 1,000
// spawns of an in-process Launcher, and its histogram_quantile p99 must land in the bucket that
// holds the exact p99 of those spawns' own natively measured times.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startHttpServer, type HttpServer } from '../../src/http/http-server.js';
import { Launcher } from '../../src/launcher/launcher.js';
import { spawnBuckets } from '../../src/metrics/buckets.js';
import { MetricsRegistry } from '../../src/metrics/registry.js';
import { startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { createTestNamespace, kubectl, waitFor, type TestNamespace } from '../helpers/cluster.js';

const prometheusBinary = '/usr/bin/prometheus';
const promtoolBinary = '/usr/bin/promtool';
const dashboardPath = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../charts/parafork/dashboards/parafork.json');

/** Scrape interval of the test Prometheus. */
const scrapeIntervalSeconds = 1;
/**
 * What `$__rate_interval` becomes: many scrapes, and long enough to hold the whole run from the
 * first Task to the queries even on a slow machine (the Tasks may take up to a minute to finish).
 */
const rateWindow = '2m';

interface Sample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: readonly [number, string];
}

interface Prometheus {
  /** Runs an instant query; throws with Prometheus's error when it does not parse or fails. */
  query(expression: string): Promise<Sample[]>;
  labelValues(label: string, match: string): Promise<string[]>;
  stop(): Promise<void>;
}

async function freeLoopbackPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts Prometheus scraping `targets` (each labelled node=..., as the chart's ServiceMonitor does) and waits until it has scraped them. */
async function startPrometheus(targets: readonly { readonly address: string; readonly node: string }[]): Promise<Prometheus> {
  if (!existsSync(prometheusBinary)) throw new Error(`${prometheusBinary} is missing: install Debian's prometheus package (scripts/setup.sh --tests does)`);
  const directory = mkdtempSync(path.join(tmpdir(), 'parafork-prometheus-'));
  const port = await freeLoopbackPort();
  const configuration = {
    global: { scrape_interval: `${scrapeIntervalSeconds}s`, scrape_timeout: `${scrapeIntervalSeconds}s`, evaluation_interval: `${scrapeIntervalSeconds}s` },
    scrape_configs: [{ job_name: 'parafork', static_configs: targets.map(({ address, node }) => ({ targets: [address], labels: { node } })) }],
  };
  // JSON is YAML.
  writeFileSync(path.join(directory, 'prometheus.yml'), JSON.stringify(configuration));
  const child: ChildProcess = spawn(
    prometheusBinary,
    [
      `--config.file=${path.join(directory, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(directory, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (log += chunk));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const base = `http://127.0.0.1:${port}`;

  async function api<T>(pathAndQuery: string): Promise<T> {
    const response = await fetch(`${base}${pathAndQuery}`);
    const body = (await response.json()) as { status: string; data: T; errorType?: string; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${pathAndQuery}: ${body.errorType ?? ''} ${body.error ?? ''}`);
    return body.data;
  }

  const prometheus: Prometheus = {
    async query(expression) {
      const data = await api<{ resultType: string; result: Sample[] }>(`/api/v1/query?query=${encodeURIComponent(expression)}`);
      if (data.resultType !== 'vector') throw new Error(`${expression} gave a ${data.resultType}, not an instant vector`);
      return data.result;
    },
    labelValues: (label, match) => api<string[]>(`/api/v1/label/${encodeURIComponent(label)}/values?match[]=${encodeURIComponent(match)}`),
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(directory, { recursive: true, force: true });
    },
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${log}`);
        const up = await prometheus.query('up{job="parafork"} == 1');
        return up.length === targets.length ? true : undefined;
      },
      { description: `Prometheus on port ${port} to scrape ${targets.map((target) => target.address).join(', ')}`, timeoutMs: 30_000, intervalMs: 250 },
    );
  } catch (error) {
    await prometheus.stop();
    throw error;
  }
  return prometheus;
}

/** Waits until Prometheus has scraped the target after `since` (epoch seconds) at least `scrapes` times more. */
async function waitForScrapes(prometheus: Prometheus, node: string, scrapes: number): Promise<void> {
  const [first] = await prometheus.query(`timestamp(up{node="${node}"})`);
  const since = Number(first?.value[1] ?? 0);
  await waitFor(
    async () => {
      const [latest] = await prometheus.query(`timestamp(up{node="${node}"})`);
      return Number(latest?.value[1] ?? 0) >= since + scrapes * scrapeIntervalSeconds ? true : undefined;
    },
    { description: `${scrapes} more scrapes of ${node}`, timeoutMs: 30_000, intervalMs: 250 },
  );
}

function valueOf(samples: readonly Sample[]): number | undefined {
  return samples[0] === undefined ? undefined : Number(samples[0].value[1]);
}

interface DashboardQuery {
  readonly panel: string;
  readonly expression: string;
}

/** Every PromQL expression of the dashboard's panels, with the template variables substituted. */
function dashboardQueries(node: string): DashboardQuery[] {
  interface Panel {
    readonly title: string;
    readonly targets?: readonly { readonly expr?: string }[];
    readonly panels?: readonly Panel[];
  }
  const dashboard = JSON.parse(readFileSync(dashboardPath, 'utf8')) as { panels: readonly Panel[] };
  const panels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
  return panels.flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({
      panel: panel.title,
      expression: (target.expr ?? '').replaceAll('$__rate_interval', rateWindow).replaceAll('$node', node),
    })),
  );
}

describe('an agent that ran Tasks, scraped by Prometheus', () => {
  const nodeName = 'metrics-node';
  const marker = randomBytes(3).toString('hex');
  const succeeding = 20;
  const failing = 5;
  const missing = 3;
  let namespace: TestNamespace;
  let agent: AgentProcess;
  let agentUrl: string;
  let prometheus: Prometheus;

  beforeAll(async () => {
    namespace = await createTestNamespace('metrics');
    agent = await startAgent(nodeName);
    const port = /"port":(\d+)[^\n]*"msg":"agent ready"/.exec(agent.logs())?.[1];
    if (port === undefined) throw new Error(`the agent did not log its port: ${agent.logs()}`);
    agentUrl = `http://127.0.0.1:${port}`;
    prometheus = await startPrometheus([{ address: `127.0.0.1:${port}`, node: nodeName }]);

    const task = (name: string, command: readonly string[]): object => ({
      apiVersion: 'parafork.dev/v1alpha1',
      kind: 'Task',
      metadata: { name: `${name}-${marker}`, namespace: namespace.name },
      spec: { nodeName, command },
    });
    const tasks = [
      ...Array.from({ length: succeeding }, (_, index) => task(`ok-${index}`, ['true'])),
      ...Array.from({ length: failing }, (_, index) => task(`exit-${index}`, ['sh', '-c', 'exit 3'])),
      ...Array.from({ length: missing }, (_, index) => task(`missing-${index}`, ['/no/such/program'])),
    ];
    // Scraped once before the Tasks: every rate() below then sees their increase.
    await waitForScrapes(prometheus, nodeName, 1);
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: tasks }) });
    await waitFor(
      async (observed) => {
        const phases = (await kubectl(['get', 'tasks.parafork.dev', '-n', namespace.name, '-o', 'jsonpath={.items[*].status.phase}'])).split(' ');
        const finished = phases.filter((phase) => phase === 'Succeeded' || phase === 'Failed').length;
        observed(`${finished} of ${tasks.length} finished`);
        return finished === tasks.length ? true : undefined;
      },
      { description: 'every Task to finish', timeoutMs: 60_000, intervalMs: 250 },
    );
    // The counts are written as each status lands; a few scrapes later Prometheus has them all.
    await waitForScrapes(prometheus, nodeName, 3);
  });

  afterAll(async () => {
    await prometheus?.stop();
    await agent?.stop();
    await namespace?.cleanup();
  });

  it('serves /metrics in the text format, and promtool check metrics finds nothing to complain about', async () => {
    const response = await fetch(`${agentUrl}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const body = await response.text();
    const lint = spawnSync(promtoolBinary, ['check', 'metrics'], { input: body, encoding: 'utf8', timeout: 30_000 });
    expect(lint.error).toBeUndefined();
    expect({ status: lint.status, output: `${lint.stdout}${lint.stderr}` }).toEqual({ status: 0, output: '' });
  });

  it('has spawn-histogram samples in Prometheus, one per process the Tasks started', async () => {
    const count = valueOf(await prometheus.query(`parafork_spawn_duration_seconds_count{node="${nodeName}"}`));
    expect(count).toBe(succeeding + failing);
    const buckets = await prometheus.query(`parafork_spawn_duration_seconds_bucket{node="${nodeName}"}`);
    const bounds = buckets.map((sample) => (sample.metric.le === '+Inf' ? Infinity : Number(sample.metric.le)));
    expect(bounds.sort((a, b) => a - b)).toEqual([...spawnBuckets, Infinity]);
    expect(valueOf(await prometheus.query(`parafork_spawn_duration_seconds_bucket{node="${nodeName}", le="+Inf"}`))).toBe(count);
    expect(valueOf(await prometheus.query(`parafork_spawn_errors_total{node="${nodeName}", code="ENOENT"}`))).toBe(missing);
  });

  it('counts the Tasks\' outcomes by result and reason, and their first starts', async () => {
    const finished = await prometheus.query(`parafork_tasks_finished_total{node="${nodeName}"} > 0`);
    const byOutcome = Object.fromEntries(finished.map((sample) => [`${sample.metric.result}/${sample.metric.reason}`, Number(sample.value[1])]));
    expect(byOutcome).toEqual({ 'succeeded/Completed': succeeding, 'failed/Error': failing, 'failed/ExecFailed': missing });
    const starts = await prometheus.query(`parafork_task_start_latency_seconds_count{node="${nodeName}"}`);
    expect(Object.fromEntries(starts.map((sample) => [sample.metric.since, Number(sample.value[1])]))).toEqual({ observed: succeeding + failing, created: succeeding + failing });
    expect(valueOf(await prometheus.query(`parafork_tasks_running{node="${nodeName}"}`))).toBe(0);
  });

  it('runs every PromQL expression of the Grafana dashboard, each parsing and returning data for the node', async () => {
    const queries = dashboardQueries(nodeName);
    expect(queries.length).toBeGreaterThan(20);
    const problems: string[] = [];
    for (const { panel, expression } of queries) {
      try {
        const samples = await prometheus.query(expression);
        if (!samples.some((sample) => Number.isFinite(Number(sample.value[1])))) {
          problems.push(`${panel}: ${expression} returned ${samples.length === 0 ? 'nothing' : 'only NaN or Inf'}`);
        }
      } catch (error) {
        problems.push(`${panel}: ${(error as Error).message}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('offers the node in the dashboard\'s node variable (label_values(parafork_launcher_info, node))', async () => {
    expect(await prometheus.labelValues('node', 'parafork_launcher_info')).toEqual([nodeName]);
  });

  it('never puts a Task\'s name, namespace or uid in a label', async () => {
    const body = await (await fetch(`${agentUrl}/metrics`)).text();
    const uids = (await kubectl(['get', 'tasks.parafork.dev', '-n', namespace.name, '-o', 'jsonpath={.items[*].metadata.uid}'])).split(' ');
    for (const forbidden of [marker, namespace.name, ...uids]) expect(body).not.toContain(forbidden);
  });
});

describe('the spawn histogram against the exact p99 of the same 1,000 spawns', () => {
  const nodeName = 'p99-node';
  let metrics: MetricsRegistry;
  let launcher: Launcher;
  let server: HttpServer;
  let prometheus: Prometheus;

  beforeAll(async () => {
    metrics = new MetricsRegistry();
    launcher = new Launcher({ observer: metrics.spawn });
    metrics.trackLauncher(launcher);
    server = await startHttpServer({ address: '127.0.0.1', port: 0, ready: () => true, metrics: () => metrics.scrape() });
    prometheus = await startPrometheus([{ address: `127.0.0.1:${server.port}`, node: nodeName }]);
  });

  afterAll(async () => {
    await prometheus?.stop();
    await server?.close();
    await launcher?.close();
  });

  it('Prometheus\'s histogram_quantile(0.99) falls in the bucket that holds the exact p99', async () => {
    const total = 1_000;
    const concurrency = 50;
    const spawnSeconds: number[] = [];
    let issued = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (issued < total) {
          issued++;
          const child = await launcher.spawn({ file: '/bin/true' });
          spawnSeconds.push(child.timings.spawnNs / 1e9);
          await child.exited;
        }
      }),
    );
    expect(spawnSeconds).toHaveLength(total);
    await waitFor(
      async () => (valueOf(await prometheus.query(`parafork_spawn_duration_seconds_count{node="${nodeName}"}`)) === total ? true : undefined),
      { description: `Prometheus to have scraped all ${total} spawns`, timeoutMs: 30_000, intervalMs: 250 },
    );

    const sorted = [...spawnSeconds].sort((a, b) => a - b);
    // Nearest rank: the 990th of 1,000, the rank histogram_quantile looks for (0.99 x count).
    const exact = sorted[Math.ceil(0.99 * total) - 1]!;
    const estimate = valueOf(await prometheus.query(`histogram_quantile(0.99, parafork_spawn_duration_seconds_bucket{node="${nodeName}"})`))!;
    const bucketOf = (seconds: number): number => spawnBuckets.findIndex((upper) => seconds <= upper);
    const upper = spawnBuckets[bucketOf(exact)]!;
    const lower = spawnBuckets[bucketOf(exact) - 1] ?? 0;
    console.log(`1,000 spawns: exact p99 ${(exact * 1e6).toFixed(1)} us, Prometheus histogram_quantile(0.99) ${(estimate * 1e6).toFixed(1)} us, bucket (${lower * 1e6}, ${upper * 1e6}] us`);
    expect(estimate).toBeGreaterThanOrEqual(lower);
    expect(estimate).toBeLessThanOrEqual(upper);
    const sum = valueOf(await prometheus.query(`parafork_spawn_duration_seconds_sum{node="${nodeName}"}`))!;
    expect(sum).toBeCloseTo(spawnSeconds.reduce((all, seconds) => all + seconds, 0), 6);
  });
});

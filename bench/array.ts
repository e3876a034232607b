// npm run bench:array — Task arrays (issue 17) end to end on a local apiserver and one agent,
// with the control plane on the same cores:
//   1. baseline: sandboxed spawns/s of /bin/true through the Launcher in this process, at
//      concurrency 50 with the default sandbox (what bench:sandbox calls "full default"), measured
//      in the same run, so the array's rate is a ratio against it;
//   2. one array of --indexes (default 100,000) sandboxed /bin/true: indexes/s (from the array's
//      startTime to completionTime, and create to Complete as seen by a watch), p99 spawn latency
//      (status.indexTimings), API writes the agent made for the whole Task, agent peak RSS, size
//      of the final status; the bars: >= 0.8x the baseline, <= 200 writes, <= 150 MB;
//   3. --compare (default 10,000) indexes as one array vs as that many separate Tasks: Tasks/s,
//      API requests, apiserver + etcd CPU seconds.
// Prints tables and writes JSON to bench/results/. Needs root (sandbox, cgroups). Not a test.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import type { Task } from '../dist/api/task.js';
import { Launcher } from '../dist/index.js';
import { apiRequestsByVerb, defaultAgentNodeOptions, formatTable, loadAverage, log, machineLine, ProcessSampler, startBenchAgent, startCluster, taskCollection, watchTasks, type BenchAgent, type BenchCluster } from './cluster-harness.ts';

const { values: flags } = parseArgs({
  options: {
    indexes: { type: 'string', default: '100000' },
    compare: { type: 'string', default: '10000' },
    'baseline-spawns': { type: 'string', default: '5000' },
    parallelism: { type: 'string' },
    'in-flight': { type: 'string', default: '50' },
    'node-options': { type: 'string', default: defaultAgentNodeOptions },
  },
});

const indexes = Number(flags.indexes);
const compareCount = Number(flags.compare);
const command = ['/bin/true'];
const now = (): number => performance.timeOrigin + performance.now();

/** Sandboxed spawns/s through the Launcher at concurrency 50: the rate an array should approach. */
async function baselineSpawnsPerSecond(count: number): Promise<number> {
  const launcher = new Launcher();
  try {
    let issued = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (issued++ < count) await (await launcher.spawn({ file: '/bin/true', sandbox: {} })).exited;
      }),
    );
    return (count / (performance.now() - started)) * 1000;
  } finally {
    await launcher.close();
  }
}

interface ArrayRun {
  readonly indexes: number;
  readonly phase: string | undefined;
  readonly indexesPerSecond: number;
  readonly createToDoneSeconds: number;
  readonly p99SpawnLatencyMs: number | undefined;
  readonly apiWrites: number;
  readonly apiRequests: number;
  readonly agentPeakRssMb: number;
  readonly controlPlaneCpuSeconds: number;
  readonly statusBytes: number;
}

/** Once the watch is established: the agent's API requests and the control plane's CPU so far, an RSS sampler, the start time. */
async function startMeasuring(cluster: BenchCluster, agent: BenchAgent): Promise<{ requestsBefore: Map<string, number>; controlPlaneBefore: number; sampler: ProcessSampler; createdAt: number }> {
  await new Promise((resolve) => setTimeout(resolve, 500));
  return { requestsBefore: await apiRequestsByVerb(agent.port), controlPlaneBefore: cluster.controlPlaneCpuSeconds(), sampler: new ProcessSampler(agent.pid, 250), createdAt: now() };
}

/** Sum of every verb but GET/LIST/WATCH: what the agent wrote. */
function writesOf(before: Map<string, number>, after: Map<string, number>): { writes: number; requests: number } {
  let writes = 0;
  let requests = 0;
  for (const [verb, total] of after) {
    const delta = total - (before.get(verb) ?? 0);
    requests += delta;
    if (verb !== 'GET' && verb !== 'LIST' && verb !== 'WATCH') writes += delta;
  }
  return { writes, requests };
}

async function runArray(cluster: BenchCluster, count: number): Promise<ArrayRun> {
  const namespace = await cluster.createNamespace('array');
  const nodeName = 'bench-array';
  const agent = await startBenchAgent(cluster.kubeconfigPath, nodeName, [], flags['node-options'].split(' ').filter(Boolean));
  const watchAbort = new AbortController();
  const { promise: finished, resolve: markFinished } = Promise.withResolvers<Task>();
  const watching = watchTasks(cluster.client, namespace, (event) => {
    const phase = event.object.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') markFinished(event.object);
  }, watchAbort.signal);
  const { requestsBefore, controlPlaneBefore, sampler, createdAt } = await startMeasuring(cluster, agent);
  await cluster.client.request({
    method: 'POST',
    path: taskCollection(namespace),
    body: { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: 'array', namespace }, spec: { nodeName, command, completions: count, ...(flags.parallelism !== undefined ? { parallelism: Number(flags.parallelism) } : {}) } },
  });
  const task = await finished;
  const doneAt = now();
  await new Promise((resolve) => setTimeout(resolve, 2_000)); // the finalizer's removal and events
  const { writes, requests } = writesOf(requestsBefore, await apiRequestsByVerb(agent.port));
  sampler.stop();
  watchAbort.abort();
  await watching;
  await agent.stop();
  await cluster.client.request({ method: 'DELETE', path: taskCollection(namespace) }).catch(() => undefined);
  const status = task.status ?? {};
  const ranSeconds = (Date.parse(status.completionTime ?? '') - Date.parse(status.startTime ?? '')) / 1000;
  const p99 = status.indexTimings?.spawnLatency?.p99Nanoseconds;
  return {
    indexes: count,
    phase: status.phase,
    indexesPerSecond: count / ranSeconds,
    createToDoneSeconds: (doneAt - createdAt) / 1000,
    p99SpawnLatencyMs: p99 === undefined ? undefined : p99 / 1e6,
    apiWrites: writes,
    apiRequests: requests,
    agentPeakRssMb: sampler.peakRssBytes / 2 ** 20,
    controlPlaneCpuSeconds: cluster.controlPlaneCpuSeconds() - controlPlaneBefore,
    statusBytes: Buffer.byteLength(JSON.stringify(status)),
  };
}

interface SeparateRun {
  readonly createToDoneSeconds: number;
  readonly apiRequests: number;
  readonly controlPlaneCpuSeconds: number;
  readonly agentPeakRssMb: number;
}

/** The same processes as `count` Tasks of one process each, created --in-flight at a time, as bench:e2e does. */
async function runSeparateTasks(cluster: BenchCluster, count: number): Promise<SeparateRun> {
  const namespace = await cluster.createNamespace('separate');
  const nodeName = 'bench-separate';
  const agent = await startBenchAgent(cluster.kubeconfigPath, nodeName, [], flags['node-options'].split(' ').filter(Boolean));
  const watchAbort = new AbortController();
  const done = new Set<string>();
  const { promise: allDone, resolve: markAllDone } = Promise.withResolvers<undefined>();
  const watching = watchTasks(cluster.client, namespace, (event) => {
    const phase = event.object.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') done.add(event.object.metadata.name ?? '');
    if (done.size === count) markAllDone(undefined);
  }, watchAbort.signal);
  const { requestsBefore, controlPlaneBefore, sampler, createdAt } = await startMeasuring(cluster, agent);
  let next = 0;
  await Promise.all(
    Array.from({ length: Number(flags['in-flight']) }, async () => {
      for (let index = next++; index < count; index = next++) {
        await cluster.client.request({ method: 'POST', path: taskCollection(namespace), body: { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: `t-${index}`, namespace }, spec: { nodeName, command } } });
      }
    }),
  );
  // A watch that had to start again from "now" (410 Gone) misses events: every 10 s, ask the
  // apiserver whether any Task is left unfinished (status.phase is a selectable field; limit 1).
  const poll = setInterval(() => {
    void cluster.client
      .request<{ items: unknown[] }>({ method: 'GET', path: taskCollection(namespace), query: { fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed', limit: 1 } })
      .then((list) => {
        if (list.items.length === 0) markAllDone(undefined);
      }, () => undefined);
  }, 10_000);
  await allDone;
  clearInterval(poll);
  const doneAt = now();
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const { requests } = writesOf(requestsBefore, await apiRequestsByVerb(agent.port));
  sampler.stop();
  watchAbort.abort();
  await watching;
  await agent.stop();
  await cluster.client.request({ method: 'DELETE', path: taskCollection(namespace) }).catch(() => undefined);
  return { createToDoneSeconds: (doneAt - createdAt) / 1000, apiRequests: requests, controlPlaneCpuSeconds: cluster.controlPlaneCpuSeconds() - controlPlaneBefore, agentPeakRssMb: sampler.peakRssBytes / 2 ** 20 };
}

async function main(): Promise<void> {
  if (!(indexes >= 1) || !(compareCount >= 0)) throw new Error('--indexes must be at least 1 and --compare at least 0');
  log(`${machineLine()}; load ${loadAverage()}`);
  const baseline = await baselineSpawnsPerSecond(Number(flags['baseline-spawns']));
  log(`baseline: ${baseline.toFixed(0)} sandboxed spawns/s at concurrency 50`);
  const cluster = startCluster();
  const runs: ArrayRun[] = [];
  let separate: SeparateRun | undefined;
  try {
    runs.push(await runArray(cluster, indexes));
    if (compareCount > 0) {
      runs.push(await runArray(cluster, compareCount));
      separate = await runSeparateTasks(cluster, compareCount);
    }
  } finally {
    cluster.down();
  }
  const header = ['indexes', 'phase', 'indexes/s', 'vs baseline', 'create -> done s', 'p99 spawn ms', 'API writes', 'API requests', 'agent peak RSS MB', 'apiserver+etcd CPU s', 'status bytes'];
  const rows = runs.map((run) => [
    String(run.indexes), run.phase ?? '?', run.indexesPerSecond.toFixed(0), `${(run.indexesPerSecond / baseline).toFixed(2)}x`, run.createToDoneSeconds.toFixed(1),
    run.p99SpawnLatencyMs?.toFixed(2) ?? '-', String(run.apiWrites), String(run.apiRequests), run.agentPeakRssMb.toFixed(0), run.controlPlaneCpuSeconds.toFixed(1), String(run.statusBytes),
  ]);
  console.log(`\n${machineLine()}; load ${loadAverage()}\nbaseline ${baseline.toFixed(0)} sandboxed spawns/s (Launcher, c=50)\n`);
  console.log(formatTable(header, rows));
  const compared = runs[1];
  if (separate !== undefined && compared !== undefined) {
    console.log(`\n${compareCount} processes: one array vs ${compareCount} Tasks\n`);
    console.log(formatTable(['as', 'processes/s (create -> all done)', 'API requests (agent)', 'apiserver+etcd CPU s', 'agent peak RSS MB'], [
      ['one array', (compareCount / compared.createToDoneSeconds).toFixed(0), String(compared.apiRequests), compared.controlPlaneCpuSeconds.toFixed(1), compared.agentPeakRssMb.toFixed(0)],
      [`${compareCount} Tasks`, (compareCount / separate.createToDoneSeconds).toFixed(0), String(separate.apiRequests), separate.controlPlaneCpuSeconds.toFixed(1), separate.agentPeakRssMb.toFixed(0)],
    ]));
  }
  const main = runs[0];
  if (main !== undefined) {
    console.log(`\nissue 17: indexes/s >= 0.8x baseline: ${main.indexesPerSecond >= 0.8 * baseline ? 'yes' : 'NO'}; API writes <= 200: ${main.apiWrites <= 200 ? 'yes' : 'NO'}; agent RSS <= 150 MB: ${main.agentPeakRssMb <= 150 ? 'yes' : 'NO'}; status < 32 KiB: ${main.statusBytes < 32 * 1024 ? 'yes' : 'NO'}`);
  }
  const resultsDirectory = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(resultsDirectory, { recursive: true });
  writeFileSync(path.join(resultsDirectory, `array-${new Date().toISOString().replaceAll(':', '-')}.json`), JSON.stringify({ machine: machineLine(), baseline, runs, separate }, null, 2));
}

await main();

// npm run bench:array — Task arrays (issue 17) end to end on a local apiserver and one agent,
// with the control plane on the same cores:
//   1. baselines: spawns/s of /bin/true through the Launcher in this process at concurrency 50,
//      with the plain default sandbox and with the sandbox an index gets (its own cgroup with the
//      agent's default limits, its own uid: see measureBaseline), measured just before and just
//      after each array run, so the array's rate is a ratio against them;
//   2. one array of --indexes (default 100,000) sandboxed /bin/true: indexes/s (from the array's
//      startTime to completionTime, and create to Complete as seen by a watch), p99 spawn latency
//      (status.indexTimings), API writes the agent made for the whole Task, agent peak RSS, size
//      of the final status, the agent's CPU per index; the issue's bars: >= 0.8x the baseline,
//      <= 200 writes, <= 150 MB;
//   3. --compare (default 10,000) indexes as one array vs as that many separate Tasks: Tasks/s,
//      API requests, apiserver + etcd CPU seconds.
// --profile DIR: the agent of each array run writes a CPU profile (--cpu-prof) to DIR when it
// exits, and a heap snapshot when half the array's indexes have succeeded (the bench sends it
// SIGUSR2: --heapsnapshot-signal); open them in Chrome DevTools.
// Prints tables and writes JSON to bench/results/. Needs root (sandbox, cgroups). Not a test.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import type { Task } from '../dist/api/task.js';
import { Launcher, type SandboxOptions } from '../dist/index.js';
import { placeControllers, readCgroupLayout } from '../dist/sandbox/cgroup-layout.js';
import { CgroupManager, type CgroupLimits } from '../dist/sandbox/cgroup-manager.js';
import { apiRequestsByVerb, defaultAgentNodeOptions, formatTable, loadAverage, log, machineLine, ProcessSampler, sampleProcess, scrapeCounters, startBenchAgent, startCluster, taskCollection, threadCpuSeconds, watchTasks, type BenchAgent, type BenchCluster } from './cluster-harness.ts';

const { values: flags } = parseArgs({
  options: {
    indexes: { type: 'string', default: '100000' },
    compare: { type: 'string', default: '10000' },
    'baseline-spawns': { type: 'string', default: '5000' },
    parallelism: { type: 'string' },
    'in-flight': { type: 'string', default: '50' },
    'node-options': { type: 'string', default: defaultAgentNodeOptions },
    profile: { type: 'string' },
  },
});

const indexes = Number(flags.indexes);
const compareCount = Number(flags.compare);
const command = ['/bin/true'];
const now = (): number => performance.timeOrigin + performance.now();

/**
 * The Launcher's own rate at concurrency 50, in this process, for the two sandboxes an array's
 * rate is compared with:
 *   - 'plain sandbox': `sandbox: {}`, no cgroup, the agent's uid (bench:sandbox's "full default"
 *     without its cgroup): the launcher's sandboxed rate;
 *   - 'index sandbox': what the agent gives each index of a Task that sets no limits: the same
 *     sandbox plus a cgroup of its own (made, reused and given up as the reconciler does) with the
 *     agent's default limits (--default-memory 1Gi, --default-pids 1024: the pids one as
 *     RLIMIT_NPROC of a uid of the index's own where pids is on cgroup v1) (bench:sandbox's
 *     "Task default (agent limits)"). The array's rate over this one is what the agent and its
 *     reconciler cost, the sandbox being the same.
 * Also the CPU this process spent per spawn (its children's not counted, as for the agent), and
 * that of the spawned processes (the children it reaped: sandbox init, /bin/true, and the child's
 * own setup between clone and exec). On a machine the run keeps busy, the rate is about the
 * cores over the sum of the two (and the control plane's share), so the agent's sum per index
 * against the Launcher's per spawn says what an index costs beyond its sandbox.
 */
type BaselineKind = 'plain sandbox' | 'index sandbox';

interface Baseline {
  readonly spawnsPerSecond: number;
  readonly cpuMsPerSpawn: number;
  readonly childrenCpuMsPerSpawn: number;
}

const layout = readCgroupLayout();
const pidsOnCgroupV1 = placeControllers(layout).pids === 'v1';
const agentDefaultPids = 1024;
const indexLimits: CgroupLimits = { memoryBytes: 2 ** 30, ...(pidsOnCgroupV1 ? {} : { pids: agentDefaultPids }) };
/** A uid outside --task-ids' default range, as bench:sandbox takes one: RLIMIT_NPROC counts per uid. */
const indexSandbox: SandboxOptions = pidsOnCgroupV1 ? { runAsUser: 2_147_400_000, runAsGroup: 2_147_400_000, maxProcesses: agentDefaultPids } : {};

async function measureBaseline(launcher: Launcher, cgroups: CgroupManager, kind: BaselineKind, count: number): Promise<Baseline> {
  let issued = 0;
  let serial = 0;
  const cpuBefore = process.cpuUsage();
  const childrenBefore = sampleProcess(process.pid).childrenCpuSeconds;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (issued++ < count) {
        const cgroup = kind === 'index sandbox' ? cgroups.create(`baseline-${serial++}`, indexLimits) : undefined;
        const child = await launcher.spawn({ file: '/bin/true', sandbox: kind === 'index sandbox' ? indexSandbox : {}, ...cgroup?.spawnOptions });
        await child.exited;
        // What the reconciler does after an exit: OOM count, kill what is left, give the cgroup up.
        cgroup?.oomKills();
        cgroup?.killAll();
        cgroup?.remove();
      }
    }),
  );
  const elapsedMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const childrenCpuSeconds = sampleProcess(process.pid).childrenCpuSeconds - childrenBefore;
  return { spawnsPerSecond: (count / elapsedMs) * 1000, cpuMsPerSpawn: (cpu.user + cpu.system) / 1000 / count, childrenCpuMsPerSpawn: (childrenCpuSeconds * 1000) / count };
}

/** Both baselines, `count` spawns each, one after the other. */
async function measureBaselines(count: number): Promise<Record<BaselineKind, Baseline>> {
  const launcher = new Launcher();
  const cgroups = new CgroupManager({ layout, group: `parafork-bench-array-${process.pid}` });
  try {
    const plain = await measureBaseline(launcher, cgroups, 'plain sandbox', count);
    const index = await measureBaseline(launcher, cgroups, 'index sandbox', count);
    log(`baselines: ${plain.spawnsPerSecond.toFixed(0)} spawns/s plain sandbox, ${index.spawnsPerSecond.toFixed(0)} spawns/s index sandbox (c=50); load ${loadAverage()}`);
    return { 'plain sandbox': plain, 'index sandbox': index };
  } finally {
    await launcher.close();
    cgroups.removeGroup();
  }
}

/** The mean of the baselines measured just before and just after a run: the load a shared machine puts on them changes less over a run than across the bench. */
function around(before: Record<BaselineKind, Baseline>, after: Record<BaselineKind, Baseline>): Record<BaselineKind, Baseline> {
  const mean = (kind: BaselineKind): Baseline => ({
    spawnsPerSecond: (before[kind].spawnsPerSecond + after[kind].spawnsPerSecond) / 2,
    cpuMsPerSpawn: (before[kind].cpuMsPerSpawn + after[kind].cpuMsPerSpawn) / 2,
    childrenCpuMsPerSpawn: (before[kind].childrenCpuMsPerSpawn + after[kind].childrenCpuMsPerSpawn) / 2,
  });
  return { 'plain sandbox': mean('plain sandbox'), 'index sandbox': mean('index sandbox') };
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
  /** The agent process's CPU (user + system, its children not counted) over the run, per index. */
  readonly agentCpuMsPerIndex: number;
  /** The CPU of the agent's reaped children (the indexes' processes) over the run, per index. */
  readonly agentChildrenCpuMsPerIndex: number;
  /** The agent's CPU per index by thread name (MainThread: JavaScript; parafork-sandbx: spawn threads). */
  readonly agentThreadCpuMsPerIndex: Record<string, number>;
  readonly controlPlaneCpuSeconds: number;
  readonly statusBytes: number;
  /** The Launcher's rates measured just before and after this run (their mean). */
  baselines?: Record<BaselineKind, Baseline>;
  /** The agent's memory when half the indexes had succeeded. */
  readonly memoryAtHalf: AgentMemory | undefined;
  /** Turns of the agent's event loop per index (parafork_event_loop_iterations_total); NaN from an agent without it. */
  readonly eventLoopTurnsPerIndex: number;
  /** Reconcile passes per index (parafork_workqueue_work_duration_seconds_count). */
  readonly passesPerIndex: number;
  /** Over the run: V8's scavenges and mark-compacts, and its pauses of the JS thread in us per index. */
  readonly scavenges: number;
  readonly markCompacts: number;
  readonly gcPauseUsPerIndex: number;
}

/** The agent's counters that say how its JS thread's work comes: event-loop turns, reconcile passes and GC pauses so far. */
interface LoopCounters {
  readonly turns: number;
  readonly passes: number;
  /** V8's pauses on the JS thread (prom-client's nodejs_gc_duration_seconds), by kind: count and seconds. */
  readonly scavenges: number;
  readonly markCompacts: number;
  readonly gcPauseSeconds: number;
}

async function loopCounters(port: number): Promise<LoopCounters> {
  const counters = await scrapeCounters(port, '');
  const value = (series: string): number => counters.get(series) ?? Number.NaN;
  let gcPauseSeconds = 0;
  for (const [series, seconds] of counters) if (series.startsWith('nodejs_gc_duration_seconds_sum{')) gcPauseSeconds += seconds;
  return {
    turns: value('parafork_event_loop_iterations_total'),
    passes: value('parafork_workqueue_work_duration_seconds_count'),
    // A kind of collection that has not happened yet has no series.
    scavenges: counters.get('nodejs_gc_duration_seconds_count{kind="minor"}') ?? 0,
    markCompacts: counters.get('nodejs_gc_duration_seconds_count{kind="major"}') ?? 0,
    gcPauseSeconds,
  };
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

/** The agent's Node flags for --profile. */
function profilingOptions(): string[] {
  if (flags.profile === undefined) return [];
  const directory = path.resolve(flags.profile);
  mkdirSync(directory, { recursive: true });
  return ['--cpu-prof', '--cpu-prof-dir', directory, '--heapsnapshot-signal=SIGUSR2', '--diagnostic-dir', directory];
}

async function runArray(cluster: BenchCluster, count: number): Promise<ArrayRun> {
  const namespace = await cluster.createNamespace('array');
  const nodeName = 'bench-array';
  const agent = await startBenchAgent(cluster.kubeconfigPath, nodeName, [], [...flags['node-options'].split(' ').filter(Boolean), ...profilingOptions()]);
  const watchAbort = new AbortController();
  const { promise: finished, resolve: markFinished } = Promise.withResolvers<Task>();
  let halfway: Promise<AgentMemory | undefined> | undefined;
  const watching = watchTasks(cluster.client, namespace, (event) => {
    const phase = event.object.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') markFinished(event.object);
    if (halfway === undefined && (event.object.status?.succeeded ?? 0) >= count / 2) {
      halfway = agentMemory(agent.port);
      if (flags.profile !== undefined) agent.process.kill('SIGUSR2');
    }
  }, watchAbort.signal);
  const { requestsBefore, controlPlaneBefore, sampler, createdAt } = await startMeasuring(cluster, agent);
  const threadsBefore = threadCpuSeconds(agent.pid);
  const loopBefore = await loopCounters(agent.port);
  await cluster.client.request({
    method: 'POST',
    path: taskCollection(namespace),
    body: { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: 'array', namespace }, spec: { nodeName, command, completions: count, ...(flags.parallelism !== undefined ? { parallelism: Number(flags.parallelism) } : {}) } },
  });
  const task = await finished;
  const doneAt = now();
  const threadsAfter = threadCpuSeconds(agent.pid);
  const loopAfter = await loopCounters(agent.port);
  const memoryAtHalf = await halfway;
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
    agentCpuMsPerIndex: cpuOverRun(sampler, createdAt, doneAt, 'cpuSeconds') / count,
    agentChildrenCpuMsPerIndex: cpuOverRun(sampler, createdAt, doneAt, 'childrenCpuSeconds') / count,
    agentThreadCpuMsPerIndex: Object.fromEntries([...threadsAfter].map(([name, seconds]) => [name, ((seconds - (threadsBefore.get(name) ?? 0)) * 1000) / count])),
    controlPlaneCpuSeconds: cluster.controlPlaneCpuSeconds() - controlPlaneBefore,
    statusBytes: Buffer.byteLength(JSON.stringify(status)),
    memoryAtHalf,
    eventLoopTurnsPerIndex: (loopAfter.turns - loopBefore.turns) / count,
    passesPerIndex: (loopAfter.passes - loopBefore.passes) / count,
    scavenges: loopAfter.scavenges - loopBefore.scavenges,
    markCompacts: loopAfter.markCompacts - loopBefore.markCompacts,
    gcPauseUsPerIndex: ((loopAfter.gcPauseSeconds - loopBefore.gcPauseSeconds) * 1e6) / count,
  };
}

/** CPU ms the sampled process (or its reaped children) used between two epoch times (the samples nearest them). */
function cpuOverRun(sampler: ProcessSampler, fromEpochMs: number, toEpochMs: number, counter: 'cpuSeconds' | 'childrenCpuSeconds'): number {
  const toPerformance = (epochMs: number): number => epochMs - performance.timeOrigin;
  const samples = sampler.samples;
  const first = samples.find((sample) => sample.atMs >= toPerformance(fromEpochMs)) ?? samples[0];
  const last = samples.findLast((sample) => sample.atMs <= toPerformance(toEpochMs)) ?? samples.at(-1);
  return first === undefined || last === undefined ? Number.NaN : (last[counter] - first[counter]) * 1000;
}

/** Where the agent's memory is, from its /metrics (prom-client's process and Node.js gauges), in MB. */
interface AgentMemory {
  readonly residentMb: number;
  readonly heapTotalMb: number;
  readonly heapUsedMb: number;
  readonly externalMb: number;
}

async function agentMemory(port: number): Promise<AgentMemory | undefined> {
  try {
    const gauges = await scrapeCounters(port, '');
    const megabytes = (name: string): number => (gauges.get(name) ?? Number.NaN) / 2 ** 20;
    return { residentMb: megabytes('process_resident_memory_bytes'), heapTotalMb: megabytes('nodejs_heap_size_total_bytes'), heapUsedMb: megabytes('nodejs_heap_size_used_bytes'), externalMb: megabytes('nodejs_external_memory_bytes') };
  } catch {
    return undefined;
  }
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
  const baselineSpawns = Number(flags['baseline-spawns']);
  const cluster = startCluster();
  const runs: ArrayRun[] = [];
  let separate: SeparateRun | undefined;
  try {
    // Baselines before and after each array run, on the same cores at the same time as the
    // control plane: each run is compared with the mean of the two around it.
    let before = await measureBaselines(baselineSpawns);
    for (const count of compareCount > 0 ? [indexes, compareCount] : [indexes]) {
      const run = await runArray(cluster, count);
      const after = await measureBaselines(baselineSpawns);
      run.baselines = around(before, after);
      runs.push(run);
      before = after;
    }
    if (compareCount > 0) separate = await runSeparateTasks(cluster, compareCount);
  } finally {
    cluster.down();
  }
  const totalCpu = (run: ArrayRun, kind: BaselineKind): string => {
    const baseline = run.baselines?.[kind];
    return baseline === undefined ? '?' : (baseline.cpuMsPerSpawn + baseline.childrenCpuMsPerSpawn).toFixed(2);
  };
  const ratio = (run: ArrayRun, kind: BaselineKind): number => run.indexesPerSecond / (run.baselines?.[kind].spawnsPerSecond ?? Number.NaN);
  const header = ['indexes', 'phase', 'indexes/s', 'Launcher c=50: plain / index sandbox spawns/s', 'vs plain', 'vs index sandbox', 'create -> done s', 'p99 spawn ms', 'API writes', 'API requests', 'agent peak RSS MB', 'agent CPU ms/index (Launcher: plain / index)', 'agent + tasks CPU ms/index (Launcher + children: plain / index)', 'apiserver+etcd CPU s', 'status bytes'];
  const rows = runs.map((run) => [
    String(run.indexes), run.phase ?? '?', run.indexesPerSecond.toFixed(0),
    `${run.baselines?.['plain sandbox'].spawnsPerSecond.toFixed(0)} / ${run.baselines?.['index sandbox'].spawnsPerSecond.toFixed(0)}`,
    `${ratio(run, 'plain sandbox').toFixed(2)}x`, `${ratio(run, 'index sandbox').toFixed(2)}x`, run.createToDoneSeconds.toFixed(1),
    run.p99SpawnLatencyMs?.toFixed(2) ?? '-', String(run.apiWrites), String(run.apiRequests), run.agentPeakRssMb.toFixed(0),
    `${run.agentCpuMsPerIndex.toFixed(2)} (${run.baselines?.['plain sandbox'].cpuMsPerSpawn.toFixed(2)} / ${run.baselines?.['index sandbox'].cpuMsPerSpawn.toFixed(2)})`,
    `${(run.agentCpuMsPerIndex + run.agentChildrenCpuMsPerIndex).toFixed(2)} (${totalCpu(run, 'plain sandbox')} / ${totalCpu(run, 'index sandbox')})`,
    run.controlPlaneCpuSeconds.toFixed(1), String(run.statusBytes),
  ]);
  console.log(`\n${machineLine()}; load ${loadAverage()}; ${baselineSpawns} spawns per baseline, measured before and after each array run\n`);
  console.log(formatTable(header, rows));
  for (const run of runs) {
    const threads = Object.entries(run.agentThreadCpuMsPerIndex).filter(([, ms]) => ms >= 0.005).sort(([, a], [, b]) => b - a);
    console.log(`${run.indexes} indexes, agent CPU ms/index by thread: ${threads.map(([name, ms]) => `${name} ${ms.toFixed(3)}`).join(', ')}; its tasks (reaped children) ${run.agentChildrenCpuMsPerIndex.toFixed(3)}`);
    console.log(`${run.indexes} indexes, per index: ${run.eventLoopTurnsPerIndex.toFixed(2)} event-loop turns, ${run.passesPerIndex.toFixed(2)} reconcile passes, GC pauses ${run.gcPauseUsPerIndex.toFixed(1)} us (${run.scavenges} scavenges, ${run.markCompacts} mark-compacts)`);
    const memory = run.memoryAtHalf;
    if (memory !== undefined) console.log(`${run.indexes} indexes, agent at half: RSS ${memory.residentMb.toFixed(0)} MB, V8 heap ${memory.heapUsedMb.toFixed(0)} MB used of ${memory.heapTotalMb.toFixed(0)} MB, external ${memory.externalMb.toFixed(0)} MB`);
  }
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
    const yes = (held: boolean): string => (held ? 'yes' : 'NO');
    console.log(`\nissue 17: indexes/s >= 0.8x the Launcher's plain sandbox: ${yes(ratio(main, 'plain sandbox') >= 0.8)}, >= 0.8x the index sandbox: ${yes(ratio(main, 'index sandbox') >= 0.8)}; API writes <= 200: ${yes(main.apiWrites <= 200)}; agent RSS <= 150 MB: ${yes(main.agentPeakRssMb <= 150)}; status < 32 KiB: ${yes(main.statusBytes < 32 * 1024)}`);
  }
  const resultsDirectory = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(resultsDirectory, { recursive: true });
  writeFileSync(path.join(resultsDirectory, `array-${new Date().toISOString().replaceAll(':', '-')}.json`), JSON.stringify({ machine: machineLine(), load: loadAverage(), runs, separate }, null, 2));
}

await main();

// npm run bench:e2e — Tasks end to end through the agent on a real local apiserver: a client
// creates N Tasks (default 1,000) as fast as it can (--in-flight parallel POSTs), a watch sees
// each one start and finish, and the table reports per Task create -> Running and create ->
// terminal (the client's clock), throughput, the agent's CPU per Task and peak RSS (/proc), and
// the API requests it issued per Task (its parafork_api_requests_total). One agent per launcher
// configuration, each on a fresh namespace, in the same run:
//   native            the native launcher, Tasks sandboxed (the agent's default)
//   native-plain      the native launcher, --task-sandbox off
//   child_process     --launcher child_process --task-sandbox off (child_process cannot build
//                     the sandbox: without that flag every Task fails with SandboxUnavailable)
// native-plain vs child_process is the like-for-like launcher comparison.
//
// "Running" is when the watch first shows the Task started: phase Running, or already finished
// with an attempt (a Task whose process ends before its Running write is due goes straight to
// its final status; see the reconciler). "started" is status.startTime (the agent's clock, which
// on one machine is the client's) minus the create.
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import type { Task } from '../dist/api/task.js';
import { apiRequestsByVerb, defaultAgentNodeOptions, formatTable, loadAverage, log, machineLine, ProcessSampler, sampleProcess, startBenchAgent, startCluster, taskCollection, watchTasks, type BenchCluster } from './cluster-harness.ts';
import { summarize } from './statistics.ts';

const { values: flags } = parseArgs({
  options: {
    tasks: { type: 'string', default: '1000' },
    configs: { type: 'string', default: 'native,native-plain,child_process' },
    'in-flight': { type: 'string', default: '50' },
    command: { type: 'string', default: 'true' },
    rounds: { type: 'string', default: '1' },
    /** Tasks run (not measured) through each configuration first: the first agent on a fresh apiserver pays its warm-up. */
    warmup: { type: 'string', default: '200' },
    'agent-args': { type: 'string', default: '' },
    /** Node's own flags for the agent process (V8 reads them only at start); --node-options= for V8's defaults. */
    'node-options': { type: 'string', default: defaultAgentNodeOptions },
  },
});

const taskCount = Number(flags.tasks);
const inFlight = Number(flags['in-flight']);
const rounds = Number(flags.rounds);
const command = flags.command.split(' ').filter(Boolean);
const extraAgentArgs = flags['agent-args'].split(' ').filter(Boolean);

const configurations: Record<string, readonly string[]> = {
  native: [],
  'native-plain': ['--task-sandbox', 'off'],
  child_process: ['--launcher', 'child_process', '--task-sandbox', 'off'],
};

interface TaskTimes {
  createSentAt: number;
  createAckAt?: number;
  completionTime?: number | undefined;
  createdAt?: number | undefined;
  runningSeenAt?: number;
  runningWritten: boolean;
  terminalSeenAt?: number;
  startTime?: number | undefined;
  phase?: string;
  attempts?: number;
}

interface RunResult {
  readonly configuration: string;
  readonly tasks: number;
  readonly succeeded: number;
  readonly createSeconds: number;
  readonly allTerminalSeconds: number;
  readonly tasksPerSecond: number;
  readonly toRunningMs: ReturnType<typeof summarize>;
  readonly toStartedMs: ReturnType<typeof summarize>;
  readonly toTerminalMs: ReturnType<typeof summarize>;
  readonly runningWrittenShare: number;
  readonly agentCpuMsPerTask: number;
  readonly controlPlaneCpuMsPerTask: number;
  readonly agentPeakRssMb: number;
  readonly apiRequestsPerTask: number;
  readonly apiRequestsByVerb: Record<string, number>;
  readonly loadBefore: string;
  readonly loadAfter: string;
}

const now = (): number => performance.timeOrigin + performance.now();

/** RFC 3339 with up to nanoseconds -> epoch ms with fraction. */
function parseTime(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const match = /^(.*?)(?:\.(\d+))?Z$/.exec(text);
  if (!match) return undefined;
  return Date.parse(`${match[1] ?? ''}Z`) + Number(`0.${match[2] ?? '0'}`) * 1000;
}

async function runOnce(cluster: BenchCluster, configuration: string, round: number, count = taskCount): Promise<RunResult> {
  const namespace = await cluster.createNamespace(`e2e-${round}`);
  const nodeName = `e2e-${configuration.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 50)}`;
  // "native:--workers=64,--api-qps=100": a configuration with agent flags of its own, for A/B runs.
  const [base = configuration, ownArgs = ''] = configuration.split(':');
  const agent = await startBenchAgent(cluster.kubeconfigPath, nodeName, [...(configurations[base] ?? []), ...ownArgs.split(',').filter(Boolean), ...extraAgentArgs], flags['node-options'].split(' ').filter(Boolean));
  const times = new Map<string, TaskTimes>();
  const watchAbort = new AbortController();
  let terminal = 0;
  const { promise: allTerminal, resolve: markAllTerminal } = Promise.withResolvers<undefined>();
  const onEvent = (event: { type: string; object: Task }): void => {
    const task = event.object;
    const entry = times.get(task.metadata.name ?? '');
    if (!entry || event.type === 'BOOKMARK') return;
    const seenAt = now();
    const status = task.status;
    entry.createdAt ??= parseTime(task.metadata.creationTimestamp);
    if (status?.phase === 'Running') entry.runningWritten = true;
    const started = status?.phase === 'Running' || ((status?.phase === 'Succeeded' || status?.phase === 'Failed') && (status.attempts ?? 0) > 0);
    if (started) entry.runningSeenAt ??= seenAt;
    entry.startTime ??= parseTime(status?.startTime);
    entry.completionTime ??= parseTime(status?.completionTime);
    if ((status?.phase === 'Succeeded' || status?.phase === 'Failed') && entry.terminalSeenAt === undefined) {
      entry.terminalSeenAt = seenAt;
      entry.phase = status.phase;
      entry.attempts = status.attempts ?? 0;
      if (++terminal === count) markAllTerminal(undefined);
    }
  };
  const watching = watchTasks(cluster.client, namespace, onEvent, watchAbort.signal);
  await new Promise((resolve) => setTimeout(resolve, 500)); // the watch is established

  const loadBefore = loadAverage();
  const requestsBefore = await apiRequestsByVerb(agent.port);
  const cpuBefore = sampleProcess(agent.pid).cpuSeconds;
  const controlPlaneCpuBefore = cluster.controlPlaneCpuSeconds();
  const sampler = new ProcessSampler(agent.pid, 250);
  const names = Array.from({ length: count }, (_, index) => `t-${index}`);
  const startedAt = now();
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      for (let name = names[next++]; name !== undefined; name = names[next++]) {
        const entry: TaskTimes = { createSentAt: now(), runningWritten: false };
        times.set(name, entry);
        await cluster.client.request({ method: 'POST', path: taskCollection(namespace), body: { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name, namespace }, spec: { nodeName, command } } });
        entry.createAckAt = now();
      }
    }),
  );
  const createdAt = now();
  const timeout = setTimeout(() => markAllTerminal(undefined), 600_000);
  await allTerminal;
  clearTimeout(timeout);
  const doneAt = now();
  const cpuAtDone = sampleProcess(agent.pid).cpuSeconds;
  const controlPlaneCpuAtDone = cluster.controlPlaneCpuSeconds();
  // Events trail the statuses (their own rate limit): count requests once the agent is quiet.
  let requestsAfter = await apiRequestsByVerb(agent.port);
  for (let quietFor = 0, waited = 0; quietFor < 2 && waited < 60; waited++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const latest = await apiRequestsByVerb(agent.port);
    quietFor = [...latest].every(([verb, total]) => requestsAfter.get(verb) === total) ? quietFor + 1 : 0;
    requestsAfter = latest;
  }
  sampler.stop();
  const loadAfter = loadAverage();
  watchAbort.abort();
  await watching;
  await agent.stop();
  // The next configuration should not share the apiserver with this one's objects.
  await cluster.client.request({ method: 'DELETE', path: taskCollection(namespace) }).catch(() => undefined);

  const entries = [...times.values()];
  // Where the time goes, p50 and p99 of each step (ms): the create's answer, the agent's start, the process's end, the watch showing the final status.
  const step = (from: (entry: TaskTimes) => number | undefined, to: (entry: TaskTimes) => number | undefined): string => {
    const summary = summarize(entries.flatMap((entry) => {
      const start = from(entry);
      const end = to(entry);
      return start === undefined || end === undefined ? [] : [end - start];
    }));
    return `${summary.p50.toFixed(0)}/${summary.p99.toFixed(0)}`;
  };
  log(`${configuration} steps p50/p99 ms: create sent->answered ${step((entry) => entry.createSentAt, (entry) => entry.createAckAt)}, answered->started ${step((entry) => entry.createAckAt, (entry) => entry.startTime)}, started->completed ${step((entry) => entry.startTime, (entry) => entry.completionTime)}, completed->seen ${step((entry) => entry.completionTime, (entry) => entry.terminalSeenAt)}`);
  const byVerb: Record<string, number> = {};
  let requests = 0;
  for (const [verb, total] of requestsAfter) {
    const delta = total - (requestsBefore.get(verb) ?? 0);
    if (delta > 0) byVerb[verb] = Math.round((delta / count) * 100) / 100;
    requests += delta;
  }
  const lastTerminal = Math.max(...entries.map((entry) => entry.terminalSeenAt ?? doneAt));
  return {
    configuration,
    tasks: count,
    succeeded: entries.filter((entry) => entry.phase === 'Succeeded').length,
    createSeconds: (createdAt - startedAt) / 1000,
    allTerminalSeconds: (lastTerminal - startedAt) / 1000,
    tasksPerSecond: terminal / ((lastTerminal - startedAt) / 1000),
    toRunningMs: summarize(entries.flatMap((entry) => (entry.runningSeenAt === undefined ? [] : [entry.runningSeenAt - entry.createSentAt]))),
    toStartedMs: summarize(entries.flatMap((entry) => (entry.startTime === undefined ? [] : [entry.startTime - entry.createSentAt]))),
    toTerminalMs: summarize(entries.flatMap((entry) => (entry.terminalSeenAt === undefined ? [] : [entry.terminalSeenAt - entry.createSentAt]))),
    runningWrittenShare: entries.filter((entry) => entry.runningWritten).length / count,
    agentCpuMsPerTask: ((cpuAtDone - cpuBefore) * 1000) / count,
    controlPlaneCpuMsPerTask: ((controlPlaneCpuAtDone - controlPlaneCpuBefore) * 1000) / count,
    agentPeakRssMb: sampler.peakRssBytes / 2 ** 20,
    apiRequestsPerTask: requests / count,
    apiRequestsByVerb: byVerb,
    loadBefore,
    loadAfter,
  };
}

function row(result: RunResult): string[] {
  const verbs = Object.entries(result.apiRequestsByVerb).map(([verb, perTask]) => `${verb} ${perTask}`).join(', ');
  return [
    result.configuration,
    `${result.succeeded}/${result.tasks}`,
    result.createSeconds.toFixed(1),
    result.allTerminalSeconds.toFixed(1),
    result.tasksPerSecond.toFixed(1),
    `${result.toRunningMs.p50.toFixed(0)} / ${result.toRunningMs.p99.toFixed(0)}`,
    `${result.toStartedMs.p50.toFixed(0)} / ${result.toStartedMs.p99.toFixed(0)}`,
    `${result.toTerminalMs.p50.toFixed(0)} / ${result.toTerminalMs.p99.toFixed(0)}`,
    `${(result.runningWrittenShare * 100).toFixed(0)}%`,
    result.agentCpuMsPerTask.toFixed(2),
    result.controlPlaneCpuMsPerTask.toFixed(2),
    result.agentPeakRssMb.toFixed(0),
    `${result.apiRequestsPerTask.toFixed(2)} (${verbs})`,
    `${result.loadBefore} -> ${result.loadAfter}`,
  ];
}

async function main(): Promise<void> {
  if (!(taskCount >= 1) || !(inFlight >= 1) || !(rounds >= 1)) throw new Error('--tasks, --in-flight and --rounds must be at least 1');
  const chosen = flags.configs.split(',').filter(Boolean);
  for (const name of chosen.map((entry) => entry.split(':')[0] ?? entry)) if (!(name in configurations)) throw new Error(`unknown configuration ${name}; choose from ${Object.keys(configurations).join(', ')}`);
  log(`${machineLine()}; load ${loadAverage()}`);
  const cluster = startCluster();
  const results: RunResult[] = [];
  try {
    for (const configuration of chosen) {
      if (Number(flags.warmup) < 1) break;
      log(`warm-up: ${configuration}, ${flags.warmup} Tasks (not measured)`);
      await runOnce(cluster, configuration, -1, Number(flags.warmup));
    }
    for (let round = 0; round < rounds; round++) {
      // Interleaved, and the order flips each round, so that neither configuration always goes first.
      const order = round % 2 === 0 ? chosen : [...chosen].reverse();
      for (const configuration of order) {
        log(`round ${round + 1}: ${configuration}, ${taskCount} Tasks (${command.join(' ')})`);
        const result = await runOnce(cluster, configuration, round);
        results.push(result);
        log(formatTable(header, [row(result)]).split('\n').at(-1) ?? '');
      }
    }
  } finally {
    cluster.down();
  }
  console.log(`\n${machineLine()}\n${taskCount} Tasks of \`${command.join(' ')}\`, ${inFlight} creates in flight\n`);
  console.log(formatTable(header, results.map(row)));
  const resultsDirectory = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(resultsDirectory, { recursive: true });
  writeFileSync(path.join(resultsDirectory, `e2e-${new Date().toISOString().replaceAll(':', '-')}.json`), JSON.stringify({ machine: machineLine(), command, results }, null, 2));
}

const header = ['configuration', 'succeeded', 'create s', 'all terminal s', 'Tasks/s', 'create->Running p50/p99 ms', 'create->started p50/p99 ms', 'create->terminal p50/p99 ms', 'Running written', 'agent CPU ms/Task', 'apiserver+etcd CPU ms/Task', 'agent peak RSS MB', 'API requests/Task', 'load before -> after'];

await main();

// npm run bench:density — M sandboxed `sleep` Tasks (default 1,000) running at once through one
// agent on a real local apiserver. Reports how long until all M processes run (the agent's
// parafork_tasks_running) and until the watch shows all M Running; the agent's RSS and CPU while
// they run; per-task memory: the tasks' own processes (Pss from smaps_rollup of every pid in the
// task cgroups) and the kernel's (Slab + KernelStack + PageTables from /proc/meminfo, after minus
// before, divided by M: noisy on a shared machine); and whether the teardown (delete every Task,
// stop the agent) leaves a process, a task cgroup or a mount behind.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { formatTable, loadAverage, log, defaultAgentNodeOptions, machineLine, ProcessSampler, sampleProcess, scrapeCounters, startBenchAgent, startCluster, taskCollection, watchTasks } from './cluster-harness.ts';

const { values: flags } = parseArgs({
  options: {
    tasks: { type: 'string', default: '1000' },
    'hold-seconds': { type: 'string', default: '10' },
    'agent-args': { type: 'string', default: '' },
    /** Node's own flags for the agent process (V8 reads them only at start); --node-options= for V8's defaults. */
    'node-options': { type: 'string', default: defaultAgentNodeOptions },
  },
});
const taskCount = Number(flags.tasks);
const holdSeconds = Number(flags['hold-seconds']);

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Kernel memory that grows with processes, namespaces and mounts (KiB). */
function kernelMemoryKb(): number {
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  return ['Slab', 'KernelStack', 'PageTables'].reduce((sum, field) => sum + Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(meminfo)?.[1] ?? 0), 0);
}

/** Every directory named `name` in the cgroup hierarchies (v1 controllers and v2). */
function cgroupGroups(name: string): string[] {
  try {
    return execFileSync('find', ['/sys/fs/cgroup', '-maxdepth', '7', '-type', 'd', '-name', name], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** The pids in a cgroup directory and every cgroup below it. */
function pidsBelow(directory: string): number[] {
  const pids: number[] = [];
  const walk = (current: string): void => {
    try {
      pids.push(...readFileSync(path.join(current, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number));
      for (const entry of readdirSync(current, { withFileTypes: true })) if (entry.isDirectory()) walk(path.join(current, entry.name));
    } catch {
      // gone meanwhile
    }
  };
  walk(directory);
  return pids;
}

function childCgroups(directory: string): number {
  try {
    return readdirSync(directory, { withFileTypes: true }).filter((entry) => entry.isDirectory()).length;
  } catch {
    return 0;
  }
}

function pssKb(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

async function main(): Promise<void> {
  log(`${machineLine()}; load ${loadAverage()}`);
  const cluster = startCluster();
  const rows: string[][] = [];
  try {
    const nodeName = 'density';
    const group = `parafork-bench-${nodeName}`;
    const namespace = await cluster.createNamespace('density');
    const mountsBefore = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').length;
    const agent = await startBenchAgent(cluster.kubeconfigPath, nodeName, flags['agent-args'].split(' ').filter(Boolean), flags['node-options'].split(' ').filter(Boolean));
    await sleep(1000);
    const idle = sampleProcess(agent.pid);
    const kernelBefore = kernelMemoryKb();
    const loadBefore = loadAverage();

    let running = 0;
    const seenRunning = new Set<string>();
    let allShownRunningAt: number | undefined;
    const watchAbort = new AbortController();
    const watching = watchTasks(cluster.client, namespace, (event) => {
      if (event.object.status?.phase === 'Running') seenRunning.add(event.object.metadata.name ?? '');
      if (seenRunning.size === taskCount) allShownRunningAt ??= now();
    }, watchAbort.signal);
    await sleep(300);

    const sampler = new ProcessSampler(agent.pid, 250);
    const startedAt = now();
    const names = Array.from({ length: taskCount }, (_, index) => `sleep-${index}`);
    let next = 0;
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        for (let name = names[next++]; name !== undefined; name = names[next++]) {
          await cluster.client.request({ method: 'POST', path: taskCollection(namespace), body: { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name, namespace }, spec: { nodeName, command: ['sleep', '3600'] } } });
        }
      }),
    );
    let allRunningAt: number | undefined;
    for (let waited = 0; waited < 600 && allRunningAt === undefined; waited++) {
      running = (await scrapeCounters(agent.port, 'parafork_tasks_running')).get('parafork_tasks_running') ?? 0;
      if (running >= taskCount) allRunningAt = now();
      else await sleep(100);
    }
    const cpuAllRunning = sampleProcess(agent.pid).cpuSeconds;
    for (let waited = 0; waited < 600 && allShownRunningAt === undefined; waited++) await sleep(100);
    log(`all ${taskCount} running after ${(((allRunningAt ?? now()) - startedAt) / 1000).toFixed(1)} s; holding ${holdSeconds} s`);
    const holdStart = sampleProcess(agent.pid);
    const holdSampler = new ProcessSampler(agent.pid, 250);
    await sleep(holdSeconds * 1000);
    holdSampler.stop();
    const holdEnd = sampleProcess(agent.pid);
    const heap = [...(await scrapeCounters(agent.port, 'nodejs_heap_space_size_total_bytes')), ...(await scrapeCounters(agent.port, 'nodejs_heap_size_used_bytes')), ...(await scrapeCounters(agent.port, 'nodejs_external_memory_bytes'))];
    log(`agent heap while holding (MB): ${heap.filter(([, bytes]) => bytes >= 2 ** 19).map(([series, bytes]) => `${series.replace('nodejs_heap_space_size_total_bytes', '').replace('nodejs_', '')} ${(bytes / 2 ** 20).toFixed(1)}`).join(', ')}`);
    const kernelRunning = kernelMemoryKb();
    const groups = cgroupGroups(group);
    const taskPids = [...new Set(groups.flatMap(pidsBelow))];
    const taskPss = taskPids.reduce((sum, pid) => sum + pssKb(pid), 0);
    const loadHeld = loadAverage();

    // Teardown: delete every Task (the agent kills each process through its finalizer), then stop the agent.
    const teardownStart = now();
    await cluster.client.request({ method: 'DELETE', path: taskCollection(namespace) });
    let left = taskCount;
    for (let waited = 0; waited < 1200 && left > 0; waited++) {
      await sleep(250);
      left = (await cluster.client.request<{ items: unknown[] }>({ method: 'GET', path: taskCollection(namespace) })).items.length;
    }
    const teardownSeconds = (now() - teardownStart) / 1000;
    sampler.stop();
    watchAbort.abort();
    await watching;
    const exitCode = await agent.stop();
    await sleep(500);
    const leftoverPids = groups.flatMap(pidsBelow);
    const leftoverCgroups = groups.filter(existsSync).reduce((sum, directory) => sum + childCgroups(directory), 0);
    const mountsAfter = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').length;

    const agentRssMb = (bytes: number): string => (bytes / 2 ** 20).toFixed(0);
    rows.push([
      `${taskCount}`,
      (((allRunningAt ?? now()) - startedAt) / 1000).toFixed(1),
      allShownRunningAt === undefined ? `timeout (${seenRunning.size})` : ((allShownRunningAt - startedAt) / 1000).toFixed(1),
      `${agentRssMb(idle.rssBytes)} / ${agentRssMb(holdSampler.peakRssBytes)} / ${agentRssMb(sampler.peakRssBytes)}`,
      (((cpuAllRunning - idle.cpuSeconds) * 1000) / taskCount).toFixed(2),
      `${(((holdEnd.cpuSeconds - holdStart.cpuSeconds) / holdSeconds) * 100).toFixed(1)}%`,
      `${holdEnd.fds}`,
      `${taskPids.length} pids, ${(taskPss / taskCount).toFixed(0)}`,
      ((kernelRunning - kernelBefore) / taskCount).toFixed(0),
      `${teardownSeconds.toFixed(1)} s; left: ${left} Tasks, ${leftoverPids.length} pids, ${leftoverCgroups} cgroups, ${mountsAfter - mountsBefore} mounts; agent exit ${exitCode}`,
      `${loadBefore} -> ${loadHeld}`,
    ]);
  } finally {
    cluster.down();
  }
  console.log(`\n${machineLine()}\n`);
  console.log(formatTable(['Tasks', 'all running s', 'all shown Running s', 'agent RSS MB idle / holding / peak', 'agent CPU ms/Task to start', 'agent CPU while holding', 'agent fds', 'task processes, Pss KiB/Task', 'kernel KiB/Task', 'teardown', 'load before -> holding'], rows));
}

await main();

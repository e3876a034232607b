// Chaos: one agent runs many Tasks while the control plane and the agent itself are knocked over.
// The Tasks arrive in waves, and after each wave one thing breaks while they are in flight: the
// kube-apiserver restarts (twice), every watch is cut at the proxy in front of it (twice), and the
// agent is killed with SIGKILL and started again (once). Afterwards every Task has finished, none
// ran more often than its status.attempts says (each run appends a line to the Task's marker file),
// and the agent holds no zombie, no fd beyond its idle baseline, and no task mount or cgroup.
//
// PARAFORK_CHAOS_TASKS sets how many Tasks: 300 by default (npm test), 2,000 in `npm run test:chaos`.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { taskApiVersion, taskKind, type Task } from '../../src/api/task.js';
import { ApiClient } from '../../src/k8s/api-client.js';
import { readCgroupLayout } from '../../src/sandbox/cgroup-layout.js';
import { agentCgroupGroup, startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { createTestNamespace, waitFor, type TestNamespace } from '../helpers/cluster.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { zombieChildren } from '../helpers/process-table.js';

const taskCount = Number(process.env.PARAFORK_CHAOS_TASKS ?? 300);
const waves = 5;
const nodeName = 'chaos-node';
const cgroupParent = agentCgroupGroup(nodeName);
const stagingDirectory = '/run/parafork/root';
const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let namespace: TestNamespace;
let scratch: string;
let markers: string;
let proxy: FaultProxy;
let creator: ApiClient;
const agents: AgentProcess[] = [];

beforeAll(async () => {
  namespace = await createTestNamespace('chaos');
  scratch = mkdtempSync(path.join(tmpdir(), 'parafork-chaos-'));
  // Tasks run as nobody and append to their marker file in here.
  markers = path.join(scratch, 'markers');
  mkdirSync(markers);
  chmodSync(markers, 0o777);
  proxy = await startFaultProxy({ upstreamUrl: inject('apiserverUrl'), clusterStateDir: inject('clusterStateDir'), workDirectory: scratch });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(inject('kubeconfigPath'));
  // The test's own client goes straight to the apiserver, and retries long enough to outlast a restart.
  creator = new ApiClient({ kubeConfig, qps: 10_000, burst: 10_000, userAgent: 'parafork-chaos-test', maxAttempts: 12 });
});

afterAll(async () => {
  await Promise.all(agents.map((agent) => agent.stop()));
  await proxy.close();
  await namespace.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

/**
 * `scripts/dev-cluster.sh restart-apiserver` without blocking this process: the proxy lives here,
 * and must go on answering (with refused upstream connections) while the apiserver is away.
 */
function restartApiserver(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [path.join(repositoryRoot, 'scripts', 'dev-cluster.sh'), 'restart-apiserver'], {
      env: { ...process.env, PARAFORK_CLUSTER_DIR: inject('clusterStateDir') },
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 180_000,
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => (status === 0 ? resolve() : reject(new Error(`restart-apiserver exited ${status}: ${stderr}`))));
  });
}

/** Every fourth Task takes three seconds, so some are always Running when something breaks. */
function chaosTask(index: number): Record<string, unknown> {
  const name = index < 0 ? 'warm-up' : `chaos-${index}`;
  const work = index % 4 === 0 ? 'sleep 3' : 'true';
  return {
    apiVersion: taskApiVersion,
    kind: taskKind,
    metadata: { name, namespace: namespace.name },
    spec: {
      nodeName,
      command: ['sh', '-c', `echo run >> "$0"; ${work}`, `/mnt/${name}`],
      sandbox: { mounts: [{ hostPath: markers, mountPath: '/mnt', readOnly: false }] },
      // A run lost with the agent (AgentRestarted) is retried; the Task still succeeds.
      backoffLimit: 3,
      backoff: { initialSeconds: 1, maxSeconds: 2 },
    },
  };
}

async function createTasks(indexes: readonly number[]): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      for (let index = indexes[next++]; index !== undefined; index = indexes[next++]) {
        await creator.request({ method: 'POST', path: `/apis/parafork.dev/v1alpha1/namespaces/${namespace.name}/tasks`, body: chaosTask(index) });
      }
    }),
  );
}

function runsOf(name: string): number {
  try {
    return readFileSync(path.join(markers, name), 'utf8').split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

async function listTasks(): Promise<Task[]> {
  const tasks: Task[] = [];
  let continueToken: string | undefined;
  do {
    const page = await creator.request<{ items: Task[]; metadata: { continue?: string } }>({
      method: 'GET',
      path: `/apis/parafork.dev/v1alpha1/namespaces/${namespace.name}/tasks`,
      query: { limit: 500, continue: continueToken },
    });
    tasks.push(...page.items);
    continueToken = page.metadata.continue || undefined;
  } while (continueToken !== undefined);
  return tasks;
}

/** The fds a process holds, by kind: socket, pipe, anon_inode:[pidfd], file paths. */
/** What an fd of the cgroup pool's is counted as: see fdsOf. */
const pooledCgroupFile = 'task cgroup file';

/**
 * The process's fds by kind. A file inside one of `taskGroups` is a task cgroup's file that the
 * cgroup pool keeps open with the cgroup for its reads after each exit (src/sandbox/
 * cgroup-file-reader.ts); it lives as long as the idle cgroup does, so it is a kind of its own.
 */
function fdsOf(pid: number, taskGroups: readonly string[] = []): string[] {
  const fds: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (taskGroups.some((group) => target.startsWith(`${group}/`))) fds.push(pooledCgroupFile);
      else fds.push(target.replace(/:\[\d+\]$/, '').replace(/^\/.*/, 'file'));
    } catch {
      // closed meanwhile
    }
  }
  return fds.sort();
}

function countByKind(fds: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const fd of fds) counts[fd] = (counts[fd] ?? 0) + 1;
  return counts;
}

/** The agent's task group in every cgroup hierarchy: <mount>/<agent's own cgroup>/<cgroup parent>. */
function taskGroupsOf(pid: number): string[] {
  const layout = readCgroupLayout(readFileSync(`/proc/${pid}/mountinfo`, 'utf8'), readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
  const hierarchies = [...(layout.v2 ? [layout.v2] : []), ...layout.v1.values()];
  return [...new Set(hierarchies.map((hierarchy) => path.join(hierarchy.mountPoint, hierarchy.ownPath, cgroupParent)))];
}

/** Task cgroups beneath the groups that still hold a process. */
function populatedTaskCgroups(groups: readonly string[]): string[] {
  const populated: string[] = [];
  for (const group of groups) {
    if (!existsSync(group)) continue;
    for (const entry of readdirSync(group, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const procs = readFileSync(path.join(group, entry.name, 'cgroup.procs'), 'utf8').trim();
      if (procs !== '') populated.push(`${path.join(group, entry.name)}: ${procs.replaceAll('\n', ' ')}`);
    }
  }
  return populated;
}

/** Host mounts that belong to tasks: their staging root or their marker directory. */
function taskMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.includes(stagingDirectory) || line.includes(scratch));
}

describe('chaos', () => {
  it(`${taskCount} Tasks survive two apiserver restarts, two cut watches and a killed agent`, async () => {
    const mountsBefore = taskMounts();
    // At most 100 at once: a wave is then partly running, partly waiting when something breaks.
    const agentArgs = ['--kubeconfig', proxy.kubeconfigPath, '--max-concurrent', '100'];
    let agent = await startAgent(nodeName, agentArgs);
    agents.push(agent);
    // The idle agent's fds, once both watches are open and one Task has made the sandbox's shared
    // resources (the init helper's fd, the network namespace pool's reserve: idle namespaces past it
    // are closed 5 to 10 s after a burst), which it keeps for good.
    await waitFor(() => (proxy.openWatches >= 2 ? true : undefined), { description: 'the agent to open its two watches' });
    await createTasks([-1]);
    await waitFor(async () => ((await listTasks()).some((task) => task.status?.phase === 'Succeeded') ? true : undefined), { description: 'the warm-up Task to succeed', timeoutMs: 30_000 });
    // Past the proxy's 5 s keep-alive timeout: the warm-up's idle connections are closed.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    // The agent started again after the kill is the same program with the same flags: by the end
    // it must be back to this count too.
    const taskGroups = taskGroupsOf(agent.process.pid!);
    const baselineFds = fdsOf(agent.process.pid!, taskGroups);

    const disruptions: (() => Promise<string>)[] = [
      async () => {
        await restartApiserver();
        return 'apiserver restarted';
      },
      () => Promise.resolve(`${proxy.cutWatches()} watches cut`),
      async () => {
        await agent.crash();
        agent = await startAgent(nodeName, agentArgs);
        agents.push(agent);
        return 'agent killed (SIGKILL) and started again';
      },
      async () => {
        await restartApiserver();
        return 'apiserver restarted';
      },
      () => Promise.resolve(`${proxy.cutWatches()} watches cut`),
    ];
    const started = performance.now();
    const timeline: string[] = [];
    const perWave = Math.ceil(taskCount / waves);
    for (let wave = 0; wave < waves; wave++) {
      const indexes = Array.from({ length: perWave }, (_, offset) => wave * perWave + offset).filter((index) => index < taskCount);
      await createTasks(indexes);
      // Let the wave get going (some running, some still to launch), then break something.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const what = await disruptions[wave]!();
      timeline.push(`${((performance.now() - started) / 1000).toFixed(1)} s: wave ${wave + 1} created, ${what}`);
    }

    const tasks = await waitFor(
      async (observed) => {
        const listed = (await listTasks()).filter((task) => task.metadata.name !== 'warm-up');
        const terminal = listed.filter((task) => task.status?.phase === 'Succeeded' || task.status?.phase === 'Failed');
        observed(`${terminal.length} of ${listed.length} terminal`);
        return terminal.length === taskCount ? listed : undefined;
      },
      { description: `all ${taskCount} Tasks to finish`, timeoutMs: Math.max(240_000, taskCount * 300), intervalMs: 2_000 },
    );
    const finishedAfterSeconds = (performance.now() - started) / 1000;

    const retried = tasks.filter((task) => (task.status?.attempts ?? 0) > 1);
    const overRun = tasks
      .map((task) => ({ name: task.metadata.name ?? '', attempts: task.status?.attempts ?? 0, runs: runsOf(task.metadata.name ?? ''), phase: task.status?.phase, reason: task.status?.reason }))
      .filter((task) => task.runs > task.attempts || task.runs === 0);
    const failed = tasks.filter((task) => task.status?.phase !== 'Succeeded').map((task) => ({ name: task.metadata.name, status: task.status }));
    console.log(
      `chaos: ${taskCount} Tasks finished ${finishedAfterSeconds.toFixed(1)} s after the first wave; ${retried.length} retried ` +
        `(${JSON.stringify(countByKind(retried.map((task) => task.status?.attempts === 2 ? 'twice' : `${task.status?.attempts} attempts`)))}); timeline: ${timeline.join('; ')}`,
    );
    // The only retries the policy allowed here are for runs the agent lost when it was killed.
    expect.soft(failed).toEqual([]);
    expect.soft(overRun).toEqual([]);

    const agentPid = agent.process.pid!;
    expect(zombieChildren(agentPid)).toEqual([]);
    // Idle keep-alive connections close after the proxy's idle timeout; nothing else may stay.
    // The cgroup pool's files: at most two a task cgroup kept idle for reuse (cgroup.events and
    // the OOM counter), and gone with it; any other fd must return to the idle baseline.
    const idleTaskCgroups = (): number => taskGroups.reduce((count, group) => count + (existsSync(group) ? readdirSync(group, { withFileTypes: true }).filter((entry) => entry.isDirectory()).length : 0), 0);
    const settledFds = await waitFor(
      (observed) => {
        const fds = fdsOf(agentPid, taskGroups);
        const pooled = fds.filter((fd) => fd === pooledCgroupFile).length;
        const others = fds.length - pooled;
        const idle = idleTaskCgroups();
        observed({ baseline: countByKind(baselineFds), now: countByKind(fds), idleTaskCgroups: idle });
        return others <= baselineFds.length + 2 && pooled <= 2 * idle ? fds : undefined;
      },
      { description: "the agent's fds to return to its idle baseline", timeoutMs: 30_000, intervalMs: 500 },
    );
    console.log(`chaos: agent fds ${JSON.stringify(countByKind(baselineFds))} idle at start, ${JSON.stringify(countByKind(settledFds))} after the run`);
    const taskCgroups = taskGroups.flatMap((group) => (existsSync(group) ? readdirSync(group, { withFileTypes: true }).filter((entry) => entry.isDirectory()) : []));
    console.log(`chaos: ${taskCgroups.length} task cgroups left idle for reuse under ${taskGroups.join(', ')}`);
    expect(populatedTaskCgroups(taskGroups)).toEqual([]);
    expect(taskMounts()).toEqual(mountsBefore);

    // A clean stop leaves no task cgroup behind either.
    expect(await agent.stop()).toBe(0);
    expect(taskGroups.filter((group) => existsSync(group))).toEqual([]);
  }, 900_000);
});

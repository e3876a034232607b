// What the agent benchmarks (e2e, density, soak) share: a private control plane started with
// scripts/dev-cluster.sh (its own PARAFORK_CLUSTER_DIR, the Task CRD installed), the built agent
// (dist/cli/main.js) as a child process, and samples of a process's CPU, RSS and fds from /proc
// and of the agent's own counters from its /metrics.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';

import type { Task } from '../dist/api/task.js';
import { ApiClient, type WatchEvent } from '../dist/k8s/api-client.js';

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const devCluster = path.join(repositoryRoot, 'scripts', 'dev-cluster.sh');
const cli = path.join(repositoryRoot, 'dist', 'cli', 'main.js');
/** USER_HZ: /proc/PID/stat counts CPU time in these ticks (100 on every Linux ABI Node runs on). */
const clockTicksPerSecond = 100;

export const taskCollection = (namespace: string): string => `/apis/parafork.dev/v1alpha1/namespaces/${namespace}/tasks`;

export interface BenchCluster {
  readonly kubeconfigPath: string;
  /** A client without a meaningful rate limit: the benchmark is the load, not the agent. */
  readonly client: ApiClient;
  kubectl(args: readonly string[], input?: string): string;
  createNamespace(prefix: string): Promise<string>;
  /** CPU seconds used so far by kube-apiserver and etcd together. */
  controlPlaneCpuSeconds(): number;
  down(): void;
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** Starts etcd and kube-apiserver on loopback in a temp dir and installs crds/. */
export function startCluster(): BenchCluster {
  const runDirectory = mkdtempSync(path.join(os.tmpdir(), 'parafork-bench-'));
  const stateDirectory = path.join(runDirectory, 'cluster');
  const environment = { ...process.env, PARAFORK_CLUSTER_DIR: stateDirectory };
  const down = (): void => {
    spawnSync(devCluster, ['down'], { env: environment, stdio: 'ignore', timeout: 120_000 });
    rmSync(runDirectory, { recursive: true, force: true });
  };
  const up = spawnSync(devCluster, ['up'], { env: environment, encoding: 'utf8', timeout: 300_000, stdio: ['ignore', 'pipe', 'inherit'] });
  if (up.status !== 0) {
    down();
    throw new Error(`scripts/dev-cluster.sh up failed (${up.status ?? up.signal})`);
  }
  const kubeconfigPath = up.stdout.trimEnd().split('\n').at(-1) ?? '';
  const clusterEnvironment = Object.fromEntries(
    readFileSync(path.join(stateDirectory, 'cluster.env'), 'utf8').split('\n').filter((line) => line.includes('=')).map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  ) as Record<string, string>;
  const kubectlPath = path.join(clusterEnvironment.PARAFORK_TOOLS_BIN ?? '', 'kubectl');
  const cacheDirectory = path.join(runDirectory, 'kubectl-cache');
  const kubectl = (args: readonly string[], input?: string): string => {
    const result = spawnSync(kubectlPath, ['--kubeconfig', kubeconfigPath, '--cache-dir', cacheDirectory, ...args], { encoding: 'utf8', input: input ?? '', timeout: 120_000 });
    if (result.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  };
  try {
    kubectl(['apply', '-f', path.join(repositoryRoot, 'crds', 'task.yaml')]);
    // Polled, not `kubectl wait`: that fails at once when it reads the CRD before any condition is
    // written (test/integration/global-setup.ts polls the same way).
    const establishedBy = Date.now() + 60_000;
    const established = '{.status.conditions[?(@.type=="Established")].status}';
    // kubectl's jsonpath filter also fails ("<nil> is not array or slice") while no condition is written: not yet.
    const isEstablished = (): boolean => {
      try {
        return kubectl(['get', 'customresourcedefinition/tasks.parafork.dev', '--output', `jsonpath=${established}`]).trim() === 'True';
      } catch {
        return false;
      }
    };
    while (!isEstablished()) {
      if (Date.now() > establishedBy) throw new Error('the Task CRD was not Established within 60 s');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200); // a synchronous 200 ms pause, as the spawnSync calls around it
    }
  } catch (error) {
    down();
    throw error;
  }
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  const client = new ApiClient({ kubeConfig, qps: 100_000, burst: 100_000, userAgent: 'parafork-bench' });
  log(`control plane up (${clusterEnvironment.APISERVER_URL ?? '?'})`);
  return {
    kubeconfigPath,
    client,
    kubectl,
    async createNamespace(prefix) {
      const name = `${prefix}-${Math.random().toString(16).slice(2, 8)}`;
      await client.request({ method: 'POST', path: '/api/v1/namespaces', body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } });
      return name;
    },
    controlPlaneCpuSeconds: () =>
      ['kube-apiserver', 'etcd'].reduce((sum, name) => {
        try {
          return sum + sampleProcess(Number(readFileSync(path.join(stateDirectory, `${name}.pid`), 'utf8').trim())).cpuSeconds;
        } catch {
          return sum;
        }
      }, 0),
    down,
  };
}

/**
 * Watches a namespace's Tasks until `signal` aborts, resuming from the last resourceVersion when
 * the server ends the watch or it fails (logged), as an informer would.
 */
export async function watchTasks(client: ApiClient, namespace: string, onEvent: (event: WatchEvent<Task>) => void, signal: AbortSignal): Promise<void> {
  let resourceVersion: string | undefined;
  while (!signal.aborted) {
    try {
      await client.watch<Task>(taskCollection(namespace), { resourceVersion, timeoutSeconds: 600, allowWatchBookmarks: true }, (event) => {
        resourceVersion = event.object.metadata.resourceVersion ?? resourceVersion;
        if (event.type === 'ERROR') throw new Error(`watch error: ${JSON.stringify(event.object)}`);
        onEvent(event);
      }, { signal, silenceMs: 120_000 });
    } catch (error) {
      if (signal.aborted) return;
      log(`the bench's watch ended (${(error as Error).message}); resuming`);
      if ((error as Error).message.includes('watch error')) resourceVersion = undefined;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

export interface BenchAgent {
  readonly process: ChildProcess;
  readonly pid: number;
  readonly port: number;
  /** The last 64 KiB the agent logged. */
  logTail(): string;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<number | null>;
}

/**
 * Node's own flags for the agent, as the image sets them (Dockerfile: NODE_OPTIONS). V8 otherwise
 * grows the young generation to 64 MB semi-spaces (134 MB resident) under a steady stream of
 * Tasks, which is most of the agent's RSS and buys it little: its young objects die young.
 */
export const defaultAgentNodeOptions = '--max-semi-space-size=8';

/** Starts `parafork agent` (dist/) and resolves once it logged "agent ready". */
export async function startBenchAgent(kubeconfigPath: string, nodeName: string, extraArgs: readonly string[], nodeOptions: readonly string[] = []): Promise<BenchAgent> {
  const child = spawn(process.execPath, [...nodeOptions, cli, 'agent', '--node-name', nodeName, '--kubeconfig', kubeconfigPath, '--port', '0', '--listen-address', '127.0.0.1', '--cgroup-parent', `parafork-bench-${nodeName}`, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const { promise: ready, resolve: markReady, reject: failReady } = Promise.withResolvers<number>();
  const onOutput = (chunk: string): void => {
    tail = (tail + chunk).slice(-65_536);
    const line = /\{[^\n]*"msg":"agent ready"[^\n]*\}/.exec(tail)?.[0];
    if (line !== undefined) markReady((JSON.parse(line) as { port: number }).port);
  };
  child.stdout.setEncoding('utf8').on('data', onOutput);
  child.stderr.setEncoding('utf8').on('data', onOutput);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exited.then((code) => failReady(new Error(`the agent exited with ${code}: ${tail.slice(-4000)}`)));
  const timeout = setTimeout(() => failReady(new Error(`the agent was not ready after 60 s: ${tail.slice(-4000)}`)), 60_000);
  const port = await ready.finally(() => clearTimeout(timeout));
  return {
    process: child,
    pid: child.pid ?? 0,
    port,
    logTail: () => tail,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

export interface ProcessSample {
  /** utime + stime, in seconds. */
  readonly cpuSeconds: number;
  /** cutime + cstime, in seconds: the CPU of the children it has waited for (a Task's processes, reaped by the agent). */
  readonly childrenCpuSeconds: number;
  readonly rssBytes: number;
  readonly fds: number;
}

/** One look at /proc/PID: CPU time so far, resident set, open fds. */
export function sampleProcess(pid: number): ProcessSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces and parentheses): utime is field 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const childrenTicks = Number(fields[13]) + Number(fields[14]);
  const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return { cpuSeconds: ticks / clockTicksPerSecond, childrenCpuSeconds: childrenTicks / clockTicksPerSecond, rssBytes: rssKb * 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
}

/**
 * CPU seconds (utime + stime) of each thread of a process so far, by thread name with the
 * trailing digits dropped (a pool's threads count together): where a process spends its CPU.
 */
export function threadCpuSeconds(pid: number | 'self'): Map<string, number> {
  const byName = new Map<string, number>();
  for (const thread of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${thread}/stat`, 'utf8');
    } catch {
      continue; // the thread ended
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[0-9]+$/, '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    byName.set(name, (byName.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond);
  }
  return byName;
}

/** Samples a process every `intervalMs` until stopped; keeps every sample with its time. */
export class ProcessSampler {
  readonly samples: (ProcessSample & { readonly atMs: number })[] = [];
  readonly #timer: NodeJS.Timeout;

  constructor(pid: number, intervalMs: number) {
    const take = (): void => {
      try {
        this.samples.push({ ...sampleProcess(pid), atMs: performance.now() });
      } catch {
        // the process is gone: the last sample stands
      }
    };
    take();
    this.#timer = setInterval(take, intervalMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  get peakRssBytes(): number {
    return Math.max(0, ...this.samples.map((sample) => sample.rssBytes));
  }
}

/** Sums the samples of each counter named in `names` from a Prometheus text exposition, by name and labels. */
export async function scrapeCounters(port: number, prefix: string): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const counters = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const space = line.lastIndexOf(' ');
    counters.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return counters;
}

/** parafork_api_requests_total by verb (watches are not counted by the agent). */
export async function apiRequestsByVerb(port: number): Promise<Map<string, number>> {
  const byVerb = new Map<string, number>();
  for (const [series, value] of await scrapeCounters(port, 'parafork_api_requests_total{')) {
    const verb = /verb="([A-Z]+)"/.exec(series)?.[1] ?? '?';
    byVerb.set(verb, (byVerb.get(verb) ?? 0) + value);
  }
  return byVerb;
}

/** `uptime`'s three load averages. */
export function loadAverage(): string {
  return os.loadavg().map((load) => load.toFixed(2)).join(' ');
}

export function machineLine(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} CPUs, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node ${process.version}`;
}

export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const lines = [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`);
  return lines.join('\n');
}

export { log };

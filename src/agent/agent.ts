// parafork agent: watches the Tasks bound to this node (and unbound ones it may claim) and runs them.
import { KubeConfig } from '@kubernetes/client-node';
import { pino, type DestinationStream, type Logger } from 'pino';

import type { Task } from '../api/task.js';
import type { AgentConfig } from '../config/agent-config.js';
import { WorkQueue } from '../controller/work-queue.js';
import { startHttpServer } from '../http/http-server.js';
import { ApiClient, ApiError } from '../k8s/api-client.js';
import { EventRecorder } from '../k8s/event-recorder.js';
import { KubernetesTaskWriter } from '../k8s/task-writer.js';
import { Informer } from '../k8s/informer.js';
import { allTasksPath, nodePath } from '../k8s/task-resources.js';
import { Launcher } from '../launcher/launcher.js';
import { MetricsRegistry } from '../metrics/registry.js';
import { readCgroupLayout } from '../sandbox/cgroup-layout.js';
import { CgroupManager } from '../sandbox/cgroup-manager.js';
import { AttemptTable } from '../tasks/attempts.js';
import { TaskReconciler } from '../tasks/task-reconciler.js';

const claimPrefix = 'claim:';
const nodeLabelRefreshMs = 60_000;

export interface RunningAgent {
  readonly port: number;
  /** Resolves once the agent has stopped (after stop(), or a fatal error). */
  readonly stopped: Promise<void>;
  /** SIGTERM's behaviour: drain, then kill and record what is left, then stop. */
  stop(): Promise<void>;
}

/**
 * JSON lines (pino's format) for log collectors; on a terminal, one readable line per record
 * instead. Task lines carry `task` (namespace/name) and `attempt`.
 */
/** The agent's task cgroups, or undefined (with the reason logged) when this host gives it none. */
function makeCgroupManager(config: AgentConfig, logger: Logger): CgroupManager | undefined {
  try {
    const manager = new CgroupManager({ layout: readCgroupLayout(), group: config.cgroupParent });
    const swept = manager.sweepLeftovers();
    if (swept > 0) logger.warn({ swept }, 'ended the processes an earlier life of the agent left in task cgroups');
    return manager;
  } catch (error) {
    logger.warn({ err: (error as Error).message }, 'no cgroups for tasks: Tasks with resources.limits will fail with SandboxUnavailable');
    return undefined;
  }
}

export function createLogger(config: AgentConfig): Logger {
  const options = { level: config.logLevel, base: { node: config.nodeName } };
  return process.stdout.isTTY ? pino(options, terminalLines(process.stdout)) : pino(options);
}

const levelNames: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const levelColours: Readonly<Record<number, string>> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35' };

/** `12:04:05.123 INFO  task running task=ns/name attempt=1 pid=4242`, the level in colour. */
function terminalLines(output: NodeJS.WritableStream): DestinationStream {
  return {
    write(line: string): void {
      const { level, time, msg, ...fields } = JSON.parse(line) as Record<string, unknown> & { level: number; time: number; msg?: string };
      delete fields.node; // one agent's terminal: its node goes without saying
      const clock = new Date(time).toTimeString().slice(0, 8) + '.' + String(time % 1000).padStart(3, '0');
      const pairs = Object.entries(fields).map(([name, value]) => `${name}=${typeof value === 'string' && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)}`);
      output.write(`${clock} \x1b[${levelColours[level] ?? '0'}m${levelNames[level] ?? String(level)}\x1b[0m ${[msg ?? '', ...pairs].join(' ')}\n`);
    },
  };
}

function loadKubeConfig(config: AgentConfig): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (config.kubeconfig !== undefined) kubeConfig.loadFromFile(config.kubeconfig);
  else kubeConfig.loadFromDefault();
  return kubeConfig;
}

export async function startAgent(config: AgentConfig, logger: Logger = createLogger(config)): Promise<RunningAgent> {
  // Built first: every layer below gets its observer from here. The running count is read at
  // scrape time, once the reconciler exists.
  const metrics = new MetricsRegistry({ runningTasks: (): number => reconciler.runningAttempts });
  const client = new ApiClient({ kubeConfig: loadKubeConfig(config), qps: config.apiQps, burst: config.apiBurst, userAgent: `parafork-agent/${config.nodeName}`, observer: metrics.apiClient });
  const launcher = new Launcher({ observer: metrics.spawn, sandboxStagingDirectory: config.sandboxStagingDirectory });
  const cgroups = makeCgroupManager(config, logger);
  metrics.trackLauncher(launcher);
  const capabilities = Launcher.capabilities;
  logger.info({ capabilities, lockMode: launcher.lockMode, clonePath: launcher.clonePath, threads: launcher.threads, cgroupLimits: cgroups?.placement ?? 'unavailable' }, 'host capabilities');

  const lifetime = new AbortController();
  let nodeLabels: Readonly<Record<string, string>> = {};
  // The queue and reconciler reference each other through this late-bound function.
  let enqueue: (key: string) => void = () => undefined;
  const tasks = new Informer<Task>({ client, path: allTasksPath, fieldSelector: `spec.nodeName=${config.nodeName}`, logger, onChange: (key) => enqueue(key) });
  const unboundTasks = new Informer<Task>({ client, path: allTasksPath, fieldSelector: 'spec.nodeName=', logger, onChange: (key) => enqueue(`${claimPrefix}${key}`) });
  const attempts = new AttemptTable();
  const reconciler = new TaskReconciler({
    nodeName: config.nodeName,
    writer: new KubernetesTaskWriter(client),
    launcher,
    tasks,
    unboundTasks,
    attempts,
    events: new EventRecorder({ client, logger, controller: 'parafork.dev/agent', instance: config.nodeName }),
    logger,
    maxConcurrent: config.maxConcurrent,
    ...(cgroups ? { cgroups } : {}),
    terminationGraceMs: config.terminationGraceSeconds * 1000,
    nodeLabels: () => nodeLabels,
    requeue: (key) => enqueue(key),
    observer: metrics.tasks,
  });
  const queue = new WorkQueue(
    async (key) => {
      try {
        return key.startsWith(claimPrefix) ? await reconciler.claim(key.slice(claimPrefix.length)) : await reconciler.reconcile(key);
      } catch (error) {
        const task = key.startsWith(claimPrefix) ? key.slice(claimPrefix.length) : key;
        logger.warn({ task, attempt: attempts.get(task)?.number, err: (error as Error).message }, 'reconcile failed; retrying with backoff');
        throw error;
      }
    },
    { concurrency: config.workers, observer: metrics.workQueue },
  );
  enqueue = (key) => queue.add(key);

  async function refreshNodeLabels(): Promise<void> {
    try {
      const node = await client.request<{ metadata: { labels?: Record<string, string> } }>({ method: 'GET', path: nodePath(config.nodeName), signal: lifetime.signal, retry: false });
      nodeLabels = node.metadata.labels ?? {};
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        nodeLabels = {};
        logger.warn({}, 'no Node object has this agent\'s node name: only Tasks without a nodeSelector can be claimed');
      } else if (!lifetime.signal.aborted) {
        logger.warn({ err: (error as Error).message }, 'could not read this node\'s labels');
      }
    }
  }
  await refreshNodeLabels();
  const labelTimer = setInterval(() => void refreshNodeLabels(), nodeLabelRefreshMs);
  labelTimer.unref();

  let shuttingDown = false;
  const http = await startHttpServer({
    address: config.listenAddress,
    port: config.port,
    ready: () => tasks.synced && unboundTasks.synced && !shuttingDown,
    metrics: () => metrics.scrape(),
  });
  const informersDone = Promise.all([tasks.run(lifetime.signal), unboundTasks.run(lifetime.signal)]);
  queue.start();
  await Promise.all([tasks.waitForSync(), unboundTasks.waitForSync()]);
  logger.info({ port: http.port, bound: tasks.size, unbound: unboundTasks.size }, 'agent ready');

  const { promise: stopped, resolve: markStopped } = Promise.withResolvers<undefined>();
  let stopping: Promise<void> | undefined;

  async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return true;
  }

  async function shutDown(): Promise<void> {
    shuttingDown = true;
    logger.info({ running: reconciler.runningAttempts, graceSeconds: config.shutdownGraceSeconds }, 'shutting down: no more claims or launches');
    reconciler.startDraining();
    const drained = await waitUntil(() => reconciler.runningAttempts === 0 && queue.processing === 0, config.shutdownGraceSeconds * 1000);
    if (!drained) {
      logger.warn({ running: reconciler.runningAttempts }, 'grace period over: killing the tasks still running');
      reconciler.terminateAll();
      await waitUntil(() => reconciler.runningAttempts === 0 && queue.processing === 0 && queue.depth === 0, config.terminationGraceSeconds * 1000 + 10_000);
    }
    await waitUntil(() => queue.processing === 0 && queue.depth === 0, 5_000);
    lifetime.abort();
    clearInterval(labelTimer);
    await queue.shutDown();
    await informersDone;
    await http.close();
    await launcher.close();
    try {
      cgroups?.removeGroup(); // only when empty: other agents on this host may share the group
    } catch {
      // not empty: fine
    }
    logger.info({}, 'agent stopped');
    markStopped(undefined);
  }

  return {
    port: http.port,
    stopped,
    stop: () => (stopping ??= shutDown()),
  };
}

// parafork agent: watches the Tasks bound to this node (and unbound ones it may claim) and runs them.
import { KubeConfig } from '@kubernetes/client-node';
import { pino, type Logger } from 'pino';

import type { Task } from '../api/task.js';
import type { AgentConfig } from '../config/agent-config.js';
import { WorkQueue } from '../controller/work-queue.js';
import { startHealthServer } from '../http/health-server.js';
import { ApiClient, ApiError } from '../k8s/api-client.js';
import { EventRecorder } from '../k8s/event-recorder.js';
import { Informer } from '../k8s/informer.js';
import { allTasksPath, nodePath } from '../k8s/task-resources.js';
import { Launcher } from '../launcher/launcher.js';
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

export function createLogger(config: AgentConfig): Logger {
  return pino({ level: config.logLevel, base: { node: config.nodeName } });
}

function loadKubeConfig(config: AgentConfig): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (config.kubeconfig !== undefined) kubeConfig.loadFromFile(config.kubeconfig);
  else kubeConfig.loadFromDefault();
  return kubeConfig;
}

export async function startAgent(config: AgentConfig, logger: Logger = createLogger(config)): Promise<RunningAgent> {
  const client = new ApiClient({ kubeConfig: loadKubeConfig(config), qps: config.apiQps, burst: config.apiBurst, userAgent: `parafork-agent/${config.nodeName}` });
  const launcher = new Launcher();
  const capabilities = Launcher.capabilities;
  logger.info({ capabilities, lockMode: launcher.lockMode, clonePath: launcher.clonePath, threads: launcher.threads }, 'host capabilities');

  const lifetime = new AbortController();
  let nodeLabels: Readonly<Record<string, string>> = {};
  // The queue and reconciler reference each other through this late-bound function.
  let enqueue: (key: string) => void = () => undefined;
  const tasks = new Informer<Task>({ client, path: allTasksPath, fieldSelector: `spec.nodeName=${config.nodeName}`, logger, onChange: (key) => enqueue(key) });
  const unboundTasks = new Informer<Task>({ client, path: allTasksPath, fieldSelector: 'spec.nodeName=', logger, onChange: (key) => enqueue(`${claimPrefix}${key}`) });
  const reconciler = new TaskReconciler({
    nodeName: config.nodeName,
    client,
    launcher,
    tasks,
    unboundTasks,
    attempts: new AttemptTable(),
    events: new EventRecorder({ client, logger, controller: 'parafork.dev/agent', instance: config.nodeName }),
    logger,
    maxConcurrent: config.maxConcurrent,
    terminationGraceMs: config.terminationGraceSeconds * 1000,
    nodeLabels: () => nodeLabels,
    requeue: (key) => enqueue(key),
  });
  const queue = new WorkQueue(
    async (key) => {
      try {
        return key.startsWith(claimPrefix) ? await reconciler.claim(key.slice(claimPrefix.length)) : await reconciler.reconcile(key);
      } catch (error) {
        logger.warn({ task: key, err: (error as Error).message }, 'reconcile failed; retrying with backoff');
        throw error;
      }
    },
    { concurrency: config.workers },
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
  const health = await startHealthServer({ address: config.listenAddress, port: config.port, ready: () => tasks.synced && unboundTasks.synced && !shuttingDown });
  const informersDone = Promise.all([tasks.run(lifetime.signal), unboundTasks.run(lifetime.signal)]);
  queue.start();
  await Promise.all([tasks.waitForSync(), unboundTasks.waitForSync()]);
  logger.info({ port: health.port, bound: tasks.size, unbound: unboundTasks.size }, 'agent ready');

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
    await health.close();
    await launcher.close();
    logger.info({}, 'agent stopped');
    markStopped(undefined);
  }

  return {
    port: health.port,
    stopped,
    stop: () => (stopping ??= shutDown()),
  };
}

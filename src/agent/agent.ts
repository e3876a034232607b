// parafork agent: watches the Tasks bound to this node (and unbound ones it may claim) and runs them.
import path from 'node:path';

import type { Logger } from 'pino';

import type { Task } from '../api/task.js';
import type { AgentConfig } from '../config/agent-config.js';
import { WorkQueue } from '../controller/work-queue.js';
import { startHttpServer } from '../http/http-server.js';
import { ApiClient, ApiError } from '../k8s/api-client.js';
import { EventRecorder } from '../k8s/event-recorder.js';
import { loadCredentials } from '../k8s/kube-config.js';
import { KubernetesTaskWriter } from '../k8s/task-writer.js';
import { Informer } from '../k8s/informer.js';
import { allTasksPath, nodePath } from '../k8s/task-resources.js';
import { MetricsRegistry } from '../metrics/registry.js';
import { SeccompProfileStore } from '../sandbox/seccomp-profile-store.js';
import { AttemptTable } from '../tasks/attempts.js';
import { LaunchJournal } from '../tasks/launch-journal.js';
import { LogAccessReviewer } from '../k8s/log-access-review.js';
import { logEndpoint } from '../logs/log-endpoint.js';
import { TaskReconciler } from '../tasks/task-reconciler.js';
import { createLogger } from './logger.js';
import { drainTasks, keepLogsWithinTotal, makeTaskRuntime, openTaskLogStore } from './task-runtime.js';

const claimPrefix = 'claim:';
const nodeLabelRefreshMs = 60_000;

export interface RunningAgent {
  readonly port: number;
  /** Resolves once the agent has stopped (after stop(), or a fatal error). */
  readonly stopped: Promise<void>;
  /** SIGTERM's behaviour: drain, then kill and record what is left, then stop. */
  stop(): Promise<void>;
}

/** The launch journal, or undefined (logged) where --state-dir is not writable (a read-only root without a volume there). */
function openLaunchJournal(config: AgentConfig, logger: Logger): LaunchJournal | undefined {
  const file = path.join(config.stateDirectory, `launched-${config.nodeName}`);
  try {
    return new LaunchJournal(file);
  } catch (error) {
    logger.warn({ file, err: (error as Error).message }, 'no launch journal: after a crash of the agent, a Task it launched but had not recorded yet may run again as attempt 1');
    return undefined;
  }
}

export async function startAgent(config: AgentConfig, logger: Logger = createLogger(config)): Promise<RunningAgent> {
  // Built first: every layer below gets its observer from here. The running count is read at
  // scrape time, once the reconciler exists.
  const metrics = new MetricsRegistry({ runningTasks: (): number => reconciler.runningAttempts });
  // Not client-node's KubeConfig (~75 MB of memory) unless the kubeconfig runs a plugin: see src/k8s/kube-config.ts.
  const kubeConfig = await loadCredentials(config.kubeconfig);
  const client = new ApiClient({ kubeConfig, qps: config.apiQps, burst: config.apiBurst, userAgent: `parafork-agent/${config.nodeName}`, observer: metrics.apiClient });
  // Events get a rate limit of their own, as the kubelet's do: a burst of them must not delay status writes.
  const eventClient = new ApiClient({ kubeConfig, qps: config.eventQps, burst: config.eventBurst, userAgent: `parafork-agent/${config.nodeName}`, observer: metrics.apiClient });
  const { launcher, cgroups, identities, launcherSandboxes, unsandboxed } = makeTaskRuntime(config, metrics, logger);

  const lifetime = new AbortController();
  let nodeLabels: Readonly<Record<string, string>> = {};
  // The queue and reconciler reference each other through this late-bound function.
  let enqueue: (key: string) => void = () => undefined;
  const silenceMs = config.watchSilenceSeconds * 1000;
  const tasks = new Informer<Task>({ client, path: allTasksPath, fieldSelector: `spec.nodeName=${config.nodeName}`, silenceMs, logger, onChange: (key) => enqueue(key) });
  const unboundTasks = new Informer<Task>({ client, path: allTasksPath, fieldSelector: 'spec.nodeName=', silenceMs, logger, onChange: (key) => enqueue(`${claimPrefix}${key}`) });
  const attempts = new AttemptTable();
  const journal = openLaunchJournal(config, logger);
  const logs = openTaskLogStore(config, logger);
  const logReviewer = new LogAccessReviewer(client);
  const reconciler = new TaskReconciler({
    nodeName: config.nodeName,
    writer: new KubernetesTaskWriter(client),
    launcher,
    launcherSandboxes,
    ...(journal ? { journal } : {}),
    ...(logs ? { logs } : {}),
    unsandboxed,
    tasks,
    unboundTasks,
    attempts,
    events: new EventRecorder({ client: eventClient, logger, controller: 'parafork.dev/agent', instance: config.nodeName }),
    logger,
    maxConcurrent: config.maxConcurrent,
    ...(cgroups ? { cgroups } : {}),
    ...(identities ? { identities } : {}),
    seccompProfiles: new SeccompProfileStore({ directory: config.seccompProfileDirectory, logger }),
    taskLimits: config.taskLimits,
    sandboxMaskedPaths: config.sandboxMaskedPaths,
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
    ...(logs ? { logs: logEndpoint({ directories: [logs.directory], authorize: (token, namespace, name) => logReviewer.review(token, namespace, name) }) } : {}),
  });
  const informersDone = Promise.all([tasks.run(lifetime.signal), unboundTasks.run(lifetime.signal)]);
  queue.start();
  await Promise.all([tasks.waitForSync(), unboundTasks.waitForSync()]);
  // The logs of Tasks deleted while the agent was away; from here on they go with their Task.
  const sweptLogs = await logs?.sweep((owner) => tasks.get(`${owner.namespace}/${owner.name}`)?.metadata.uid === owner.uid);
  if (sweptLogs) logger.info({ removed: sweptLogs }, 'removed the logs of Tasks that no longer exist');
  const logEviction = logs ? keepLogsWithinTotal(logs, config.logsMaxBytesTotal, (owner) => {
    const phase = tasks.get(`${owner.namespace}/${owner.name}`)?.status?.phase;
    return phase === 'Succeeded' || phase === 'Failed';
  }, logger) : undefined;
  logger.info({ port: http.port, bound: tasks.size, unbound: unboundTasks.size }, 'agent ready');

  const { promise: stopped, resolve: markStopped } = Promise.withResolvers<undefined>();
  let stopping: Promise<void> | undefined;

  async function shutDown(): Promise<void> {
    shuttingDown = true;
    await drainTasks(reconciler, queue, config, logger);
    lifetime.abort();
    clearInterval(labelTimer);
    if (logEviction) clearInterval(logEviction);
    await queue.shutDown();
    await informersDone;
    await http.close();
    await launcher.close();
    journal?.close();
    try {
      cgroups?.removeGroup(); // and lets go of it
    } catch {
      // not empty (a process outlived the drain): the group's next owner sweeps it
    }
    identities?.close();
    logger.info({}, 'agent stopped');
    markStopped(undefined);
  }

  return {
    port: http.port,
    stopped,
    stop: () => (stopping ??= shutDown()),
  };
}

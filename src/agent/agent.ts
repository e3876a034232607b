// parafork agent: watches the Tasks bound to this node (and unbound ones it may claim) and runs them.
// What is the cluster's own lives here: the API clients, the two informers, the Node's labels and
// the HTTP endpoints; the reconciler, queue, launcher and sandbox are the shared runtime's.
import path from 'node:path';
import v8 from 'node:v8';

import type { Logger } from 'pino';

import type { Task } from '../api/task.js';
import type { AgentConfig } from '../config/agent-config.js';
import { startHttpServer } from '../http/http-server.js';
import { ApiClient, ApiError } from '../k8s/api-client.js';
import { EventRecorder } from '../k8s/event-recorder.js';
import { Informer } from '../k8s/informer.js';
import { loadCredentials } from '../k8s/kube-config.js';
import { NamespaceLabels } from '../k8s/namespace-labels.js';
import { allTasksPath, nodePath } from '../k8s/task-resources.js';
import { LogAccessReviewer, logReviewRate } from '../k8s/log-access-review.js';
import { KubernetesTaskWriter } from '../k8s/task-writer.js';
import { MetricsRegistry } from '../metrics/registry.js';
import { holdNodeLogDirectory } from '../logs/instance-log-directory.js';
import { logEndpoint } from '../logs/log-endpoint.js';
import { buildTaskRuntime, taskLogDirectory } from '../runtime/task-runtime.js';
import { sandboxPolicyLabel } from '../sandbox/sandbox-policy.js';
import { namespaceSandboxPolicy } from '../sandbox/sandbox-policy-source.js';
import { heapSizingFlags } from './heap-sizing.js';
import { createLogger } from './logger.js';

const nodeLabelRefreshMs = 60_000;

export interface RunningAgent {
  readonly port: number;
  /** Resolves once the agent has stopped (after stop(), or a fatal error). */
  readonly stopped: Promise<void>;
  /** SIGTERM's behaviour: drain, then kill and record what is left, then stop. */
  stop(): Promise<void>;
}

export async function startAgent(config: AgentConfig, logger: Logger = createLogger(config)): Promise<RunningAgent> {
  // The old generation held near what is live; the young one as the start's flags cap it (heap-sizing.ts).
  v8.setFlagsFromString(heapSizingFlags(process.execArgv, process.env.NODE_OPTIONS));
  // Before anything else: refused while another agent keeps this node's logs and journal here.
  const nodeState = holdNodeLogDirectory(config.stateDirectory, config.nodeName, taskLogDirectory(config.stateDirectory, config.nodeName));
  // Built first: every layer below gets its observer from here. The running count is read at scrape time.
  const metrics = new MetricsRegistry({ runningTasks: (): number => runtime.reconciler.runningAttempts });
  // Not client-node's KubeConfig (~75 MB of memory) unless the kubeconfig runs a plugin: see src/k8s/kube-config.ts.
  const kubeConfig = await loadCredentials(config.kubeconfig);
  const userAgent = `parafork-agent/${config.nodeName}`;
  const client = new ApiClient({ kubeConfig, qps: config.apiQps, burst: config.apiBurst, userAgent, observer: metrics.apiClient });
  // Events get a rate limit of their own, as the kubelet's do: a burst of them must not delay status writes.
  const eventClient = new ApiClient({ kubeConfig, qps: config.eventQps, burst: config.eventBurst, userAgent, observer: metrics.apiClient });

  const lifetime = new AbortController();
  let nodeLabels: Readonly<Record<string, string>> = {};
  const silenceMs = config.watchSilenceSeconds * 1000;
  const tasks = (onChange: (key: string) => void, fieldSelector: string): Informer<Task> => new Informer<Task>({ client, path: allTasksPath, fieldSelector, silenceMs, logger, onChange });
  // The sandbox policy level of each Task's namespace (issue 14), read before every attempt.
  const namespaceLabels = new NamespaceLabels({ client, label: sandboxPolicyLabel, logger, silenceMs });
  // Log readers' reviews too: anyone who reaches the port can ask for one (log-access-review.ts).
  const logReviewer = new LogAccessReviewer(new ApiClient({ kubeConfig, ...logReviewRate, userAgent, observer: metrics.apiClient }));
  const runtime = buildTaskRuntime({
    settings: {
      ...config,
      launchJournalFile: path.join(config.stateDirectory, `launched-${config.nodeName}`),
      taskLogDirectory: taskLogDirectory(config.stateDirectory, config.nodeName),
    },
    logger,
    metrics,
    sandboxPolicy: namespaceSandboxPolicy(config.sandboxPolicy, namespaceLabels),
    nodeLabels: () => nodeLabels,
    connectStores: (changes) => ({
      tasks: tasks(changes.bound, `spec.nodeName=${config.nodeName}`),
      unboundTasks: tasks(changes.unbound, 'spec.nodeName='),
      writer: new KubernetesTaskWriter(client),
      events: new EventRecorder({ client: eventClient, logger, controller: 'parafork.dev/agent', instance: config.nodeName }),
    }),
  });
  const { stores: { tasks: boundTasks, unboundTasks }, logs } = runtime;

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
    ready: () => boundTasks.synced && unboundTasks.synced && !shuttingDown,
    metrics: () => metrics.scrape(),
    ...(logs ? { logs: logEndpoint({ directories: [logs.directory], authorize: (token, namespace, name) => logReviewer.review(token, namespace, name) }) } : {}),
  });
  const informersDone = Promise.all([boundTasks.run(lifetime.signal), unboundTasks.run(lifetime.signal), namespaceLabels.run(lifetime.signal)]);
  runtime.start();
  await Promise.all([boundTasks.waitForSync(), unboundTasks.waitForSync()]);
  // The logs of Tasks deleted while the agent was away; from here on they go with their Task.
  const sweptLogs = await logs?.sweep((owner) => boundTasks.get(`${owner.namespace}/${owner.name}`)?.metadata.uid === owner.uid);
  if (sweptLogs) logger.info({ removed: sweptLogs }, 'removed the logs of Tasks that no longer exist');
  logger.info({ port: http.port, bound: boundTasks.size, unbound: unboundTasks.size }, 'agent ready');

  const { promise: stopped, resolve: markStopped } = Promise.withResolvers<undefined>();
  async function shutDown(): Promise<void> {
    shuttingDown = true;
    await runtime.shutDown(() => {
      lifetime.abort();
      clearInterval(labelTimer);
    });
    await informersDone;
    await http.close();
    nodeState?.release();
    logger.info({}, 'agent stopped');
    markStopped(undefined);
  }
  let stopping: Promise<void> | undefined;
  return { port: http.port, stopped, stop: () => (stopping ??= shutDown()) };
}

// parafork agent --manifests DIR: the node agent without a cluster, as the kubelet runs static pods.
// The Tasks come from a folder of manifests (kept in step by ManifestFolder) instead of the
// apiserver, and live in an in-memory store; the runtime (reconciler, launcher, sandbox), metrics
// and HTTP server are the cluster agent's own. /tasks shows the Tasks with their status.

import type { Logger } from 'pino';

import type { AgentConfig } from '../config/agent-config.js';
import { startHttpServer } from '../http/http-server.js';
import { MetricsRegistry } from '../metrics/registry.js';
import { logEndpoint } from '../logs/log-endpoint.js';
import { buildTaskRuntime, taskLogDirectory } from '../runtime/task-runtime.js';
import { InMemoryTasks } from '../standalone/in-memory-tasks.js';
import { ManifestFolder } from '../standalone/manifest-folder.js';
import type { TaskEventSink } from '../store/task-store.js';
import type { RunningAgent } from './agent.js';

export async function startManifestAgent(config: AgentConfig, directory: string, logger: Logger): Promise<RunningAgent> {
  const metrics = new MetricsRegistry({ runningTasks: (): number => runtime.reconciler.runningAttempts });
  const runtime = buildTaskRuntime({
    // No launch journal: the folder's Tasks are new objects each time the agent starts. No
    // namespaces: every Task of the folder runs at the agent's --sandbox-policy (the default source).
    settings: { ...config, taskLogDirectory: taskLogDirectory(config.stateDirectory, config.nodeName) },
    logger,
    metrics,
    connectStores: (changes) => {
      const store = new InMemoryTasks([], config.nodeName, changes.bound);
      // No apiserver to hold Events: they go to the log, where a folder's user looks.
      const events: TaskEventSink = { record: (subject, type, reason, note) => logger[type === 'Warning' ? 'warn' : 'info']({ task: `${subject.namespace}/${subject.name}`, reason }, note) };
      return { tasks: store, writer: store, events };
    },
  });
  const { stores: { tasks: store }, logs } = runtime;
  // The folder's Tasks are new objects in each life of the agent: an earlier life's logs go.
  await logs?.sweep(() => false);

  const folder = new ManifestFolder({ directory, store, logger });
  let shuttingDown = false;
  const http = await startHttpServer({
    address: config.listenAddress,
    port: config.port,
    ready: () => folder.scans > 0 && !shuttingDown,
    metrics: () => metrics.scrape(),
    tasks: () => ({ apiVersion: 'v1', kind: 'List', items: store.list() }),
    ...(logs ? { logs: logEndpoint({ directories: [logs.directory] }) } : {}),
    // No apiserver to ask who a reader is: Task output only to the machine's administrators.
    taskOutputToLocalAdministratorsOnly: true,
  });
  runtime.start();
  folder.start();
  logger.info({ port: http.port, directory, tasks: folder.size }, 'agent ready');

  const { promise: stopped, resolve: markStopped } = Promise.withResolvers<undefined>();
  async function shutDown(): Promise<void> {
    shuttingDown = true;
    folder.stop();
    await runtime.shutDown();
    await http.close();
    logger.info({}, 'agent stopped');
    markStopped(undefined);
  }
  let stopping: Promise<void> | undefined;
  return { port: http.port, stopped, stop: () => (stopping ??= shutDown()) };
}

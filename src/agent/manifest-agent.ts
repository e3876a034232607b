// parafork agent --manifests DIR: the node agent without a cluster, as the kubelet runs static pods.
// The Tasks come from a folder of manifests (kept in step by ManifestFolder) instead of the
// apiserver, and live in an in-memory store; the runtime (reconciler, launcher, sandbox), metrics
// and HTTP server are the cluster agent's own. /tasks shows the Tasks with their status.

import path from 'node:path';

import type { Logger } from 'pino';

import type { AgentConfig } from '../config/agent-config.js';
import { startHttpServer } from '../http/http-server.js';
import { MetricsRegistry } from '../metrics/registry.js';
import { logEndpoint } from '../logs/log-endpoint.js';
import { cleanEndedInstances, OwnedLogDirectory } from '../logs/instance-log-directory.js';
import { sweepTaskLogDirectory } from '../logs/task-log-store.js';
import { buildTaskRuntime } from '../runtime/task-runtime.js';
import { InMemoryTasks } from '../standalone/in-memory-tasks.js';
import { ManifestFolder } from '../standalone/manifest-folder.js';
import type { TaskEventSink } from '../store/task-store.js';
import type { RunningAgent } from './agent.js';

export async function startManifestAgent(config: AgentConfig, directory: string, logger: Logger): Promise<RunningAgent> {
  // Logs in a directory of this agent's own beside the cluster agents' <state-dir>/logs/<node name>:
  // another agent on the machine, --manifests or not, has Tasks of its own, maybe of the same names.
  const logRoot = path.join(config.stateDirectory, 'logs');
  const ownLogs = claimLogDirectory(logRoot, logger);
  // The folder's Tasks are new objects in each life of an agent: the logs of ended ones go.
  await cleanEndedInstances(logRoot, 'manifests', (directory) => sweepTaskLogDirectory(directory, () => false));
  const metrics = new MetricsRegistry({ runningTasks: (): number => runtime.reconciler.runningAttempts });
  const runtime = buildTaskRuntime({
    // No launch journal: the folder's Tasks are new objects each time the agent starts. No
    // namespaces: every Task of the folder runs at the agent's --sandbox-policy (the default source).
    settings: { ...config, taskLogDirectory: ownLogs?.path },
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
    ownLogs?.release();
    await http.close();
    logger.info({}, 'agent stopped');
    markStopped(undefined);
  }
  let stopping: Promise<void> | undefined;
  return { port: http.port, stopped, stop: () => (stopping ??= shutDown()) };
}

/** This agent's log directory, or undefined (logged) where the state directory is not writable: output is then discarded. */
function claimLogDirectory(root: string, logger: Logger): OwnedLogDirectory | undefined {
  try {
    return OwnedLogDirectory.claim(root, 'manifests');
  } catch (error) {
    logger.warn({ directory: root, err: (error as Error).message }, 'no Task logs: their stdout is discarded and only a stderr tail is kept');
    return undefined;
  }
}

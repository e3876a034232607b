// parafork agent --manifests DIR: the node agent without a cluster, as the kubelet runs static pods.
// The Tasks come from a folder of manifests (kept in step by ManifestFolder) instead of the
// apiserver, and live in an in-memory store; the reconciler, launcher, sandbox, metrics and HTTP
// server are the cluster agent's own. /tasks shows the Tasks with their status.
import type { Logger } from 'pino';

import type { AgentConfig } from '../config/agent-config.js';
import { WorkQueue } from '../controller/work-queue.js';
import { startHttpServer } from '../http/http-server.js';
import { MetricsRegistry } from '../metrics/registry.js';
import { SeccompProfileStore } from '../sandbox/seccomp-profile-store.js';
import { InMemoryTasks } from '../standalone/in-memory-tasks.js';
import { logEndpoint } from '../logs/log-endpoint.js';
import { ManifestFolder } from '../standalone/manifest-folder.js';
import { AttemptTable } from '../tasks/attempts.js';
import { TaskReconciler } from '../tasks/task-reconciler.js';
import type { RunningAgent } from './agent.js';
import { drainTasks, keepLogsWithinTotal, makeTaskRuntime, openTaskLogStore } from './task-runtime.js';

export async function startManifestAgent(config: AgentConfig, directory: string, logger: Logger): Promise<RunningAgent> {
  const metrics = new MetricsRegistry({ runningTasks: (): number => reconciler.runningAttempts });
  const { launcher, cgroups, identities, launcherSandboxes, unsandboxed } = makeTaskRuntime(config, metrics, logger);

  let enqueue: (key: string) => void = () => undefined;
  const store = new InMemoryTasks([], config.nodeName, (key) => enqueue(key));
  // The folder's Tasks are new objects in each life of the agent: an earlier life's logs go.
  const logs = openTaskLogStore(config, logger);
  await logs?.sweep(() => false);
  const logEviction = logs ? keepLogsWithinTotal(logs, config.logsMaxBytesTotal, (owner) => {
    const phase = store.get(`${owner.namespace}/${owner.name}`)?.status?.phase;
    return phase === 'Succeeded' || phase === 'Failed';
  }, logger) : undefined;
  const reconciler = new TaskReconciler({
    nodeName: config.nodeName,
    writer: store,
    launcher,
    launcherSandboxes,
    unsandboxed,
    ...(logs ? { logs } : {}),
    tasks: store,
    unboundTasks: { get: () => undefined },
    attempts: new AttemptTable(),
    // No apiserver to hold Events: they go to the log, where a folder's user looks.
    events: { record: (subject, type, reason, note) => logger[type === 'Warning' ? 'warn' : 'info']({ task: `${subject.namespace}/${subject.name}`, reason }, note) },
    logger,
    maxConcurrent: config.maxConcurrent,
    ...(cgroups ? { cgroups } : {}),
    ...(identities ? { identities } : {}),
    seccompProfiles: new SeccompProfileStore({ directory: config.seccompProfileDirectory, logger }),
    taskLimits: config.taskLimits,
    sandboxMaskedPaths: config.sandboxMaskedPaths,
    terminationGraceMs: config.terminationGraceSeconds * 1000,
    nodeLabels: () => ({}),
    requeue: (key) => enqueue(key),
    observer: metrics.tasks,
  });
  const queue = new WorkQueue(
    async (key) => {
      try {
        return await reconciler.reconcile(key);
      } catch (error) {
        logger.warn({ task: key, err: (error as Error).message }, 'reconcile failed; retrying with backoff');
        throw error;
      }
    },
    { concurrency: config.workers, observer: metrics.workQueue },
  );
  enqueue = (key) => queue.add(key);

  const folder = new ManifestFolder({ directory, store, logger });
  let shuttingDown = false;
  const http = await startHttpServer({
    address: config.listenAddress,
    port: config.port,
    ready: () => folder.scans > 0 && !shuttingDown,
    metrics: () => metrics.scrape(),
    tasks: () => ({ apiVersion: 'v1', kind: 'List', items: store.list() }),
    ...(logs ? { logs: logEndpoint({ directories: [logs.directory] }) } : {}),
  });
  queue.start();
  folder.start();
  logger.info({ port: http.port, directory, tasks: folder.size }, 'agent ready');

  const { promise: stopped, resolve: markStopped } = Promise.withResolvers<undefined>();
  let stopping: Promise<void> | undefined;

  async function shutDown(): Promise<void> {
    shuttingDown = true;
    folder.stop();
    if (logEviction) clearInterval(logEviction);
    await drainTasks(reconciler, queue, config, logger);
    await queue.shutDown();
    await http.close();
    await launcher.close();
    try {
      cgroups?.removeGroup(); // and lets go of it
    } catch {
      // not empty (a process outlived the drain): the group's next owner sweeps it
    }
    identities?.close();
    logger.info({}, 'agent stopped');
    markStopped(undefined);
  }

  return { port: http.port, stopped, stop: () => (stopping ??= shutDown()) };
}

// What both agents (the cluster one and the manifest-folder one) set up and tear down the same way
// around their reconciler: the launcher, task cgroups and task ids, and the drain on SIGTERM.
import path from 'node:path';

import type { Logger } from 'pino';

import { describeTaskLimitPolicy, type AgentConfig } from '../config/agent-config.js';
import type { WorkQueue } from '../controller/work-queue.js';
import { ChildProcessLauncher } from '../launcher/child-process-launcher.js';
import { Launcher } from '../launcher/launcher.js';
import type { MetricsRegistry } from '../metrics/registry.js';
import { openTaskCgroups } from '../sandbox/cgroup-groups.js';
import { readCgroupLayout } from '../sandbox/cgroup-layout.js';
import { CgroupGroupInUseError, type CgroupManager } from '../sandbox/cgroup-manager.js';
import { TaskIdentities } from '../sandbox/task-identities.js';
import { TaskLogStore, type TaskLogOwner } from '../logs/task-log-store.js';
import type { TaskLauncher, TaskReconciler } from '../tasks/task-reconciler.js';

export interface TaskRuntime {
  readonly launcher: TaskLauncher & { close(): Promise<void> };
  /** Undefined without a sandbox (--task-sandbox off) or where the host gives the agent no cgroups. */
  readonly cgroups: CgroupManager | undefined;
  /** Host ids for the Tasks; undefined without a sandbox (--task-sandbox off). */
  readonly identities: TaskIdentities | undefined;
  /** For the reconciler: whether the launcher can build the sandbox, and whether Tasks skip it. */
  readonly launcherSandboxes: boolean;
  readonly unsandboxed: boolean;
}

/**
 * The launcher the flags ask for (the native one; child_process only as a benchmark baseline),
 * the task cgroups and task ids, with the host's capabilities logged once. Throws
 * CgroupGroupInUseError while another agent owns the cgroup group (before starting anything).
 */
export function makeTaskRuntime(config: AgentConfig, metrics: MetricsRegistry, logger: Logger): TaskRuntime {
  const cgroups = config.taskSandbox ? makeCgroupManager(config.cgroupParent, logger) : undefined;
  const identities = config.taskSandbox ? new TaskIdentities({ ...config.taskIds, lockDirectory: path.join(config.stateDirectory, 'ids') }) : undefined;
  const nativeLauncher = config.launcher === 'native' ? new Launcher({ observer: metrics.spawn, sandboxStagingDirectory: config.sandboxStagingDirectory, sandboxMaskedPaths: config.sandboxMaskedPaths }) : undefined;
  if (nativeLauncher) {
    metrics.trackLauncher(nativeLauncher);
    metrics.trackLogs(nativeLauncher);
    logger.info({ capabilities: Launcher.capabilities, lockMode: nativeLauncher.lockMode, clonePath: nativeLauncher.clonePath, threads: nativeLauncher.threads, cgroupLimits: cgroups?.placement ?? 'unavailable', taskLimits: describeTaskLimitPolicy(config.taskLimits) }, 'host capabilities');
  }
  if (!config.taskSandbox || !nativeLauncher) {
    logger.warn({ launcher: config.launcher, taskSandbox: config.taskSandbox }, config.taskSandbox ? 'the child_process launcher cannot sandbox: every Task will fail with SandboxUnavailable' : 'Tasks run unsandboxed, with this agent\'s privileges (--task-sandbox off): for benchmarks only');
  }
  return { launcher: nativeLauncher ?? new ChildProcessLauncher(), cgroups, identities, launcherSandboxes: nativeLauncher !== undefined, unsandboxed: !config.taskSandbox };
}

/**
 * The agent's task cgroups, its group taken and swept (src/sandbox/cgroup-groups.ts), or
 * undefined (with the reason logged) when this host gives it none. Throws CgroupGroupInUseError
 * when another live agent owns the group: sweeping it would end that agent's Tasks.
 */
export function makeCgroupManager(cgroupParent: string | undefined, logger: Logger): CgroupManager | undefined {
  try {
    const { manager, group, sweptTaskCgroups, sweptRunGroups } = openTaskCgroups(readCgroupLayout(), cgroupParent);
    if (sweptTaskCgroups > 0) logger.warn({ swept: sweptTaskCgroups, group }, 'ended the processes an earlier owner of the group left in task cgroups');
    if (sweptRunGroups > 0) logger.warn({ swept: sweptRunGroups }, 'ended and removed the per-run cgroup groups of parafork runs that are gone');
    return manager;
  } catch (error) {
    if (error instanceof CgroupGroupInUseError) throw error;
    logger.warn({ err: (error as Error).message }, 'no cgroups for tasks: Tasks with limits (their own, or the --default-* ones) will fail with SandboxUnavailable');
    return undefined;
  }
}

export async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

/**
 * SIGTERM's first half: no more claims or launches; running tasks get the shutdown grace to end,
 * then are killed and their endings recorded. Resolves when the queue is idle.
 */
export async function drainTasks(reconciler: TaskReconciler, queue: WorkQueue, config: AgentConfig, logger: Logger): Promise<void> {
  logger.info({ running: reconciler.runningAttempts, graceSeconds: config.shutdownGraceSeconds }, 'shutting down: no more claims or launches');
  reconciler.startDraining();
  const drained = await waitUntil(() => reconciler.runningAttempts === 0 && queue.processing === 0, config.shutdownGraceSeconds * 1000);
  if (!drained) {
    logger.warn({ running: reconciler.runningAttempts }, 'grace period over: killing the tasks still running');
    reconciler.terminateAll();
    await waitUntil(() => reconciler.runningAttempts === 0 && queue.processing === 0 && queue.depth === 0, config.terminationGraceSeconds * 1000 + 10_000);
  }
  await waitUntil(() => queue.processing === 0 && queue.depth === 0, 5_000);
}

/**
 * The directory of an agent's Task logs: per node name, as the launch journal is, so that two
 * agents sharing a --state-dir never sweep each other's (`parafork logs` looks in every one).
 */
export function taskLogDirectory(stateDirectory: string, nodeName: string): string {
  return path.join(stateDirectory, 'logs', nodeName);
}

/** Task logs under --state-dir, or undefined (logged) where it is not writable: output is then discarded. */
export function openTaskLogStore(config: AgentConfig, logger: Logger): TaskLogStore | undefined {
  const directory = taskLogDirectory(config.stateDirectory, config.nodeName);
  try {
    return new TaskLogStore({ directory, maxBytesPerAttempt: config.taskLogMaxBytes });
  } catch (error) {
    logger.warn({ directory, err: (error as Error).message }, 'no Task logs: their stdout is discarded and only a stderr tail is kept');
    return undefined;
  }
}

/** Every 30 s, the node's logs back within --logs-max-bytes-total (TaskLogStore.evictOldest); the timer is returned. */
export function keepLogsWithinTotal(logs: TaskLogStore, maxBytesTotal: number, finished: (owner: TaskLogOwner) => boolean, logger: Logger): NodeJS.Timeout {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    logs.evictOldest(maxBytesTotal, finished).then(
      (removed) => {
        if (removed > 0) logger.info({ removed, maxBytesTotal }, 'removed the logs of the oldest finished Tasks: the node held more than --logs-max-bytes-total');
      },
      (error: unknown) => logger.warn({ err: (error as Error).message }, 'could not keep Task logs within --logs-max-bytes-total'),
    ).finally(() => (running = false));
  }, 30_000);
  timer.unref();
  return timer;
}

// The one composition root of Task running, shared by the cluster agent, `agent --manifests` and
// `parafork run`: from a Task store (caches, writer, events) and the node's settings it builds the
// launcher, task cgroups and ids, seccomp profiles, launch journal, Task logs, reconciler and work queue,
// wires them, and tears them down in one order. Each entry point adds only its own concerns (API
// client and informers, a watched folder, progress) around it.
import path from 'node:path';

import type { Logger } from 'pino';

import { describeTaskLimitPolicy, type AgentConfig } from '../config/agent-config.js';
import { WorkQueue, type ReconcileResult } from '../controller/work-queue.js';
import { ChildProcessLauncher } from '../launcher/child-process-launcher.js';
import { Launcher, type LauncherObserver } from '../launcher/launcher.js';
import { eventLoopThreadNice, prioritizeAutogroup, prioritizeEventLoopHelpers, prioritizeEventLoopThread } from '../launcher/thread-priority.js';
import { recordingEndedIndexes } from '../logs/ended-index-records.js';
import { TaskLogStore, type TaskLogOwner, type TaskLogStoreOptions } from '../logs/task-log-store.js';
import type { MetricsRegistry } from '../metrics/registry.js';
import { openTaskCgroups } from '../sandbox/cgroup-groups.js';
import { readCgroupLayout } from '../sandbox/cgroup-layout.js';
import { CgroupGroupInUseError, type CgroupManager } from '../sandbox/cgroup-manager.js';
import { fixedSandboxPolicy, type SandboxPolicySource, withTaskIdRangesInUse } from '../sandbox/sandbox-policy-source.js';
import { SeccompProfileStore } from '../sandbox/seccomp-profile-store.js';
import { machineTaskIdLockDirectory, TaskIdentities, taskIdRangesInUse } from '../sandbox/task-identities.js';
import type { TaskCache, TaskEventSink, TaskWriter } from '../store/task-store.js';
import { AttemptTable } from '../tasks/attempts.js';
import { LaunchJournal } from '../tasks/launch-journal.js';
import type { TaskLauncher } from '../tasks/task-launch.js';
import { claimKey, reconcileKey, taskQueueKeyId, type TaskQueueKey } from '../tasks/task-queue-key.js';
import { arrayLeaseTimings } from '../tasks/array-partitions.js';
import { TaskReconciler } from '../tasks/task-reconciler.js';

/** The node's settings the runtime uses, named as the agent's flags name them (src/config/agent-config.ts). */
export type TaskRuntimeSettings = Pick<
  AgentConfig,
  | 'nodeName' | 'maxConcurrent' | 'workers' | 'terminationGraceSeconds' | 'shutdownGraceSeconds' | 'cgroupParent' | 'taskIds'
  | 'sandboxStagingDirectory' | 'seccompProfileDirectory' | 'launcher' | 'taskSandbox' | 'taskLimits' | 'sandboxMaskedPaths'
  | 'sandboxPolicy' | 'taskLogMaxBytes' | 'logsMaxBytesTotal'
> & {
  /**
   * Where the task id blocks' lock files are; undefined: the machine's, shared by every parafork
   * instance (machineTaskIdLockDirectory). Only tests give another.
   */
  readonly taskIdLockDirectory?: string;
  /** --array-lease-seconds; undefined: the default lease (src/tasks/array-partitions.ts). */
  readonly arrayLeaseSeconds?: number;
  /** The launch journal's file (src/tasks/launch-journal.ts); undefined: none (standalone Tasks end with their process). */
  readonly launchJournalFile?: string | undefined;
  /**
   * Where the Tasks' stdout and stderr are kept (src/logs; taskLogDirectory gives an agent's);
   * undefined: stdout discarded, only a stderr tail kept in status.
   */
  readonly taskLogDirectory?: string | undefined;
  /** The ended index logs one Task array keeps (--array-log-max-bytes); default defaultArrayLogMaxBytes (src/logs/task-log-store.ts). */
  readonly arrayLogMaxBytes?: number | undefined;
};

/** The Task store the reconciler works on: the apiserver through informers, or one in memory. */
export interface TaskStores {
  /** Tasks bound to this node. */
  readonly tasks: TaskCache;
  /** Unbound Tasks this node may claim; undefined: none (standalone). */
  readonly unboundTasks?: TaskCache | undefined;
  readonly writer: TaskWriter;
  readonly events: TaskEventSink;
}

/** How a store reports a change: the key of a Task bound here, or of an unbound one to claim. */
export interface TaskChangeListener {
  readonly bound: (key: string) => void;
  readonly unbound: (key: string) => void;
}

export interface TaskRuntimeOptions<Stores extends TaskStores = TaskStores> {
  readonly settings: TaskRuntimeSettings;
  readonly logger: Logger;
  /** The store, made with the listener it reports changes to (an informer's onChange). */
  readonly connectStores: (changes: TaskChangeListener) => Stores;
  /** The agent's metrics: the launcher, queue and reconciler report to it. Undefined: none. */
  readonly metrics?: MetricsRegistry | undefined;
  /** Another observer of spawns, where there are no metrics (`run`'s progress line). */
  readonly launcherObserver?: LauncherObserver | undefined;
  /** The node's labels, for claims and spec.nodeSelector; default none. */
  readonly nodeLabels?: (() => Readonly<Record<string, string>>) | undefined;
  /**
   * The sandbox policy of each Task (issue 14): the cluster agent's reads namespace labels;
   * default: every Task at settings.sandboxPolicy (standalone modes have no namespaces).
   */
  readonly sandboxPolicy?: SandboxPolicySource | undefined;
}

export interface TaskRuntime<Stores extends TaskStores = TaskStores> {
  readonly reconciler: TaskReconciler;
  readonly queue: WorkQueue<TaskQueueKey>;
  /** What connectStores made, as it made them (an entry point runs its informers, lists its store). */
  readonly stores: Stores;
  /** The Tasks' logs; undefined: none kept (no taskLogDirectory, or it is not writable). */
  readonly logs: TaskLogStore | undefined;
  /**
   * Starts handing keys to the reconciler, and (with logs) keeping the node's logs within
   * logsMaxBytesTotal: every 30 s the oldest logs of finished Tasks go.
   */
  start(): void;
  /**
   * Drains, then stops: no more claims or launches; running Tasks get shutdownGraceSeconds to end,
   * then are killed and their endings recorded (nothing running: no wait at all). `afterDrain`
   * runs next (an entry point stops its sources there); then the queue stops and the launcher,
   * journal, cgroup group and task ids are let go. Called twice, it returns the first promise.
   */
  shutDown(afterDrain?: () => void | Promise<void>): Promise<void>;
}

/** How often the drain looks whether the running Tasks have ended. */
const drainPollMs = 50;

/**
 * Builds the runtime. Throws CgroupGroupInUseError while another agent owns the cgroup group, and
 * TaskIdRangeConflictError for a --task-ids range out of step with a running instance's, before
 * anything is started (nothing is left open then).
 */
export function buildTaskRuntime<Stores extends TaskStores>(options: TaskRuntimeOptions<Stores>): TaskRuntime<Stores> {
  const { settings, logger, metrics } = options;
  // The launcher first: it refuses a Node.js or platform it cannot run on, before anything is taken.
  const { launcher, launcherSandboxes, restoreAutogroup } = makeLauncher(settings, logger, metrics, options.launcherObserver);
  let cgroups: CgroupManager | undefined;
  // A refusal while the runtime is built lets go of what was taken by then: the launcher, the
  // cgroup group if it was claimed, the agent's autogroup nice.
  const letGoOfWhatWasTaken = (): void => {
    void launcher.close();
    try {
      cgroups?.removeGroup();
    } catch {
      // let go all the same (removeGroup's finally); what is left is for the group's next owner
    }
    restoreAutogroup?.();
  };
  try {
    cgroups = settings.taskSandbox ? makeCgroupManager(settings.cgroupParent, settings.taskLimits.tasksPidsMax, logger) : undefined;
  } catch (error) {
    letGoOfWhatWasTaken(); // another parafork owns the group (CgroupGroupInUseError)
    throw error;
  }
  if (launcher instanceof Launcher) {
    logger.info({ capabilities: Launcher.capabilities, lockMode: launcher.lockMode, clonePath: launcher.clonePath, threads: launcher.threads, cgroupLimits: cgroups?.placement ?? 'unavailable', taskLimits: describeTaskLimitPolicy(settings.taskLimits) }, 'host capabilities');
  }
  const taskIdLockDirectory = settings.taskIdLockDirectory ?? machineTaskIdLockDirectory;
  let identities: TaskIdentities | undefined;
  try {
    identities = settings.taskSandbox ? new TaskIdentities({ ...settings.taskIds, lockDirectory: taskIdLockDirectory }) : undefined;
  } catch (error) {
    letGoOfWhatWasTaken(); // a range out of step with a running instance's (TaskIdRangeConflictError)
    throw error;
  }
  const journal = settings.launchJournalFile === undefined ? undefined : openLaunchJournal(settings.launchJournalFile, logger);
  const logs = settings.taskLogDirectory === undefined ? undefined : openTaskLogStore({ directory: settings.taskLogDirectory, maxBytesPerAttempt: settings.taskLogMaxBytes, ...(settings.arrayLogMaxBytes !== undefined ? { maxBytesPerArray: settings.arrayLogMaxBytes } : {}) }, logger);
  if (logs) metrics?.trackLogDiskUsage(logs);

  // The queue's handler and the stores' listener reach the reconciler once it exists; neither runs before start().
  const queue = new WorkQueue<TaskQueueKey>((key) => handle(key), { concurrency: settings.workers, keyId: taskQueueKeyId, ...(metrics ? { observer: metrics.workQueue } : {}) });
  const stores = options.connectStores({ bound: (key) => queue.add(reconcileKey(key)), unbound: (key) => queue.add(claimKey(key)) });
  const reconciler = new TaskReconciler({
    nodeName: settings.nodeName,
    // An array's status writes also say, beside its index logs, which indexes have ended (for `logs --index N -f`).
    writer: logs ? recordingEndedIndexes(stores.writer, logs) : stores.writer,
    launcher,
    launcherSandboxes,
    unsandboxed: !settings.taskSandbox,
    ...(journal ? { journal } : {}),
    ...(logs ? { logs } : {}),
    tasks: stores.tasks,
    unboundTasks: stores.unboundTasks ?? { get: () => undefined },
    attempts: new AttemptTable(),
    events: stores.events,
    logger,
    maxConcurrent: settings.maxConcurrent,
    ...(cgroups ? { cgroups } : {}),
    ...(identities ? { identities } : {}),
    seccompProfiles: new SeccompProfileStore({ directory: settings.seccompProfileDirectory, logger }),
    taskLimits: settings.taskLimits,
    sandboxMaskedPaths: settings.sandboxMaskedPaths,
    // A spec's host id is refused in any running instance's --task-ids range, not only in this one's.
    sandboxPolicy: withTaskIdRangesInUse(options.sandboxPolicy ?? fixedSandboxPolicy(settings.sandboxPolicy), () => taskIdRangesInUse(taskIdLockDirectory)),
    terminationGraceMs: settings.terminationGraceSeconds * 1000,
    ...(settings.arrayLeaseSeconds !== undefined ? { sharedArrayLease: arrayLeaseTimings(settings.arrayLeaseSeconds) } : {}),
    nodeLabels: options.nodeLabels ?? ((): Readonly<Record<string, string>> => ({})),
    requeue: (key) => queue.add(key),
    ...(metrics ? { observer: metrics.tasks } : {}),
  });

  async function handle(key: TaskQueueKey): Promise<ReconcileResult | undefined> {
    try {
      return key.kind === 'claim' ? await reconciler.claim(key.name) : await reconciler.reconcile(key.name);
    } catch (error) {
      logger.warn({ task: key.name, claim: key.kind === 'claim' || undefined, err: (error as Error).message }, 'reconcile failed; retrying with backoff');
      throw error;
    }
  }

  async function drain(): Promise<void> {
    const grace = settings.shutdownGraceSeconds;
    logger.info({ running: reconciler.runningAttempts, graceSeconds: grace }, 'shutting down: no more claims or launches');
    reconciler.startDraining();
    const idle = (): boolean => reconciler.runningAttempts === 0 && queue.processing === 0;
    if (!(await waitUntil(idle, grace * 1000))) {
      logger.warn({ running: reconciler.runningAttempts }, 'grace period over: killing the tasks still running');
      reconciler.terminateAll();
      // Their endings are recorded by reconciles the kills ask for.
      await waitUntil(() => idle() && queue.depth === 0, settings.terminationGraceSeconds * 1000 + 10_000);
    }
    await waitUntil(() => queue.processing === 0 && queue.depth === 0, 5_000);
  }

  let logEviction: NodeJS.Timeout | undefined;
  function start(): void {
    queue.start();
    if (logs === undefined || logEviction !== undefined) return;
    logEviction = keepLogsWithinTotal(logs, settings.logsMaxBytesTotal, (owner) => {
      const phase = stores.tasks.get(`${owner.namespace}/${owner.name}`)?.status?.phase;
      return phase === 'Succeeded' || phase === 'Failed';
    }, logger);
  }

  let stopping: Promise<void> | undefined;
  async function stop(afterDrain: (() => void | Promise<void>) | undefined): Promise<void> {
    clearInterval(logEviction);
    await drain();
    await afterDrain?.();
    await queue.shutDown();
    await launcher.close();
    restoreAutogroup?.();
    journal?.close();
    await cgroups?.removeIdleAsync(); // and waits for every removal under way
    try {
      cgroups?.removeGroup(); // and lets go of it
    } catch {
      // not empty (a process outlived the drain): the group's next owner sweeps it
    }
    identities?.close();
  }

  return {
    reconciler,
    queue,
    stores,
    logs,
    start,
    shutDown: (afterDrain) => (stopping ??= stop(afterDrain)),
  };
}

/** The launcher the settings ask for (the native one; child_process only as a benchmark baseline), and whether it can build the sandbox. */
function makeLauncher(settings: TaskRuntimeSettings, logger: Logger, metrics: MetricsRegistry | undefined, observer: LauncherObserver | undefined): { launcher: TaskLauncher & { close(): Promise<void> }; launcherSandboxes: boolean; restoreAutogroup?: () => void } {
  if (settings.launcher === 'child_process' || !settings.taskSandbox) {
    logger.warn({ launcher: settings.launcher, taskSandbox: settings.taskSandbox }, settings.taskSandbox ? 'the child_process launcher cannot sandbox: every Task will fail with SandboxUnavailable' : 'Tasks run unsandboxed, with this agent\'s privileges (--task-sandbox off): for benchmarks only');
  }
  if (settings.launcher === 'child_process') return { launcher: new ChildProcessLauncher(), launcherSandboxes: false };
  const spawnObserver = observer ?? metrics?.spawn;
  const launcher = new Launcher({ ...(spawnObserver ? { observer: spawnObserver } : {}), sandboxStagingDirectory: settings.sandboxStagingDirectory, sandboxMaskedPaths: settings.sandboxMaskedPaths });
  metrics?.trackLauncher(launcher);
  metrics?.trackLogs(launcher);
  // This thread starts and ends every Task: ahead of the launcher's threads and of the Tasks when
  // it wakes (src/launcher/thread-priority.ts). Best effort: without CAP_SYS_NICE it keeps its nice.
  // Its helpers (V8's and libuv's threads) with it: it waits for them (prioritizeEventLoopHelpers).
  if (!prioritizeEventLoopThread()) {
    logger.info({ nice: eventLoopThreadNice }, 'the JavaScript thread keeps its scheduling priority (no CAP_SYS_NICE, or set by the operator)');
    return { launcher, launcherSandboxes: true };
  }
  prioritizeEventLoopHelpers();
  // And the session's autogroup, which is what the kernel weighs against the Tasks' group where
  // the agent runs in the root cpu cgroup (prioritizeAutogroup); put back when the runtime stops.
  const restoreAutogroup = prioritizeAutogroup();
  return { launcher, launcherSandboxes: true, ...(restoreAutogroup === undefined ? {} : { restoreAutogroup }) };
}

/**
 * The task cgroups, their group taken and swept (src/sandbox/cgroup-groups.ts), or undefined
 * (with the reason logged) when this host gives none. Throws CgroupGroupInUseError when another
 * live agent owns the group: sweeping it would end that agent's Tasks.
 */
function makeCgroupManager(cgroupParent: string | undefined, tasksPidsMax: number | undefined, logger: Logger): CgroupManager | undefined {
  try {
    const { manager, group, sweptTaskCgroups, sweptRunGroups } = openTaskCgroups(readCgroupLayout(), cgroupParent, tasksPidsMax);
    if (sweptTaskCgroups > 0) logger.warn({ swept: sweptTaskCgroups, group }, 'ended the processes an earlier owner of the group left in task cgroups');
    if (sweptRunGroups > 0) logger.warn({ swept: sweptRunGroups }, 'ended and removed the per-run cgroup groups of parafork runs that are gone');
    return manager;
  } catch (error) {
    if (error instanceof CgroupGroupInUseError) throw error;
    logger.warn({ err: (error as Error).message }, 'no cgroups for tasks: Tasks with limits (their own, or the --default-* ones) will fail with SandboxUnavailable');
    return undefined;
  }
}

/** The launch journal, or undefined (logged) where its folder is not writable (a read-only root without a volume there). */
function openLaunchJournal(file: string, logger: Logger): LaunchJournal | undefined {
  try {
    return new LaunchJournal(file);
  } catch (error) {
    logger.warn({ file, err: (error as Error).message }, 'no launch journal: after a crash of the agent, a Task it launched but had not recorded yet may run again as attempt 1');
    return undefined;
  }
}

/**
 * The directory of an agent's Task logs: per node name, as the launch journal is, so that two
 * agents sharing a --state-dir never sweep each other's (`parafork logs` looks in every one).
 */
export function taskLogDirectory(stateDirectory: string, nodeName: string): string {
  return path.join(stateDirectory, 'logs', nodeName);
}

/** Task logs in `directory`, or undefined (logged) where it is not writable: output is then discarded. */
function openTaskLogStore(options: TaskLogStoreOptions, logger: Logger): TaskLogStore | undefined {
  try {
    return new TaskLogStore(options);
  } catch (error) {
    logger.warn({ directory: options.directory, err: (error as Error).message }, 'no Task logs: their stdout is discarded and only a stderr tail is kept');
    return undefined;
  }
}

/** Every 30 s, the node's logs back within `maxBytesTotal` (TaskLogStore.evictOldest); the timer is returned. */
function keepLogsWithinTotal(logs: TaskLogStore, maxBytesTotal: number, finished: (owner: TaskLogOwner) => boolean, logger: Logger): NodeJS.Timeout {
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

/** Resolves true once `condition` holds (at once when it already does), false after `timeoutMs`. */
async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, drainPollMs));
  }
  return true;
}

// parafork run: the Tasks of some manifests, run on this machine by the agent's own reconciler,
// work queue, launcher and sandbox, with InMemoryTasks in place of the apiserver. Resolves once
// every Task has reached Succeeded or Failed.
import type { Logger } from 'pino';

import type { Task } from '../api/task.js';
import { WorkQueue } from '../controller/work-queue.js';
import { Launcher } from '../launcher/launcher.js';
import { makeCgroupManager } from '../agent/task-runtime.js';
import type { CgroupManager } from '../sandbox/cgroup-manager.js';
import { SeccompProfileStore } from '../sandbox/seccomp-profile-store.js';
import { TaskIdentities } from '../sandbox/task-identities.js';
import type { TaskLimitPolicy } from '../sandbox/task-limits.js';
import { AttemptTable } from '../tasks/attempts.js';
import type { TaskLogStore } from '../logs/task-log-store.js';
import { TaskReconciler } from '../tasks/task-reconciler.js';
import { InMemoryTasks } from './in-memory-tasks.js';

export interface RunProgress {
  readonly total: number;
  readonly running: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly elapsedMs: number;
  /** p99 of clone-to-exec so far, in ms (undefined before the first spawn). */
  readonly spawnP99Ms: number | undefined;
}

export interface RunOptions {
  readonly nodeName: string;
  readonly maxConcurrent: number;
  readonly workers: number;
  readonly logger: Logger;
  readonly sandboxStagingDirectory: string;
  /** The task cgroups' group; undefined (the CLI's choice): a group of this run's own (src/sandbox/cgroup-groups.ts). */
  readonly cgroupParent?: string;
  /** Host ids for Tasks without runAsUser/runAsGroup, and the lock files that share them out (src/sandbox/task-identities.ts). */
  readonly taskIds: { readonly first: number; readonly last: number };
  readonly taskIdLockDirectory: string;
  /** Paths masked in every Task's root and /proc (agentMaskedPaths); default defaultMaskedPaths. */
  readonly sandboxMaskedPaths?: readonly string[];
  /** Where sandbox.seccomp type Localhost profiles are read from. */
  readonly seccompProfileDirectory: string;
  /** Default limits and the /tmp cap, as the agent's --default-* and --max-tmp-size flags set them. */
  readonly taskLimits: TaskLimitPolicy;
  /** Where the Tasks' output is kept (and read by `parafork logs` afterwards); undefined: discarded. */
  readonly logs?: TaskLogStore;
  /** Called about five times a second, and once at the end. */
  readonly onProgress?: (progress: RunProgress) => void;
}

const spawnSamplesKept = 100_000;

export async function runTasks(tasks: readonly Task[], options: RunOptions): Promise<Task[]> {
  const spawnNs: number[] = [];
  const launcher = new Launcher({
    sandboxStagingDirectory: options.sandboxStagingDirectory,
    ...(options.sandboxMaskedPaths ? { sandboxMaskedPaths: options.sandboxMaskedPaths } : {}),
    observer: {
      spawned: (timings) => {
        if (spawnNs.length < spawnSamplesKept) spawnNs.push(timings.spawnNs);
      },
    },
  });
  let cgroups: CgroupManager | undefined;
  try {
    cgroups = makeCgroupManager(options.cgroupParent, options.logger);
  } catch (error) {
    await launcher.close(); // another parafork owns the group (CgroupGroupInUseError)
    throw error;
  }
  const identities = new TaskIdentities({ ...options.taskIds, lockDirectory: options.taskIdLockDirectory });
  let enqueue: (key: string) => void = () => undefined;
  const store = new InMemoryTasks(tasks, options.nodeName, (key) => enqueue(key));
  const reconciler = new TaskReconciler({
    nodeName: options.nodeName,
    writer: store,
    launcher,
    tasks: store,
    unboundTasks: { get: () => undefined },
    attempts: new AttemptTable(),
    events: { record: () => undefined },
    logger: options.logger,
    maxConcurrent: options.maxConcurrent,
    terminationGraceMs: 10_000,
    nodeLabels: () => ({}),
    requeue: (key) => enqueue(key),
    ...(cgroups ? { cgroups } : {}),
    identities,
    seccompProfiles: new SeccompProfileStore({ directory: options.seccompProfileDirectory, logger: options.logger }),
    taskLimits: options.taskLimits,
    ...(options.sandboxMaskedPaths ? { sandboxMaskedPaths: options.sandboxMaskedPaths } : {}),
    ...(options.logs ? { logs: options.logs } : {}),
  });
  const queue = new WorkQueue((key) => reconciler.reconcile(key), { concurrency: options.workers });
  enqueue = (key) => queue.add(key);

  const started = performance.now();
  const progress = (): RunProgress => {
    let running = 0;
    let succeeded = 0;
    let failed = 0;
    for (const task of store.list()) {
      if (task.status?.phase === 'Running') running++;
      else if (task.status?.phase === 'Succeeded') succeeded++;
      else if (task.status?.phase === 'Failed') failed++;
    }
    const sorted = [...spawnNs].sort((a, b) => a - b);
    const p99 = sorted.length === 0 ? undefined : (sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)] ?? 0) / 1e6;
    return { total: tasks.length, running, succeeded, failed, elapsedMs: performance.now() - started, spawnP99Ms: p99 };
  };

  for (const key of store.keys()) queue.add(key);
  queue.start();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = progress();
      options.onProgress?.(now);
      if (now.succeeded + now.failed === now.total && queue.processing === 0) {
        clearInterval(timer);
        resolve();
      }
    }, 200);
  });
  await queue.shutDown();
  await launcher.close();
  try {
    cgroups?.removeGroup(); // and lets go of it
  } catch {
    // not empty (a process outlived its Task): the next run sweeps it
  }
  identities.close();
  return store.list();
}

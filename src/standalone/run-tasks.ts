// parafork run: the Tasks of some manifests, run on this machine by the agents' own runtime
// (reconciler, work queue, launcher, sandbox), with InMemoryTasks in place of the apiserver.
// Resolves once every Task this machine runs has reached Succeeded or Failed; a Task bound to
// another node (spec.nodeName) is held Pending, as it would be on a cluster until that node's
// agent takes it up. Interrupted (Ctrl-C), it stops as an agent shuts down: nothing more starts,
// the running Tasks are stopped and their endings recorded, and it resolves once none runs, so no
// Task outlives the run.
import type { Logger } from 'pino';

import type { Task } from '../api/task.js';
import { buildTaskRuntime, type TaskRuntimeSettings } from '../runtime/task-runtime.js';
import { InMemoryTasks } from './in-memory-tasks.js';
import { progressUnits } from './progress-units.js';

export interface RunProgress {
  readonly total: number;
  readonly running: number;
  readonly succeeded: number;
  readonly failed: number;
  /** Bound to another node by spec.nodeName: held Pending, never run here. */
  readonly held: number;
  readonly elapsedMs: number;
  /** p99 of clone-to-exec so far, in ms (undefined before the first spawn). */
  readonly spawnP99Ms: number | undefined;
  /** The Tasks as they stand (src/standalone/task-report.ts counts pending and retrying from them). */
  readonly tasks: readonly Task[];
}

export interface RunOptions {
  readonly settings: TaskRuntimeSettings;
  readonly logger: Logger;
  /** Called about five times a second, and once at the end. */
  readonly onProgress?: (progress: RunProgress) => void;
  /**
   * Aborted: no Task starts any more; the running ones are stopped at once (SIGTERM, SIGKILL after
   * settings.terminationGraceSeconds) and recorded as AgentRestarted, as an agent's shutdown
   * records them; the Tasks are returned as they then stand.
   */
  readonly signal?: AbortSignal;
}

const spawnSamplesKept = 100_000;
const progressIntervalMs = 200;

export async function runTasks(tasks: readonly Task[], options: RunOptions): Promise<Task[]> {
  const spawnNs: number[] = [];
  const runtime = buildTaskRuntime({
    settings: options.settings,
    logger: options.logger,
    launcherObserver: {
      spawned: (timings) => {
        if (spawnNs.length < spawnSamplesKept) spawnNs.push(timings.spawnNs);
      },
    },
    // A run's Tasks end with it: their Events are of no one's use.
    connectStores: (changes) => {
      const store = new InMemoryTasks(tasks, options.settings.nodeName, changes.bound);
      return { tasks: store, writer: store, events: { record: () => undefined } };
    },
  });
  const store = runtime.stores.tasks;

  const started = performance.now();
  const progress = (): RunProgress => {
    let total = 0;
    let running = 0;
    let succeeded = 0;
    let failed = 0;
    let held = 0;
    // An array counts as its indexes (issue 17), so the line counts processes either way.
    for (const task of store.list()) {
      const units = progressUnits(task);
      total += units.total;
      if (!store.runsHere(task)) {
        held += units.total;
        continue;
      }
      running += units.running;
      succeeded += units.succeeded;
      failed += units.failed;
    }
    return { total, running, succeeded, failed, held, elapsedMs: performance.now() - started, spawnP99Ms: percentile99(spawnNs), tasks: store.list() };
  };

  runtime.start(); // the store has reported each of its Tasks, as an informer's first list does
  let interrupted = false;
  const interrupt = (): void => {
    interrupted = true;
    runtime.reconciler.startDraining();
    runtime.reconciler.terminateAll();
  };
  if (options.signal?.aborted) interrupt();
  else options.signal?.addEventListener('abort', interrupt, { once: true });
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      // Again at every tick: an attempt whose spawn was under way at the interrupt has its process now.
      if (interrupted) runtime.reconciler.terminateAll();
      const now = progress();
      options.onProgress?.(now);
      const ended = interrupted ? runtime.reconciler.runningAttempts === 0 : now.succeeded + now.failed + now.held === now.total;
      if (ended && runtime.queue.processing === 0) {
        clearInterval(timer);
        resolve();
      }
    }, progressIntervalMs);
  });
  options.signal?.removeEventListener('abort', interrupt);
  // Nothing runs any more: the drain has nothing to wait for.
  await runtime.shutDown();
  return store.list();
}

/** In milliseconds; undefined without samples. */
function percentile99(samplesNs: readonly number[]): number | undefined {
  if (samplesNs.length === 0) return undefined;
  const sorted = [...samplesNs].sort((a, b) => a - b);
  return (sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)] ?? 0) / 1e6;
}

// One reconcile pass for one Task key, by state: it reads the Task from the informer cache and the
// attempt (if any) from the attempt table, decides what is true now, acts, and returns when to look
// again. Spawn results and exits never act themselves: they fill in the attempt and ask for a
// reconcile, so every status write, kill, retry and garbage collection happens here, in one place;
// how an attempt becomes a process and how its end is told is task-launch.ts.
//
// Lifecycle of a Task bound to this node:
//   Pending (the CRD's default: WaitingForAgent; written once: WaitingForCapacity while every slot
//   is taken, Suspended while spec.suspend is set) -> launch -> (still running after runningWriteDelayMs: finalizer added, Running written) -> exit
//     -> retry allowed: Pending with nextRetryTime, then launch again
//     -> else: Succeeded/Failed written, finalizer (if added) removed, deleted after ttlSecondsAfterFinished
// API writes are what limits Tasks per second (issue 7), so a Task whose process ends within
// runningWriteDelayMs costs one write, its final status: its Running status would be overwritten
// at once, and the finalizer would be added only to be removed. A Task that runs longer gets the
// finalizer and then its Running status (in that order: a Task shown Running is delete-protected).
// Deleting a Task with a live process kills it (SIGTERM, then SIGKILL after the grace period)
// before the finalizer lets the object go; deleted within its first runningWriteDelayMs, before
// the finalizer, the Task goes at once and its process is killed (SIGKILL) as the watch reports
// the deletion. A Task shown Running with no process here (the agent restarted) ends its attempt
// as AgentRestarted and is retried if its backoffLimit allows.
//
// A Task array (spec.completions, issue 17) is checked once as a single Task is, then run by its
// ArrayRun (array-run.ts): each index an attempt of its own through the same sandboxed launch,
// with a log of its own (src/logs/array-index-logs.ts, within the array's log budget), its status
// written about once a second, the finalizer added before its first Running write.
import type { Logger } from 'pino';

import { taskApiVersion, taskKind, type Task, type TaskReason, type TaskStatus } from '../api/task.js';
import { SlicedWork } from '../controller/sliced-work.js';
import type { ReconcileResult } from '../controller/work-queue.js';
import { terminalSafeText } from '../http/terminal-safe-json.js';
import { checkMaskedPaths } from '../launcher/sandbox-options.js';
import type { ArrayIndexLogs } from '../logs/array-index-logs.js';
import type { TaskLogStore, TaskLogOwner } from '../logs/task-log-store.js';
import type { CgroupManager, TaskCgroup } from '../sandbox/cgroup-manager.js';
import type { SandboxPolicySource } from '../sandbox/sandbox-policy-source.js';
import type { SeccompProfileStore } from '../sandbox/seccomp-profile-store.js';
import type { TaskIdentityLease, TaskIdentitySource } from '../sandbox/task-identities.js';
import type { TaskLimitPolicy } from '../sandbox/task-limits.js';
import { placeDefaultPidsLimit, sandboxForTask, type TaskSandbox } from '../sandbox/task-sandbox.js';
import type { EventSubject, EventType, TaskCache, TaskEventSink, TaskWriter } from '../store/task-store.js';
import { indexCommand } from './array-index-environment.js';
import { ArrayRun, type IndexCallbacks } from './array-run.js';
import { arrayRecordProblem, int32Max } from './array-progress.js';
import { IndexSet } from './index-ranges.js';
import { SharedArrayRun, type SharedArrayLease } from './shared-array-run.js';
import { AttemptTable, StderrTail, type Attempt, type AttemptEnding, type KillCause } from './attempts.js';
import type { LaunchRecord } from './launch-journal.js';
import { launchAttempt, withIdentity, type AttemptLogTarget, type LaunchPlan, type TaskLauncher } from './task-launch.js';
import { claimKey, reconcileKey, taskQueueKeyId, type TaskQueueKey } from './task-queue-key.js';
import { mayRetry, retryableEnding, retryDelaySeconds } from './retry-policy.js';
import { failedWithoutAttemptStatus, finishedStatus, runningStatus, suspendedStatus, waitingForCapacityStatus, waitingToRetryStatus } from './task-status.js';
import { parseTimestamp } from './time-format.js';


/** After this long, a recorded ending is let go even if the cache never showed it (someone else rewrote the status). */
const recordedEndingHoldMs = 30_000;

/** The stderr tail an array keeps of a failed index: that of its failure records (array-progress.ts). */
const indexStderrTailLength = 512;

/** First sightings kept for the start-latency metric at most; the oldest go first (a Task lost without a trace). */
const firstObservedLimit = 65_536;

/**
 * How long a process runs before its Running status (and the finalizer) are written. Most short
 * Tasks end within it and cost a single status write; a long one shows Running this much later.
 */
export const defaultRunningWriteDelayMs = 250;

/**
 * Hooks for the metrics layer; every one is optional. What they carry is bounded (phases, reasons,
 * durations): never a Task's name or uid.
 */
export interface TaskReconcilerObserver {
  /** A Task's first attempt has its process running. */
  taskStarted?(latency: TaskStartLatency): void;
  /** A Task's final status (Succeeded or Failed) was written. */
  taskFinished?(outcome: TaskOutcome): void;
  /** A Task was refused for asking more than its sandbox policy level allows. */
  taskForbidden?(refusal: TaskRefusal): void;
  /** An index of a Task array has its process running (issue 17). */
  arrayIndexStarted?(): void;
  /** An attempt of an index of a Task array ended, with the reason of its ending (Completed when it succeeded). */
  arrayIndexFinished?(reason: TaskReason): void;
}

export interface TaskRefusal {
  /** The spec field, without indexes (sandboxPolicyFields): a bounded metric label. */
  readonly field: string;
}

export interface TaskStartLatency {
  /** Since this agent first saw the Task as its own (bound to this node, or claimed by it). */
  readonly sinceObservedMs: number;
  /** Since its creationTimestamp, which has whole-second precision. */
  readonly sinceCreatedMs: number | undefined;
}

export interface TaskOutcome {
  readonly phase: 'Succeeded' | 'Failed';
  readonly reason: TaskReason;
  /** From its first attempt's start; undefined when no attempt started. */
  readonly durationMs: number | undefined;
}

export interface TaskReconcilerOptions {
  readonly nodeName: string;
  /** Where status, finalizer, delete and claim decisions go (the API, or standalone's store). */
  readonly writer: TaskWriter;
  readonly launcher: TaskLauncher;
  /** False for a launcher that cannot build the sandbox (child_process): sandboxed Tasks then fail with SandboxUnavailable. Default true. */
  readonly launcherSandboxes?: boolean;
  /**
   * Run Tasks as plain processes with the agent's own privileges: no namespaces, uid change,
   * seccomp or cgroup (Tasks with resources.limits fail with SandboxUnavailable). For benchmarks
   * that compare launchers like for like; never for a real node. Default false.
   */
  readonly unsandboxed?: boolean;
  /** See defaultRunningWriteDelayMs. */
  readonly runningWriteDelayMs?: number;
  /**
   * The attempts launched, kept where they outlive the agent (launch-journal.ts), so that a
   * restarted agent does not run again an attempt it launched but never recorded. Absent in
   * standalone mode, whose Tasks end with it.
   */
  readonly journal?: LaunchRecord;
  readonly tasks: TaskCache;
  readonly unboundTasks: TaskCache;
  readonly attempts: AttemptTable;
  readonly events: TaskEventSink;
  readonly logger: Logger;
  readonly maxConcurrent: number;
  readonly terminationGraceMs: number;
  readonly nodeLabels: () => Readonly<Record<string, string>>;
  /** Asks for a reconcile of a key (the work queue's add). */
  readonly requeue: (key: TaskQueueKey) => void;
  readonly observer?: TaskReconcilerObserver;
  /** Task cgroups with the Tasks' resource limits; undefined: no cgroups (limits are then refused). */
  readonly cgroups?: CgroupManager;
  /** The node's seccomp profiles (sandbox.seccomp type Localhost); undefined: such Tasks fail with SandboxUnavailable. */
  readonly seccompProfiles?: SeccompProfileStore;
  /**
   * Host ids for each sandboxed attempt, leased at launch and given back when it ends: Tasks
   * without runAsUser/runAsGroup get ids of their own (src/sandbox/task-identities.ts).
   * Undefined: the sandbox's defaults (65534) for every Task.
   */
  readonly identities?: TaskIdentitySource;
  /**
   * The agent's default limits for Tasks that set none, and its /tmp cap (--default-*, --max-tmp-size).
   * Undefined: no default limits, /tmp capped at half the node's memory.
   */
  readonly taskLimits?: TaskLimitPolicy;
  /**
   * The paths the launcher masks in every Task (its sandboxMaskedPaths), which decide which host
   * paths a Task may bring in: a spec the launcher would refuse for them is refused before any
   * attempt. Undefined: the launcher's default, defaultMaskedPaths.
   */
  readonly sandboxMaskedPaths?: readonly string[];
  /**
   * The sandbox policy level each Task runs at and the allowed host paths, asked before every
   * attempt (src/sandbox/sandbox-policy-source.ts). Undefined: restricted, no allowed host paths.
   */
  readonly sandboxPolicy?: SandboxPolicySource;
  /** Where attempts' stdout and stderr are kept (src/logs); undefined: stdout discarded, stderr's tail kept in memory. */
  readonly logs?: TaskLogStore;
  /** The leases on ranges of arrays shared by several agents (spec.indexPlacement AcrossNodes); default SharedArrayRun's. */
  readonly sharedArrayLease?: SharedArrayLease;
}

export class TaskReconciler {
  readonly #options: TaskReconcilerOptions;
  /** options.sandboxMaskedPaths checked and joined once, as the launcher takes them. */
  readonly #maskedPaths: string | undefined;
  /**
   * Keys waiting for a free slot: by namespace, served round-robin (the next one moves to the back
   * once served), and by taskQueueKeyId within one, oldest first. An array is one key.
   */
  readonly #waitingForCapacity = new Map<string, Map<string, TaskQueueKey>>();
  #waitingCount = 0;
  /**
   * Keys woken for a freed slot whose pass has not ended: their turn. Each holds a slot against the
   * passes of other keys (an array's own pass after its index ended runs first), see #slotsFor.
   */
  readonly #woken = new Set<string>();
  /** The Task arrays this agent runs (issue 17), with the sandbox their spec asks for, checked once. */
  readonly #arrays = new Map<string, { readonly run: ArrayRun; readonly sandboxed: TaskSandbox }>();
  /** The arrays shared with other agents (indexPlacement AcrossNodes) this agent takes part in, by key. */
  readonly #sharedArrays = new Map<string, SharedArrayRun>();
  /** When this agent first saw each Task whose first attempt has not started (epoch ms); only with an observer. */
  readonly #firstObservedAt = new Map<string, number>();
  #claimsInFlight = 0;
  #draining = false;
  /** What the end of each attempt's process costs the JS thread, run in slices: exits come in bursts. */
  readonly #exitWork = new SlicedWork();

  constructor(options: TaskReconcilerOptions) {
    this.#options = options;
    this.#maskedPaths = options.sandboxMaskedPaths === undefined ? undefined : checkMaskedPaths(options.sandboxMaskedPaths, 'sandboxMaskedPaths');
  }

  /** Stop claiming and launching; running attempts go on until drained or killed. */
  startDraining(): void {
    this.#draining = true;
  }

  /** Kill every running attempt (SIGTERM, SIGKILL after the grace period), recording it as AgentRestarted. */
  terminateAll(): void {
    for (const [key, array] of this.#arrays) {
      if (array.run.stopAll('AgentShutdown') !== undefined) this.#options.requeue(reconcileKey(key));
    }
    // A shared array's ranges go to other agents once this one's lease expires; its indexes end now.
    for (const shared of this.#sharedArrays.values()) shared.killNow();
    for (const [key, attempt] of this.#options.attempts.entries()) {
      if (attempt.ending === undefined && attempt.child) {
        this.#terminate(attempt, 'AgentShutdown');
        this.#options.requeue(reconcileKey(key));
      }
    }
  }

  /** Processes running or being spawned: one per single Task, and every running index of the arrays. */
  get runningAttempts(): number {
    let active = this.#options.attempts.active;
    for (const array of this.#arrays.values()) active += array.run.active;
    for (const shared of this.#sharedArrays.values()) active += shared.active;
    return active;
  }

  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    try {
      return await this.#reconcile(key);
    } finally {
      this.#woken.delete(taskQueueKeyId(reconcileKey(key)));
      this.#offerFreeSlot();
    }
  }

  /** Claims an unbound Task for this node if its nodeSelector matches and there is room. */
  async claim(key: string): Promise<ReconcileResult | undefined> {
    try {
      return await this.#claim(key);
    } finally {
      this.#woken.delete(taskQueueKeyId(claimKey(key)));
      this.#offerFreeSlot();
    }
  }

  async #reconcile(key: string): Promise<ReconcileResult | undefined> {
    const { tasks, attempts } = this.#options;
    const task = tasks.get(key);
    const array = this.#arrays.get(key);
    if (array && (!task || array.run.uid !== task.metadata.uid)) {
      // Gone without our finalizer's say, or made again under the same name: end every index.
      array.run.killNow();
      this.#arrays.delete(key);
      this.#options.journal?.forget(array.run.uid);
    }
    let attempt = attempts.get(key);
    if (attempt && task && attempt.uid !== task.metadata.uid) {
      // The Task was deleted and made again under the same name: the old process is not its own.
      this.#killNow(attempt);
      attempts.delete(key);
      this.#options.journal?.forget(attempt.uid); // the old Task is gone (its exit will not come back here)
      this.#forgetLogs(key, task.metadata.uid);
      attempt = undefined;
    }
    if (!task) this.#forgetLogs(key, undefined);
    if (!task) {
      this.#firstObservedAt.delete(key);
      // Gone without our finalizer's say (force-deleted, or never seen bound): end its process.
      if (attempt) {
        this.#killNow(attempt);
        if (attempt.ending) {
          attempts.delete(key);
          this.#options.journal?.forget(attempt.uid);
        }
      }
      return undefined;
    }
    if (attempt?.recorded) {
      // Our write for this ending has not reached the cache yet: a newer event is on its way.
      if (!cacheShows(task, attempt.recorded.status) && Date.now() - attempt.recorded.at < recordedEndingHoldMs && task.metadata.deletionTimestamp === undefined) {
        return { requeueAfterMs: recordedEndingHoldMs };
      }
      attempts.delete(key);
      attempt = undefined;
    }
    if (task.metadata.deletionTimestamp !== undefined) {
      this.#firstObservedAt.delete(key);
      const deleted = this.#arrays.get(key);
      if (deleted !== undefined) {
        if (deleted.run.active > 0) return { requeueAfterMs: deleted.run.stopAll('Deleted') ?? 100 };
        this.#arrays.delete(key);
      }
      return this.#reconcileDeletion(key, task, attempt);
    }

    const phase = task.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') {
      this.#firstObservedAt.delete(key);
      this.#arrays.delete(key);
      if (attempt?.ending) attempts.delete(key);
      this.#options.journal?.forget(task.metadata.uid ?? '');
      await this.#options.writer.removeFinalizer(task);
      return this.#collectGarbage(task);
    }
    if (task.spec.completions !== undefined) return this.#reconcileArray(key, task);
    if (attempt?.ending) return this.#recordEnding(key, task, attempt);
    if (attempt) return this.#superviseRunning(key, task, attempt);
    if (phase === 'Running') {
      // Running, but no process of ours: the agent restarted since (or another agent ran it before
      // this node name was reused). The attempt is over; retry or fail by the policy.
      return this.#recordLostAttempt(key, task, Math.max(task.status?.attempts ?? 1, this.#options.journal?.lastLaunched(task.metadata.uid ?? '') ?? 0));
    }
    const launched = this.#options.journal?.lastLaunched(task.metadata.uid ?? '');
    if (launched !== undefined && launched > (task.status?.attempts ?? 0)) {
      // Launched by an earlier life of this agent, which died before it wrote any status for the
      // attempt (a short Task's first write is its final status): do not run it again as new.
      return this.#recordLostAttempt(key, task, launched);
    }
    if ((task.status?.attempts ?? 0) === 0) this.#noteObserved(key);
    return this.#maybeLaunch(key, task);
  }

  /** Ends attempt `number`, whose process this agent no longer has, as AgentRestarted: retried if the policy allows. */
  #recordLostAttempt(key: string, task: Task, number: number): Promise<ReconcileResult | undefined> {
    const lost = this.#newAttempt(task, number);
    lost.ending = { reason: 'AgentRestarted', message: 'the agent restarted and lost the process', finishedAt: Date.now() };
    this.#options.attempts.set(key, lost);
    return this.#recordEnding(key, task, lost);
  }

  async #claim(key: string): Promise<ReconcileResult | undefined> {
    const task = this.#options.unboundTasks.get(key);
    const shared = this.#sharedArrays.get(key);
    if (shared !== undefined && (task === undefined || shared.uid !== task.metadata.uid || task.metadata.deletionTimestamp !== undefined)) {
      // Deleted (a shared array has no finalizer: docs/arrays.md), or made again under the same name.
      shared.killNow();
      this.#sharedArrays.delete(key);
    }
    if (task !== undefined && sharedAcrossNodes(task) && this.#options.writer.applyStatus !== undefined) return this.#reconcileSharedArray(key, task);
    if (!task || task.spec.nodeName || task.metadata.deletionTimestamp !== undefined || this.#draining) return undefined;
    if (task.status?.phase === 'Succeeded' || task.status?.phase === 'Failed') return undefined;
    if (!selectorMatches(task.spec.nodeSelector, this.#options.nodeLabels())) return undefined;
    if (this.#slotsFor(claimKey(key)) === 0) {
      this.#waitForCapacity(claimKey(key));
      return undefined;
    }
    this.#stopWaiting(claimKey(key));
    this.#claimsInFlight++;
    try {
      if (await this.#options.writer.claim(task, this.#options.nodeName)) {
        this.#noteObserved(key);
        this.#options.logger.debug({ task: key }, 'claimed');
      } else {
        this.#options.logger.debug({ task: key }, 'claim lost');
      }
    } finally {
      this.#claimsInFlight--;
    }
    return undefined;
  }

  async #reconcileDeletion(key: string, task: Task, attempt: Attempt | undefined): Promise<ReconcileResult | undefined> {
    if (attempt && attempt.ending === undefined) {
      if (!attempt.child) return { requeueAfterMs: 100 }; // still spawning: kill it once it has a pid
      return this.#terminate(attempt, 'Deleted');
    }
    if (attempt) this.#options.attempts.delete(key);
    this.#options.journal?.forget(task.metadata.uid ?? '');
    await this.#options.writer.removeFinalizer(task);
    return undefined;
  }

  #superviseRunning(key: string, task: Task, attempt: Attempt): Promise<ReconcileResult | undefined> | ReconcileResult | undefined {
    if (!attempt.child) return undefined; // spawning; its result asks for a reconcile
    if (attempt.killCause !== undefined) return this.#terminate(attempt, attempt.killCause);
    if (task.spec.suspend === true) return this.#terminate(attempt, 'Cancelled');
    const deadline = deadlineOf(task, attempt);
    const now = Date.now();
    if (deadline !== undefined && now >= deadline) return this.#terminate(attempt, 'DeadlineExceeded');
    const next: ReconcileResult | undefined = deadline === undefined ? undefined : { requeueAfterMs: Math.max(1, deadline - now) };
    if (attempt.runningRecorded) return next;
    // performance-based epoch ms, as startedAt is; Date.now() may step.
    const runningDueIn = (attempt.startedAt ?? 0) + (this.#options.runningWriteDelayMs ?? defaultRunningWriteDelayMs) - (performance.timeOrigin + performance.now());
    // The process may end first: then its exit's reconcile writes the final status only.
    if (runningDueIn > 0) return { requeueAfterMs: Math.min(runningDueIn, next?.requeueAfterMs ?? Infinity) };
    return this.#recordRunning(key, task, attempt, next);
  }

  /** The finalizer, then the Running status: once a Task shows Running, a delete waits for the kill. */
  async #recordRunning(key: string, task: Task, attempt: Attempt, next: ReconcileResult | undefined): Promise<ReconcileResult | undefined> {
    await this.#options.writer.addFinalizer(task);
    return this.#options.writer.writeStatus(task, runningStatus(task, this.#options.nodeName, attempt)).then(() => {
      attempt.runningRecorded = true;
      this.#event(task, 'Normal', 'Started', `attempt ${attempt.number} started as pid ${attempt.child?.pid ?? 0}`);
      this.#options.logger.info({ task: key, attempt: attempt.number, pid: attempt.child?.pid }, 'task running');
      return next;
    });
  }

  async #maybeLaunch(key: string, task: Task): Promise<ReconcileResult | undefined> {
    if (this.#draining) return undefined;
    if (task.spec.suspend === true) {
      if (task.status?.reason !== 'Suspended') await this.#sayWhyPending(task, suspendedStatus(task));
      return undefined;
    }
    const now = Date.now();
    const attempts = task.status?.attempts ?? 0;
    if (attempts >= int32Max) {
      // Only a rewrite of the status gets here (backoffLimit is at most 100): the next attempt's
      // number would be refused in every status write, the Task shown Pending for good (red team, session 15).
      return this.#failBeforeLaunch(task, 'InvalidSpec', `status.attempts is ${attempts}: the next attempt's number would not fit the field (int32); the agents alone write it`, now);
    }
    const nextRetry = task.status?.nextRetryTime;
    if (nextRetry !== undefined && parseTimestamp(nextRetry) > now) {
      return { requeueAfterMs: Math.ceil(parseTimestamp(nextRetry) - now) };
    }
    const deadline = deadlineOf(task, undefined);
    if (deadline !== undefined && now >= deadline) {
      return this.#failBeforeLaunch(task, 'DeadlineExceeded', `activeDeadlineSeconds (${task.spec.activeDeadlineSeconds}) passed before another attempt could start`, now);
    }
    // Before the capacity check: reading a Localhost seccomp profile may wait, and nothing may
    // wait between that check and the attempt's entry in the table.
    // The whole spec is checked here, once, before any launch: what can never run is InvalidSpec.
    // The sandbox policy too (issue 14), at every attempt: a namespace relabelled since decides this one.
    const sandboxed = await this.#sandboxFor(task);
    if ('reason' in sandboxed) return this.#failBeforeLaunch(task, sandboxed.reason, sandboxed.message, now);
    if (this.#slotsFor(reconcileKey(key), 0) === 0) {
      this.#waitForCapacity(reconcileKey(key));
      if (task.status?.reason !== 'WaitingForCapacity') await this.#sayWhyPending(task, waitingForCapacityStatus(task, this.#options.nodeName, this.#options.maxConcurrent));
      return undefined;
    }
    this.#stopWaiting(reconcileKey(key));
    if (!selectorMatches(task.spec.nodeSelector, this.#options.nodeLabels())) {
      // Bound here by hand (spec.nodeName) to a node its own selector rules out: say so, as the CRD promises.
      return this.#failBeforeLaunch(task, 'InvalidSpec', `spec.nodeSelector does not match the labels of node ${this.#options.nodeName}`, now);
    }
    if (this.#options.unsandboxed === true) {
      // Unsandboxed (benchmarks only) means no cgroups: the agent's own defaults do not apply.
      if (sandboxed.specSetsLimits) return this.#failBeforeLaunch(task, 'SandboxUnavailable', 'resources.limits are set, but this agent runs Tasks unsandboxed (--task-sandbox off), without cgroups', now);
      const plain = this.#newAttempt(task, (task.status?.attempts ?? 0) + 1);
      this.#options.attempts.set(key, plain);
      this.#launch(key, task, plain, { sandbox: undefined, cwd: sandboxed.cwd, cgroup: undefined });
      return undefined;
    }
    if (this.#options.launcherSandboxes === false) {
      return this.#failBeforeLaunch(task, 'SandboxUnavailable', 'this agent\'s launcher (--launcher child_process) cannot build the sandbox; run it with --launcher native', now);
    }
    return this.#launchSandboxed(key, task, sandboxed, now);
  }

  /**
   * The sandbox the spec asks for, checked against the node and against the sandbox policy of the
   * Task's namespace; a refusal by the policy is confirmed against the namespace read afresh, then
   * counted and told in an Event. Single Tasks at every attempt, arrays once.
   */
  async #sandboxFor(task: Task): Promise<Awaited<ReturnType<typeof sandboxForTask>>> {
    const namespace = task.metadata.namespace ?? '';
    const policy = this.#options.sandboxPolicy;
    let sandboxed = await sandboxForTask(task.spec, this.#options.seccompProfiles, this.#options.taskLimits, this.#maskedPaths, policy?.policyFor(namespace));
    if ('reason' in sandboxed && sandboxed.reason === 'Forbidden' && policy?.confirmedPolicyFor) {
      sandboxed = await sandboxForTask(task.spec, this.#options.seccompProfiles, this.#options.taskLimits, this.#maskedPaths, await policy.confirmedPolicyFor(namespace));
    }
    if ('reason' in sandboxed && sandboxed.reason === 'Forbidden') this.#forbidden(task, sandboxed);
    return sandboxed;
  }

  /** Leases the attempt's ids and makes its cgroup, then launches it; a node that cannot give them fails the Task as SandboxUnavailable. */
  #launchSandboxed(key: string, task: Task, sandboxed: TaskSandbox, now: number): Promise<undefined> | undefined {
    // No finalizer yet: it is added once the process has run for runningWriteDelayMs (see the header).
    const attempt = this.#newAttempt(task, (task.status?.attempts ?? 0) + 1);
    attempt.resources = sandboxed.resources;
    // One cgroup per attempt, named by the Task's uid: unique among every Task this agent runs.
    // A retry asks for its previous attempt's ids, to keep the files that attempt made its own;
    // given only if this agent last leased them to this Task (its status may have been patched).
    const owner = task.metadata.uid ?? key.replace('/', '_');
    const planned = this.#planSandboxed(sandboxed, `${owner}-${attempt.number}`, { previous: task.status?.hostIdentity, owner }, { memoryPeak: true });
    if ('reason' in planned) return this.#failBeforeLaunch(task, planned.reason, planned.message, now);
    if (planned.identity) attempt.identity = planned.identity;
    this.#options.attempts.set(key, attempt);
    this.#launch(key, task, attempt, planned.plan);
    return undefined;
  }

  /** The ids and cgroup of one sandboxed attempt (of a Task, or of an array's index), or why the node cannot give them. */
  #planSandboxed(sandboxed: TaskSandbox, cgroupName: string, ids: { readonly previous?: TaskStatus['hostIdentity']; readonly owner: string }, usage: { readonly memoryPeak: boolean }): { readonly plan: LaunchPlan; readonly identity: TaskIdentityLease | undefined } | { readonly reason: TaskReason; readonly message: string } {
    let identity: TaskIdentityLease | undefined;
    try {
      identity = this.#options.identities?.lease({ ...sandboxed.requestedIds, userNamespace: sandboxed.sandbox.userNamespace === true, ...ids });
    } catch (error) {
      return { reason: 'SandboxUnavailable', message: `no host ids for the Task: ${(error as Error).message}` };
    }
    // The default pids limit of a Task with a uid of its own may be an rlimit instead (task-sandbox.ts).
    const placed = placeDefaultPidsLimit(sandboxed.limits, sandboxed.resources?.defaulted, withIdentity(sandboxed.sandbox, identity), identity?.ownUid === true, this.#options.cgroups?.placement.pids);
    const wantsCgroupLimits = Object.keys(placed.limits).length > 0;
    let cgroup: TaskCgroup | undefined;
    try {
      cgroup = this.#options.cgroups?.create(cgroupName, placed.limits, usage);
    } catch (error) {
      cgroup = undefined;
      if (wantsCgroupLimits) {
        identity?.release();
        return { reason: 'SandboxUnavailable', message: `cannot make the task's cgroup for its resource limits: ${(error as Error).message}` };
      }
    }
    if (wantsCgroupLimits && cgroup === undefined) {
      identity?.release();
      // The defaults fail closed too: a Task is never run without the limits the agent promises.
      const why = sandboxed.specSetsLimits ? 'resources.limits are set' : `the agent's default limits (${(sandboxed.resources?.defaulted ?? []).join(', ')}) apply`;
      return { reason: 'SandboxUnavailable', message: `${why}, but this agent runs without cgroups${sandboxed.specSetsLimits ? '' : ' (give it cgroups, or turn the defaults off: --default-cpu none, --default-memory none, --default-pids none)'}` };
    }
    return { plan: { sandbox: placed.sandbox, cwd: sandboxed.cwd, cgroup }, identity };
  }

  /** One pass over a Task array (issue 17): checked once like a single Task, then run by its ArrayRun. */
  async #reconcileArray(key: string, task: Task): Promise<ReconcileResult | undefined> {
    let array = this.#arrays.get(key);
    if (array === undefined) {
      if (this.#draining) return undefined;
      const now = Date.now();
      // The array resumes from its status: one its author rewrote into what no agent writes ends
      // it, named, before any index runs (an index set that cannot be read threw at every pass).
      const completions = task.spec.completions ?? 0;
      const forged = arrayRecordProblem(task.status ?? {}, 'status', { start: 0, end: completions }, completions);
      if (forged !== undefined) return this.#failBeforeLaunch(task, 'InvalidSpec', `${forged}: the agents alone write it, as their record of which indexes ran, and cannot resume the array from it without running indexes twice or skipping them`, now);
      // The sandbox policy is asked once per array (a single Task asks at every attempt): an
      // array's indexes are one Task's, decided together.
      const sandboxed = await this.#sandboxFor(task);
      if ('reason' in sandboxed) return this.#failBeforeLaunch(task, sandboxed.reason, sandboxed.message, now);
      if (!selectorMatches(task.spec.nodeSelector, this.#options.nodeLabels())) {
        return this.#failBeforeLaunch(task, 'InvalidSpec', `spec.nodeSelector does not match the labels of node ${this.#options.nodeName}`, now);
      }
      const unusable = this.#launcherRefusal(sandboxed);
      if (unusable !== undefined) return this.#failBeforeLaunch(task, 'SandboxUnavailable', unusable, now);
      const { journal, writer, logger } = this.#options;
      const indexLogs = this.#arrayLogs(task);
      const run: ArrayRun = new ArrayRun(task, {
        nodeName: this.#options.nodeName,
        writeStatus: (target, status) => writer.writeStatus(target, status),
        addFinalizer: (target) => writer.addFinalizer(target),
        finished: (target, status) => {
          this.#finished(status, Date.now());
          this.#event(target, status.phase === 'Succeeded' ? 'Normal' : 'Warning', status.phase === 'Succeeded' ? 'Completed' : 'Failed', status.message ?? '');
        },
        launcher: { launch: (target, index, attempt, callbacks) => this.#launchIndex(target, sandboxed, indexLogs, index, attempt, callbacks) },
        requeue: () => this.#attemptEnded(key),
        terminationGraceMs: this.#options.terminationGraceMs,
        retryable: retryableEnding,
        retryDelayMs: (target, failures) => retryDelaySeconds(target.spec, failures) * 1000,
        // The launch journal keeps the array's launch fence (docs/arrays.md) in place of an attempt number.
        ...(journal ? { fence: { read: (uid: string) => journal.lastLaunched(uid), record: (uid: string, through: number) => journal.launched(uid, through) } } : {}),
        logger,
      });
      array = { run, sandboxed };
      this.#arrays.set(key, array);
    }
    const freeSlots = this.#slotsFor(reconcileKey(key), 0);
    if (freeSlots === 0) this.#waitForCapacity(reconcileKey(key));
    else this.#stopWaiting(reconcileKey(key));
    const result = await array.run.reconcile(task, { freeSlots, draining: this.#draining });
    return result.requeueAfterMs === undefined ? undefined : { requeueAfterMs: result.requeueAfterMs };
  }

  /** The index logs of an array, when the node keeps Task logs (src/logs/array-index-logs.ts). */
  #arrayLogs(task: Task): ArrayIndexLogs | undefined {
    const logs = this.#options.logs;
    if (logs === undefined) return undefined;
    const failed = IndexSet.parse(task.status?.failedIndexes ?? '', task.spec.completions ?? 0);
    try {
      return logs.arrayLogs(logOwner(task), {
        failedIndex: (index) => failed.has(index),
        onRemoveError: (error) => this.#options.logger.warn({ task: `${task.metadata.namespace ?? ''}/${task.metadata.name ?? ''}`, err: error.message }, 'could not remove an index log the array\'s log budget let go'),
      });
    } catch (error) {
      this.#options.logger.warn({ task: task.metadata.name, err: (error as Error).message }, 'no index logs for this array: its output is discarded');
      return undefined;
    }
  }

  /**
   * One pass over an array shared with other agents (spec.indexPlacement AcrossNodes): checked
   * once on this node as any array, then run by its SharedArrayRun, which claims ranges of it.
   */
  async #reconcileSharedArray(key: string, task: Task): Promise<ReconcileResult | undefined> {
    const applyStatus = this.#options.writer.applyStatus?.bind(this.#options.writer);
    if (task.metadata.deletionTimestamp !== undefined || applyStatus === undefined) return undefined;
    let run = this.#sharedArrays.get(key);
    if (task.status?.phase === 'Succeeded' || task.status?.phase === 'Failed') {
      run?.killNow();
      this.#sharedArrays.delete(key);
      return this.#collectGarbage(task);
    }
    if (run === undefined) {
      if (this.#draining || !selectorMatches(task.spec.nodeSelector, this.#options.nodeLabels())) return undefined;
      const now = Date.now();
      const sandboxed = await this.#sandboxFor(task);
      if ('reason' in sandboxed) return this.#failBeforeLaunch(task, sandboxed.reason, sandboxed.message, now);
      const unusable = this.#launcherRefusal(sandboxed);
      if (unusable !== undefined) return this.#failBeforeLaunch(task, 'SandboxUnavailable', unusable, now);
      const indexLogs = this.#arrayLogs(task);
      run = new SharedArrayRun(task, {
        nodeName: this.#options.nodeName,
        applyStatus,
        launcher: { launch: (target, index, attempt, callbacks) => this.#launchIndex(target, sandboxed, indexLogs, index, attempt, callbacks) },
        requeue: () => {
          this.#options.requeue(claimKey(key));
          this.#offerFreeSlot();
        },
        retryable: retryableEnding,
        retryDelayMs: (target, failures) => retryDelaySeconds(target.spec, failures) * 1000,
        finished: (target, status) => {
          this.#finished(status, Date.now());
          this.#event(target, status.phase === 'Succeeded' ? 'Normal' : 'Warning', status.phase === 'Succeeded' ? 'Completed' : 'Failed', status.message ?? '');
        },
        ...(this.#options.sharedArrayLease !== undefined ? { lease: this.#options.sharedArrayLease } : {}),
        logger: this.#options.logger,
      });
      this.#sharedArrays.set(key, run);
    }
    const freeSlots = this.#slotsFor(claimKey(key), 0);
    if (freeSlots === 0) this.#waitForCapacity(claimKey(key));
    else this.#stopWaiting(claimKey(key));
    const result = await run.reconcile(task, { freeSlots, draining: this.#draining });
    if (result.finished) this.#sharedArrays.delete(key);
    return result.requeueAfterMs === undefined ? undefined : { requeueAfterMs: result.requeueAfterMs };
  }

  /** Why this agent's launcher cannot run the array's sandbox, or undefined when it can. */
  #launcherRefusal(sandboxed: TaskSandbox): string | undefined {
    if (this.#options.unsandboxed === true && sandboxed.specSetsLimits) return 'resources.limits are set, but this agent runs Tasks unsandboxed (--task-sandbox off), without cgroups';
    if (this.#options.unsandboxed !== true && this.#options.launcherSandboxes === false) return 'this agent\'s launcher (--launcher child_process) cannot build the sandbox; run it with --launcher native';
    return undefined;
  }

  /** Starts attempt `number` of one index of an array: ids and cgroup of its own, the index in env and args, its log. */
  #launchIndex(task: Task, sandboxed: TaskSandbox, logs: ArrayIndexLogs | undefined, index: number, number: number, callbacks: IndexCallbacks): void {
    // The index's own command: spec.env with its variables, args with its references expanded.
    const command = indexCommand(task.spec, index);
    // The stderr tail an array keeps is that of its failure records (array-progress.ts).
    const attempt = this.#newAttempt(task, number, new StderrTail(indexStderrTailLength));
    let plan: LaunchPlan = { sandbox: undefined, cwd: sandboxed.cwd, cgroup: undefined };
    if (this.#options.unsandboxed !== true) {
      // An index's status has no usage of its own (array-status.ts): its cgroup's memory peak is never read.
      const planned = this.#planSandboxed(sandboxed, `${task.metadata.uid ?? ''}-${index}-${number}`, { owner: `${task.metadata.uid ?? ''}-${index}` }, { memoryPeak: false });
      if ('reason' in planned) {
        callbacks.ended({ reason: planned.reason, message: planned.message, finishedAt: attempt.launchedAt }, '', undefined);
        return;
      }
      if (planned.identity) attempt.identity = planned.identity;
      plan = planned.plan;
    }
    const log: AttemptLogTarget | undefined = logs === undefined ? undefined : { output: logs.attemptLog(index, number, task.spec.logs?.maxBytes), stderrTail: () => logs.stderrTail(index, number, indexStderrTailLength), outputTail: () => logs.outputTail(index, number) };
    plan = { ...plan, command, log };
    launchAttempt(this.#options.launcher, task, attempt, plan, {
      running: () => {
        this.#options.observer?.arrayIndexStarted?.();
        const timings = attempt.timings;
        callbacks.running(
          {
            kill: (cause, signal) => {
              attempt.killCause ??= cause;
              attempt.child?.kill(signal);
            },
          },
          (timings?.queuedNs ?? 0) + (timings?.spawnNs ?? 0),
        );
      },
      ended: () => {
        const ending = attempt.ending as AttemptEnding;
        this.#options.observer?.arrayIndexFinished?.(ending.reason);
        const ranNanoseconds = attempt.startedAt === undefined ? undefined : Math.max(0, (ending.finishedAt - attempt.startedAt) * 1e6);
        // The array's log budget counts the log once it is complete (after the exit, when a child left the pipes open).
        void attempt.child?.log?.then((totals) => {
          if (!totals.complete) return undefined;
          return logs?.ended({ index, attempt: number, payloadBytes: totals.bytes, diskBytes: totals.diskBytes, failed: ending.reason !== 'Completed' });
        });
        callbacks.ended(ending, attempt.stderr.toString(), ranNanoseconds);
      },
    }, this.#exitWork);
  }

  /**
   * Writes why a Task waits (once: the caller checks the cache), before its first attempt only:
   * later, its status says how the last attempt ended, and that stays.
   */
  async #sayWhyPending(task: Task, pending: TaskStatus): Promise<void> {
    if ((task.status?.attempts ?? 0) === 0) await this.#options.writer.writeStatus(task, pending);
  }

  /** A refusal by the sandbox policy: counted by field, and an Event for the Task's author. */
  #forbidden(task: Task, refusal: { readonly field: string; readonly message: string }): void {
    this.#options.observer?.taskForbidden?.({ field: refusal.field });
    this.#options.logger.info({ task: `${task.metadata.namespace ?? ''}/${task.metadata.name ?? ''}`, field: refusal.field, reason: 'Forbidden' }, refusal.message);
    this.#event(task, 'Warning', 'Forbidden', refusal.message);
  }

  /** Ends a Task that never got a process (deadline passed, invalid spec, sandbox unavailable, forbidden). */
  async #failBeforeLaunch(task: Task, reason: TaskReason, message: string, now: number): Promise<undefined> {
    // The message may quote the spec (a refused host path, a field's value): no terminal control of
    // its author's reaches `kubectl describe` through it (red team, session 15).
    const failed = failedWithoutAttemptStatus(task, this.#options.nodeName, reason, terminalSafeText(message), now);
    await this.#options.writer.writeStatus(task, failed);
    this.#finished(failed, now);
    return undefined;
  }

  #newAttempt(task: Task, number: number, stderr = new StderrTail()): Attempt {
    return { uid: task.metadata.uid ?? '', number, launchedAt: performance.timeOrigin + performance.now(), runningRecorded: false, stderr };
  }

  #launch(key: string, task: Task, attempt: Attempt, plan: LaunchPlan): void {
    try {
      this.#options.journal?.launched(attempt.uid, attempt.number);
    } catch (error) {
      // The launch goes ahead: only the protection against running it twice after a crash is lost.
      this.#options.logger.warn({ task: key, attempt: attempt.number, err: (error as Error).message }, 'could not record the launch in the journal');
    }
    launchAttempt(this.#options.launcher, task, attempt, { ...plan, log: this.#attemptLog(task, attempt), resultPolicy: task.spec.resultPolicy ?? 'File' }, {
      running: () => {
        this.#firstAttemptStarted(key, task, attempt);
        this.#options.requeue(reconcileKey(key));
      },
      ended: () => {
        this.#options.attempts.ended(attempt);
        if (attempt.child === undefined) this.#firstObservedAt.delete(key); // never started
        this.#attemptEnded(key);
      },
    }, this.#exitWork);
  }

  /** The attempt's log, when the node keeps Task logs. */
  #attemptLog(task: Task, attempt: Attempt): AttemptLogTarget | undefined {
    const logs = this.#options.logs;
    if (logs === undefined) return undefined;
    const owner = logOwner(task);
    return {
      output: logs.attemptLog(owner, attempt.number, task.spec.logs?.maxBytes),
      stderrTail: () => logs.stderrTail(owner, attempt.number),
      outputTail: () => logs.outputTail(owner, attempt.number),
    };
  }

  /**
   * How many processes a pass of `key` may start now: the free slots (less the claims in flight,
   * unless told otherwise), less one held for each other key that waits or was woken, so that a
   * waiting key of another Task gets the next freed slot; a key woken for its turn may take at
   * least one. O(1): with nobody waiting, an array's pass after each index takes what is free,
   * as it did before keys were served fairly.
   */
  #slotsFor(key: TaskQueueKey, claimsInFlight = this.#claimsInFlight): number {
    const free = this.#options.maxConcurrent - this.runningAttempts - claimsInFlight;
    if (free <= 0) return 0;
    if (this.#waitingCount === 0 && this.#woken.size === 0) return free;
    const id = taskQueueKeyId(key);
    const turn = this.#woken.has(id);
    const held = this.#waitingCount + this.#woken.size - (turn ? 1 : 0) - (this.#waitingForCapacity.get(namespaceOf(key))?.has(id) === true ? 1 : 0);
    return Math.max(turn ? 1 : 0, free - held);
  }

  #waitForCapacity(key: TaskQueueKey): void {
    const namespace = namespaceOf(key);
    let waiting = this.#waitingForCapacity.get(namespace);
    if (waiting === undefined) {
      waiting = new Map();
      this.#waitingForCapacity.set(namespace, waiting);
    }
    const id = taskQueueKeyId(key);
    if (!waiting.has(id)) this.#waitingCount++;
    waiting.set(id, key);
  }

  /** A key that got its slots on a pass of its own (not woken) holds none for later. */
  #stopWaiting(key: TaskQueueKey): void {
    if (this.#waitingCount === 0) return;
    const namespace = namespaceOf(key);
    const waiting = this.#waitingForCapacity.get(namespace);
    if (waiting?.delete(taskQueueKeyId(key)) !== true) return;
    this.#waitingCount--;
    if (waiting.size === 0) this.#waitingForCapacity.delete(namespace);
  }

  /** Removes the logs of the Task at `key` but those of `keepUid`: it is gone, or made again. */
  #forgetLogs(key: string, keepUid: string | undefined): void {
    const [namespace = '', name = ''] = key.split('/');
    this.#options.logs?.forget(namespace, name, keepUid).catch((error: unknown) => {
      this.#options.logger.warn({ task: key, err: (error as Error).message }, 'could not remove the logs of a deleted Task');
    });
  }

  #attemptEnded(key: string): void {
    this.#options.requeue(reconcileKey(key));
    // A slot may be free: let one waiting Task (bound or to claim) have another look. An array
    // asks for a pass when an index starts too: then no slot was freed, and no key is woken.
    this.#offerFreeSlot();
  }

  /**
   * After each pass: a slot is free while a key waits for one. The key woken when the slot freed
   * may not have taken it (deleted, suspended or claimed elsewhere meanwhile), so pass it on.
   */
  #offerFreeSlot(): void {
    if (this.#waitingCount === 0 || this.#draining) return;
    if (this.runningAttempts + this.#claimsInFlight + this.#woken.size < this.#options.maxConcurrent) this.#wakeNextWaiting();
  }

  /** Wakes the oldest waiting key of the namespace next in turn; that namespace goes to the back. */
  #wakeNextWaiting(): void {
    const [next] = this.#waitingForCapacity;
    if (next === undefined) return;
    const [namespace, waiting] = next;
    const [oldest] = waiting;
    this.#waitingForCapacity.delete(namespace);
    if (oldest === undefined) return;
    waiting.delete(oldest[0]);
    this.#waitingCount--;
    if (waiting.size > 0) this.#waitingForCapacity.set(namespace, waiting);
    this.#woken.add(oldest[0]);
    this.#options.requeue(oldest[1]);
  }

  async #recordEnding(key: string, task: Task, attempt: Attempt): Promise<ReconcileResult | undefined> {
    const ending = attempt.ending as AttemptEnding;
    const { nodeName, logger } = this.#options;
    const context = { task: key, attempt: attempt.number, reason: ending.reason, exitCode: ending.exitCode, signal: ending.signal };
    if (mayRetry(task.spec, ending.reason, attempt.number) && task.spec.suspend !== true) {
      const delaySeconds = retryDelaySeconds(task.spec, attempt.number);
      const nextRetryAt = ending.finishedAt + delaySeconds * 1000;
      const retryStatus = waitingToRetryStatus(task, nodeName, attempt, ending, nextRetryAt);
      await this.#options.writer.writeStatus(task, retryStatus);
      attempt.recorded = { status: retryStatus, at: Date.now() };
      logger.info({ ...context, retryInSeconds: delaySeconds }, 'attempt failed; will retry');
      this.#event(task, 'Warning', 'Failed', `attempt ${attempt.number}: ${ending.message}; retrying in ${delaySeconds}s`);
      return { requeueAfterMs: Math.max(1, nextRetryAt - Date.now()) };
    }
    const backoffLimit = task.spec.backoffLimit ?? 0;
    const retriesExhausted = backoffLimit > 0 && ending.reason !== 'Completed' && attempt.number > backoffLimit;
    const status = finishedStatus(task, nodeName, attempt, ending, retriesExhausted);
    await this.#options.writer.writeStatus(task, status);
    attempt.recorded = { status, at: Date.now() };
    this.#finished(status, ending.finishedAt);
    const succeeded = status.phase === 'Succeeded';
    logger.info({ ...context, phase: status.phase }, succeeded ? 'task succeeded' : 'task failed');
    this.#event(task, succeeded ? 'Normal' : 'Warning', succeeded ? 'Completed' : ending.reason === 'Killed' ? 'Killed' : 'Failed', status.message ?? ending.message);
    await this.#options.writer.removeFinalizer(task);
    return this.#collectGarbage({ ...task, status });
  }

  #noteObserved(key: string): void {
    if (this.#options.observer?.taskStarted === undefined || this.#firstObservedAt.has(key)) return;
    if (this.#firstObservedAt.size >= firstObservedLimit) {
      const [oldest] = this.#firstObservedAt.keys();
      if (oldest !== undefined) this.#firstObservedAt.delete(oldest);
    }
    this.#firstObservedAt.set(key, performance.timeOrigin + performance.now());
  }

  #firstAttemptStarted(key: string, task: Task, attempt: Attempt): void {
    const observedAt = this.#firstObservedAt.get(key);
    this.#firstObservedAt.delete(key);
    if (attempt.number !== 1 || observedAt === undefined || attempt.startedAt === undefined) return;
    const created = task.metadata.creationTimestamp;
    this.#options.observer?.taskStarted?.({
      sinceObservedMs: attempt.startedAt - observedAt,
      sinceCreatedMs: created === undefined ? undefined : attempt.startedAt - parseTimestamp(created),
    });
  }

  #finished(status: TaskStatus, finishedAt: number): void {
    const { phase, reason, startTime } = status;
    if ((phase !== 'Succeeded' && phase !== 'Failed') || reason === undefined) return;
    this.#options.observer?.taskFinished?.({ phase, reason, durationMs: startTime === undefined ? undefined : finishedAt - parseTimestamp(startTime) });
  }

  #terminate(attempt: Attempt, cause: KillCause): ReconcileResult {
    attempt.killCause ??= cause;
    const now = Date.now();
    if (attempt.terminatingSince === undefined) {
      attempt.terminatingSince = now;
      attempt.child?.kill('SIGTERM');
      return { requeueAfterMs: this.#options.terminationGraceMs };
    }
    const left = attempt.terminatingSince + this.#options.terminationGraceMs - now;
    if (left > 0) return { requeueAfterMs: left };
    attempt.child?.kill('SIGKILL');
    return { requeueAfterMs: 1000 };
  }

  #killNow(attempt: Attempt): void {
    attempt.killCause ??= 'Deleted';
    if (attempt.ending === undefined) attempt.child?.kill('SIGKILL');
  }

  async #collectGarbage(task: Task): Promise<ReconcileResult | undefined> {
    const ttlSeconds = task.spec.ttlSecondsAfterFinished;
    const completed = task.status?.completionTime;
    if (ttlSeconds === undefined || completed === undefined) return undefined;
    const dueAt = parseTimestamp(completed) + ttlSeconds * 1000;
    const now = Date.now();
    if (now < dueAt) return { requeueAfterMs: Math.ceil(dueAt - now) };
    await this.#options.writer.deleteTask(task);
    this.#options.logger.info({ task: `${task.metadata.namespace ?? ''}/${task.metadata.name ?? ''}`, attempt: task.status?.attempts }, 'deleted after ttlSecondsAfterFinished');
    return undefined;
  }

  #event(task: Task, type: EventType, reason: string, note: string): void {
    const subject: EventSubject = {
      apiVersion: taskApiVersion,
      kind: taskKind,
      namespace: task.metadata.namespace ?? '',
      name: task.metadata.name ?? '',
      uid: task.metadata.uid ?? '',
    };
    this.#options.events.record(subject, type, reason, note);
  }
}

/** The namespace of a queue key's Task ("namespace/name"): the unit capacity is shared between. */
function namespaceOf(key: TaskQueueKey): string {
  return key.name.slice(0, Math.max(0, key.name.indexOf('/')));
}

/** Whether the cached Task already shows a status we wrote. */
function cacheShows(task: Task, written: TaskStatus): boolean {
  const cached = task.status;
  return cached !== undefined && cached.phase === written.phase && cached.attempts === written.attempts && cached.nextRetryTime === written.nextRetryTime;
}

export function selectorMatches(selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(selector ?? {}).every(([name, value]) => labels[name] === value);
}

/** activeDeadlineSeconds counts from the first attempt's start, across retries, as for Jobs. */
function deadlineOf(task: Task, attempt: Attempt | undefined): number | undefined {
  const seconds = task.spec.activeDeadlineSeconds;
  if (seconds === undefined) return undefined;
  const startTime = task.status?.startTime;
  const startedAt = startTime !== undefined ? parseTimestamp(startTime) : attempt?.startedAt ?? attempt?.launchedAt;
  return startedAt === undefined ? undefined : startedAt + seconds * 1000;
}

function logOwner(task: Task): TaskLogOwner {
  return { namespace: task.metadata.namespace ?? 'default', name: task.metadata.name ?? '', uid: task.metadata.uid ?? '' };
}

/** An array every matching agent takes part in, rather than one agent claiming it whole (docs/arrays.md). */
function sharedAcrossNodes(task: Task): boolean {
  return task.spec.completions !== undefined && task.spec.indexPlacement === 'AcrossNodes' && task.spec.nodeName === undefined;
}

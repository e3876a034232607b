// How one attempt of a Task becomes a process and how its end is told: the spawn options made from
// the Task (command, environment with the one default PATH, sandbox with the attempt's ids, cgroup,
// the log its output goes to, the result file), the spawn itself, the stderr tail (from a pipe, or
// from the log), the result and the memory peak, the attempt's ending from its exit or its
// SpawnError, and giving back its cgroup and ids. The reconciler decides whether and when to launch; this module
// only carries the launch out and fills in the attempt, then calls back so the reconciler looks
// again (task-reconciler.ts: "spawn results and exits never act themselves").
import type { Task, TaskReason, TaskSpec } from '../api/task.js';
import type { SlicedWork } from '../controller/sliced-work.js';
import { terminalSafeText } from '../http/terminal-safe-json.js';
import type { ResultFileContent } from '../launcher/result-file.js';
import type { SandboxOptions } from '../launcher/sandbox-options.js';
import { signalName } from '../launcher/signals.js';
import { InvalidSpawnOptionError, SpawnError } from '../launcher/spawn-error.js';
import { defaultSearchPath, type LogOutput, type SpawnOptions } from '../launcher/spawn-options.js';
import type { ExitResult, SpawnedProcess } from '../launcher/spawned-process.js';
import type { TaskCgroup } from '../sandbox/cgroup-manager.js';
import type { TaskIdentityLease } from '../sandbox/task-identities.js';
import { specRefusalMessage } from '../sandbox/task-sandbox.js';
import { missingSandboxPath } from '../sandbox/task-spec-checks.js';
import { attemptResult, resultMaxBytes, resultPath, resultVariable, type ResultPolicy } from './attempt-result.js';
import type { Attempt, AttemptEnding, KillCause, StderrTail } from './attempts.js';


/** How long a finished process may keep its stderr pipe open (a daemonised grandchild) before we stop reading. */
const stderrDrainLimitMs = 2_000;

/** What the reconciler needs of a launcher: the native Launcher, or the child_process one. */
export interface TaskLauncher {
  spawn(options: SpawnOptions): Promise<SpawnedProcess>;
}

/** What a launch uses of the attempt's cgroup (a TaskCgroup). */
export type AttemptCgroup = Pick<TaskCgroup, 'spawnOptions' | 'oomKills' | 'memoryPeakBytes' | 'killAll' | 'removeAsync'>;

/** What an attempt runs in, decided by the reconciler before the launch. */
export interface LaunchPlan {
  /** Undefined: unsandboxed (benchmarks only). */
  readonly sandbox: SandboxOptions | undefined;
  readonly cwd: string;
  readonly cgroup: AttemptCgroup | undefined;
  /** Where its stdout and stderr go; undefined: stdout discarded, stderr's tail read from a pipe. */
  readonly log?: AttemptLogTarget | undefined;
  /** Give it a result file ($PARAFORK_RESULT) and keep its result under this policy; undefined: none (array indexes). */
  readonly resultPolicy?: ResultPolicy | undefined;
  /**
   * What it runs; undefined: the Task's own (taskCommand). An array's index gives its own
   * (indexCommand, made without a copy of the Task for each index).
   */
  readonly command?: TaskCommand | undefined;
}

/** What an attempt runs: the executable, its arguments and its whole environment. */
export interface TaskCommand {
  readonly file: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** An attempt's log (src/logs), when the node keeps Task logs. */
export interface AttemptLogTarget {
  /** The launcher's output for both streams: the native log pump writes them to this file. */
  readonly output: LogOutput;
  /** The end of the log's stderr lines, once the log is complete: for status.stderrTail. */
  stderrTail(): Promise<string>;
  /** The end of the log's lines of both streams, once the log is complete: for a result from the log. */
  outputTail(): Promise<string>;
}

/** What the launch tells the reconciler; each is called at most once. */
export interface LaunchCallbacks {
  /** The process has exec'd: attempt.child, timings and startedAt are set. */
  running(): void;
  /** The process ended, or its spawn failed (attempt.child unset): attempt.ending is set, its cgroup and ids given back. */
  ended(): void;
}

/**
 * The sandbox with the attempt's leased ids (task-identities.ts) in place of the defaults. A uid
 * leased to the Task alone is marked so (`ownUid`): what an earlier Task left in its keyrings is
 * emptied at the start (sandbox-user-keyrings.test.ts).
 */
export function withIdentity(sandbox: SandboxOptions, identity: TaskIdentityLease | undefined): SandboxOptions {
  if (identity === undefined) return sandbox;
  return {
    ...sandbox,
    runAsUser: identity.runAsUser,
    runAsGroup: identity.runAsGroup,
    ...(identity.ownUid ? { ownUid: true } : {}),
    ...(identity.userNamespaceHostId !== undefined ? { userNamespaceHostId: identity.userNamespaceHostId } : {}),
  };
}

/**
 * spec.env as one record, later entries of a name replacing earlier ones in place. No prototype:
 * `__proto__` is a name the CRD accepts, and assigning it to a plain object set the object's
 * prototype instead (the variable went missing). Copy it out by spread (withSearchPath).
 */
export function specEnvironment(env: TaskSpec['env']): Record<string, string> {
  const environment = Object.create(null) as Record<string, string>;
  for (const variable of env ?? []) environment[variable.name] = variable.value ?? '';
  return environment;
}

/** A Task's environment is what its spec says, plus a PATH to find its command by (first, when the spec sets none). */
export function withSearchPath(environment: Readonly<Record<string, string>>): Record<string, string> {
  return 'PATH' in environment ? { ...environment } : { PATH: defaultSearchPath, ...environment };
}

/** The command of an attempt of the Task: spec.command and spec.args, spec.env with a PATH (and the result file's variable). */
export function taskCommand(spec: TaskSpec, resultFile: boolean): TaskCommand {
  const [file, ...leadingArgs] = spec.command;
  const environment = specEnvironment(spec.env);
  // The result file's name wins over a spec.env entry of the same name: nothing else is the file.
  if (resultFile) environment[resultVariable] = resultPath;
  return { file, args: [...leadingArgs, ...(spec.args ?? [])], env: withSearchPath(environment) };
}

/** The launcher's options for one attempt of the Task: its command, args and env (with a PATH), cwd, sandbox and cgroup. */
export function taskSpawnOptions(spec: TaskSpec, plan: LaunchPlan): SpawnOptions {
  const { file, args, env: commandEnv } = plan.command ?? taskCommand(spec, plan.resultPolicy !== undefined);
  // A given command's env has no result file's variable (an index has no result file).
  const env = plan.command !== undefined && plan.resultPolicy !== undefined ? { ...commandEnv, [resultVariable]: resultPath } : commandEnv;
  return {
    file,
    args,
    env,
    cwd: plan.cwd,
    stdout: plan.log?.output ?? 'ignore',
    stderr: plan.log?.output ?? 'pipe',
    ...(plan.sandbox !== undefined ? { sandbox: plan.sandbox } : {}),
    // The spawn thread makes the cgroup and writes its limits (TaskCgroup.spawnOptions).
    ...plan.cgroup?.spawnOptions,
    ...(plan.resultPolicy !== undefined ? { resultFile: true } : {}),
  };
}

/**
 * Spawns the attempt's process and follows it to its end, filling in `attempt` (child, timings,
 * startedAt, then ending) and giving back its cgroup and ids once its processes are gone. With
 * `slices`, the work of its end (cgroup reads, release, the ended callback) runs in their turns,
 * as one of a burst's many small pieces; without, at once.
 */
export function launchAttempt(launcher: TaskLauncher, task: Task, attempt: Attempt, plan: LaunchPlan, callbacks: LaunchCallbacks, slices?: SlicedWork): void {
  const { cgroup } = plan;
  const inTurn = (piece: () => void): void => {
    if (slices === undefined) piece();
    else slices.schedule(piece);
  };
  const release = (options?: { readonly retireIds?: boolean }): void => {
    releaseCgroup(cgroup);
    // Its processes are gone with its pid namespace's init.
    attempt.identity?.release({ retire: options?.retireIds === true });
  };
  launcher.spawn(taskSpawnOptions(task.spec, plan)).then(
    (child) => {
      attempt.child = child;
      attempt.timings = child.timings;
      attempt.startedAt = performance.timeOrigin + performance.now();
      const { log } = plan;
      const stderrDone = log === undefined ? collectStderr(child.stderr, attempt.stderr) : child.log;
      // Exits come in batches: what each one costs the JS thread runs in slices (sliced-work.ts).
      void child.exited.then((exit) => inTurn(() => {
        attempt.usage = exit.rusage;
        // Read (and closed) at once: its memory is the task's until then.
        const resultFile = child.resultFile?.read(resultMaxBytes);
        // Its processes are gone (a sandbox's with its init; the rest are killed by release()).
        attempt.memoryPeakBytes = cgroup?.memoryPeakBytes();
        const oomKills = cgroup?.oomKills() ?? 0;
        const ending = oomKills > 0 && attempt.killCause === undefined ? oomEnding(task.spec) : exitEnding(exit, attempt.killCause);
        void completeEnding(ending, resultFile);
      }));
      const completeEnding = async (ending: AttemptEnding, resultFile: Promise<ResultFileContent> | undefined): Promise<void> => {
        const failed = ending.reason !== 'Completed';
        // status.stderrTail (and a result from the log) is for failures: a Task that succeeds
        // neither waits for its log to be complete nor costs a read of it.
        if (log === undefined || failed) await settledWithin(stderrDone, stderrDrainLimitMs);
        if (log !== undefined && failed) attempt.stderr.append(await log.stderrTail());
        if (resultFile !== undefined && plan.resultPolicy !== undefined) {
          // Without a log, the output the node kept is stderr's tail.
          const outputTail = log === undefined ? () => Promise.resolve(attempt.stderr.toString()) : () => log.outputTail();
          attempt.result = await attemptResult(await resultFile, plan.resultPolicy, failed, outputTail);
        }
        inTurn(() => {
          // Last, with nothing awaited after it: a reconcile that sees an ending records the attempt
          // as it is then (task-reconciler.ts), so everything else about it must be in place.
          attempt.ending = ending;
          release();
          callbacks.ended();
        });
      };
      callbacks.running();
    },
    (error: unknown) => {
      attempt.ending = spawnFailureEnding(error, task.spec);
      // Keyrings no holder of the uid can empty stay so (spawnFailureEnding): a retry, and every
      // later Task, runs as another uid.
      release({ retireIds: isUnemptiableKeyrings(error) });
      callbacks.ended();
    },
  );
}

/** Kills what the attempt left in its cgroup and removes it (in the background: removeAsync); best effort. */
export function releaseCgroup(cgroup: AttemptCgroup | undefined): void {
  if (!cgroup) return;
  try {
    cgroup.killAll(); // anything the task left behind (a pid namespace's init takes its tree along)
    // A cgroup that cannot go yet is left empty and harmless.
    cgroup.removeAsync().catch(() => undefined);
  } catch {
    // Best effort, as above.
  }
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

function oomEnding(spec: TaskSpec): AttemptEnding {
  return { reason: 'OOMKilled', message: `killed for going over resources.limits.memory (${String(spec.resources?.limits?.memory)})`, finishedAt: now(), signal: 'SIGKILL' };
}

const killCauseReasons: Record<KillCause, TaskReason> = {
  DeadlineExceeded: 'DeadlineExceeded',
  Cancelled: 'Cancelled',
  Deleted: 'Killed',
  AgentShutdown: 'AgentRestarted',
};

const killCauseMessages: Record<KillCause, string> = {
  DeadlineExceeded: 'activeDeadlineSeconds passed',
  Cancelled: 'suspend was set',
  Deleted: 'the Task was deleted',
  AgentShutdown: 'the agent shut down',
};

/** The sandbox's init exits 128 + N when a signal N ended the task, as shells report it. */
function signalFromInit(exit: ExitResult): string | undefined {
  if (exit.code === null || exit.code <= 128 || exit.code >= 128 + 65) return undefined;
  return signalName(exit.code - 128);
}

/** How an attempt whose process exited ended: the agent's kill cause first, then its exit code or signal. */
export function exitEnding(exit: ExitResult, killCause: KillCause | undefined): AttemptEnding {
  const finishedAt = now();
  const signal = exit.signal ?? signalFromInit(exit);
  const how = signal !== undefined ? `was killed by ${signal}` : `exited with code ${exit.code ?? -1}`;
  const fields = signal !== undefined ? { signal } : { exitCode: exit.code ?? -1 };
  if (killCause !== undefined) return { reason: killCauseReasons[killCause], message: `${killCauseMessages[killCause]}; the process ${how}`, finishedAt, ...fields };
  if (exit.code === 0) return { reason: 'Completed', message: 'exited with code 0', finishedAt, exitCode: 0 };
  if (signal !== undefined) return { reason: 'Killed', message: `killed by ${signal}`, finishedAt, signal };
  return { reason: 'Error', message: how, finishedAt, exitCode: exit.code ?? -1 };
}

/**
 * How an attempt whose spawn failed ended: the one place a launcher error becomes a Task reason.
 * InvalidSpec (the spec's fault, never retried), SandboxUnavailable (the node's), ExecFailed (the
 * command), SpawnFailed (anything else).
 */
export function spawnFailureEnding(error: unknown, spec: TaskSpec): AttemptEnding {
  const ending = spawnFailure(error, spec);
  // The launcher's message may quote the spec (the command that was not found): no terminal
  // control of its author's reaches status.message, the Task's Events or the agent's log (red
  // team, session 15; task-author-api.test.ts).
  return { ...ending, message: terminalSafeText(ending.message) };
}

function spawnFailure(error: unknown, spec: TaskSpec): AttemptEnding {
  const finishedAt = now();
  // The launcher refused the options made from the spec: no attempt could pass. sandboxForTask
  // checks the spec with the launcher's rules first, so only a rule it missed gets here; it is
  // never the node's fault.
  if (error instanceof InvalidSpawnOptionError) return { reason: 'InvalidSpec', message: specRefusalMessage(error), finishedAt };
  if (error instanceof SpawnError) {
    if (error.syscall === 'openat2' && (error.code === 'EXDEV' || error.code === 'ELOOP')) {
      // A host path opened beneath its allowed host path led out of it (sandbox-policy.ts): a link
      // or a directory swapped in after the check. The Task's doing, or another's; never the node's.
      return { reason: 'Forbidden', message: `a host path of spec.sandbox (rootfs or a mount's hostPath) led out of the agent's allowed host paths when it was opened to be mounted: a link or directory there changed after the sandbox policy checked it (${error.code} in openat2)`, finishedAt };
    }
    if (error.step === 'filesystem' && (error.code === 'ENOENT' || error.code === 'ENOTDIR')) {
      // A path the spec names (or the root's /proc, /dev, /tmp) is not on this node: the spec's error.
      const missing = missingSandboxPath(spec) ?? 'a path spec.sandbox names (rootfs, a mount\'s hostPath or mountPath) or /proc, /dev or /tmp in the root is missing on this node';
      return { reason: 'InvalidSpec', message: `${missing} (${error.code} in ${error.syscall})`, finishedAt };
    }
    if (isUnemptiableKeyrings(error)) {
      return { reason: 'SandboxUnavailable', message: `the keyrings of the host uid this attempt was leased (status.hostIdentity) could not be emptied of what an earlier Task run as that uid left (EACCES in keyctl): that Task took write permission on them away. This agent leases that uid no more; another attempt runs as another`, finishedAt };
    }
    // The host could not build the sandbox, its cgroup, or the namespaces clone asks for.
    if (error.step === 'sandbox' || error.step === 'filesystem' || error.step === 'cgroup' || (error.step === 'clone' && error.code === 'EPERM')) {
      return { reason: 'SandboxUnavailable', message: `this node cannot build the sandbox (${error.code} in ${error.syscall}): the agent needs root with CAP_SYS_ADMIN, and clone3/namespaces allowed by its own seccomp profile`, finishedAt };
    }
    // exec (or its setup: chdir, the executable) failed: another attempt would fail the same way.
    const hint = error.step === 'exec' && error.code === 'ENOENT' ? hiddenHostPathHint(spec) : undefined;
    return { reason: error.step === 'exec' ? 'ExecFailed' : 'SpawnFailed', message: `${error.code}: ${error.message}${hint === undefined ? '' : `: ${hint}`}`, finishedAt };
  }
  return { reason: 'SpawnFailed', message: (error as Error).message, finishedAt };
}

/** Where a host file is not in a Task's default root: its own empty /tmp, and paths masked by default (docs/security.md). */
const hiddenInSandbox = ['/tmp', '/var/tmp', '/home', '/root', '/run'];

/**
 * Why a command or workingDir the host has is not found in the Task, when the spec names one under
 * a path the sandbox hides (a new user's script in their home or /tmp: "no such file" for a file
 * they can see), and no mount of the spec brings it in. Undefined otherwise.
 */
function hiddenHostPathHint(spec: TaskSpec): string | undefined {
  const rootfs = spec.sandbox?.rootfs;
  if (rootfs !== undefined && rootfs !== '/') return undefined; // another root than the host's (the CRD's default is /): its own files
  const named = [spec.command[0], spec.workingDir].filter((entry): entry is string => entry?.startsWith('/') === true);
  const within = (file: string, directory: string): boolean => file === directory || file.startsWith(`${directory.replace(/\/+$/, '')}/`);
  const mounted = (file: string): boolean => (spec.sandbox?.mounts ?? []).some((mount) => within(file, mount.mountPath));
  const hidden = named.find((file) => !mounted(file) && hiddenInSandbox.some((directory) => within(file, directory)));
  if (hidden === undefined) return undefined;
  return `${hidden} is not in the Task's root, whatever the host has there: a Task gets a /tmp of its own, and /home, /root, /run and /var/tmp are masked by default; mount its directory (spec.sandbox.mounts, within the agent's --allowed-host-paths) or keep it elsewhere`;
}

/**
 * The child could not empty its leased uid's keyrings (native/src/user_keyrings.h): an earlier
 * Task of that uid took write permission on them away, which only that uid may give back.
 */
function isUnemptiableKeyrings(error: unknown): boolean {
  return error instanceof SpawnError && error.syscall === 'keyctl' && error.code === 'EACCES';
}

/**
 * Waits until `promise` settles (null: at once), `limitMs` at most. The timer goes as soon as it settles: left
 * to fire, it lived 2 s after every exit, thousands at once in a Task array, each outliving
 * young collections into V8's old space (agent RSS; docs/benchmarks.md, Task arrays).
 */
async function settledWithin(promise: Promise<unknown> | null, limitMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([promise, new Promise((resolve) => {
      timer = setTimeout(resolve, limitMs).unref();
    })]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads a process's stderr into its tail until the stream ends. */
async function collectStderr(stream: NodeJS.ReadableStream | null, tail: StderrTail): Promise<void> {
  if (stream === null) return;
  stream.setEncoding('utf8');
  try {
    for await (const chunk of stream) tail.append(chunk as string);
  } catch {
    // A stream error only shortens the tail.
  }
}

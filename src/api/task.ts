// Generated from crds/task.yaml by scripts/generate-api-types.mjs — do not edit by hand.
// The Task API (parafork.dev/v1alpha1) as TypeScript: the resource's names, the enum values
// as const arrays and unions, and one interface per object of the schema, documented from the
// CRD's descriptions. Change the CRD, then run `node scripts/generate-api-types.mjs`.

/** The API group Tasks belong to. */
export const taskGroup = 'parafork.dev';

/** The API version this module describes (served and stored). */
export const taskVersion = 'v1alpha1';

/** The apiVersion field of every Task: group/version. */
export const taskApiVersion = 'parafork.dev/v1alpha1';

/** The kind of a Task object. */
export const taskKind = 'Task';

/** The kind of a list of Tasks, as list calls return. */
export const taskListKind = 'TaskList';

/** The resource name in API paths: /apis/parafork.dev/v1alpha1/namespaces/NS/tasks. */
export const taskPlural = 'tasks';

/** The singular name kubectl accepts. */
export const taskSingular = 'task';

/** kubectl's short names for Tasks. */
export const taskShortNames = ['ptask'] as const;

/** Fields a field selector may name (e.g. `spec.nodeName=node-a`); the apiserver refuses others. */
export const taskSelectableFields = ['spec.nodeName', 'status.phase'] as const;

/** A Kubernetes int-or-string: quantities such as `'500m'` or `2` arrive as either. */
export type IntOrString = number | string;

/**
 * The part of Kubernetes' ObjectMeta that parafork reads and writes. The apiserver sends more
 * (managedFields, ownerReferences, ...); those are present at run time but not typed here.
 */
export interface ObjectMeta {
  readonly name?: string;
  readonly generateName?: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly generation?: number;
  /** RFC 3339, second precision. */
  readonly creationTimestamp?: string;
  /** Set when deletion was requested; the object stays until its finalizers are gone. */
  readonly deletionTimestamp?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly finalizers?: readonly string[];
}

/** The metadata of a list response. */
export interface ListMeta {
  readonly resourceVersion?: string;
  /** Present when the list was cut short by a limit: pass it back to get the next page. */
  readonly continue?: string;
  readonly remainingItemCount?: number;
}

/** Every {@link TaskNetworkMode}, in the CRD's order. */
export const taskNetworkModes = ['none', 'loopback', 'host'] as const;

/**
 * Network isolation. none: a new network namespace with no interface up, so no network at all.
 * loopback: a new network namespace with only lo up, private to this Task (it can talk to itself on
 * 127.0.0.1 and ::1). host: the node's own network namespace, with everything that can reach and be
 * reached from it.
 */
export type TaskNetworkMode = (typeof taskNetworkModes)[number];

/** Every {@link TaskSeccompType}, in the CRD's order. */
export const taskSeccompTypes = ['RuntimeDefault', 'Localhost', 'Unconfined'] as const;

/**
 * RuntimeDefault: the agent's built-in filter, which blocks system calls ordinary programs do not
 * need (kernel modules, reboot, kexec, ...). Localhost: a profile file on the node, named by
 * localhostProfile. Unconfined: no filter but the one that keeps RLIMIT_CORE (which every filter
 * keeps).
 */
export type TaskSeccompType = (typeof taskSeccompTypes)[number];

/** Every {@link TaskSpecIndexPlacement}, in the CRD's order. */
export const taskSpecIndexPlacements = ['SingleNode', 'AcrossNodes'] as const;

/**
 * Where the indexes of an array run. SingleNode (the default): on one node, as any Task (the node
 * in nodeName, or the first agent matching nodeSelector claims the whole array). AcrossNodes: every
 * agent whose Node matches nodeSelector takes part; agents claim ranges of indexes in
 * status.partitions, each writing only its own entries (server-side apply under its own field
 * manager), and an agent that stops renewing its ranges (dead, or cut off from the apiserver) has
 * their unfinished indexes taken over by another once its lease has expired. parallelism then
 * bounds each agent's share, not the whole array. With AcrossNodes, nodeName cannot be set. Only
 * with completions. Immutable.
 */
export type TaskSpecIndexPlacement = (typeof taskSpecIndexPlacements)[number];

/** Every {@link TaskSpecResultPolicy}, in the CRD's order. */
export const taskSpecResultPolicys = ['File', 'FallbackToLogsOnError'] as const;

/**
 * Where status.result comes from, as a container's terminationMessagePolicy. Each attempt's process
 * finds a result file named by $PARAFORK_RESULT (/dev/fd/3: a file of its own, made for the
 * attempt) and may write a small result there; the first 4096 bytes land in status.result whether
 * the attempt succeeds or fails. The file is the process's fd 3: a program it starts reaches the
 * file only if it inherits fd 3 (Python's subprocess closes it unless given pass_fds=(3,)). File
 * (the default): only the file. FallbackToLogsOnError: when the file is empty and the attempt
 * failed, the end of its output (the last 4096 bytes of its log, stdout and stderr as it wrote
 * them) instead. Task arrays (completions) keep no result per index: status.result stays unset.
 */
export type TaskSpecResultPolicy = (typeof taskSpecResultPolicys)[number];

/** Every {@link TaskPhase}, in the CRD's order. */
export const taskPhases = ['Pending', 'Running', 'Succeeded', 'Failed'] as const;

/**
 * Where the Task is in its lifecycle. Pending: no process is running and one will be: not yet
 * claimed or started (reason WaitingForAgent or WaitingForCapacity), suspended before its start
 * (Suspended), or waiting to retry (see nextRetryTime). Running: a process of the latest attempt is
 * alive. Succeeded: an attempt exited 0. Failed: the Task ended otherwise (see reason). Succeeded
 * and Failed are final.
 */
export type TaskPhase = (typeof taskPhases)[number];

/** Every {@link TaskConditionType}, in the CRD's order. */
export const taskConditionTypes = ['Succeeded', 'Running', 'Complete', 'Failed'] as const;

/** Which aspect this condition describes. */
export type TaskConditionType = (typeof taskConditionTypes)[number];

/** Every {@link TaskConditionStatus}, in the CRD's order. */
export const taskConditionStatuses = ['True', 'False', 'Unknown'] as const;

/** Whether the condition holds; Unknown while it cannot be told yet. */
export type TaskConditionStatus = (typeof taskConditionStatuses)[number];

/** Every {@link TaskReason}, in the CRD's order. */
export const taskReasons = [
  'Completed',
  'Error',
  'ExecFailed',
  'SpawnFailed',
  'InvalidSpec',
  'SandboxUnavailable',
  'Forbidden',
  'DeadlineExceeded',
  'OOMKilled',
  'Killed',
  'Cancelled',
  'AgentRestarted',
  'BackoffLimitExceeded',
  'WaitingForAgent',
  'WaitingForCapacity',
  'Suspended',
  'MaxFailedIndexesExceeded',
  'FailedIndexes',
] as const;

/**
 * Why the Task is in its phase, as one CamelCase word. While Pending before its first attempt:
 * WaitingForAgent: no agent has taken it up yet (unbound and not claimed, or its node's agent has
 * not started it; in standalone mode, bound to another node than this machine). WaitingForCapacity:
 * its node's agent runs as many Tasks as it may (--max-concurrent) and starts it when one ends.
 * Suspended: spec.suspend is set; it starts once cleared. After an attempt, while Pending or
 * Running, it says how the previous attempt ended. Once finished: Completed: exited 0. Error:
 * exited non-zero. ExecFailed: the command could not be executed (not found, not executable).
 * SpawnFailed: the process could not be created (e.g. fork failed). InvalidSpec: the agent cannot
 * run this spec on its node (e.g. nodeSelector not matching, a limit out of range, a NUL byte in an
 * argument); message names the field, and it is never retried. SandboxUnavailable: the node cannot
 * build the sandbox asked for. Forbidden: the spec asks for more than the sandbox policy level of
 * the Task's namespace allows (label parafork.dev/sandbox-policy, else the agent's
 * --sandbox-policy); message names the field and the level, and it is never retried. The level is
 * checked before every attempt, so a namespace relabelled meanwhile decides the next one.
 * DeadlineExceeded: activeDeadlineSeconds passed. OOMKilled: killed for going over
 * resources.limits.memory. Killed: killed by a signal the agent did not send. Cancelled: suspend
 * was set while it ran. AgentRestarted: the agent restarted and lost the process.
 * BackoffLimitExceeded: backoffLimit allowed retries and every attempt failed (for an array without
 * backoffLimitPerIndex: more than backoffLimit attempts failed across its indexes); message then
 * says how the last one ended. For arrays also: MaxFailedIndexesExceeded: more than
 * maxFailedIndexes indexes failed. FailedIndexes: every index is done and some failed (see
 * failedIndexes).
 */
export type TaskReason = (typeof taskReasons)[number];

/** Every {@link TaskLimitName}, in the CRD's order. */
export const taskLimitNames = ['cpu', 'memory', 'pids'] as const;

/** One of limits' fields. */
export type TaskLimitName = (typeof taskLimitNames)[number];

/**
 * A Task asks a parafork agent to run one command to completion as a sandboxed process on a node,
 * retrying it if asked to. It is the process-level counterpart of a Job: no container image, no
 * Pod, just a program started in a fresh sandbox on the node.
 */
export interface Task {
  /**
   * The versioned schema of this object: parafork.dev/v1alpha1. Servers reject versions they do not
   * serve.
   */
  readonly apiVersion: typeof taskApiVersion;
  /** The REST resource this object represents; always Task. */
  readonly kind: typeof taskKind;
  /** Standard Kubernetes object metadata. */
  readonly metadata: ObjectMeta;
  /**
   * What to run, where, inside which sandbox and under which retry and deadline policy. command,
   * args, env, workingDir, resources and sandbox cannot change after creation: delete the Task and
   * create a new one to run something else.
   */
  readonly spec: TaskSpec;
  /**
   * What the agent observed and did; written only by the agent, through the status subresource.
   * Fields about an attempt (exitCode, signal, reason, message, stderrTail, spawnTimings) describe
   * the latest one. Until an agent writes it, a Task shows this default, given by the apiserver as
   * a Pod's phase is: Pending, reason WaitingForAgent.
   *
   * @defaultValue `{ phase: 'Pending', reason: 'WaitingForAgent', message: 'no agent has taken this
   * Task up yet: an unbound Task waits for an agent whose Node matches spec.nodeSelector (and has
   * room) to claim it, a bound one for the agent of its node' }`
   */
  readonly status?: TaskStatus;
}

/** A page of Tasks, as a list call returns it. */
export interface TaskList {
  readonly apiVersion: typeof taskApiVersion;
  readonly kind: typeof taskListKind;
  readonly metadata: ListMeta;
  readonly items: readonly Task[];
}

/**
 * What to run, where, inside which sandbox and under which retry and deadline policy. command,
 * args, env, workingDir, resources and sandbox cannot change after creation: delete the Task and
 * create a new one to run something else.
 *
 * Apiserver checks: completions cannot be changed after the Task is created; parallelism is allowed
 * only with completions (an array Task); indexPlacement is allowed only with completions (an array
 * Task); an array with indexPlacement AcrossNodes is run by every agent that matches nodeSelector,
 * so nodeName cannot be set; indexPlacement cannot be changed after the Task is created;
 * backoffLimitPerIndex is allowed only with completions (an array Task); maxFailedIndexes is
 * allowed only with backoffLimitPerIndex; maxFailedIndexes cannot be more than completions; command
 * cannot be changed after the Task is created; args cannot be changed after the Task is created;
 * env cannot be changed after the Task is created; workingDir cannot be changed after the Task is
 * created; resources cannot be changed after the Task is created; sandbox cannot be changed after
 * the Task is created; nodeName cannot be changed or cleared once set; nodeSelector cannot be
 * changed once the Task is bound to a node (spec.nodeName is set).
 */
export interface TaskSpec {
  /**
   * The program to run (command[0]) and any leading arguments; args are appended after these. No
   * shell is involved: to use shell syntax, run ["/bin/sh", "-c", "..."]. A command[0] without a
   * slash is searched in the PATH given in env, or in /usr/local/bin:/usr/bin:/bin when env sets
   * none. Immutable.
   *
   * Apiserver checks: 1 to 64 items; command[0] must name the program to run and cannot be empty.
   */
  readonly command: readonly [string, ...string[]];
  /**
   * Arguments appended after command, passed as they are (no shell expansion, no variable
   * substitution); an argument may be empty. Immutable.
   *
   * Apiserver checks: at most 1024 items.
   */
  readonly args?: readonly string[];
  /**
   * The process's whole environment. Nothing is inherited from the agent, so a Task sees no secrets
   * or settings of the node by accident. Names are unique. Immutable.
   *
   * Apiserver checks: at most 256 items; unique by name.
   */
  readonly env?: readonly TaskEnvVar[];
  /**
   * The directory the process starts in: an absolute path inside the sandbox's filesystem (see
   * sandbox.rootfs). Immutable.
   *
   * Apiserver checks: at most 4096 characters; workingDir must be an absolute path.
   *
   * @defaultValue `'/'`
   */
  readonly workingDir?: string;
  /**
   * The node whose agent runs this Task. Set it when creating the Task to bind it to that node;
   * otherwise the first agent whose Node matches nodeSelector claims the Task by writing its own
   * node name here (an update conditioned on resourceVersion, so only one agent wins). Once set it
   * cannot be changed or cleared.
   *
   * Apiserver checks: at most 253 characters; matches
   * /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.
   */
  readonly nodeName?: string;
  /**
   * Labels a Node must carry (all of them, with these exact values) for its agent to claim this
   * Task while nodeName is empty. Empty or omitted: any node's agent may claim it. If nodeName is
   * set at creation, the agent of that node still checks these labels and fails the Task with
   * InvalidSpec when its Node does not match. Frozen once nodeName is set.
   *
   * Apiserver checks: at most 32 entries.
   */
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /**
   * Resource limits the agent enforces through the Task's own cgroup. There are no requests:
   * nothing schedules by them. A limit left unset gets the agent's default, as a LimitRange would
   * fill it in (--default-memory and --default-pids, on unless the node's admin turns them off;
   * --default-cpu, off unless turned on), and status.resources shows what the Task ran under.
   * Immutable.
   */
  readonly resources?: TaskResources;
  /**
   * How the process is isolated: namespaces, filesystem, identity and system call filter. Defaults
   * are the confined choice; every loosening (host network, a writable root, root user, Unconfined
   * seccomp, writable mounts) must be asked for explicitly. The agent fails the Task with reason
   * SandboxUnavailable when the node cannot build what is asked (for example no user namespaces).
   * It refuses, with reason InvalidSpec before any attempt, host paths that would hand the Task
   * what the node keeps from every Task: a rootfs or mounts[].hostPath that is one of the agent's
   * masked paths or lies inside one (--sandbox-masked-paths: by default homes, /run, logs, the
   * kubelet's, etcd's and container runtimes' state, password hashes and private keys; always the
   * agent's own state, staging and manifest directories and kubeconfig files), a mountPath inside a
   * masked path (no mount point exists there), and a writable rootfs inside the host's /proc or
   * /sys or a writable mount of a host path in or holding them (the kernel's knobs, which a root
   * process on the node obeys). Links are resolved first, as the mount would resolve them; a masked
   * path inside a host path brought in stays masked where the Task sees it; message names the
   * field. Every field that loosens the sandbox (runAsUser or runAsGroup outside a user namespace,
   * network loopback or host, seccomp Unconfined, a rootfs or hostPath, a writable root or mount)
   * is subject to the sandbox policy level of the Task's namespace (label
   * parafork.dev/sandbox-policy: restricted, the default, baseline or privileged); a Task that asks
   * for more fails with reason Forbidden, or is refused at creation where the admission policy is
   * installed. Immutable.
   *
   * @defaultValue `{}`
   */
  readonly sandbox?: TaskSandbox;
  /**
   * Makes the Task an array of this many indexed processes, as an Indexed Job: each index from 0 to
   * completions-1 runs the command until it succeeds once (or uses up its retries), with its index
   * in the environment variables PARAFORK_TASK_INDEX and JOB_COMPLETION_INDEX (so programs written
   * for Indexed Jobs run unchanged) and completions in PARAFORK_TASK_COUNT. In args, and only
   * there, $(PARAFORK_TASK_INDEX), $(JOB_COMPLETION_INDEX) and $(PARAFORK_TASK_COUNT) are replaced
   * by those values ($$( stays a literal $(), as a Pod's args expand variables. The array is
   * Complete when every index has succeeded; status.progress, completedIndexes and failedIndexes
   * show how far it got. activeDeadlineSeconds and ttlSecondsAfterFinished apply to the whole
   * array, and deleting it kills every running index. suspend pauses an array rather than
   * cancelling it: no new index starts while it is true, running ones go on to their end, and
   * clearing it continues where the array stopped. Unset: a single process with no index.
   * Immutable.
   *
   * Apiserver checks: 1 to 100000.
   */
  readonly completions?: number;
  /**
   * Most indexes of the array running at once. Unset: as many as the node allows (the agent's
   * --max-concurrent, shared with every other Task on the node). Only with completions. Mutable:
   * lowering it starts no new index until fewer run; running ones are not killed.
   *
   * Apiserver checks: 1 to 100000.
   */
  readonly parallelism?: number;
  /**
   * Where the indexes of an array run. SingleNode (the default): on one node, as any Task (the node
   * in nodeName, or the first agent matching nodeSelector claims the whole array). AcrossNodes:
   * every agent whose Node matches nodeSelector takes part; agents claim ranges of indexes in
   * status.partitions, each writing only its own entries (server-side apply under its own field
   * manager), and an agent that stops renewing its ranges (dead, or cut off from the apiserver) has
   * their unfinished indexes taken over by another once its lease has expired. parallelism then
   * bounds each agent's share, not the whole array. With AcrossNodes, nodeName cannot be set. Only
   * with completions. Immutable.
   */
  readonly indexPlacement?: TaskSpecIndexPlacement;
  /**
   * How many times each index of the array is retried after a failed attempt, counted per index, as
   * in an Indexed Job: an index whose backoffLimitPerIndex + 1 attempts all failed is given up
   * (listed in status.failedIndexes) and the other indexes go on; the array then ends Failed with
   * reason FailedIndexes once every index is done, or at once with MaxFailedIndexesExceeded when
   * more than maxFailedIndexes indexes failed. Retries wait as spec.backoff says. Unset:
   * spec.backoffLimit is a budget for the whole array instead, as a Job's: a failed index is
   * retried while no more than backoffLimit attempts have failed across all indexes, and the next
   * failure ends the array Failed with reason BackoffLimitExceeded (running indexes are killed).
   * Set, backoffLimit is not used. Only with completions. Mutable.
   *
   * Apiserver checks: 0 to 100.
   */
  readonly backoffLimitPerIndex?: number;
  /**
   * Most indexes that may fail (use up backoffLimitPerIndex) before the whole array is failed: when
   * one more fails, no new index starts, the running ones are killed, and the Task fails with
   * reason MaxFailedIndexesExceeded. Unset: no limit, every index runs. Only with
   * backoffLimitPerIndex; at most completions. Mutable.
   *
   * Apiserver checks: 0 to 100000.
   */
  readonly maxFailedIndexes?: number;
  /**
   * Wall-clock limit for the whole Task in seconds, counted from status.startTime across all
   * attempts and the waits between them. When it passes, the running process is killed (SIGTERM,
   * then SIGKILL) and the Task fails with reason DeadlineExceeded; no retry follows. Unset means no
   * limit. Mutable: the agent applies a new value at once.
   *
   * Apiserver checks: at least 1.
   */
  readonly activeDeadlineSeconds?: number;
  /**
   * How many times a failed attempt is retried, so at most backoffLimit + 1 attempts run. 0, the
   * default, runs the command once. Failures that a retry cannot fix (ExecFailed, InvalidSpec) and
   * the ends a user or deadline caused (Cancelled, DeadlineExceeded) are never retried. Mutable.
   *
   * Apiserver checks: 0 to 100.
   *
   * @defaultValue `0`
   */
  readonly backoffLimit?: number;
  /**
   * The wait before each retry, which grows exponentially as a Job's does: initialSeconds before
   * the first retry, doubling each time, capped at maxSeconds (defaults: 10 s, 20 s, 40 s, ... up
   * to 6 minutes). Mutable.
   *
   * @defaultValue `{ initialSeconds: 10, maxSeconds: 360 }`
   */
  readonly backoff?: TaskBackoff;
  /**
   * Seconds after the Task finishes (status.completionTime) at which the agent deletes it. 0
   * deletes it as soon as it finishes. Unset: the Task stays until someone deletes it. Mutable.
   *
   * Apiserver checks: at least 0.
   */
  readonly ttlSecondsAfterFinished?: number;
  /**
   * How the agent keeps this Task's output. Every attempt's stdout and stderr go to a log on the
   * node (read them with `parafork logs` or `kubectl parafork logs`), kept as long as the Task and
   * removed with it.
   */
  readonly logs?: TaskSpecLogs;
  /**
   * Where status.result comes from, as a container's terminationMessagePolicy. Each attempt's
   * process finds a result file named by $PARAFORK_RESULT (/dev/fd/3: a file of its own, made for
   * the attempt) and may write a small result there; the first 4096 bytes land in status.result
   * whether the attempt succeeds or fails. The file is the process's fd 3: a program it starts
   * reaches the file only if it inherits fd 3 (Python's subprocess closes it unless given
   * pass_fds=(3,)). File (the default): only the file. FallbackToLogsOnError: when the file is
   * empty and the attempt failed, the end of its output (the last 4096 bytes of its log, stdout and
   * stderr as it wrote them) instead. Task arrays (completions) keep no result per index:
   * status.result stays unset.
   *
   * @defaultValue `'File'`
   */
  readonly resultPolicy?: TaskSpecResultPolicy;
  /**
   * true keeps a Task that has not started from starting; false (the default) lets it run. Setting
   * it on a running Task cancels the Task: the agent kills the process (SIGTERM, then SIGKILL) and
   * the Task fails with reason Cancelled. A finished Task never runs again, so clearing suspend
   * afterwards does nothing; create a new Task instead. Always mutable.
   *
   * @defaultValue `false`
   */
  readonly suspend?: boolean;
}

/** Each entry is one variable, a name and its value. */
export interface TaskEnvVar {
  /**
   * The variable's name: a C identifier (letters, digits and underscores, not starting with a
   * digit), as POSIX shells accept.
   *
   * Apiserver checks: at most 256 characters; must be a C identifier: letters, digits and
   * underscores, not starting with a digit.
   */
  readonly name: string;
  /**
   * The variable's value; omitted means the empty string.
   *
   * Apiserver checks: at most 32768 characters.
   */
  readonly value?: string;
}

/**
 * Resource limits the agent enforces through the Task's own cgroup. There are no requests: nothing
 * schedules by them. A limit left unset gets the agent's default, as a LimitRange would fill it in
 * (--default-memory and --default-pids, on unless the node's admin turns them off; --default-cpu,
 * off unless turned on), and status.resources shows what the Task ran under. Immutable.
 */
export interface TaskResources {
  /** Upper bounds on what the process and all its descendants may use. */
  readonly limits?: TaskResourceLimits;
}

/** Upper bounds on what the process and all its descendants may use. */
export interface TaskResourceLimits {
  /**
   * CPU time per wall-clock time, as a Kubernetes quantity: "500m" is half a CPU, 2 is two CPUs; at
   * least 1m (rounded up to whole thousandths, and enforced as at least 10m: the kernel's smallest
   * quota is 1 ms per 100 ms period). Enforced as a cgroup cpu.max quota, so the process is
   * throttled, never killed, for using more.
   *
   * Apiserver checks: cpu must be a positive quantity, such as 500m or 2.
   */
  readonly cpu?: IntOrString;
  /**
   * Memory in whole bytes, as a Kubernetes quantity ("256Mi", "1G", 1048576), from 1Mi to 8Pi.
   * Enforced as the cgroup's memory.max (no swap): going over it gets the process OOM-killed and
   * the attempt ends with reason OOMKilled. What the Task keeps in its /tmp counts too: /tmp is
   * memory (tmpfs), charged to the Task that writes it.
   *
   * Apiserver checks: memory must be a positive quantity, such as 256Mi.
   */
  readonly memory?: IntOrString;
  /**
   * Most processes and threads the Task may have alive at once (cgroup pids.max), which stops fork
   * bombs. A fork over the limit fails with EAGAIN inside the Task; nothing is killed. The agent's
   * default for it may instead be the RLIMIT_NPROC of the Task's own host uid, which counts the
   * same (see status.resources).
   *
   * Apiserver checks: 1 to 4194304.
   */
  readonly pids?: number;
}

/**
 * How the process is isolated: namespaces, filesystem, identity and system call filter. Defaults
 * are the confined choice; every loosening (host network, a writable root, root user, Unconfined
 * seccomp, writable mounts) must be asked for explicitly. The agent fails the Task with reason
 * SandboxUnavailable when the node cannot build what is asked (for example no user namespaces). It
 * refuses, with reason InvalidSpec before any attempt, host paths that would hand the Task what the
 * node keeps from every Task: a rootfs or mounts[].hostPath that is one of the agent's masked paths
 * or lies inside one (--sandbox-masked-paths: by default homes, /run, logs, the kubelet's, etcd's
 * and container runtimes' state, password hashes and private keys; always the agent's own state,
 * staging and manifest directories and kubeconfig files), a mountPath inside a masked path (no
 * mount point exists there), and a writable rootfs inside the host's /proc or /sys or a writable
 * mount of a host path in or holding them (the kernel's knobs, which a root process on the node
 * obeys). Links are resolved first, as the mount would resolve them; a masked path inside a host
 * path brought in stays masked where the Task sees it; message names the field. Every field that
 * loosens the sandbox (runAsUser or runAsGroup outside a user namespace, network loopback or host,
 * seccomp Unconfined, a rootfs or hostPath, a writable root or mount) is subject to the sandbox
 * policy level of the Task's namespace (label parafork.dev/sandbox-policy: restricted, the default,
 * baseline or privileged); a Task that asks for more fails with reason Forbidden, or is refused at
 * creation where the admission policy is installed. Immutable.
 */
export interface TaskSandbox {
  /**
   * Network isolation. none: a new network namespace with no interface up, so no network at all.
   * loopback: a new network namespace with only lo up, private to this Task (it can talk to itself
   * on 127.0.0.1 and ::1). host: the node's own network namespace, with everything that can reach
   * and be reached from it.
   *
   * @defaultValue `'none'`
   */
  readonly network?: TaskNetworkMode;
  /**
   * The host directory that becomes the process's root (/), as the agent sees it. The default, /,
   * is the agent's own root: the process sees the agent's filesystem, read-only unless
   * readOnlyRootFilesystem is false.
   *
   * Apiserver checks: at most 4096 characters; rootfs must be an absolute path.
   *
   * @defaultValue `'/'`
   */
  readonly rootfs?: string;
  /**
   * Mount the root read-only, so the Task can write only to /tmp and to mounts marked writable.
   * false lets it write into rootfs on the host.
   *
   * @defaultValue `true`
   */
  readonly readOnlyRootFilesystem?: boolean;
  /**
   * Size of the fresh, private tmpfs mounted at /tmp, in whole bytes (a quantity, e.g. "64Mi"). At
   * most the agent's --max-tmp-size (default half the node's memory, as tmpfs itself defaults); a
   * larger ask fails the Task with InvalidSpec. /tmp lives in memory, and its pages are charged to
   * the Task's memory limit (resources.limits.memory, or the agent's default): a Task cannot keep
   * more in /tmp than that limit allows, whatever this size says.
   *
   * Apiserver checks: tmpSizeLimit must be a positive quantity, such as 64Mi.
   *
   * @defaultValue `'64Mi'`
   */
  readonly tmpSizeLimit?: IntOrString;
  /**
   * Host directories or files bind-mounted into the sandbox, applied in order after the root and
   * /tmp. Mount points are unique.
   *
   * Apiserver checks: at most 32 items; unique by mountPath.
   */
  readonly mounts?: readonly TaskMount[];
  /**
   * User ID the process runs as, as given; 0 (root) must be asked for. Unset (the default), the
   * Task gets a host ID of its own from the agent's range (--task-ids), shared with no other
   * running Task and no host account, so Tasks never share per-user kernel limits;
   * status.hostIdentity shows it. A retry keeps the ID of the attempt before it (and so the files
   * that attempt made) unless another Task holds it by then. With userNamespace it is the ID inside
   * the Task's user namespace, default 65534 ("nobody"), and the Task's IDs 0..65535 map to a host
   * range of its own.
   *
   * Apiserver checks: 0 to 4294967294.
   */
  readonly runAsUser?: number;
  /**
   * Group ID the process runs as, with no supplementary groups; as for runAsUser, unset means a
   * host ID of the Task's own (the same number as its user ID when both are unset).
   *
   * Apiserver checks: 0 to 4294967294.
   */
  readonly runAsGroup?: number;
  /**
   * Run in a new user namespace, so even root inside the Task maps to an unprivileged user on the
   * host. Off by default because not every kernel or node allows unprivileged user namespaces.
   *
   * @defaultValue `false`
   */
  readonly userNamespace?: boolean;
  /**
   * The system call filter installed before the command is executed.
   *
   * @defaultValue `{ type: 'RuntimeDefault' }`
   */
  readonly seccomp?: TaskSeccompProfile;
}

/** Each entry bind-mounts one host path into the sandbox. */
export interface TaskMount {
  /**
   * Absolute path on the host, as the agent sees it.
   *
   * Apiserver checks: at most 4096 characters; hostPath must be an absolute path.
   */
  readonly hostPath: string;
  /**
   * Absolute path inside the sandbox where hostPath appears. Cannot be / (choose rootfs instead).
   *
   * Apiserver checks: at most 4096 characters; mountPath must be an absolute path; mountPath cannot
   * be /; set sandbox.rootfs to replace the root.
   */
  readonly mountPath: string;
  /**
   * Mount read-only. Set false to let the Task write to the host path.
   *
   * @defaultValue `true`
   */
  readonly readOnly?: boolean;
}

/**
 * The system call filter installed before the command is executed.
 *
 * Apiserver checks: localhostProfile is required when type is Localhost; localhostProfile is
 * allowed only when type is Localhost.
 */
export interface TaskSeccompProfile {
  /**
   * RuntimeDefault: the agent's built-in filter, which blocks system calls ordinary programs do not
   * need (kernel modules, reboot, kexec, ...). Localhost: a profile file on the node, named by
   * localhostProfile. Unconfined: no filter but the one that keeps RLIMIT_CORE (which every filter
   * keeps).
   *
   * @defaultValue `'RuntimeDefault'`
   */
  readonly type?: TaskSeccompType;
  /**
   * With type Localhost, and only then: the profile's path relative to the agent's seccomp profile
   * directory. Must not be absolute or contain '..'.
   *
   * Apiserver checks: at most 4096 characters; localhostProfile must be a relative path without
   * '..'.
   */
  readonly localhostProfile?: string;
}

/**
 * The wait before each retry, which grows exponentially as a Job's does: initialSeconds before the
 * first retry, doubling each time, capped at maxSeconds (defaults: 10 s, 20 s, 40 s, ... up to 6
 * minutes). Mutable.
 *
 * Apiserver checks: maxSeconds cannot be less than initialSeconds.
 */
export interface TaskBackoff {
  /**
   * Seconds to wait before the first retry.
   *
   * Apiserver checks: 1 to 86400.
   *
   * @defaultValue `10`
   */
  readonly initialSeconds?: number;
  /**
   * The most seconds to wait before any retry.
   *
   * Apiserver checks: 1 to 86400.
   *
   * @defaultValue `360`
   */
  readonly maxSeconds?: number;
}

/**
 * How the agent keeps this Task's output. Every attempt's stdout and stderr go to a log on the node
 * (read them with `parafork logs` or `kubectl parafork logs`), kept as long as the Task and removed
 * with it.
 */
export interface TaskSpecLogs {
  /**
   * The most bytes of log each attempt keeps on the node; the newest output is kept and the log
   * says where older output was dropped. At most the agent's --task-log-max-bytes (default 10 MiB),
   * which also applies when this is unset.
   *
   * Apiserver checks: at least 65536.
   */
  readonly maxBytes?: number;
}

/**
 * What the agent observed and did; written only by the agent, through the status subresource.
 * Fields about an attempt (exitCode, signal, reason, message, stderrTail, spawnTimings) describe
 * the latest one. Until an agent writes it, a Task shows this default, given by the apiserver as a
 * Pod's phase is: Pending, reason WaitingForAgent.
 *
 * Apiserver checks: an attempt ends either with an exitCode or with a signal, not both.
 */
export interface TaskStatus {
  /**
   * Where the Task is in its lifecycle. Pending: no process is running and one will be: not yet
   * claimed or started (reason WaitingForAgent or WaitingForCapacity), suspended before its start
   * (Suspended), or waiting to retry (see nextRetryTime). Running: a process of the latest attempt
   * is alive. Succeeded: an attempt exited 0. Failed: the Task ended otherwise (see reason).
   * Succeeded and Failed are final.
   */
  readonly phase?: TaskPhase;
  /**
   * Standard Kubernetes conditions. Succeeded is Unknown until the Task ends, then True or False
   * with the same reason as status.reason, as with other run-to-completion objects. Running is True
   * while a process is alive and False otherwise. Running's reason is ProcessRunning while True;
   * while False it is how the latest attempt ended (the values of status.reason, such as Error or
   * OOMKilled), BackoffLimitExceeded once retries are used up, or why the Task failed before any
   * process (such as InvalidSpec). Succeeded's reason while Unknown is ProcessRunning, or
   * WaitingToRetry while the Task waits to retry (see nextRetryTime). An array also gets a Job's
   * conditions when it ends: Complete (True, reason Completed) when every index succeeded, or
   * Failed (True, with the reason of status.reason: BackoffLimitExceeded, MaxFailedIndexesExceeded,
   * FailedIndexes or DeadlineExceeded), so `kubectl wait --for=condition=Complete` works as for a
   * Job; Running's reason is then IndexesRunning while True and Suspended while suspend holds it.
   *
   * Apiserver checks: at most 8 items; unique by type.
   */
  readonly conditions?: readonly TaskCondition[];
  /**
   * The metadata.generation of the spec the agent last acted on. Less than metadata.generation
   * means the agent has not yet seen the latest change (for example a new suspend).
   *
   * Apiserver checks: at least 0.
   */
  readonly observedGeneration?: number;
  /**
   * For an array: indexes succeeded out of spec.completions, such as 73012/100000, for `kubectl
   * get` (a printer column cannot compute it). Programs should use succeeded.
   *
   * Apiserver checks: at most 13 characters; matches /^[0-9]+/[0-9]+$/.
   */
  readonly progress?: string;
  /**
   * For an array, the number of indexes whose process is running now.
   *
   * Apiserver checks: at least 0.
   */
  readonly active?: number;
  /**
   * For an array, the number of indexes that have succeeded (see completedIndexes).
   *
   * Apiserver checks: at least 0.
   */
  readonly succeeded?: number;
  /**
   * For an array, the number of attempts that failed, across all indexes and counting retried ones,
   * as a Job's status.failed counts failed Pods. The indexes given up on are failedIndexes.
   *
   * Apiserver checks: at least 0.
   */
  readonly failed?: number;
  /**
   * For an array, the indexes that have succeeded, in the compressed form of an Indexed Job's
   * status.completedIndexes: ascending, comma-separated, with runs of three or more consecutive
   * indexes written as first-last ("1,3-5,7" is 1, 3, 4, 5 and 7). Its length grows with the number
   * of separate runs, not of indexes: "0-99999" for a whole array.
   *
   * Apiserver checks: at most 600000 characters; matches
   * /^([0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*)?$/.
   */
  readonly completedIndexes?: string;
  /**
   * For an array, the indexes given up on after backoffLimitPerIndex retries (or never retried:
   * ExecFailed, InvalidSpec), in the form of completedIndexes.
   *
   * Apiserver checks: at most 600000 characters; matches
   * /^([0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*)?$/.
   */
  readonly failedIndexes?: string;
  /**
   * For an array, the first failed attempts (at most 8, in the order they ended), enough to see why
   * indexes fail without reading logs; failed counts them all. Later failures are not kept, so the
   * status stays small.
   *
   * Apiserver checks: at most 8 items.
   */
  readonly failures?: readonly TaskIndexFailure[];
  /**
   * For an array, percentiles over the attempts started so far, measured as status.spawnTimings is
   * and kept in a histogram of bounded size, so each value is within 1% of the exact percentile.
   */
  readonly indexTimings?: TaskIndexTimings;
  /**
   * For an array run by several agents (spec.nodeName unset): the ranges of indexes each agent has
   * claimed, one entry per range. Each entry is written only by the agent holding it, through
   * server-side apply under its own field manager, so no two agents write the same field; an agent
   * that stops renewing its entries has them taken over by another (docs/arrays.md). Unset for an
   * array run by one agent.
   *
   * Apiserver checks: at most 256 items; unique by start.
   */
  readonly partitions?: readonly TaskIndexPartition[];
  /**
   * The node whose agent started the latest attempt, so the status alone says where the Task ran.
   *
   * Apiserver checks: at most 253 characters.
   */
  readonly nodeName?: string;
  /**
   * How many attempts have started, counting the current one.
   *
   * Apiserver checks: at least 0.
   */
  readonly attempts?: number;
  /**
   * When the first attempt's process started. All times in this status are RFC 3339 in UTC with up
   * to nine fractional digits (nanoseconds), for example 2026-01-02T03:04:05.123456789Z.
   *
   * Apiserver checks: an RFC 3339 date-time.
   */
  readonly startTime?: string;
  /**
   * When the latest attempt's process started.
   *
   * Apiserver checks: an RFC 3339 date-time.
   */
  readonly lastAttemptStartTime?: string;
  /**
   * While the Task waits to retry a failed attempt: when the agent will start the next one. Removed
   * when that attempt starts.
   *
   * Apiserver checks: an RFC 3339 date-time.
   */
  readonly nextRetryTime?: string;
  /**
   * When the Task finished (reached Succeeded or Failed).
   *
   * Apiserver checks: an RFC 3339 date-time.
   */
  readonly completionTime?: string;
  /**
   * Wall-clock time from startTime to completionTime, set when the Task finishes, for people and
   * `kubectl get`: milliseconds with up to three decimals under a second ("0.412ms", "850ms"),
   * seconds with up to three decimals under a minute ("1.234s"), whole seconds above ("2m3s",
   * "1h0m5s"). Programs should use the times.
   *
   * Apiserver checks: at most 32 characters; matches
   * /^([0-9]+(\.[0-9]{1,3})?(ms|s)|([0-9]+h)?[0-9]+m[0-9]+s)$/.
   */
  readonly duration?: string;
  /**
   * The exit status of the latest attempt, when its process exited by itself. Unset if it was
   * killed by a signal (see signal) or never started.
   *
   * Apiserver checks: 0 to 255.
   */
  readonly exitCode?: number;
  /**
   * The signal that killed the latest attempt's process, by name (SIGKILL, SIGSEGV, ...). Unset if
   * it exited by itself.
   *
   * Apiserver checks: at most 16 characters; matches /^SIG[A-Z0-9]+(\+[0-9]+)?$/.
   */
  readonly signal?: string;
  /**
   * Why the Task is in its phase, as one CamelCase word. While Pending before its first attempt:
   * WaitingForAgent: no agent has taken it up yet (unbound and not claimed, or its node's agent has
   * not started it; in standalone mode, bound to another node than this machine).
   * WaitingForCapacity: its node's agent runs as many Tasks as it may (--max-concurrent) and starts
   * it when one ends. Suspended: spec.suspend is set; it starts once cleared. After an attempt,
   * while Pending or Running, it says how the previous attempt ended. Once finished: Completed:
   * exited 0. Error: exited non-zero. ExecFailed: the command could not be executed (not found, not
   * executable). SpawnFailed: the process could not be created (e.g. fork failed). InvalidSpec: the
   * agent cannot run this spec on its node (e.g. nodeSelector not matching, a limit out of range, a
   * NUL byte in an argument); message names the field, and it is never retried. SandboxUnavailable:
   * the node cannot build the sandbox asked for. Forbidden: the spec asks for more than the sandbox
   * policy level of the Task's namespace allows (label parafork.dev/sandbox-policy, else the
   * agent's --sandbox-policy); message names the field and the level, and it is never retried. The
   * level is checked before every attempt, so a namespace relabelled meanwhile decides the next
   * one. DeadlineExceeded: activeDeadlineSeconds passed. OOMKilled: killed for going over
   * resources.limits.memory. Killed: killed by a signal the agent did not send. Cancelled: suspend
   * was set while it ran. AgentRestarted: the agent restarted and lost the process.
   * BackoffLimitExceeded: backoffLimit allowed retries and every attempt failed (for an array
   * without backoffLimitPerIndex: more than backoffLimit attempts failed across its indexes);
   * message then says how the last one ended. For arrays also: MaxFailedIndexesExceeded: more than
   * maxFailedIndexes indexes failed. FailedIndexes: every index is done and some failed (see
   * failedIndexes).
   */
  readonly reason?: TaskReason;
  /**
   * A sentence for people with the details behind reason (the errno of a failed exec, the limit
   * that was hit, ...).
   *
   * Apiserver checks: at most 32768 characters.
   */
  readonly message?: string;
  /**
   * The end of what the latest attempt wrote to stderr, as a Pod's termination message keeps it:
   * enough to see why a command failed without reading logs. At most 4096 characters (Unicode code
   * points, as the apiserver counts them), invalid UTF-8 replaced.
   *
   * Apiserver checks: at most 4096 characters.
   */
  readonly stderrTail?: string;
  /**
   * What the latest attempt wrote to its result file ($PARAFORK_RESULT), or with spec.resultPolicy
   * FallbackToLogsOnError the end of its output when it failed and left the file empty: at most its
   * first 4096 bytes, as UTF-8 (invalid UTF-8 and NUL replaced by U+FFFD). Set once the attempt has
   * ended, for successes and failures alike; unset when there was nothing. A program reads it with
   * `kubectl get task NAME -o jsonpath='{.status.result}'`.
   *
   * Apiserver checks: at most 4096 characters.
   */
  readonly result?: string;
  /**
   * true when the latest attempt's result was longer than 4096 bytes and status.result holds only
   * its beginning (from the log: its end).
   */
  readonly resultTruncated?: boolean;
  /**
   * The host user and group IDs the latest attempt's processes run as (for a userNamespace Task,
   * the host IDs its runAsUser and runAsGroup map to).
   */
  readonly hostIdentity?: TaskHostIdentity;
  /**
   * The resource limits the latest attempt ran under: spec.resources.limits, and for each limit the
   * spec leaves unset the agent's default (--default-cpu, --default-memory, --default-pids), as a
   * LimitRange fills in a Pod's. Each is written to the attempt's cgroup, except a default pids
   * limit on a node whose pids controller is on cgroup v1 when the Task runs as a host uid of its
   * own (no runAsUser, no userNamespace; see status.hostIdentity): that one is the RLIMIT_NPROC of
   * the uid, which the kernel counts as pids.max counts a cgroup (processes and threads) and which
   * costs no cgroup v1 join at each start. A limit absent here was not enforced: the spec left it
   * unset and the agent's default for it is off. Unset when no limit applied.
   */
  readonly resources?: TaskStatusResources;
  /**
   * What the latest attempt's processes cost, once it has ended, as the kernel accounts it for the
   * attempt's process tree (getrusage(2) of the reaped process, its waited-for descendants
   * included): CPU time in user and kernel mode, in microseconds; and the most memory its cgroup
   * held.
   */
  readonly usage?: TaskStatusUsage;
  /**
   * How long the agent took to start the latest attempt, for spotting slow starts. Nanoseconds,
   * measured with a monotonic clock on the node.
   */
  readonly spawnTimings?: TaskSpawnTimings;
}

/** Each entry has the shape of metav1.Condition. */
export interface TaskCondition {
  /** Which aspect this condition describes. */
  readonly type: TaskConditionType;
  /** Whether the condition holds; Unknown while it cannot be told yet. */
  readonly status: TaskConditionStatus;
  /**
   * A CamelCase word saying why the condition last changed, for programs to match on.
   *
   * Apiserver checks: at most 1024 characters; matches /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/.
   */
  readonly reason: string;
  /**
   * A sentence for people about the transition; may be empty.
   *
   * Apiserver checks: at most 32768 characters.
   */
  readonly message: string;
  /**
   * When status last changed (not when the condition was last written).
   *
   * Apiserver checks: an RFC 3339 date-time.
   */
  readonly lastTransitionTime: string;
  /**
   * The metadata.generation of the spec this condition was set from.
   *
   * Apiserver checks: at least 0.
   */
  readonly observedGeneration?: number;
}

/** One failed attempt of one index. */
export interface TaskIndexFailure {
  /**
   * The index whose attempt failed.
   *
   * Apiserver checks: at least 0.
   */
  readonly index: number;
  /**
   * Which attempt of that index it was, from 1.
   *
   * Apiserver checks: at least 1.
   */
  readonly attempt: number;
  /**
   * How the attempt ended, one of the values of status.reason (Error, OOMKilled, ...).
   *
   * Apiserver checks: at most 64 characters; matches /^[A-Z][A-Za-z]*$/.
   */
  readonly reason: string;
  /**
   * Its exit status, when its process exited by itself.
   *
   * Apiserver checks: 0 to 255.
   */
  readonly exitCode?: number;
  /**
   * The signal that killed it, by name, when it did not exit by itself.
   *
   * Apiserver checks: at most 16 characters; matches /^SIG[A-Z0-9]+(\+[0-9]+)?$/.
   */
  readonly signal?: string;
  /**
   * A sentence with the details, as status.message has them, cut to 256 characters and 512 bytes of
   * UTF-8.
   *
   * Apiserver checks: at most 256 characters.
   */
  readonly message?: string;
  /**
   * The end of what it wrote to stderr: at most 512 characters and 1 KiB of UTF-8, invalid UTF-8
   * replaced.
   *
   * Apiserver checks: at most 512 characters.
   */
  readonly stderrTail?: string;
  /**
   * When the attempt ended.
   *
   * Apiserver checks: an RFC 3339 date-time.
   */
  readonly finishedTime?: string;
}

/**
 * For an array, percentiles over the attempts started so far, measured as status.spawnTimings is
 * and kept in a histogram of bounded size, so each value is within 1% of the exact percentile.
 */
export interface TaskIndexTimings {
  /**
   * How many attempts the spawn latency percentiles are taken over.
   *
   * Apiserver checks: at least 0.
   */
  readonly attempts?: number;
  /**
   * From the agent deciding to start an index until its process was running the command (queued
   * plus spawn time of spawnTimings).
   */
  readonly spawnLatency?: TaskSpawnLatencyPercentiles;
  /** From an attempt's process start to its exit, over the attempts that ended. */
  readonly runDuration?: TaskRunDurationPercentiles;
}

/**
 * From the agent deciding to start an index until its process was running the command (queued plus
 * spawn time of spawnTimings).
 */
export interface TaskSpawnLatencyPercentiles {
  /**
   * The median.
   *
   * Apiserver checks: at least 0.
   */
  readonly p50Nanoseconds?: number;
  /**
   * The 90th percentile.
   *
   * Apiserver checks: at least 0.
   */
  readonly p90Nanoseconds?: number;
  /**
   * The 99th percentile.
   *
   * Apiserver checks: at least 0.
   */
  readonly p99Nanoseconds?: number;
  /**
   * The largest.
   *
   * Apiserver checks: at least 0.
   */
  readonly maxNanoseconds?: number;
}

/** From an attempt's process start to its exit, over the attempts that ended. */
export interface TaskRunDurationPercentiles {
  /**
   * The median.
   *
   * Apiserver checks: at least 0.
   */
  readonly p50Nanoseconds?: number;
  /**
   * The 90th percentile.
   *
   * Apiserver checks: at least 0.
   */
  readonly p90Nanoseconds?: number;
  /**
   * The 99th percentile.
   *
   * Apiserver checks: at least 0.
   */
  readonly p99Nanoseconds?: number;
  /**
   * The largest.
   *
   * Apiserver checks: at least 0.
   */
  readonly maxNanoseconds?: number;
}

/** One claimed range of indexes, [start, end). */
export interface TaskIndexPartition {
  /**
   * The range's first index.
   *
   * Apiserver checks: at least 0.
   */
  readonly start: number;
  /**
   * One past the range's last index.
   *
   * Apiserver checks: at least 1.
   */
  readonly end: number;
  /**
   * The node whose agent holds the range.
   *
   * Apiserver checks: at most 253 characters.
   */
  readonly nodeName: string;
  /**
   * Every index of the range below this one has been handed to a launcher (or is about to be: it is
   * written before those launches). An agent taking the range over starts at launchedThrough and
   * never launches an index below it again, so no index runs twice.
   *
   * Apiserver checks: at least 0.
   */
  readonly launchedThrough: number;
  /**
   * Indexes of the range running now.
   *
   * Apiserver checks: at least 0.
   */
  readonly active?: number;
  /**
   * Indexes of the range that succeeded.
   *
   * Apiserver checks: at least 0.
   */
  readonly succeeded?: number;
  /**
   * Failed attempts in the range.
   *
   * Apiserver checks: at least 0.
   */
  readonly failed?: number;
  /**
   * The range's succeeded indexes, in the form of status.completedIndexes.
   *
   * Apiserver checks: at most 600000 characters; matches
   * /^([0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*)?$/.
   */
  readonly completedIndexes?: string;
  /**
   * The range's given-up indexes, in the form of status.completedIndexes.
   *
   * Apiserver checks: at most 600000 characters; matches
   * /^([0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*)?$/.
   */
  readonly failedIndexes?: string;
  /**
   * When the holder last wrote this entry; it writes at least every 10 seconds while it holds the
   * range.
   *
   * Apiserver checks: an RFC 3339 date-time.
   */
  readonly renewTime: string;
}

/**
 * The host user and group IDs the latest attempt's processes run as (for a userNamespace Task, the
 * host IDs its runAsUser and runAsGroup map to).
 */
export interface TaskHostIdentity {
  /**
   * The host user ID.
   *
   * Apiserver checks: 0 to 4294967294.
   */
  readonly uid?: number;
  /**
   * The host group ID.
   *
   * Apiserver checks: 0 to 4294967294.
   */
  readonly gid?: number;
}

/**
 * The resource limits the latest attempt ran under: spec.resources.limits, and for each limit the
 * spec leaves unset the agent's default (--default-cpu, --default-memory, --default-pids), as a
 * LimitRange fills in a Pod's. Each is written to the attempt's cgroup, except a default pids limit
 * on a node whose pids controller is on cgroup v1 when the Task runs as a host uid of its own (no
 * runAsUser, no userNamespace; see status.hostIdentity): that one is the RLIMIT_NPROC of the uid,
 * which the kernel counts as pids.max counts a cgroup (processes and threads) and which costs no
 * cgroup v1 join at each start. A limit absent here was not enforced: the spec left it unset and
 * the agent's default for it is off. Unset when no limit applied.
 */
export interface TaskStatusResources {
  /** The limits enforced, in the units of spec.resources.limits. */
  readonly limits?: TaskStatusLimits;
  /**
   * The limits that came from the agent's defaults, not from the spec.
   *
   * Apiserver checks: at most 3 items.
   */
  readonly defaulted?: readonly TaskLimitName[];
}

/** The limits enforced, in the units of spec.resources.limits. */
export interface TaskStatusLimits {
  /**
   * CPU as a quantity ("250m", "1").
   *
   * Apiserver checks: at most 64 characters.
   */
  readonly cpu?: string;
  /**
   * Memory in bytes as a quantity ("1Gi"), /tmp included.
   *
   * Apiserver checks: at most 64 characters.
   */
  readonly memory?: string;
  /**
   * Most processes and threads alive at once.
   *
   * Apiserver checks: at least 1.
   */
  readonly pids?: number;
}

/**
 * What the latest attempt's processes cost, once it has ended, as the kernel accounts it for the
 * attempt's process tree (getrusage(2) of the reaped process, its waited-for descendants included):
 * CPU time in user and kernel mode, in microseconds; and the most memory its cgroup held.
 */
export interface TaskStatusUsage {
  /**
   * The most memory the attempt's cgroup held at once, in bytes, as the memory controller counts it
   * against resources.limits.memory (resident memory, page cache such as its /tmp files, and kernel
   * memory): what a memory limit must leave room for. Unset when the attempt had no memory cgroup
   * (no memory limit on a cgroup v1 node) or, on cgroup v2, ran in a reused cgroup whose peak an
   * earlier attempt may have set. Not getrusage's maxrss: a process the agent starts shares the
   * agent's memory until it runs its command, and the kernel counts the agent's resident memory in
   * its maxrss.
   *
   * Apiserver checks: at least 0.
   */
  readonly memoryPeakBytes?: number;
  /**
   * CPU time spent in user mode.
   *
   * Apiserver checks: at least 0.
   */
  readonly userCpuMicroseconds?: number;
  /**
   * CPU time spent in the kernel on the attempt's behalf.
   *
   * Apiserver checks: at least 0.
   */
  readonly systemCpuMicroseconds?: number;
}

/**
 * How long the agent took to start the latest attempt, for spotting slow starts. Nanoseconds,
 * measured with a monotonic clock on the node.
 */
export interface TaskSpawnTimings {
  /**
   * From the agent deciding to start the attempt (it saw the Task, or the retry wait ended) until
   * it asked the launcher to spawn the process.
   *
   * Apiserver checks: at least 0.
   */
  readonly queuedNanoseconds?: number;
  /**
   * From the spawn request until the process was running the command (its exec succeeded), sandbox
   * setup included.
   *
   * Apiserver checks: at least 0.
   */
  readonly spawnNanoseconds?: number;
}

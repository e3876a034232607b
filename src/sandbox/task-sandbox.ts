// A Task's spec.sandbox and spec.resources as the Launcher's sandbox options and cgroup limits.
// Every Task is sandboxed; the defaults (from the CRD, repeated here for Tasks stored before a
// default existed) are the secure ones. What this node cannot build is reported with a reason the
// reconciler turns into the Task's status, never silently weakened. It is also the one place a
// spec is checked before a launch (task-spec-checks.ts, task-limits.ts): what can never run is
// refused here as InvalidSpec, never found out by a spawn.
import type { TaskSpec, TaskStatusResources } from '../api/task.js';
import { readFileSync } from 'node:fs';

import { toNativeSandbox, userNamespaceIds, type SandboxOptions } from '../launcher/sandbox-options.js';
import { InvalidSpawnOptionError } from '../launcher/spawn-error.js';
import type { SeccompFilter } from '../launcher/seccomp-filter.js';
import type { CgroupLimits } from './cgroup-manager.js';
import { SeccompProfileUnavailable, type SeccompProfileStore } from './seccomp-profile-store.js';
import { checkSandboxPolicy, defaultSandboxPolicyLevel, isSandboxPolicyViolation, type SandboxPolicy, type SandboxPolicyField } from './sandbox-policy.js';
import { limitsForTask, taskLimitPolicyWithoutDefaults, type TaskLimitPolicy, type TaskLimits } from './task-limits.js';
import { checkTaskSpec, InvalidTaskSpec } from './task-spec-checks.js';

export interface TaskSandbox {
  readonly sandbox: SandboxOptions;
  readonly limits: CgroupLimits;
  /** The limits as status.resources shows them; undefined with none. */
  readonly resources: TaskStatusResources | undefined;
  /** Whether the spec sets a limit itself (the others, if any, are the agent's defaults). */
  readonly specSetsLimits: boolean;
  /** The working directory inside the sandbox. */
  readonly cwd: string;
  /**
   * The host ids the checked spec names (undefined: ids of the Task's own), which the node leases
   * ids by. Never read again from the Task: its spec stays editable, and an array checked once
   * must not run a later index as a runAsUser patched in after the check (as 0, root's).
   */
  readonly requestedIds: { readonly runAsUser: number | undefined; readonly runAsGroup: number | undefined };
}

/**
 * Why a Task cannot run on this node: InvalidSpec (the spec itself), SandboxUnavailable (this
 * node), or Forbidden (more than its sandbox policy level allows; `field` names which, as
 * sandbox-policy.ts lists them).
 */
export type SandboxRefusal =
  | { readonly reason: 'InvalidSpec' | 'SandboxUnavailable'; readonly message: string }
  | { readonly reason: 'Forbidden'; readonly message: string; readonly field: SandboxPolicyField };

/** The level of a Task no policy was given for: the default one, with no allowed host paths. */
const defaultSandboxPolicy: SandboxPolicy = { level: defaultSandboxPolicyLevel, allowedHostPaths: [] };

let userNamespaceCheck: { refusal: string | undefined } | undefined;

/**
 * Why this node cannot give a task a user namespace, or undefined if it can: read once. The
 * kernel's knob is user.max_user_namespaces (0 turns them off); a spawn the kernel still refuses
 * fails at the user_namespace step, which the reconciler reports as SandboxUnavailable.
 */
function userNamespaceRefusal(): string | undefined {
  if (userNamespaceCheck === undefined) {
    let refusal: string | undefined;
    try {
      if (readFileSync('/proc/sys/user/max_user_namespaces', 'utf8').trim() === '0') {
        refusal = 'sandbox.userNamespace: this node turns user namespaces off (sysctl user.max_user_namespaces = 0); raise it (e.g. to 15000) or leave userNamespace false';
      }
    } catch {
      refusal = 'sandbox.userNamespace: this kernel has no user namespaces (no /proc/sys/user/max_user_namespaces: CONFIG_USER_NS is off); leave userNamespace false';
    }
    userNamespaceCheck = { refusal };
  }
  return userNamespaceCheck.refusal;
}

/**
 * Every Task's oom_score_adj, as Kubernetes gives a BestEffort pod: when the node runs out of
 * memory, the kernel's OOM killer takes a Task before the agent and the node's daemons (a Task
 * used to inherit the agent's score). The Task cannot lower it (SandboxOptions.oomScoreAdjust).
 * Not for a Task with userNamespace (see there): it keeps the agent's.
 */
export const taskOomScoreAdjust = 1000;

/** The system call filter a Task asks for; a Localhost profile is read (once) from `profiles`. */
async function seccompForTask(spec: TaskSpec, profiles: SeccompProfileStore | undefined): Promise<'default' | 'unconfined' | SeccompFilter | SandboxRefusal> {
  const seccomp = spec.sandbox?.seccomp;
  const type = seccomp?.type ?? 'RuntimeDefault';
  if (type === 'RuntimeDefault') return 'default';
  if (type === 'Unconfined') return 'unconfined';
  if (profiles === undefined) return { reason: 'SandboxUnavailable', message: 'sandbox.seccomp type Localhost: this agent has no seccomp profile directory' };
  try {
    return await profiles.load(seccomp?.localhostProfile ?? '');
  } catch (error) {
    if (error instanceof SeccompProfileUnavailable) return { reason: error.reason, message: error.message };
    throw error;
  }
}

/**
 * A launcher's refusal of the options made from a spec, as the spec's field: the launcher names
 * its own options ("parafork: sandbox.rootfs must not be a masked path"), which are the spec's
 * spec.sandbox fields under the same names ("spec.sandbox.rootfs must not be ...").
 */
export function specRefusalMessage(error: InvalidSpawnOptionError): string {
  return error.message.replace(/^parafork: /, '').replace(/^sandbox\./, 'spec.sandbox.');
}

/**
 * The sandbox and limits `spec` runs with, or why it cannot run here. `limitPolicy` holds the
 * agent's default limits and /tmp cap (default: no default limits, /tmp capped at half the node's
 * memory); `maskedPaths` the launcher's masked paths, one per line as checkMaskedPaths gives them
 * (default: defaultMaskedPaths), which decide which host paths a Task may bring in; `policy` the
 * sandbox policy level the Task runs at and the allowed host paths (sandbox-policy.ts; default
 * restricted, none), checked last, so that a spec that can never run is InvalidSpec first.
 */
export async function sandboxForTask(spec: TaskSpec, seccompProfiles?: SeccompProfileStore, limitPolicy: TaskLimitPolicy = taskLimitPolicyWithoutDefaults(), maskedPaths?: string, policy: SandboxPolicy = defaultSandboxPolicy): Promise<TaskSandbox | SandboxRefusal> {
  let checked: TaskLimits;
  try {
    checkTaskSpec(spec);
    checked = limitsForTask(spec, limitPolicy);
  } catch (error) {
    if (error instanceof InvalidTaskSpec) return { reason: 'InvalidSpec', message: error.message };
    throw error;
  }
  const sandbox = spec.sandbox ?? {};
  if (sandbox.userNamespace === true) {
    const refusal = userNamespaceRefusal();
    if (refusal !== undefined) return { reason: 'SandboxUnavailable', message: refusal };
    for (const [field, id] of [['runAsUser', sandbox.runAsUser], ['runAsGroup', sandbox.runAsGroup]] as const) {
      if (id !== undefined && id >= userNamespaceIds.size) {
        return { reason: 'InvalidSpec', message: `sandbox.${field} must be below ${userNamespaceIds.size} with userNamespace (ids inside map to host ids ${userNamespaceIds.hostId} and up), got ${id}` };
      }
    }
  }
  const seccomp = await seccompForTask(spec, seccompProfiles);
  if (typeof seccomp === 'object' && 'reason' in seccomp) return seccomp;
  const options: SandboxOptions = {
    network: sandbox.network ?? 'none',
    rootfs: sandbox.rootfs ?? '/',
    readOnlyRootFilesystem: sandbox.readOnlyRootFilesystem ?? true,
    tmpSizeBytes: checked.tmpSizeBytes,
    mounts: (sandbox.mounts ?? []).map((mount) => ({ hostPath: mount.hostPath, mountPath: mount.mountPath, readOnly: mount.readOnly ?? true })),
    runAsUser: sandbox.runAsUser ?? 65534,
    runAsGroup: sandbox.runAsGroup ?? 65534,
    seccomp,
    userNamespace: sandbox.userNamespace ?? false,
    ...(sandbox.userNamespace === true ? {} : { oomScoreAdjust: taskOomScoreAdjust }),
  };
  const cwd = spec.workingDir ?? '/';
  try {
    // The launcher's own rules on host paths (masked paths, writable kernel interfaces), checked
    // as the spawn will check them: a spec they refuse is refused here, before any attempt.
    toNativeSandbox(options, cwd, maskedPaths);
  } catch (error) {
    if (error instanceof InvalidSpawnOptionError) return { reason: 'InvalidSpec', message: specRefusalMessage(error) };
    throw error;
  }
  const admitted = checkSandboxPolicy(spec, policy);
  if (isSandboxPolicyViolation(admitted)) return { reason: 'Forbidden', message: admitted.message, field: admitted.field };
  return {
    // The host paths as the policy resolved and checked them, each opened beneath its allowed host
    // path in the child (SandboxMountOption.beneath): nothing swapped in later leads the mount out.
    sandbox: {
      ...options,
      rootfs: admitted.rootfs?.path ?? options.rootfs ?? '/',
      ...(admitted.rootfs ? { rootfsBeneath: admitted.rootfs.beneath } : {}),
      mounts: (options.mounts ?? []).map((mount, index) => {
        const checked = admitted.hostPaths[index];
        return checked === undefined ? mount : { ...mount, hostPath: checked.path, beneath: checked.beneath };
      }),
    },
    limits: withSocketBufferLimit(checked.limits, options.network),
    resources: checked.resources,
    specSetsLimits: checked.defaulted.length < Object.keys(checked.limits).length,
    cwd,
    requestedIds: { runAsUser: sandbox.runAsUser, runAsGroup: sandbox.runAsGroup },
  };
}

/**
 * A Task with a network (`loopback`, `host`) gets a bound on its TCP and UDP buffers equal to its
 * memory limit (CgroupLimits.socketBufferBytes; written only where the memory controller is on
 * cgroup v1). Socket buffers are the Task's memory in all but the counting: cgroup v2 charges them
 * to memory.max with the rest, but v1 charges them to no cgroup unless this bound is written, and
 * then against it alone, so a Task holds at most its limit in memory and as much again in its
 * sockets, in proportion to what it was given, where it held as much as the node's tcp_mem and
 * udp_mem let every socket on the node hold (red team, sessions 13-15). A smaller share would cut
 * a Task that streams over loopback short for no gain in kind. Without a memory limit (the agent's
 * --default-memory none and none in the spec) there is no bound, as there is none on its memory.
 * A Task with network none has no route for either (its lo is down) and gets none: nothing is
 * added to its spawns.
 */
function withSocketBufferLimit(limits: CgroupLimits, network: SandboxOptions['network']): CgroupLimits {
  if (network === undefined || network === 'none' || limits.memoryBytes === undefined) return limits;
  return { ...limits, socketBufferBytes: limits.memoryBytes };
}

/** Where an attempt's limits are enforced: its cgroup, and rlimits in its sandbox. */
export interface PlacedLimits {
  readonly limits: CgroupLimits;
  readonly sandbox: SandboxOptions;
}

/**
 * A Task's default pids limit as RLIMIT_NPROC (SandboxOptions.maxProcesses) rather than pids.max,
 * where both hold the same and the cgroup costs more: the limit is the agent's default (a limit
 * the spec sets stays in its cgroup), the Task's uid is leased to it alone (`ownUid`: RLIMIT_NPROC
 * counts per uid, processes and threads alike, as pids.max counts a cgroup's) and not root, and
 * the pids controller is on cgroup v1 here. There a cgroup is one more cgroup.procs write per
 * spawn, which takes the kernel's global cgroup_threadgroup_rwsem and stalls every fork on the
 * host (burst-1000: 941 Tasks/s without default limits, 771 with the pids default in a cgroup);
 * an rlimit is a prlimit64 in the child. On cgroup v2 the Task has its cgroup anyway, and pids.max
 * in it costs nothing more. status.resources shows the limit either way.
 */
export function placeDefaultPidsLimit(limits: CgroupLimits, defaulted: TaskStatusResources['defaulted'], sandbox: SandboxOptions, ownUid: boolean, pidsController: 'v2' | 'v1' | 'unavailable' | undefined): PlacedLimits {
  const pids = limits.pids;
  const asRlimit = pids !== undefined && (defaulted ?? []).includes('pids') && ownUid && sandbox.userNamespace !== true && sandbox.runAsUser !== 0 && pidsController === 'v1';
  if (!asRlimit) return { limits, sandbox };
  const { memoryBytes, cpuMillicores, socketBufferBytes } = limits;
  return {
    limits: {
      ...(memoryBytes !== undefined ? { memoryBytes } : {}),
      ...(cpuMillicores !== undefined ? { cpuMillicores } : {}),
      ...(socketBufferBytes !== undefined ? { socketBufferBytes } : {}),
    },
    sandbox: { ...sandbox, maxProcesses: pids },
  };
}

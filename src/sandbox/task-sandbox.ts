// A Task's spec.sandbox and spec.resources as the Launcher's sandbox options and cgroup limits.
// Every Task is sandboxed; the defaults (from the CRD, repeated here for Tasks stored before a
// default existed) are the secure ones. What this node cannot build is reported with a reason the
// reconciler turns into the Task's status, never silently weakened.
// client-node 2.x no longer re-exports its quantity parser from the index; the module is public.
import { quantityToScalar } from '@kubernetes/client-node/dist/util.js';

import type { IntOrString, TaskSpec } from '../api/task.js';
import { readFileSync } from 'node:fs';

import { userNamespaceIds, type SandboxOptions } from '../launcher/sandbox-options.js';
import type { SeccompFilter } from '../launcher/seccomp-filter.js';
import type { CgroupLimits } from './cgroup-manager.js';
import { SeccompProfileUnavailable, type SeccompProfileStore } from './seccomp-profile-store.js';

export interface TaskSandbox {
  readonly sandbox: SandboxOptions;
  readonly limits: CgroupLimits;
  /** The working directory inside the sandbox. */
  readonly cwd: string;
}

/** Why a Task cannot run on this node: InvalidSpec (the spec itself) or SandboxUnavailable (this node). */
export interface SandboxRefusal {
  readonly reason: 'InvalidSpec' | 'SandboxUnavailable';
  readonly message: string;
}

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

function quantity(value: IntOrString | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  let scalar: number | bigint;
  try {
    scalar = quantityToScalar(String(value));
  } catch {
    throw new RangeError(`${field} is not a Kubernetes quantity: ${JSON.stringify(value)}`);
  }
  const number = Number(scalar);
  if (!Number.isFinite(number) || number <= 0) throw new RangeError(`${field} must be a positive quantity, got ${JSON.stringify(value)}`);
  return number;
}

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

export async function sandboxForTask(spec: TaskSpec, seccompProfiles?: SeccompProfileStore): Promise<TaskSandbox | SandboxRefusal> {
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
  try {
    const memoryBytes = quantity(spec.resources?.limits?.memory, 'resources.limits.memory');
    const cpuCores = quantity(spec.resources?.limits?.cpu, 'resources.limits.cpu');
    const pids = spec.resources?.limits?.pids;
    const tmpSizeBytes = quantity(sandbox.tmpSizeLimit ?? '64Mi', 'sandbox.tmpSizeLimit');
    return {
      sandbox: {
        network: sandbox.network ?? 'none',
        rootfs: sandbox.rootfs ?? '/',
        readOnlyRootFilesystem: sandbox.readOnlyRootFilesystem ?? true,
        tmpSizeBytes: Math.round(tmpSizeBytes ?? 0),
        mounts: (sandbox.mounts ?? []).map((mount) => ({ hostPath: mount.hostPath, mountPath: mount.mountPath, readOnly: mount.readOnly ?? true })),
        runAsUser: sandbox.runAsUser ?? 65534,
        runAsGroup: sandbox.runAsGroup ?? 65534,
        seccomp,
        userNamespace: sandbox.userNamespace ?? false,
      },
      limits: {
        ...(memoryBytes !== undefined ? { memoryBytes: Math.round(memoryBytes) } : {}),
        ...(cpuCores !== undefined ? { cpuMillicores: Math.max(1, Math.round(cpuCores * 1000)) } : {}),
        ...(pids !== undefined ? { pids } : {}),
      },
      cwd: spec.workingDir ?? '/',
    };
  } catch (error) {
    return { reason: 'InvalidSpec', message: (error as Error).message };
  }
}

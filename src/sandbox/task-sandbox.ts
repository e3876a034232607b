// A Task's spec.sandbox and spec.resources as the Launcher's sandbox options and cgroup limits.
// Every Task is sandboxed; the defaults (from the CRD, repeated here for Tasks stored before a
// default existed) are the secure ones. What this node cannot build is reported with a reason the
// reconciler turns into the Task's status, never silently weakened.
// client-node 2.x no longer re-exports its quantity parser from the index; the module is public.
import { quantityToScalar } from '@kubernetes/client-node/dist/util.js';

import type { IntOrString, TaskSpec } from '../api/task.js';
import type { SandboxOptions } from '../launcher/sandbox-options.js';
import type { CgroupLimits } from './cgroup-manager.js';

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

export function sandboxForTask(spec: TaskSpec): TaskSandbox | SandboxRefusal {
  const sandbox = spec.sandbox ?? {};
  if (sandbox.userNamespace === true) {
    return { reason: 'SandboxUnavailable', message: 'sandbox.userNamespace is not supported by this agent yet; leave it false' };
  }
  const seccompType = sandbox.seccomp?.type ?? 'RuntimeDefault';
  if (seccompType === 'Localhost') {
    return { reason: 'SandboxUnavailable', message: 'sandbox.seccomp type Localhost (custom profiles) is not supported by this agent yet; use RuntimeDefault or Unconfined' };
  }
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
        seccomp: seccompType === 'Unconfined' ? 'unconfined' : 'default',
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

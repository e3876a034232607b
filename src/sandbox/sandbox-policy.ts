// Who may loosen the sandbox (issue 14): a Task runs at a sandbox policy level, named and meant as
// Kubernetes' Pod Security Standards are, and a spec that asks for more than its level allows is
// refused, naming the field and the level. The levels, field by field (docs/security.md has the
// table and what each level can reach):
//
// - restricted (the default): nothing that loosens the default sandbox. No host uid or gid the
//   spec names (ids of the Task's own, or any ids inside a user namespace), network none, a
//   RuntimeDefault or Localhost (the node administrator's) seccomp profile, the root read-only,
//   host paths (rootfs, mounts[].hostPath) only inside the agent's allowed host paths, read-only.
// - baseline: for teams the node's administrator trusts with the node's files they were given: a
//   host uid or gid other than 0 and outside the agent's task id range (--task-ids: those are
//   leased to other Tasks, one each), network loopback, writable mounts and a writable rootfs
//   inside the allowed host paths.
// - privileged: anything (uid 0, the node's network, no seccomp filter, any host path). The rules
//   every level keeps (masked paths, no writable /proc or /sys, no capabilities, no_new_privs,
//   limits) still hold: they are the launcher's, not this file's.
//
// The decision is pure but for reading links: `resolvePath` (realpath(3) by default) is passed in,
// so tests give it a table. The admission policy (charts/parafork/templates/
// validatingadmissionpolicy.yaml) makes the same decisions in CEL with the same messages, except
// that it cannot resolve links: the agent's check is the last line, and the only one in
// standalone mode.
import { realpathSync } from 'node:fs';
import path from 'node:path';

import type { TaskSpec } from '../api/task.js';
import { shown } from './task-spec-checks.js';

export const sandboxPolicyLevels = ['restricted', 'baseline', 'privileged'] as const;
export type SandboxPolicyLevel = (typeof sandboxPolicyLevels)[number];

/** The namespace label that sets a namespace's level, as pod-security.kubernetes.io/enforce does for Pods. */
export const sandboxPolicyLabel = 'parafork.dev/sandbox-policy';

/** The default level of an agent, of `parafork run` and of the chart. */
export const defaultSandboxPolicyLevel: SandboxPolicyLevel = 'restricted';

export function isSandboxPolicyLevel(value: unknown): value is SandboxPolicyLevel {
  return (sandboxPolicyLevels as readonly unknown[]).includes(value);
}

/**
 * The fields a refusal can name, without list indexes: the label of
 * parafork_tasks_forbidden_total (a closed set, so the metric's series stay bounded).
 */
export const sandboxPolicyFields = [
  'spec.sandbox.runAsUser',
  'spec.sandbox.runAsGroup',
  'spec.sandbox.network',
  'spec.sandbox.seccomp.type',
  'spec.sandbox.rootfs',
  'spec.sandbox.readOnlyRootFilesystem',
  'spec.sandbox.mounts[].hostPath',
  'spec.sandbox.mounts[].readOnly',
] as const;
export type SandboxPolicyField = (typeof sandboxPolicyFields)[number];

export interface SandboxPolicy {
  readonly level: SandboxPolicyLevel;
  /** Host directories (absolute, as the agent sees them) inside which restricted and baseline Tasks may name host paths. */
  readonly allowedHostPaths: readonly string[];
  /** Paths no allowed host path may be, lie inside or hold (default neverAllowedHostPaths; the agent adds its own). */
  readonly neverAllowedHostPaths?: readonly string[];
  /**
   * The host ids the agent leases Tasks as their own (--task-ids, inclusive): below privileged a
   * spec may not name one outside a user namespace, as it would run as another Task's uid.
   */
  readonly taskIds?: { readonly first: number; readonly last: number };
  /**
   * The --task-ids ranges of every parafork instance of the machine running now (task-identities.ts,
   * taskIdRangesInUse), asked only for a spec that names a host id: their ids are refused below
   * privileged as this agent's own are, since another instance leases them to its Tasks.
   */
  readonly taskIdRangesInUse?: () => readonly { readonly first: number; readonly last: number }[];
}

export interface SandboxPolicyViolation {
  /** The field without list indexes (sandboxPolicyFields). */
  readonly field: SandboxPolicyField;
  /** The field as the message names it, with its index: spec.sandbox.mounts[2].hostPath. */
  readonly fieldPath: string;
  readonly level: SandboxPolicyLevel;
  /** The lowest level that would allow it. */
  readonly needs: SandboxPolicyLevel;
  readonly message: string;
}

/**
 * A host path as admitted: `path` as it resolved when checked, and `beneath`, the allowed host
 * path (resolved) it lies in, which the launcher opens it beneath (SandboxMountOption.beneath).
 */
export interface AdmittedHostPath {
  readonly path: string;
  readonly beneath: string;
}

/** What a spec may run with: its host paths as checked, which the launcher should mount (see checkSandboxPolicy); none at privileged. */
export interface SandboxPolicyAdmitted {
  readonly rootfs: AdmittedHostPath | undefined;
  readonly hostPaths: readonly AdmittedHostPath[];
}

/** Links resolved; undefined when the path does not exist (the mount will then say so). */
export type PathResolver = (file: string) => string | undefined;

export const resolveHostPath: PathResolver = (file) => {
  try {
    return realpathSync.native(file);
  } catch {
    return undefined;
  }
};

/**
 * Paths no allowed host path may be, lie inside or hold, whatever --allowed-host-paths says: the
 * kernel's interfaces (/proc, /sys), devices, /run (sockets, service-account tokens; /var/run is
 * a link to it). The agent adds its own: state, staging and manifest directories, kubeconfigs.
 */
export const neverAllowedHostPaths: readonly string[] = Object.freeze(['/proc', '/sys', '/dev', '/run', '/var/run']);

const levelRank: Readonly<Record<SandboxPolicyLevel, number>> = { restricted: 0, baseline: 1, privileged: 2 };

function within(file: string, directory: string): boolean {
  return file === directory || file.startsWith(directory === '/' ? '/' : `${directory}/`);
}

/** The allowed host paths as the message shows them. */
export function describeAllowedHostPaths(allowed: readonly string[]): string {
  return allowed.length === 0 ? 'none' : allowed.join(', ');
}

/** Why `entry` may not be an allowed host path (it is /, or is in or holds a never-allowed path), or undefined. */
export function allowedHostPathProblem(entry: string, neverAllowed: readonly string[]): string | undefined {
  if (!entry.startsWith('/')) return `must be an absolute path, got ${shown(entry)}`;
  if (entry.split('/').includes('..')) return `must not contain '..', got ${shown(entry)}`;
  const normal = path.resolve(entry);
  if (normal === '/') return 'must not be / (it holds everything the node keeps from Tasks)';
  for (const forbidden of neverAllowed) {
    if (within(normal, forbidden)) return `must not be or lie inside ${forbidden}, got ${shown(entry)}`;
    if (within(forbidden, normal)) return `must not hold ${forbidden}, got ${shown(entry)}`;
  }
  return undefined;
}

/**
 * The allowed host paths with their links resolved now (an allowed directory replaced by a link
 * to / since the agent started allows nothing), those that no longer pass dropped.
 */
function resolvedAllowedPaths(allowed: readonly string[], neverAllowed: readonly string[], resolvePath: PathResolver): string[] {
  const resolved: string[] = [];
  for (const entry of allowed) {
    const real = resolvePath(entry) ?? path.resolve(entry);
    if (allowedHostPathProblem(real, neverAllowed) === undefined) resolved.push(real);
  }
  return resolved;
}

interface Refusal {
  readonly field: SandboxPolicyField;
  readonly fieldPath: string;
  readonly value: unknown;
  readonly needs: SandboxPolicyLevel;
  /** What the value amounts to, for the message. */
  readonly why: string;
}

/**
 * Where `hostPath` (of `fieldPath`) stands with the allowed host paths: undefined when it is inside
 * one (its resolved path returned through `admitted`), else why not. '..' is refused before any
 * resolution, as the admission policy refuses it (CEL cannot resolve paths).
 */
function hostPathRefusal(hostPath: string, allowed: readonly string[], resolvedAllowed: () => readonly string[], resolvePath: PathResolver, admitted: (admitted: AdmittedHostPath) => void): string | undefined {
  const list = `the agent's allowed host paths (${describeAllowedHostPaths(allowed)})`;
  if (hostPath.split('/').includes('..')) return `a host path with '..' is not checked against ${list}`;
  const normal = path.resolve(hostPath);
  const byName = allowed.map((entry) => path.resolve(entry)).find((entry) => within(normal, entry));
  if (byName === undefined) return `it is not inside ${list}`;
  const real = resolvePath(normal);
  if (real === undefined) {
    // Nothing there (yet): opened beneath the allowed path as it resolves now (the child opens
    // that without following links: red team, session 16), so whatever appears there meanwhile
    // cannot lead out; the mount fails (InvalidSpec, naming the path) if nothing does.
    const entry = resolvePath(byName);
    if (entry === undefined) {
      admitted({ path: normal, beneath: byName }); // the allowed path is missing too: the child's open fails
      return undefined;
    }
    const beneath = resolvedAllowed().find((resolved) => resolved === entry);
    if (beneath === undefined) return `the allowed host path it would lie in, ${shown(byName)}, resolves to ${shown(entry)}, which is not inside ${list}`;
    admitted({ path: path.join(beneath, path.relative(byName, normal)), beneath });
    return undefined;
  }
  const beneath = resolvedAllowed().find((entry) => within(real, entry));
  if (beneath === undefined) return `it resolves to ${shown(real)}, which is not inside ${list}`;
  admitted({ path: real, beneath });
  return undefined;
}

/** The first field of `spec` its level does not allow, or undefined. */
function firstRefusal(spec: TaskSpec, policy: SandboxPolicy, resolvePath: PathResolver, admitted: { rootfs?: AdmittedHostPath; hostPaths: AdmittedHostPath[] }): Refusal | undefined {
  const sandbox = spec.sandbox ?? {};
  const rank = levelRank[policy.level];
  const userNamespace = sandbox.userNamespace === true;
  for (const [field, kind] of [['runAsUser', 'uid'], ['runAsGroup', 'gid']] as const) {
    const id = sandbox[field];
    if (id === undefined || userNamespace) continue; // ids inside a user namespace map to host ids of the Task's own
    if (id === 0 && rank < levelRank.privileged) return { field: `spec.sandbox.${field}`, fieldPath: `spec.sandbox.${field}`, value: id, needs: 'privileged', why: `${kind} 0 outside a user namespace is root's on the node` };
    const leased = policy.taskIds;
    if (leased !== undefined && id >= leased.first && id <= leased.last && rank < levelRank.privileged) {
      return { field: `spec.sandbox.${field}`, fieldPath: `spec.sandbox.${field}`, value: id, needs: 'privileged', why: `it is in the agent's task id range (${leased.first}-${leased.last}), whose ids are leased to Tasks as their own: it may be another Task's now (leave it unset for one of the Task's own, or set userNamespace)` };
    }
    const elsewhere = rank < levelRank.privileged ? policy.taskIdRangesInUse?.().find((range) => id >= range.first && id <= range.last) : undefined;
    if (elsewhere !== undefined) {
      return { field: `spec.sandbox.${field}`, fieldPath: `spec.sandbox.${field}`, value: id, needs: 'privileged', why: `it is in the task id range of another parafork instance on this node (${elsewhere.first}-${elsewhere.last}), whose ids it leases to its Tasks as their own: it may be one of theirs now (leave it unset for one of the Task's own, or set userNamespace)` };
    }
    if (rank < levelRank.baseline) return { field: `spec.sandbox.${field}`, fieldPath: `spec.sandbox.${field}`, value: id, needs: 'baseline', why: `a host ${kind} the spec names is shared with whoever else has it (leave it unset for one of the Task's own, or set userNamespace)` };
  }
  const network = sandbox.network ?? 'none';
  if (network === 'host' && rank < levelRank.privileged) return { field: 'spec.sandbox.network', fieldPath: 'spec.sandbox.network', value: network, needs: 'privileged', why: 'it is the node\'s own network' };
  if (network === 'loopback' && rank < levelRank.baseline) return { field: 'spec.sandbox.network', fieldPath: 'spec.sandbox.network', value: network, needs: 'baseline', why: 'a network of the Task\'s own with lo up' };
  const seccomp = sandbox.seccomp?.type ?? 'RuntimeDefault';
  if (seccomp === 'Unconfined' && rank < levelRank.privileged) return { field: 'spec.sandbox.seccomp.type', fieldPath: 'spec.sandbox.seccomp.type', value: seccomp, needs: 'privileged', why: 'no system call filter' };
  if (rank >= levelRank.privileged) return undefined;
  // Resolved once per check, and only for a spec that names a host path: most name none.
  let resolved: readonly string[] | undefined;
  const resolvedAllowed = (): readonly string[] => (resolved ??= resolvedAllowedPaths(policy.allowedHostPaths, policy.neverAllowedHostPaths ?? neverAllowedHostPaths, resolvePath));
  const rootfs = sandbox.rootfs ?? '/';
  let rootfsAllowed = false;
  if (rootfs !== '/') {
    const why = hostPathRefusal(rootfs, policy.allowedHostPaths, resolvedAllowed, resolvePath, (checked) => (admitted.rootfs = checked));
    if (why !== undefined) return { field: 'spec.sandbox.rootfs', fieldPath: 'spec.sandbox.rootfs', value: rootfs, needs: 'privileged', why };
    rootfsAllowed = true;
  }
  if (sandbox.readOnlyRootFilesystem === false) {
    // The default root, /, is never inside the allowed host paths: a writable / is the node's.
    if (!rootfsAllowed) return { field: 'spec.sandbox.readOnlyRootFilesystem', fieldPath: 'spec.sandbox.readOnlyRootFilesystem', value: false, needs: 'privileged', why: `it writes into rootfs ${shown(rootfs)} on the node, which is not inside the agent's allowed host paths (${describeAllowedHostPaths(policy.allowedHostPaths)})` };
    if (rank < levelRank.baseline) return { field: 'spec.sandbox.readOnlyRootFilesystem', fieldPath: 'spec.sandbox.readOnlyRootFilesystem', value: false, needs: 'baseline', why: 'a writable root' };
  }
  for (const [index, mount] of (sandbox.mounts ?? []).entries()) {
    const fieldPath = `spec.sandbox.mounts[${index}]`;
    const why = hostPathRefusal(mount.hostPath, policy.allowedHostPaths, resolvedAllowed, resolvePath, (checked) => admitted.hostPaths.push(checked));
    if (why !== undefined) return { field: 'spec.sandbox.mounts[].hostPath', fieldPath: `${fieldPath}.hostPath`, value: mount.hostPath, needs: 'privileged', why };
    if (mount.readOnly === false && rank < levelRank.baseline) return { field: 'spec.sandbox.mounts[].readOnly', fieldPath: `${fieldPath}.readOnly`, value: false, needs: 'baseline', why: 'a writable host path' };
  }
  return undefined;
}

/**
 * Whether `spec` may run at `policy`'s level: a violation naming the first field it may not use,
 * or what it was admitted with. Host paths are checked as they resolve now (links followed, the
 * allowed host paths resolved too); the caller mounts the resolved paths it gets back, each opened
 * beneath its allowed path when the spawn is prepared, so that nothing swapped in after this check
 * leads the mount out of the allowed paths (docs/security.md, "Allowed host paths").
 */
export function checkSandboxPolicy(spec: TaskSpec, policy: SandboxPolicy, resolvePath: PathResolver = resolveHostPath): SandboxPolicyViolation | SandboxPolicyAdmitted {
  const admitted: { rootfs?: AdmittedHostPath; hostPaths: AdmittedHostPath[] } = { hostPaths: [] };
  const refusal = firstRefusal(spec, policy, resolvePath, admitted);
  if (refusal === undefined) return { rootfs: admitted.rootfs, hostPaths: admitted.hostPaths };
  return {
    field: refusal.field,
    fieldPath: refusal.fieldPath,
    level: policy.level,
    needs: refusal.needs,
    message: `${refusal.fieldPath} ${shown(refusal.value)} is not allowed at sandbox policy level ${policy.level}: ${refusal.why}; it needs level ${refusal.needs}`,
  };
}

export function isSandboxPolicyViolation(result: SandboxPolicyViolation | SandboxPolicyAdmitted): result is SandboxPolicyViolation {
  return 'message' in result;
}

/**
 * A namespace's level from its labels: the label's level, `fallback` (the agent's default) without
 * one, and restricted for a value that is no level (fail closed, as a typo must not loosen).
 */
export function levelFromLabels(labels: Readonly<Record<string, string>> | undefined, fallback: SandboxPolicyLevel): SandboxPolicyLevel {
  const value = labels?.[sandboxPolicyLabel];
  if (value === undefined) return fallback;
  return isSandboxPolicyLevel(value) ? value : 'restricted';
}

// What a Task spec must be for a process to be made of it, checked once before any launch, so that
// a spec that can never run ends as InvalidSpec naming its field, and is never retried, instead
// of failing at the spawn as SpawnFailed or SandboxUnavailable (issue 12, finding 11).
//
// The checks are the CRD's CEL rules (which only an apiserver runs: `parafork run` and
// `agent --manifests` check the schema's types with Ajv, not CEL) and what execve(2) and mount(2)
// take: a NUL byte ends a C string, so "a\0b" would run as "a". The resource quantities are
// checked where they are converted (task-limits.ts). Whether the paths a spec names exist on this
// node is left to the spawn, which resolves them as the sandbox does; when a mount fails for want
// of one, missingSandboxPath names it.
import { statSync } from 'node:fs';
import path from 'node:path';

import type { TaskSpec } from '../api/task.js';

/** A spec field that no attempt can run with: `field` is its path from the Task ("spec.env[0].name"). */
export class InvalidTaskSpec extends Error {
  readonly field: string;
  constructor(field: string, problem: string) {
    super(`${field} ${problem}`);
    this.name = 'InvalidTaskSpec';
    this.field = field;
  }
}

/** A value as a refusal shows it: JSON, cut at 100 characters. */
export function shown(value: unknown): string {
  // JSON.stringify gives undefined for undefined itself (its TypeScript signature does not say so).
  const text = value === undefined ? 'nothing' : JSON.stringify(value);
  return text.length > 100 ? `${text.slice(0, 100)}...` : text;
}

function text(value: unknown, field: string, { allowEmpty = true } = {}): string {
  if (typeof value !== 'string') throw new InvalidTaskSpec(field, `must be a string, got ${shown(value)}`);
  if (!allowEmpty && value.length === 0) throw new InvalidTaskSpec(field, 'must not be empty');
  // execve(2) and mount(2) take C strings: everything after a NUL would be silently dropped.
  if (value.includes('\0')) throw new InvalidTaskSpec(field, `must not contain a NUL byte, got ${shown(value)}`);
  return value;
}

function absolutePath(value: unknown, field: string): string {
  const path = text(value, field, { allowEmpty: false });
  if (!path.startsWith('/')) throw new InvalidTaskSpec(field, `must be an absolute path, got ${shown(path)}`);
  return path;
}

function list(value: unknown, field: string): readonly unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new InvalidTaskSpec(field, `must be a list, got ${shown(value)}`);
  return value;
}

// The CRD's rule for env names: a C identifier, as POSIX shells accept.
const environmentNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

function checkProcess(spec: TaskSpec): void {
  const command = list(spec.command, 'spec.command');
  if (command.length === 0) throw new InvalidTaskSpec('spec.command', 'must name the program to run');
  command.forEach((entry, index) => text(entry, `spec.command[${index}]`, { allowEmpty: index > 0 }));
  list(spec.args, 'spec.args').forEach((entry, index) => text(entry, `spec.args[${index}]`));
  const names = new Set<string>();
  list(spec.env, 'spec.env').forEach((entry, index) => {
    const variable = (entry ?? {}) as { name?: unknown; value?: unknown };
    const name = text(variable.name, `spec.env[${index}].name`, { allowEmpty: false });
    if (!environmentNamePattern.test(name)) throw new InvalidTaskSpec(`spec.env[${index}].name`, `must be a C identifier (letters, digits and underscores, not starting with a digit), got ${shown(name)}`);
    if (names.has(name)) throw new InvalidTaskSpec(`spec.env[${index}].name`, `${shown(name)} is set twice: names are unique`);
    names.add(name);
    if (variable.value !== undefined) text(variable.value, `spec.env[${index}].value`);
  });
  if (spec.workingDir !== undefined) absolutePath(spec.workingDir, 'spec.workingDir');
}

function userId(value: unknown, field: string): void {
  if (value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 4294967294)) {
    throw new InvalidTaskSpec(field, `must be a whole number from 0 to 4294967294, got ${shown(value)}`);
  }
}

function checkSandbox(spec: TaskSpec): void {
  const sandbox = spec.sandbox ?? {};
  if (sandbox.rootfs !== undefined) absolutePath(sandbox.rootfs, 'spec.sandbox.rootfs');
  const mountPaths = new Set<string>();
  list(sandbox.mounts, 'spec.sandbox.mounts').forEach((entry, index) => {
    const mount = (entry ?? {}) as { hostPath?: unknown; mountPath?: unknown };
    absolutePath(mount.hostPath, `spec.sandbox.mounts[${index}].hostPath`);
    const mountPath = absolutePath(mount.mountPath, `spec.sandbox.mounts[${index}].mountPath`);
    if (mountPath.split('/').includes('..')) throw new InvalidTaskSpec(`spec.sandbox.mounts[${index}].mountPath`, `must not contain '..', got ${shown(mountPath)}`);
    if (mountPath.replace(/\/+/g, '/') === '/') throw new InvalidTaskSpec(`spec.sandbox.mounts[${index}].mountPath`, 'cannot be /; set spec.sandbox.rootfs to replace the root');
    if (mountPaths.has(mountPath)) throw new InvalidTaskSpec(`spec.sandbox.mounts[${index}].mountPath`, `${shown(mountPath)} is mounted twice: mount points are unique`);
    mountPaths.add(mountPath);
  });
  userId(sandbox.runAsUser, 'spec.sandbox.runAsUser');
  userId(sandbox.runAsGroup, 'spec.sandbox.runAsGroup');
  const seccomp = sandbox.seccomp;
  if (seccomp?.localhostProfile !== undefined && (seccomp.type ?? 'RuntimeDefault') !== 'Localhost') {
    throw new InvalidTaskSpec('spec.sandbox.seccomp.localhostProfile', 'is allowed only when type is Localhost');
  }
}

/** Throws InvalidTaskSpec for the first field of `spec` that no process can be made with. */
export function checkTaskSpec(spec: TaskSpec): void {
  checkProcess(spec);
  checkSandbox(spec);
}

/** What `file` is on this node (following links, as the agent sees it), or undefined when nothing is there. */
function kindOf(file: string): 'directory' | 'other' | undefined {
  try {
    return statSync(file).isDirectory() ? 'directory' : 'other';
  } catch {
    return undefined;
  }
}

/**
 * After a mount failed with ENOENT or ENOTDIR: the path of the spec that is missing on this node
 * (the root, a mount's source or its mount point, or a directory the sandbox mounts on in the
 * root), as a message naming its field; undefined if each is there (it went missing meanwhile).
 */
export function missingSandboxPath(spec: TaskSpec): string | undefined {
  const sandbox = spec.sandbox ?? {};
  const rootfs = sandbox.rootfs ?? '/';
  if (kindOf(rootfs) !== 'directory') return `spec.sandbox.rootfs ${shown(rootfs)} is not a directory on this node`;
  for (const directory of ['/proc', '/dev', '/tmp']) {
    if (kindOf(path.join(rootfs, directory)) !== 'directory') return `spec.sandbox.rootfs ${shown(rootfs)} has no ${directory} directory for the sandbox to mount on`;
  }
  for (const [index, mount] of (sandbox.mounts ?? []).entries()) {
    if (kindOf(mount.hostPath) === undefined) return `spec.sandbox.mounts[${index}].hostPath ${shown(mount.hostPath)} does not exist on this node`;
    if (kindOf(path.join(rootfs, mount.mountPath)) === undefined) return `spec.sandbox.mounts[${index}].mountPath ${shown(mount.mountPath)} does not exist in the root (${shown(rootfs)}): a mount point must exist`;
  }
  return undefined;
}

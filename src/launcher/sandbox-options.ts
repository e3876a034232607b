// The sandbox a spawn can ask for, checked and completed with its defaults before it reaches
// native code. Secure by default: with `sandbox: {}` a task gets its own pid, mount, IPC, UTS and
// cgroup namespaces, no network, a read-only root, a private /tmp, uid/gid 65534 with no
// capabilities and no_new_privs, and the default seccomp allow-list.
import { nativeNetworkModes, type NativeSandboxRequest } from '../native/binding.js';
import { InvalidSpawnOptionError } from './spawn-error.js';

export type NetworkMode = keyof typeof nativeNetworkModes;

export interface SandboxMountOption {
  /** A host path, bind-mounted into the task. */
  readonly hostPath: string;
  /** Where it appears inside the task's root; the directory must exist there. */
  readonly mountPath: string;
  /** Defaults to true. */
  readonly readOnly?: boolean;
}

export interface SandboxOptions {
  /** 'none' (default: no interface at all), 'loopback' (own namespace, lo up), 'host' (explicit opt-in). */
  readonly network?: NetworkMode;
  /** The task's root directory on the host; defaults to the agent's own root, read-only. */
  readonly rootfs?: string;
  /** Defaults to true. */
  readonly readOnlyRootFilesystem?: boolean;
  /** Size of the private tmpfs at /tmp in bytes; default 64 MiB; 0 for none. */
  readonly tmpSizeBytes?: number;
  readonly mounts?: readonly SandboxMountOption[];
  /** Defaults to 65534 (nobody). */
  readonly runAsUser?: number;
  /** Defaults to 65534 (nogroup). */
  readonly runAsGroup?: number;
  /** The task's hostname in its own UTS namespace; default 'parafork'. */
  readonly hostname?: string;
  /** 'default' (the allow-list; default) or 'unconfined' (explicit opt-out). */
  readonly seccomp?: 'default' | 'unconfined';
  /** RLIMIT_NOFILE; default 1024. */
  readonly maxOpenFiles?: number;
  /** RLIMIT_FSIZE in bytes; default unlimited (0). */
  readonly maxFileSizeBytes?: number;
}

export const sandboxDefaults = {
  network: 'none',
  rootfs: '/',
  readOnlyRootFilesystem: true,
  tmpSizeBytes: 64 * 1024 * 1024,
  runAsUser: 65534,
  runAsGroup: 65534,
  hostname: 'parafork',
  seccomp: 'default',
  maxOpenFiles: 1024,
  maxFileSizeBytes: 0,
} as const;

function invalid(message: string): never {
  throw new InvalidSpawnOptionError('ERR_INVALID_ARG_VALUE', `sandbox.${message}`);
}

function absolutePath(value: unknown, name: string): string {
  if (typeof value !== 'string' || !value.startsWith('/') || value.includes('\0')) invalid(`${name} must be an absolute path`);
  return value;
}

function wholeNumber(value: unknown, name: string, maximum: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > maximum) {
    invalid(`${name} must be a whole number from 0 to ${maximum}`);
  }
  return value;
}

/** Checks `options` (with `cwd`, the working directory inside the sandbox) into a native request. */
export function toNativeSandbox(options: unknown, cwd: string | undefined): NativeSandboxRequest {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidSpawnOptionError('ERR_INVALID_ARG_TYPE', 'parafork: sandbox must be an object');
  }
  const sandbox = { ...sandboxDefaults, ...(options as SandboxOptions) };
  // The options come from callers (and Task specs) at run time: check them as the unknowns they are.
  const given = sandbox as Record<keyof SandboxOptions, unknown>;
  if (typeof given.network !== 'string' || !(given.network in nativeNetworkModes)) invalid(`network must be 'none', 'loopback' or 'host'`);
  if (given.seccomp !== 'default' && given.seccomp !== 'unconfined') invalid(`seccomp must be 'default' or 'unconfined'`);
  if (typeof given.readOnlyRootFilesystem !== 'boolean') invalid('readOnlyRootFilesystem must be a boolean');
  if (typeof sandbox.hostname !== 'string' || !/^[a-zA-Z0-9]([-a-zA-Z0-9.]{0,62})$/.test(sandbox.hostname)) {
    invalid('hostname must be 1 to 63 letters, digits, dots or dashes');
  }
  const mounts = (sandbox.mounts ?? []).map((mount, index) => {
    const mountPath = absolutePath(mount.mountPath, `mounts[${index}].mountPath`);
    if (mountPath === '/' || mountPath.split('/').includes('..')) invalid(`mounts[${index}].mountPath must be below / and without '..'`);
    if (mount.readOnly !== undefined && typeof mount.readOnly !== 'boolean') invalid(`mounts[${index}].readOnly must be a boolean`);
    return { hostPath: absolutePath(mount.hostPath, `mounts[${index}].hostPath`), mountPath, readOnly: mount.readOnly ?? true };
  });
  return {
    network: nativeNetworkModes[sandbox.network],
    rootfs: absolutePath(sandbox.rootfs, 'rootfs'),
    readOnlyRoot: sandbox.readOnlyRootFilesystem,
    tmpSizeBytes: wholeNumber(sandbox.tmpSizeBytes, 'tmpSizeBytes', Number.MAX_SAFE_INTEGER),
    mounts,
    workingDirectory: cwd === undefined ? '/' : absolutePath(cwd, 'cwd (inside the sandbox)'),
    uid: wholeNumber(sandbox.runAsUser, 'runAsUser', 4294967294),
    gid: wholeNumber(sandbox.runAsGroup, 'runAsGroup', 4294967294),
    hostname: sandbox.hostname,
    seccomp: sandbox.seccomp === 'default',
    maxOpenFiles: wholeNumber(sandbox.maxOpenFiles, 'maxOpenFiles', 1048576),
    maxFileSizeBytes: wholeNumber(sandbox.maxFileSizeBytes, 'maxFileSizeBytes', Number.MAX_SAFE_INTEGER),
  };
}

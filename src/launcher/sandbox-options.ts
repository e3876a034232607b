// The sandbox a spawn can ask for, checked and completed with its defaults before it reaches
// native code. Secure by default: with `sandbox: {}` a task gets its own pid, mount, IPC, UTS and
// cgroup namespaces, no network, a read-only root, a private /tmp, uid/gid 65534 with no
// capabilities and no_new_privs, and the default seccomp allow-list. `userNamespace` adds a user
// namespace whose root is an unprivileged host id (userNamespaceIds).
import { nativeNetworkModes, type NativeSandboxRequest } from '../native/binding.js';
import { SeccompFilter } from './seccomp-filter.js';
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

/**
 * For bench/sandbox.ts only (src/index.ts does not export it): a sandbox without its filesystem
 * step, so that namespaces and mounts are measured apart. Never for tasks: such a task sees the
 * host's filesystem.
 */
export const benchmarkWithoutFilesystem: unique symbol = Symbol('parafork.benchmarkWithoutFilesystem');

/**
 * The host ids a task's user namespace maps to (userNamespace mode): ids 0..65535 inside are
 * host ids 100000..165535, a range no host account uses (it is where /etc/subuid ranges usually
 * start, and `useradd` stops at 60000). Root inside is host uid 100000: unprivileged.
 */
export const userNamespaceIds = { hostId: 100_000, size: 65_536 } as const;

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
  /**
   * Run in a new user namespace (default false): runAsUser and runAsGroup are then ids inside
   * it, 0..65535, mapped to the unprivileged host ids of userNamespaceIds, so even root inside
   * is nobody on the host. The agent still builds the sandbox as root; the task enters its user
   * namespace last, and owns none of its other namespaces.
   */
  readonly userNamespace?: boolean;
  /**
   * userNamespace only: the first host id of the 65536 that ids 0..65535 inside map to; default
   * userNamespaceIds.hostId (100000). It also owns the user namespace, so what the task's
   * processes hold (inotify instances, processes) counts against this host id's per-user limits:
   * give each task its own range to keep tasks from sharing them (the agent does).
   */
  readonly userNamespaceHostId?: number;
  /** Defaults to 65534 (nobody). */
  readonly runAsUser?: number;
  /** Defaults to 65534 (nogroup). */
  readonly runAsGroup?: number;
  /** The task's hostname in its own UTS namespace; default 'parafork'. */
  readonly hostname?: string;
  /** 'default' (the allow-list; default), 'unconfined' (explicit opt-out), or a compiled custom profile. */
  readonly seccomp?: 'default' | 'unconfined' | SeccompFilter;
  /** RLIMIT_NOFILE; default 1024. */
  readonly maxOpenFiles?: number;
  /** RLIMIT_FSIZE in bytes; default unlimited (0). */
  readonly maxFileSizeBytes?: number;
  /** See benchmarkWithoutFilesystem. */
  readonly [benchmarkWithoutFilesystem]?: true;
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
  userNamespace: false,
  userNamespaceHostId: userNamespaceIds.hostId,
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

/** Host id 0 (root) may not be mapped, and the range must end below (uid_t) -1. */
function userNamespaceHostId(value: unknown): number {
  const hostId = wholeNumber(value, 'userNamespaceHostId', 4294967294 - (userNamespaceIds.size - 1));
  if (hostId === 0) invalid('userNamespaceHostId must not be 0: root inside would be root on the host');
  return hostId;
}

/** Checks `options` (with `cwd`, the working directory inside the sandbox) into a native request. */
export function toNativeSandbox(options: unknown, cwd: string | undefined): NativeSandboxRequest {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidSpawnOptionError('ERR_INVALID_ARG_TYPE', 'sandbox must be an object');
  }
  const sandbox = { ...sandboxDefaults, ...(options as SandboxOptions) };
  // The options come from callers (and Task specs) at run time: check them as the unknowns they are.
  const given = sandbox as Record<keyof SandboxOptions, unknown>;
  // Own keys only: `in` would take 'toString' (inherited from Object.prototype) for a mode.
  if (typeof given.network !== 'string' || !Object.hasOwn(nativeNetworkModes, given.network)) invalid(`network must be 'none', 'loopback' or 'host'`);
  if (given.seccomp !== 'default' && given.seccomp !== 'unconfined' && !(given.seccomp instanceof SeccompFilter)) {
    invalid(`seccomp must be 'default', 'unconfined' or a SeccompFilter`);
  }
  if (typeof given.readOnlyRootFilesystem !== 'boolean') invalid('readOnlyRootFilesystem must be a boolean');
  if (typeof given.userNamespace !== 'boolean') invalid('userNamespace must be a boolean');
  if (typeof sandbox.hostname !== 'string' || !/^[a-zA-Z0-9]([-a-zA-Z0-9.]{0,62})$/.test(sandbox.hostname)) {
    invalid('hostname must be 1 to 63 letters, digits, dots or dashes');
  }
  const givenMounts: unknown = sandbox.mounts ?? [];
  if (!Array.isArray(givenMounts)) invalid('mounts must be an array of { hostPath, mountPath, readOnly }');
  const mounts = (givenMounts as unknown[]).map((entry, index) => {
    if (typeof entry !== 'object' || entry === null) invalid(`mounts[${index}] must be an object with hostPath and mountPath`);
    const mount = entry as Partial<Record<keyof SandboxMountOption, unknown>>;
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
    filesystem: (options as SandboxOptions)[benchmarkWithoutFilesystem] !== true,
    userNamespace: sandbox.userNamespace ? { hostId: userNamespaceHostId(sandbox.userNamespaceHostId), size: userNamespaceIds.size } : null,
    uid: wholeNumber(sandbox.runAsUser, 'runAsUser', sandbox.userNamespace ? userNamespaceIds.size - 1 : 4294967294),
    gid: wholeNumber(sandbox.runAsGroup, 'runAsGroup', sandbox.userNamespace ? userNamespaceIds.size - 1 : 4294967294),
    hostname: sandbox.hostname,
    seccomp: sandbox.seccomp !== 'unconfined',
    seccompProgram: sandbox.seccomp instanceof SeccompFilter ? SeccompFilter.programOf(sandbox.seccomp) : null,
    maxOpenFiles: wholeNumber(sandbox.maxOpenFiles, 'maxOpenFiles', 1048576),
    maxFileSizeBytes: wholeNumber(sandbox.maxFileSizeBytes, 'maxFileSizeBytes', Number.MAX_SAFE_INTEGER),
  };
}

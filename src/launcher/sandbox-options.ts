// The sandbox a spawn can ask for, checked and completed with its defaults before it reaches
// native code. Secure by default: with `sandbox: {}` a task gets its own pid, mount, IPC, UTS and
// cgroup namespaces, its own session (no controlling terminal), no network, a read-only root with
// the node's secrets masked (defaultMaskedPaths), a /proc whose kernel knobs are read-only, a
// private /tmp, uid/gid 65534 with no capabilities and no_new_privs, and the default seccomp
// allow-list. `userNamespace` adds a user namespace whose root is an unprivileged host id
// (userNamespaceIds).
import { realpathSync } from 'node:fs';
import path from 'node:path';

import { nativeNetworkModes, type NativeSandboxRequest } from '../native/binding.js';
import { SeccompFilter } from './seccomp-filter.js';
import { InvalidSpawnOptionError } from './spawn-error.js';

/** A sandboxed task's network: 'none', 'loopback' or 'host' (SandboxOptions.network). */
export type NetworkMode = keyof typeof nativeNetworkModes;

/** A host path brought into a sandboxed task's root (SandboxOptions.mounts). */
export interface SandboxMountOption {
  /**
   * A host path, bind-mounted into the task with its submounts, nosuid and nodev (on kernels
   * without mount_setattr(2), before 5.12, its submounts are left out).
   */
  readonly hostPath: string;
  /** Where it appears inside the task's root; the directory must exist there, and not inside a masked path. */
  readonly mountPath: string;
  /** Defaults to true: read-only all the way down, submounts included. */
  readonly readOnly?: boolean;
  /**
   * A directory hostPath is or lies below (by name), with no link in its path. Given, it is opened
   * following no link (a link anywhere in it fails the spawn with ELOOP), hostPath is opened
   * beneath it when the spawn is prepared (openat2(2) RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) and
   * that open file is what is mounted: a link or `..` leading out of it, or a directory swapped for
   * one since the caller checked the path, fails the spawn with EXDEV at the mount step. Linux 5.6.
   */
  readonly beneath?: string;
}

/**
 * What every sandboxed task has masked unless told otherwise (SandboxOptions.maskedPaths,
 * LauncherOptions.sandboxMaskedPaths): a directory shows empty and read-only, any other file
 * empty and read-only (/etc/hosts: localhost only); a path absent from the task's root is skipped. Paths under /proc are
 * masked in each task's own /proc, the others in its root, resolved as the task resolves them.
 * The default root is the agent's own filesystem (the node's, for `parafork run`), so this hides
 * what a node keeps secret or identifying: users' and root's homes, runtime state (service-account
 * tokens under /run/secrets and /var/run/secrets among it), logs, the kubelet's, etcd's and
 * container runtimes' state and credentials, password hashes, host keys and TLS private keys, the
 * node's name and machine id; and the /proc and /sys files runc masks (kernel memory, keys,
 * timers, interrupts, hardware), plus the kernel command line.
 */
export const defaultMaskedPaths: readonly string[] = Object.freeze([
  // Homes and runtime state.
  '/root',
  '/home',
  '/run',
  '/var/run',
  // Service-account tokens: under /run and /var/run already, listed for lists that leave those out.
  '/run/secrets',
  '/var/run/secrets',
  // The node's world-writable directories (sticky, 1777): what other users and node services left
  // there (files others may read, unix sockets, files to flock), which a read-only root still
  // shows. systemd's PrivateTmp= gives a service its own; a Task's /tmp is its own, these show
  // empty (red team, session 12; test/security/sandbox-world-writable-dirs.test.ts). /run/lock
  // (and /var/lock, its link) is under /run.
  '/var/tmp',
  '/var/crash',
  '/var/log',
  '/var/backups',
  '/var/mail',
  '/var/spool',
  // Kubernetes, etcd and container runtimes (credentials, other pods' volumes and images).
  '/var/lib/kubelet',
  '/var/lib/etcd',
  '/var/lib/rancher',
  '/var/lib/docker',
  '/var/lib/containerd',
  '/var/lib/containers',
  '/var/lib/cni',
  '/var/lib/cloud',
  '/var/lib/private',
  '/var/lib/sss',
  '/etc/kubernetes',
  '/etc/rancher',
  '/etc/docker',
  // Outside those, and readable by others where their installers wrote them so (red team, session
  // 10; test/security/sandbox-node-credentials.test.ts): CNI plugins' kubeconfigs with a
  // service-account token and etcd TLS keys, containerd's config (registry credentials), kube-up's
  // and kops' tokens and keys, k0s' and MicroK8s' state.
  '/etc/cni',
  '/etc/containerd',
  '/srv/kubernetes',
  '/var/lib/k0s',
  '/var/snap/microk8s',
  // Secrets in /etc, and the node's identity.
  '/etc/shadow',
  '/etc/shadow-',
  '/etc/gshadow',
  '/etc/gshadow-',
  '/etc/security/opasswd',
  '/etc/ssh',
  '/etc/ssl/private',
  // RHEL's and Fedora's /etc/ssl/private.
  '/etc/pki/tls/private',
  '/etc/krb5.keytab',
  '/etc/NetworkManager/system-connections',
  '/etc/hostname',
  '/etc/mailname',
  // Shown as a localhost-only file rather than empty; the node's with network 'host'.
  '/etc/hosts',
  '/etc/machine-id',
  '/var/lib/dbus/machine-id',
  '/boot',
  // runc's masked paths, and the kernel command line.
  '/proc/acpi',
  '/proc/asound',
  '/proc/cmdline',
  '/proc/interrupts',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
]);

/**
 * The kernel's global knobs, read-only in every task's /proc whatever its user (runc's
 * readonlyPaths; a fixed list, native/src/sandbox_masks.h): even a task run as uid 0 cannot set a
 * sysctl (kernel.core_pattern runs a program as root on the node) or trigger sysrq; nor may any
 * task register a PSI trigger on the node's pressure (/proc/pressure, writable by every user).
 */
export const readOnlyProcPaths: readonly string[] = Object.freeze(['/proc/bus', '/proc/fs', '/proc/irq', '/proc/pressure', '/proc/sys', '/proc/sysrq-trigger']);

const maxMaskedPaths = 256;
const sandboxOwnPaths = ['/proc', '/dev', '/tmp'];

/** True when `inner` lies strictly below the directory `outer`. */
function isBelow(inner: string, outer: string): boolean {
  return inner.length > outer.length && inner.startsWith(outer) && inner[outer.length] === '/';
}

/**
 * Why `candidate` cannot be masked, or undefined when it can, as the native side checks it
 * (native/src/sandbox_masks.cc: MaskedPathProblem): absolute, normalized, not /, nor /proc, /dev
 * or /tmp (each task's own) nor under /dev or /tmp.
 */
function maskedPathProblem(candidate: string): string | undefined {
  if (!candidate.startsWith('/') || candidate.length >= 4096 || /[\0\n]/.test(candidate)) return 'must be an absolute path';
  if (candidate === '/' || candidate.slice(1).split('/').some((component) => component === '' || component === '.' || component === '..')) {
    return `must be a normalized path below / (no empty, '.' or '..' component, no trailing slash), got ${JSON.stringify(candidate)}`;
  }
  if (sandboxOwnPaths.includes(candidate) || isBelow(candidate, '/dev') || isBelow(candidate, '/tmp')) return `cannot be ${candidate}: /proc, /dev and /tmp are made fresh for each task`;
  return undefined;
}

/** A list of masked paths, checked (maskedPathProblem; InvalidSpawnOptionError naming `name`) and joined one per line for the native request. */
export function checkMaskedPaths(value: unknown, name: string): string {
  const refuse = (message: string): never => {
    throw new InvalidSpawnOptionError('ERR_INVALID_ARG_VALUE', `${name}${message}`);
  };
  if (!Array.isArray(value) || value.length > maxMaskedPaths) refuse(` must be an array of at most ${maxMaskedPaths} absolute paths`);
  for (const [index, candidate] of (value as unknown[]).entries()) {
    const problem = typeof candidate === 'string' ? maskedPathProblem(candidate) : 'must be an absolute path';
    if (problem !== undefined) refuse(`[${index}] ${problem}`);
  }
  return (value as string[]).join('\n');
}

const defaultMaskedPathsJoined = checkMaskedPaths(defaultMaskedPaths, 'defaultMaskedPaths');

/**
 * For bench/sandbox.ts only (src/index.ts does not export it): a sandbox without its filesystem
 * step, so that namespaces and mounts are measured apart. Never for tasks: such a task sees the
 * host's filesystem.
 */
export const benchmarkWithoutFilesystem: unique symbol = Symbol('parafork.benchmarkWithoutFilesystem');

/** A `beneath` option: null, or a directory other than / that `hostPath` is or lies below by name, without '..'. */
function beneathOf(value: unknown, hostPath: string, field: string): string | null {
  if (value === undefined) return null;
  const directory = absolutePath(value, field);
  if (directory === '/' || directory.endsWith('/') || directory.split('/').includes('..') || hostPath.split('/').includes('..') || (hostPath !== directory && !hostPath.startsWith(`${directory}/`))) {
    invalid(`${field} must be a directory other than / (no trailing / or '..') that the host path is or lies below: ${hostPath} is not below ${directory}`);
  }
  return directory;
}

/**
 * The host ids a task's user namespace maps to (userNamespace mode): ids 0..65535 inside are
 * host ids 100000..165535, a range no host account uses (it is where /etc/subuid ranges usually
 * start, and `useradd` stops at 60000). Root inside is host uid 100000: unprivileged.
 */
export const userNamespaceIds = { hostId: 100_000, size: 65_536 } as const;

/**
 * The sandbox a child runs in (SpawnOptions.sandbox). Every field has a secure default: with
 * `sandbox: {}` the child gets its own pid, mount, IPC, UTS, cgroup and network namespaces (no
 * network), its own session, a read-only root (this host's) with its secrets masked
 * (defaultMaskedPaths) and read-only kernel knobs in /proc (readOnlyProcPaths), a private /tmp,
 * uid/gid 65534 without capabilities, no_new_privs and the default seccomp allow-list. Needs
 * root with CAP_SYS_ADMIN (CAP_NET_ADMIN too for 'loopback').
 */
export interface SandboxOptions {
  /** 'none' (default: no interface at all), 'loopback' (own namespace, lo up), 'host' (explicit opt-in). */
  readonly network?: NetworkMode;
  /** The task's root directory on the host; defaults to the agent's own root, read-only. */
  readonly rootfs?: string;
  /** As SandboxMountOption.beneath, for rootfs. */
  readonly rootfsBeneath?: string;
  /** Defaults to true. */
  readonly readOnlyRootFilesystem?: boolean;
  /** Size of the private tmpfs at /tmp in bytes; default 64 MiB; 0 for none. */
  readonly tmpSizeBytes?: number;
  readonly mounts?: readonly SandboxMountOption[];
  /**
   * Paths masked in the task's root and /proc; default: the Launcher's sandboxMaskedPaths, which
   * default to defaultMaskedPaths. Replaces that list: spread defaultMaskedPaths to add to it.
   */
  readonly maskedPaths?: readonly string[];
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
  /**
   * 'default' (the allow-list; default), 'unconfined' (explicit opt-out), or a compiled custom
   * profile. Whichever, a guard keeps RLIMIT_CORE at 1 (native/src/seccomp_policy.h): 'unconfined'
   * attaches that guard alone, and a custom profile is compiled with it in front.
   */
  readonly seccomp?: 'default' | 'unconfined' | SeccompFilter;
  /**
   * RLIMIT_NOFILE; default 1024. (RLIMIT_MEMLOCK is always at most 64 KiB: mlock of a file mapping
   * pins the node's page cache, charged to no cgroup of the task's; native/src/sandbox_preparation.cc.)
   */
  readonly maxOpenFiles?: number;
  /** RLIMIT_FSIZE in bytes; default unlimited (0). */
  readonly maxFileSizeBytes?: number;
  /**
   * RLIMIT_NPROC: a fork or clone fails with EAGAIN once the task's uid has this many processes
   * and threads; default 0, the agent's own limit (unlimited for root). The kernel counts per
   * uid (per user namespace since Linux 5.14), not per task: give each task a runAsUser of its
   * own, or tasks share the count (setrlimit(2)). Up to 4194304 (PID_MAX_LIMIT). Refused for
   * runAsUser 0 outside a user namespace: the kernel does not hold root to it.
   */
  readonly maxProcesses?: number;
  /**
   * runAsUser is this task's alone while it runs (the caller leases host uids, one task each, as
   * the agent does; default false). The kernel keeps keyrings per uid that outlive its processes
   * (the user, user session and persistent keyrings): a task whose filter lets keyctl(2) through
   * (a custom profile that allows it, or 'unconfined') starts with those emptied of what an earlier
   * holder of the uid left. Not for a uid others use at the same time (their keys would go), nor
   * runAsUser 0 outside a user namespace (root's); a userNamespace task's keyrings are its own.
   */
  readonly ownUid?: boolean;
  /**
   * The task's oom_score_adj, from -1000 to 1000; default the agent's own. Set before the task
   * runs, with the agent's privilege, so that it is also the least the task may set
   * (oom_score_adj_min, proc(5)): an unprivileged task cannot lower it. Not with userNamespace:
   * that child shares the agent's memory without CLONE_VFORK until it execs, and the kernel sets
   * the score of every process sharing it, the agent's with it.
   */
  readonly oomScoreAdjust?: number;
}

/** SandboxOptions with what only parafork's benchmarks set; not exported from the package. */
export interface InternalSandboxOptions extends SandboxOptions {
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
  maxProcesses: 0,
  ownUid: false,
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

/** `hostPath` with its links resolved, as a bind mount of it will resolve them; as given (normalized) when it cannot be. */
function resolvedHostPath(hostPath: string): string {
  try {
    return realpathSync.native(hostPath);
  } catch {
    const normalized = path.posix.normalize(hostPath);
    return normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
  }
}

/** A task on the node's network shares its names too: it sees the node's /etc/hosts. */
function withoutHostsFile(listed: string): string {
  return listed.includes('/etc/hosts') ? listed.split('\n').filter((masked) => masked !== '/etc/hosts').join('\n') : listed;
}

/**
 * The host's /proc and /sys are the kernel's knobs (kernel.core_pattern runs a program as root on
 * the node): a task may bring them in only read-only, whether it mounts them, something inside
 * them, or the host's root that holds them (a mount comes with its submounts). A root is bound
 * without its submounts, so only a rootfs inside them counts.
 */
function refuseWritableKernelInterfaces(rootfs: string, readOnlyRoot: boolean, mounts: readonly { hostPath: string; readOnly: boolean }[]): void {
  const kernelInterfaces = ['/proc', '/sys'];
  if (!readOnlyRoot && rootfs !== '/') {
    const real = resolvedHostPath(rootfs);
    const inside = kernelInterfaces.find((root) => real === root || isBelow(real, root));
    if (inside !== undefined) invalid(`readOnlyRootFilesystem must be true for a rootfs in the host's ${inside}: ${rootfs}`);
  }
  for (const [index, mount] of mounts.entries()) {
    if (mount.readOnly) continue;
    const real = resolvedHostPath(mount.hostPath);
    const reached = kernelInterfaces.find((root) => real === '/' || real === root || isBelow(real, root) || isBelow(root, real));
    if (reached !== undefined) invalid(`mounts[${index}].readOnly must be true for a host path in or holding the host's ${reached}: ${mount.hostPath}`);
  }
}

/**
 * Masked paths name what the node keeps secret, so they follow the host paths a task brings in
 * (other than /proc paths: each task's /proc is its own). A rootfs or hostPath that is a masked
 * path or lies inside one is refused (the agent's service-account token, state or kubeconfig as a
 * mount); a masked path inside one is masked where the task sees it (hostPath /etc at /mnt/etc:
 * /mnt/etc/shadow; rootfs /var: /lib/kubelet). Links are resolved first, as the mount will resolve
 * them. A mount inside a masked directory is refused too: it would find no mount point there.
 * Returns the masked paths with those added, one per line.
 */
function maskBroughtInHostPaths(rootfs: string, mounts: readonly { hostPath: string; mountPath: string }[], listed: string): string {
  // The usual spawn (the agent's root, no mounts) pays nothing here.
  if (listed === '' || (rootfs === '/' && mounts.length === 0)) return listed;
  const masked = listed.split('\n');
  const hostMasks = masked.filter((masks) => !isBelow(masks, '/proc'));
  const added: string[] = [];
  const bringIn = (hostPath: string, seenAt: string, field: string) => {
    const real = resolvedHostPath(hostPath);
    const outer = hostMasks.find((masks) => masks === real || isBelow(real, masks));
    if (outer !== undefined) {
      invalid(`${field} must not be a masked path or lie inside one: ${hostPath} is ${real === outer ? '' : 'inside '}the masked path ${outer} (leave ${outer} out of the masked paths to allow it)`);
    }
    const base = seenAt === '/' ? '' : path.posix.normalize(seenAt).replace(/\/$/, '');
    for (const hidden of hostMasks) {
      if (real !== '/' && !isBelow(hidden, real)) continue;
      const inTask = base + (real === '/' ? hidden : hidden.slice(real.length));
      // One the native side cannot mask (under the task's own /tmp or /dev) is where no mount can go either.
      if (maskedPathProblem(inTask) === undefined) added.push(inTask);
    }
  };
  if (rootfs !== '/' && resolvedHostPath(rootfs) !== '/') bringIn(rootfs, '/', 'rootfs');
  for (const [index, mount] of mounts.entries()) {
    const outer = masked.find((masks) => isBelow(mount.mountPath, masks));
    if (outer !== undefined) invalid(`mounts[${index}].mountPath must not lie inside a masked path: ${mount.mountPath} is inside ${outer} (mount it elsewhere, or leave ${outer} out of the masked paths)`);
    bringIn(mount.hostPath, mount.mountPath, `mounts[${index}].hostPath`);
  }
  return added.length === 0 ? listed : [...new Set([...masked, ...added])].join('\n');
}

/**
 * Checks `options` (with `cwd`, the working directory inside the sandbox) into a native request;
 * `maskedPathsByDefault`: the masked paths (checkMaskedPaths) when the options give none.
 */
export function toNativeSandbox(options: unknown, cwd: string | undefined, maskedPathsByDefault = defaultMaskedPathsJoined): NativeSandboxRequest {
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
    const hostPath = absolutePath(mount.hostPath, `mounts[${index}].hostPath`);
    return { hostPath, mountPath, readOnly: mount.readOnly ?? true, beneath: beneathOf(mount.beneath, hostPath, `mounts[${index}].beneath`) };
  });
  const rootfs = absolutePath(sandbox.rootfs, 'rootfs');
  const rootfsBeneath = beneathOf(sandbox.rootfsBeneath, rootfs, 'rootfsBeneath');
  const listed = sandbox.maskedPaths === undefined ? maskedPathsByDefault : checkMaskedPaths(sandbox.maskedPaths, 'sandbox.maskedPaths');
  const maskedPaths = maskBroughtInHostPaths(rootfs, mounts, given.network === 'host' ? withoutHostsFile(listed) : listed);
  refuseWritableKernelInterfaces(rootfs, given.readOnlyRootFilesystem, mounts);
  const uid = wholeNumber(sandbox.runAsUser, 'runAsUser', sandbox.userNamespace ? userNamespaceIds.size - 1 : 4294967294);
  const maxProcesses = wholeNumber(sandbox.maxProcesses, 'maxProcesses', 4_194_304);
  // fork(2): EAGAIN at RLIMIT_NPROC "unless the caller has CAP_SYS_RESOURCE or CAP_SYS_ADMIN, or
  // is root" (the host's root; root inside a user namespace is an ordinary host uid).
  if (maxProcesses > 0 && uid === 0 && !sandbox.userNamespace) invalid('maxProcesses needs a runAsUser other than 0: the kernel does not hold root to RLIMIT_NPROC');
  if (typeof sandbox.ownUid !== 'boolean') invalid('ownUid must be a boolean');
  if (sandbox.ownUid && uid === 0 && !sandbox.userNamespace) invalid('ownUid needs a runAsUser other than 0: root\'s keyrings are the node\'s');
  const oomScoreAdjust = sandbox.oomScoreAdjust === undefined ? null : oomScore(sandbox.oomScoreAdjust);
  if (oomScoreAdjust !== null && sandbox.userNamespace) invalid('oomScoreAdjust cannot be set with userNamespace: the child shares the agent\'s memory until it execs, and would set the agent\'s score too');
  return {
    network: nativeNetworkModes[sandbox.network],
    rootfs,
    rootfsBeneath,
    readOnlyRoot: sandbox.readOnlyRootFilesystem,
    tmpSizeBytes: wholeNumber(sandbox.tmpSizeBytes, 'tmpSizeBytes', Number.MAX_SAFE_INTEGER),
    mounts,
    maskedPaths,
    workingDirectory: cwd === undefined ? '/' : absolutePath(cwd, 'cwd (inside the sandbox)'),
    filesystem: (options as InternalSandboxOptions)[benchmarkWithoutFilesystem] !== true,
    userNamespace: sandbox.userNamespace ? { hostId: userNamespaceHostId(sandbox.userNamespaceHostId), size: userNamespaceIds.size } : null,
    uid,
    gid: wholeNumber(sandbox.runAsGroup, 'runAsGroup', sandbox.userNamespace ? userNamespaceIds.size - 1 : 4294967294),
    hostname: sandbox.hostname,
    seccomp: sandbox.seccomp !== 'unconfined',
    seccompProgram: sandbox.seccomp instanceof SeccompFilter ? SeccompFilter.programOf(sandbox.seccomp) : null,
    seccompProgramAttachPoint: sandbox.seccomp instanceof SeccompFilter ? sandbox.seccomp.attachPoint : null,
    maxOpenFiles: wholeNumber(sandbox.maxOpenFiles, 'maxOpenFiles', 1048576),
    maxFileSizeBytes: wholeNumber(sandbox.maxFileSizeBytes, 'maxFileSizeBytes', Number.MAX_SAFE_INTEGER),
    maxProcesses,
    ownUid: sandbox.ownUid && !sandbox.userNamespace,
    oomScoreAdjust,
  };
}

function oomScore(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < -1000 || value > 1000) invalid(`oomScoreAdjust must be a whole number from -1000 to 1000, got ${String(value)}`);
  return value;
}

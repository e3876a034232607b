// The raw native binding: its types, and the only code that loads the .node file.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type NativeLockMode = 'free' | 'xor' | 'serial';
export type NativeClonePath = 'clone3' | 'clone';

export interface NativeCapabilities {
  readonly clone3: boolean;
  readonly cloneIntoCgroup: boolean;
  readonly cloneClearSighand: boolean;
  readonly closeRangeCloexec: boolean;
  readonly pidfd: boolean;
  /** mount_setattr(2), Linux 5.12: bind mounts are recursive and read-only all the way down. */
  readonly mountSetattr: boolean;
  readonly kernelRelease: string;
}

/**
 * The step of a spawn a failure belongs to, as native/src/syscall_id.h names them (SpawnStep);
 * what each means is documented on SpawnError.step (src/launcher/spawn-error.ts).
 */
export type NativeSpawnStep = 'exec' | 'stdio' | 'cgroup' | 'filesystem' | 'sandbox' | 'clone';

export interface NativeFailurePoint {
  /** As the error's `syscall` names it: 'execve', 'open', 'cgroup.procs', 'mount', ... */
  readonly syscall: string;
  readonly step: NativeSpawnStep;
  /** What the failed call was doing, for the error's message: "the task's network namespace". */
  readonly what: string;
}

/** Output modes as the native side numbers them (native/src/spawn_request.h). */
export const nativeOutputModes = { ignore: 0, pipe: 1, file: 2, fileAppend: 3, log: 4 } as const;
export type NativeOutputMode = (typeof nativeOutputModes)[keyof typeof nativeOutputModes];

/** Network modes as the native side numbers them (native/src/spawn_request.h). */
export const nativeNetworkModes = { none: 0, loopback: 1, host: 2 } as const;

/** A sandbox with every default filled in by TypeScript (src/launcher/sandbox-options.ts). */
export interface NativeSandboxRequest {
  network: (typeof nativeNetworkModes)[keyof typeof nativeNetworkModes];
  rootfs: string;
  /** null, or the directory rootfs is opened beneath (native/src/spawner.cc: OpenBeneath). */
  rootfsBeneath: string | null;
  readOnlyRoot: boolean;
  tmpSizeBytes: number;
  /** beneath: null, or the directory hostPath is opened beneath. */
  mounts: { hostPath: string; mountPath: string; readOnly: boolean; beneath: string | null }[];
  /** Masked paths, one per line (native/src/sandbox_masks.h): one string to hand over, not dozens. */
  maskedPaths: string;
  workingDirectory: string;
  /** false: no filesystem step (bench/sandbox.ts only). */
  filesystem: boolean;
  /** Ids 0..size-1 inside a new user namespace are host ids hostId..hostId+size-1; null: no user namespace. */
  userNamespace: { hostId: number; size: number } | null;
  uid: number;
  gid: number;
  hostname: string;
  seccomp: boolean;
  /** A compiled custom profile (compileSeccompProfile), or null for the default policy. */
  seccompProgram: Uint8Array | null;
  /** Where the child attaches seccompProgram, as its compile judged (NativeCompiledSeccompProfile.attachPoint); null with no program. */
  seccompProgramAttachPoint: NativeSeccompAttachPoint | null;
  maxOpenFiles: number;
  maxFileSizeBytes: number;
  /** RLIMIT_NPROC; 0: inherited. Never with uid 0 outside a user namespace. */
  maxProcesses: number;
  /** uid is the task's alone: its keyrings are emptied of an earlier holder's keys (native/src/user_keyrings.h). Never uid 0 outside a user namespace. */
  ownUid: boolean;
  /** The task's oom_score_adj (-1000 to 1000); null: the agent's. Never with userNamespace. */
  oomScoreAdjust: number | null;
}

/** One spawn, fully resolved by TypeScript; C++ checks every field again. */
export interface NativeSpawnRequest {
  id: number;
  file: string;
  /** PATH to search when `file` has no slash; '' for no search. */
  searchPath: string;
  /** argv[0] included. */
  argv: string[];
  /**
   * 'NAME=value' entries: the child's whole environment; null for the agent's own environment,
   * read natively from `environ` (valid on Node's main thread only, where process.env is environ).
   */
  env: string[] | null;
  /** '' to inherit. */
  cwd: string;
  stdoutMode: NativeOutputMode;
  stdoutPath: string;
  stderrMode: NativeOutputMode;
  stderrPath: string;
  /** The cap of the log that stdout and/or stderr (mode log, the same path) go to; 0 without a log. */
  logMaxBytes: number;
  /** The log's file is made at the first byte written; nothing written, no file (LogOutput.createWhenWritten). */
  logCreateWhenWritten: boolean;
  /** Give the child a result file at fd 3 (native/src/spawn_request.h: result_file). */
  resultFile: boolean;
  /** A cgroup v2 directory, '' for none. */
  cgroup: string;
  /** cgroup v1 directories (one per controller) the child joins before exec. */
  cgroupsV1: string[];
  /** null, or: make `cgroup` and `cgroupsV1` on the spawn thread and write these files first. */
  cgroupSetup: { files: { path: string; value: string; readBack: string; mayFail: boolean }[]; joinFds: { cgroup: number; cgroupsV1: number[] } | null } | null;
  /** null: no sandbox. */
  sandbox: NativeSandboxRequest | null;
}

export interface NativeEngineStats {
  readonly threads: number;
  readonly busyThreads: number;
  readonly queued: number;
  readonly children: number;
  /** Logs the log pump is writing (native/src/log_pump.h). */
  readonly openLogs: number;
  /** Bytes tasks wrote into logs since the engine started, and of those, bytes the caps dropped. */
  readonly logBytes: number;
  readonly logDroppedBytes: number;
}

export interface NativeEngineOptions {
  threads: number;
  lockMode: NativeLockMode;
  clonePath: NativeClonePath;
  /** The parafork-init helper (nativeHelperPath); '' disables sandboxing. */
  initPath: string;
  /** An existing empty directory that sandboxed tasks' roots are mounted on, each in its own mount namespace. */
  stagingDirectory: string;
  /** Tests only: build bind mounts as on a kernel without mount_setattr(2). */
  withoutMountSetattr?: boolean;
  /**
   * Called on the JS thread with a batch of events in `batch[0 .. length)`, `eventStride` numbers
   * each, laid out as `eventLayout` says (event-batch.ts). The array is reused for the next batch: read it now, keep nothing.
   */
  onEvents: (batch: Float64Array, length: number) => void;
}

/** A seccomp profile as native code compiles it (native/src/seccomp_profile.h); values are uint64. */
export interface NativeSeccompProfile {
  defaultAction: string;
  /** The errno of SCMP_ACT_ERRNO (or the number of SCMP_ACT_TRACE); 0 otherwise. */
  defaultErrno: number;
  rules: { names: string[]; action: string; errno: number; args: { index: number; op: string; value: bigint; valueTwo: bigint }[] }[];
}

/**
 * Where the sandbox's child attaches a compiled profile (native/src/seccomp_attach_point.h):
 * 'privileged' before it takes the task's ids, while it holds CAP_SYS_ADMIN (a full
 * net.core.bpf_jit_limit does not refuse it), because the program allows every call the child
 * makes after that point; 'privilegedUnlessEmptyingUserKeyrings' there too, except on a spawn that
 * empties the task uid's keyrings (keyctl, which the program does not allow); 'last' as the task's
 * user, just before the exec.
 */
export const nativeSeccompAttachPoints = ['privileged', 'privilegedUnlessEmptyingUserKeyrings', 'last'] as const;
export type NativeSeccompAttachPoint = (typeof nativeSeccompAttachPoints)[number];

export interface NativeCompiledSeccompProfile {
  /** Whole struct sock_filter instructions, 8 bytes each. */
  readonly program: Uint8Array;
  /** System call names not known on this architecture: left out, as Docker does. */
  readonly unknownNames: readonly string[];
  /** Judged once, here: whether the program allows the child's own calls after the privileged attach point. */
  readonly attachPoint: NativeSeccompAttachPoint;
}

/**
 * Where each field sits in an event record (native/src/event.h, the one definition): the kinds'
 * numbers (field 0), and per kind its fields' indices. Field 1 of every record is the request id.
 */
export interface NativeEventLayout {
  readonly kinds: { readonly spawned: number; readonly failed: number; readonly exited: number; readonly logClosed: number };
  readonly spawned: {
    readonly pid: number;
    readonly stdoutFd: number;
    readonly stderrFd: number;
    readonly queuedNs: number;
    readonly spawnNs: number;
    /** The result file's fd (resultFile), or -1. */
    readonly resultFd: number;
  };
  readonly failed: { readonly errno: number; readonly syscall: number; readonly queuedNs: number; readonly spawnNs: number };
  readonly exited: {
    readonly exitCode: number;
    readonly signal: number;
    readonly durationNs: number;
    readonly userUs: number;
    readonly systemUs: number;
    readonly maxRssKb: number;
  };
  readonly logClosed: {
    readonly payloadBytes: number;
    readonly droppedBytes: number;
    readonly diskBytes: number;
    readonly writeErrno: number;
  };
}

export interface NativeSpawnEngine {
  spawn(request: NativeSpawnRequest): void;
  /** 0, or an errno (ESRCH once the child has been reaped). */
  kill(id: number, signal: number): number;
  stats(): NativeEngineStats;
  ref(): void;
  unref(): void;
  close(): void;
}

export interface NativeBinding {
  readonly SpawnEngine: new (options: NativeEngineOptions) => NativeSpawnEngine;
  capabilities(): NativeCapabilities;
  compileSeccompProfile(profile: NativeSeccompProfile): NativeCompiledSeccompProfile;
  /** The system calls the sandbox's child makes after its privileged seccomp attach, by name (native/src/seccomp_attach_point.cc): a profile must allow each to be attached there. */
  readonly childCallsAfterPrivilegedAttach: readonly string[];
  /**
   * flock(fd, LOCK_EX | LOCK_NB) (native/src/file_lock.h): true once held, false when another
   * open file description holds it; other failures throw with code, errno and syscall 'flock'.
   */
  tryLockExclusive(fd: number): boolean;
  /**
   * sched_setattr(2) of the calling thread to nice `nice` (-20..19) with SCHED_FLAG_RESET_ON_FORK,
   * keeping its policy (native/src/thread_priority.h): true once set, false when left as it was
   * (EPERM without CAP_SYS_NICE, a policy other than SCHED_OTHER or SCHED_BATCH, or already at
   * that nice value or lower); other failures throw with code, errno and syscall.
   */
  prioritizeCallingThread(nice: number): boolean;
  /**
   * What each failure point an event batch carries (failedFields.syscall) is: indexed by that
   * number, defined once in native/src/syscall_id.h (kFailurePoints).
   */
  readonly failurePoints: readonly NativeFailurePoint[];
  /** Numbers per event record (native/src/event.h). */
  readonly eventStride: number;
  readonly eventLayout: NativeEventLayout;
}

// This file sits two levels below the package root both as src/native/binding.ts and as
// dist/native/binding.js.
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function candidatePaths(): string[] {
  return [
    path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`, 'parafork.node'),
    path.join(packageRoot, 'native', 'build', 'Release', 'parafork.node'),
    path.join(packageRoot, 'native', 'build', 'Debug', 'parafork.node'),
  ];
}

let loaded: NativeBinding | undefined;
let loadedFrom: string | undefined;

/** This machine or Node.js cannot run the native launcher: a fact to report in one line, not a bug. */
function unsupportedRuntime(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_PARAFORK_UNSUPPORTED_RUNTIME' });
}

/** The addon is built for Node-API 10 (internalized property keys, references to any value). */
const requiredNodeApiVersion = 10;

/**
 * Why this Node.js cannot load the addon, or undefined when it can. An older Node (20 has Node-API
 * 9) crashes while loading a Node-API 10 module instead of refusing it, so the loader asks first.
 */
export function unsupportedNode(nodeApiVersion: string | undefined, nodeVersion: string): string | undefined {
  const version = Number(nodeApiVersion ?? 0);
  if (version >= requiredNodeApiVersion) return undefined;
  return `parafork needs Node.js 22.19 or newer (Node-API ${requiredNodeApiVersion}); this is Node.js ${nodeVersion} (Node-API ${nodeApiVersion ?? 'unknown'}). scripts/provision-node.sh fetches Node 24 from the npm registry.`;
}

/**
 * Loads the addon once. A missing file moves on to the next candidate; any other failure (a
 * binary for another platform, a missing symbol) is reported as it is, since trying further
 * would hide it.
 */
export function loadNativeBinding(): NativeBinding {
  if (loaded) return loaded;
  if (process.platform !== 'linux') {
    throw unsupportedRuntime(
      `parafork's native launcher runs on Linux only (it is built on clone3, pidfds and close_range); this platform is ${process.platform}`,
    );
  }
  const nodeProblem = unsupportedNode(process.versions.napi, process.version);
  if (nodeProblem !== undefined) throw unsupportedRuntime(nodeProblem);
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const candidate of candidatePaths()) {
    try {
      loaded = require(candidate) as NativeBinding;
      loadedFrom = candidate;
      return loaded;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw error;
      tried.push(candidate);
    }
  }
  throw new Error(
    `parafork: the native addon is not built. Tried:\n  ${tried.join('\n  ')}\nBuild it with \`npm run build:native\` (needs a C++ compiler, make and python3).`,
  );
}

/** A helper executable built beside the addon (e.g. parafork-init), or '' when there is none. */
export function nativeHelperPath(name: string): string {
  loadNativeBinding();
  const candidate = path.join(path.dirname(loadedFrom ?? ''), name);
  return existsSync(candidate) ? candidate : '';
}

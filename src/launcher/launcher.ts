// The Launcher: a pool of native spawn threads behind a promise API. The JS thread only checks
// options and enqueues; clone, exec and reaping happen on native threads, and their results come
// back in batches (see native/src/event_batcher.h).
import os from 'node:os';
import { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { getSystemErrorName } from 'node:util';

import { mkdirSync } from 'node:fs';

import {
  loadNativeBinding,
  nativeHelperPath,
  type NativeBinding,
  type NativeCapabilities,
  type NativeClonePath,
  type NativeFailurePoint,
  type NativeLockMode,
  type NativeSpawnEngine,
  type NativeSpawnRequest,
} from '../native/binding.js';
import { eventKinds, exitedFields, failedFields, logClosedFields, spawnedFields } from './event-batch.js';
import { ResultFile } from './result-file.js';
import { signalName, signalNumber } from './signals.js';
import { checkMaskedPaths, defaultMaskedPaths } from './sandbox-options.js';
import { errnoDescription, LauncherClosedError, InvalidSpawnOptionError, SpawnError } from './spawn-error.js';
import { toNativeRequest, type SpawnOptions } from './spawn-options.js';
import { SpawnedProcess, type ExitResult, type LogTotals, type SpawnTimings } from './spawned-process.js';

/**
 * What a fork waits for: 'free' nothing (every fd is made close-on-exec and the child marks the
 * rest with close_range(2)); 'xor' Go 1.21's two-class lock (forks share it, fd creators share it);
 * 'serial' one lock for both (Go before 1.21). Picked by the Launcher (LauncherCapabilities).
 */
export type LockMode = NativeLockMode;
/** The system call that makes each child: 'clone3' (Linux 5.3), or 'clone' where clone3 is refused. */
export type ClonePath = NativeClonePath;

/** The options of `new Launcher()`; every one has a default. */
export interface LauncherOptions {
  /** Spawn threads; default one per CPU, at least 2. */
  readonly threads?: number;
  /** Told of every spawn, failure and exit, with the timings the native side measured. */
  readonly observer?: LauncherObserver;
  /**
   * An empty directory sandboxed tasks' roots are mounted on, each in its own mount namespace (so
   * nothing is ever mounted there on the host). Created on first use; default /run/parafork/root.
   */
  readonly sandboxStagingDirectory?: string;
  /**
   * The paths masked in every sandboxed task that does not give its own sandbox.maskedPaths;
   * default defaultMaskedPaths. An agent adds its own state (see src/config/agent-config.ts).
   */
  readonly sandboxMaskedPaths?: readonly string[];
}

/**
 * LauncherOptions with what only parafork's own benchmarks and tests set; not exported from the
 * package. The defaults (Launcher.capabilities) are what this kernel does best.
 */
export interface InternalLauncherOptions extends LauncherOptions {
  /** 'free' (default where close_range(CLOSE_RANGE_CLOEXEC) exists), 'xor' or 'serial'. */
  readonly lockMode?: LockMode;
  /** 'clone3' (default where allowed) or 'clone' (the path where a seccomp profile refuses clone3). */
  readonly clonePath?: ClonePath;
  /** See simulateKernelWithoutMountSetattr. */
  readonly [simulateKernelWithoutMountSetattr]?: true;
}

/**
 * For tests only (src/index.ts does not export it): build bind mounts as on a kernel without
 * mount_setattr(2) (before 5.12), where a mount's submounts are left out.
 */
export const simulateKernelWithoutMountSetattr: unique symbol = Symbol('parafork.simulateKernelWithoutMountSetattr');

/**
 * Hooks for the metrics layer; every one is optional. They run on the JS thread inside the event
 * batch that delivers the result, after the launcher's own bookkeeping, so they cost the spawn path
 * only the call: the timings were measured natively and arrive in the batch anyway. A hook that
 * throws is a bug: its error is rethrown from a microtask, and the rest of the batch still settles.
 */
export interface LauncherObserver {
  /** A child has exec'd. */
  spawned?(timings: SpawnTimings): void;
  /** A spawn failed; `code` is the errno name ('ENOENT', ...), `timings.spawnNs` up to the failure. */
  spawnFailed?(code: string, timings: SpawnTimings): void;
  /** A child has exited and been reaped. */
  exited?(result: ExitResult): void;
}

/** What this kernel offers the Launcher, probed once, and what a Launcher picks from it. */
export interface LauncherCapabilities extends NativeCapabilities {
  /** The clone path a Launcher uses unless told otherwise. */
  readonly defaultClonePath: ClonePath;
  /** The lock mode a Launcher uses unless told otherwise. */
  readonly defaultLockMode: LockMode;
}

/** A Launcher's load right now (Launcher.stats()). */
export interface LauncherStats {
  /** Spawn threads in the pool. */
  readonly threads: number;
  /** Spawn threads inside a spawn right now. */
  readonly busyThreads: number;
  /** Requests waiting for a spawn thread. */
  readonly queued: number;
  /** Children spawned and not yet reaped. */
  readonly running: number;
}

/** The logs (stdout/stderr `{ log }`) the native log pump writes. */
export interface LogStats {
  /** Logs not yet complete. */
  readonly openLogs: number;
  /** Bytes children wrote into logs since the launcher started. */
  readonly bytes: number;
  /** Of those, bytes no longer on disk: rotated away by the logs' caps, or refused by the disk. */
  readonly droppedBytes: number;
}

/** A spawn that failed natively, before its SpawnError is made (see Launcher.spawn). */
interface SpawnFailure {
  readonly errno: number;
  readonly point: NativeFailurePoint;
}

interface PendingSpawn {
  readonly settle: (outcome: SpawnedProcess | SpawnFailure) => void;
  readonly request: NativeSpawnRequest;
}

interface RunningChild {
  readonly resolveExit: (result: ExitResult) => void;
}

const lockModes: readonly LockMode[] = ['free', 'xor', 'serial'];
const clonePaths: readonly ClonePath[] = ['clone3', 'clone'];
const maxThreads = 256;

/**
 * Starts processes through a pool of native spawn threads (clone3 with CLONE_VM | CLONE_VFORK |
 * CLONE_PIDFD), optionally sandboxed or in a cgroup, and reaps them by pidfd. Node's own
 * child_process keeps working beside it. Linux only; throws at construction elsewhere, or when the
 * addon is not built (the message says how to build it).
 */
export class Launcher {
  /** What this kernel allows and what a Launcher picks by default. Linux only. */
  static get capabilities(): LauncherCapabilities {
    const native = loadNativeBinding().capabilities();
    return {
      ...native,
      defaultClonePath: native.clone3 ? 'clone3' : 'clone',
      defaultLockMode: native.closeRangeCloexec ? 'free' : 'xor',
    };
  }

  /** The clone path this launcher uses. */
  readonly clonePath: ClonePath;
  /** The lock mode this launcher uses. */
  readonly lockMode: LockMode;
  /** Its spawn threads. */
  readonly threads: number;

  readonly #binding: NativeBinding;
  readonly #engine: NativeSpawnEngine;
  readonly #observer: LauncherObserver | undefined;
  readonly #pending = new Map<number, PendingSpawn>();
  readonly #running = new Map<number, RunningChild>();
  /** Logs not yet complete, by request id: their SpawnedProcess.log resolvers. */
  readonly #openLogs = new Map<number, (totals: LogTotals) => void>();
  readonly #stagingDirectory: string;
  readonly #maskedPaths: string;
  #stagingDirectoryMade = false;
  #nextId = 1;
  #closed = false;
  #drained: (() => unknown) | undefined;

  constructor(options: LauncherOptions = {}) {
    const internal: InternalLauncherOptions = options;
    const capabilities = Launcher.capabilities;
    this.threads = checkThreads(options.threads);
    this.lockMode = checkChoice(internal.lockMode, lockModes, 'lockMode') ?? capabilities.defaultLockMode;
    this.clonePath = checkChoice(internal.clonePath, clonePaths, 'clonePath') ?? capabilities.defaultClonePath;
    this.#observer = options.observer;
    this.#binding = loadNativeBinding();
    this.#stagingDirectory = options.sandboxStagingDirectory ?? '/run/parafork/root';
    this.#maskedPaths = checkMaskedPaths(options.sandboxMaskedPaths ?? defaultMaskedPaths, 'sandboxMaskedPaths');
    this.#engine = new this.#binding.SpawnEngine({
      threads: this.threads,
      lockMode: this.lockMode,
      clonePath: this.clonePath,
      initPath: nativeHelperPath('parafork-init'),
      stagingDirectory: this.#stagingDirectory,
      ...(internal[simulateKernelWithoutMountSetattr] === true ? { withoutMountSetattr: true } : {}),
      onEvents: (batch, length) => this.#onEvents(batch, length),
    });
  }

  /**
   * Starts a child. Resolves once it has exec'd; rejects with a SpawnError (step, code, errno,
   * syscall) when a step of the spawn fails, leaving no zombie behind, with an
   * InvalidSpawnOptionError (before anything is started) for an option it refuses, and with a
   * LauncherClosedError after close().
   */
  async spawn(options: SpawnOptions): Promise<SpawnedProcess> {
    if (this.#closed) throw new LauncherClosedError();
    const request: NativeSpawnRequest = { id: this.#nextId++, ...toNativeRequest(options, this.#maskedPaths) };
    if (request.sandbox !== null && !this.#stagingDirectoryMade) {
      mkdirSync(this.#stagingDirectory, { recursive: true, mode: 0o755 });
      this.#stagingDirectoryMade = true;
    }
    const { promise, resolve } = Promise.withResolvers<SpawnedProcess | SpawnFailure>();
    this.#engine.spawn(request);
    if (this.#outstanding() === 0) this.#engine.ref();
    this.#pending.set(request.id, { settle: resolve, request });
    const outcome = await promise;
    if (outcome instanceof SpawnedProcess) return outcome;
    // Made here, after the await, so that V8's async stack trace carries the callers awaiting this
    // spawn. (Capturing the caller's stack up front cost ~10 us on every spawn, failed or not.)
    throw spawnError(outcome, request);
  }

  /** Its threads, queue and running children right now. */
  stats(): LauncherStats {
    const { threads, busyThreads, queued, children } = this.#engine.stats();
    return { threads, busyThreads, queued, running: children };
  }

  logStats(): LogStats {
    const { openLogs, logBytes, logDroppedBytes } = this.#engine.stats();
    return { openLogs, bytes: logBytes, droppedBytes: logDroppedBytes };
  }

  /**
   * Refuses new spawns, waits until every spawn has settled and every child has exited (kill them
   * first if you cannot wait), then stops the native threads.
   */
  async close(): Promise<void> {
    if (!this.#closed) this.#closed = true;
    if (this.#outstanding() > 0) {
      const { promise, resolve } = Promise.withResolvers<undefined>();
      this.#drained = () => resolve(undefined);
      await promise;
    }
    this.#engine.close();
    // Logs held open past their child's exit (a process it left behind) end with the launcher.
    for (const resolve of this.#openLogs.values()) resolve({ bytes: 0, droppedBytes: 0, diskBytes: 0, writeError: undefined, complete: false });
    this.#openLogs.clear();
  }

  #outstanding(): number {
    return this.#pending.size + this.#running.size;
  }

  #settled(): void {
    if (this.#outstanding() > 0) return;
    // A log still being written keeps the event loop alive, as a child_process stdio pipe does,
    // so that SpawnedProcess.log settles; close() does not wait for it (a grandchild may hold it).
    if (this.#openLogs.size === 0) this.#engine.unref();
    this.#drained?.();
  }

  #onEvents(batch: Float64Array, length: number): void {
    const stride = this.#binding.eventStride;
    for (let offset = 0; offset < length; offset += stride) {
      // Fields are read at batch[offset + field]: no view object per event (two events a spawn).
      const kind = batch[offset];
      const id = batch[offset + 1] ?? 0;
      if (kind === eventKinds.spawned) this.#onSpawned(id, batch, offset);
      else if (kind === eventKinds.failed) this.#onFailed(id, batch, offset);
      else if (kind === eventKinds.exited) this.#onExited(id, batch, offset);
      else if (kind === eventKinds.logClosed) this.#onLogClosed(id, batch, offset);
    }
    this.#settled();
  }

  #onSpawned(id: number, batch: Float64Array, offset: number): void {
    const pending = this.#pending.get(id);
    const resultFd = batch[offset + spawnedFields.resultFd] as number;
    if (!pending) {
      if (resultFd >= 0) new ResultFile(resultFd).close();
      return;
    }
    this.#pending.delete(id);
    const { promise: exited, resolve: resolveExit } = Promise.withResolvers<ExitResult>();
    this.#running.set(id, { resolveExit });
    const timings: SpawnTimings = { queuedNs: batch[offset + spawnedFields.queuedNs] as number, spawnNs: batch[offset + spawnedFields.spawnNs] as number };
    let log: Promise<LogTotals> | null = null;
    if (pending.request.logMaxBytes > 0) {
      const opened = Promise.withResolvers<LogTotals>();
      this.#openLogs.set(id, opened.resolve);
      log = opened.promise;
    }
    const child = new SpawnedProcess({
      pid: batch[offset + spawnedFields.pid] as number,
      timings,
      stdout: readableFromFd(batch[offset + spawnedFields.stdoutFd] as number),
      stderr: readableFromFd(batch[offset + spawnedFields.stderrFd] as number),
      exited,
      log,
      resultFile: resultFd >= 0 ? new ResultFile(resultFd) : null,
      kill: (signal) => this.#kill(id, signal),
    });
    pending.settle(child);
    if (this.#observer?.spawned) notify(this.#observer, 'spawned', timings);
  }

  #onFailed(id: number, batch: Float64Array, offset: number): void {
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    const errno = batch[offset + failedFields.errno] as number;
    const point = this.#binding.failurePoints[batch[offset + failedFields.syscall] as number] ?? unknownFailurePoint;
    pending.settle({ errno, point });
    if (this.#observer?.spawnFailed) {
      notify(this.#observer, 'spawnFailed', getSystemErrorName(-Math.abs(errno)), { queuedNs: batch[offset + failedFields.queuedNs] as number, spawnNs: batch[offset + failedFields.spawnNs] as number });
    }
  }

  #onExited(id: number, batch: Float64Array, offset: number): void {
    const running = this.#running.get(id);
    if (!running) return;
    this.#running.delete(id);
    const exitCode = batch[offset + exitedFields.exitCode] as number;
    const result: ExitResult = {
      code: exitCode < 0 ? null : exitCode,
      signal: exitCode < 0 ? signalName(batch[offset + exitedFields.signal] as number) : null,
      durationNs: batch[offset + exitedFields.durationNs] as number,
      rusage: {
        userUs: batch[offset + exitedFields.userUs] as number,
        systemUs: batch[offset + exitedFields.systemUs] as number,
        maxRssKb: batch[offset + exitedFields.maxRssKb] as number,
      },
    };
    running.resolveExit(result);
    if (this.#observer?.exited) notify(this.#observer, 'exited', result);
  }

  #onLogClosed(id: number, batch: Float64Array, offset: number): void {
    const resolve = this.#openLogs.get(id);
    if (!resolve) return;
    this.#openLogs.delete(id);
    const writeErrno = batch[offset + logClosedFields.writeErrno] as number;
    resolve({
      bytes: batch[offset + logClosedFields.payloadBytes] as number,
      droppedBytes: batch[offset + logClosedFields.droppedBytes] as number,
      diskBytes: batch[offset + logClosedFields.diskBytes] as number,
      writeError: writeErrno === 0 ? undefined : getSystemErrorName(-writeErrno),
      complete: true,
    });
  }

  #kill(id: number, signal: NodeJS.Signals | number): boolean {
    const errorNumber = this.#engine.kill(id, signalNumber(signal));
    if (errorNumber === 0) return true;
    if (errorNumber === os.constants.errno.ESRCH) return false;
    const code = getSystemErrorName(-errorNumber);
    throw Object.assign(new Error(`parafork: kill ${code} (pidfd_send_signal)`), {
      code,
      errno: -errorNumber,
      syscall: 'pidfd_send_signal',
    });
  }
}

/** Calls one observer hook; a hook that throws must not leave the rest of the event batch unsettled. */
function notify<Hook extends keyof LauncherObserver>(observer: LauncherObserver, hook: Hook, ...args: Parameters<NonNullable<LauncherObserver[Hook]>>): void {
  try {
    (observer[hook] as (...hookArgs: typeof args) => void).apply(observer, args);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

function checkThreads(threads: unknown): number {
  if (threads === undefined) return Math.max(2, os.availableParallelism());
  if (typeof threads !== 'number' || !Number.isInteger(threads) || threads < 1 || threads > maxThreads) {
    throw new InvalidSpawnOptionError('ERR_INVALID_ARG_VALUE', `threads must be a whole number from 1 to ${maxThreads}`);
  }
  return threads;
}

function checkChoice<T extends string>(value: unknown, choices: readonly T[], name: string): T | undefined {
  if (value === undefined) return undefined;
  if (!choices.includes(value as T)) {
    throw new InvalidSpawnOptionError('ERR_INVALID_ARG_VALUE', `${name} must be one of ${choices.map((choice) => `'${choice}'`).join(', ')}`);
  }
  return value as T;
}

function readableFromFd(fd: number): Readable | null {
  if (fd < 0) return null;
  // A pipe's read end becomes a libuv pipe handle, as child_process's own stdio pipes are.
  return new Socket({ fd, readable: true, writable: false });
}

/** A failure point this launcher's binding does not list: the addon and the JavaScript are out of step. */
const unknownFailurePoint: NativeFailurePoint = { syscall: 'spawn', step: 'clone', what: 'the spawn (a failure point this addon build does not list)' };

function spawnError(failure: SpawnFailure, request: NativeSpawnRequest): SpawnError {
  return new SpawnError({
    errno: failure.errno,
    syscall: failure.point.syscall,
    step: failure.point.step,
    path: request.file,
    spawnargs: request.argv.slice(1),
    description: failureDescription(failure.point, failure.errno, request),
  });
}

/**
 * The message of a failed spawn after `syscall: `: what the failed step was working on, in the
 * caller's terms (the path it named) where there is one, then why; the program last, as it may
 * never have been reached.
 */
function failureDescription(point: NativeFailurePoint, errno: number, request: NativeSpawnRequest): string {
  const reason = errnoDescription(errno);
  const spawning = `spawning ${request.file}`;
  const missing = errno === os.constants.errno.ENOENT;
  switch (point.step) {
    case 'exec':
      if (point.syscall === 'chdir') return `working directory ${request.sandbox?.workingDirectory ?? request.cwd}: ${reason}, ${spawning}`;
      return missing && request.searchPath !== '' ? `${request.file}: not found in PATH ${request.searchPath}` : `${request.file}: ${reason}`;
    case 'stdio': {
      const files = [...new Set([request.stdoutPath, request.stderrPath].filter((file) => file !== ''))];
      if (point.syscall === 'open' && files.length > 0) return `output file ${files.join(', ')}: ${reason}, ${spawning}`;
      break;
    }
    case 'cgroup': {
      const cgroups = [request.cgroup, ...request.cgroupsV1].filter((directory) => directory !== '').join(', ');
      return missing && point.syscall === 'cgroup.procs' ? `no such cgroup ${cgroups}, ${spawning}` : `cgroup ${cgroups}: ${reason}, ${spawning}`;
    }
    case 'filesystem': {
      const mounts = request.sandbox?.mounts.length ?? 0;
      const absent = missing || errno === os.constants.errno.ENOTDIR ? ' (the root, a mount\'s hostPath or mountPath, or /proc, /dev or /tmp in the root)' : '';
      return `${point.what} (root ${request.sandbox?.rootfs ?? '/'}${mounts > 0 ? `, ${mounts} mount${mounts > 1 ? 's' : ''}` : ''}): ${reason}${absent}, ${spawning}`;
    }
    case 'clone':
      if (errno === os.constants.errno.EPERM && request.sandbox !== null) {
        return `${point.what}: ${reason}, ${spawning} in a sandbox (making namespaces needs root with CAP_SYS_ADMIN, and clone3 and namespaces allowed by this process's own seccomp profile)`;
      }
      break;
    case 'sandbox':
      break;
  }
  return `${point.what}: ${reason}, ${spawning}`;
}

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
  type NativeLockMode,
  type NativeSpawnEngine,
  type NativeSpawnRequest,
} from '../native/binding.js';
import { eventKinds, exitedFields, failedFields, logClosedFields, spawnedFields } from './event-batch.js';
import { signalName, signalNumber } from './signals.js';
import { checkMaskedPaths, defaultMaskedPaths } from './sandbox-options.js';
import { LauncherClosedError, InvalidSpawnOptionError, SpawnError } from './spawn-error.js';
import { toNativeRequest, type SpawnOptions } from './spawn-options.js';
import { SpawnedProcess, type ExitResult, type LogTotals, type SpawnTimings } from './spawned-process.js';

export type LockMode = NativeLockMode;
export type ClonePath = NativeClonePath;

export interface LauncherOptions {
  /** Spawn threads; default one per CPU, at least 2. */
  readonly threads?: number;
  /** 'free' (default where close_range(CLOSE_RANGE_CLOEXEC) exists), 'xor' or 'serial'. */
  readonly lockMode?: LockMode;
  /** 'clone3' (default where allowed) or 'clone' (where a seccomp profile refuses clone3). */
  readonly clonePath?: ClonePath;
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

export interface LauncherCapabilities extends NativeCapabilities {
  /** The clone path a Launcher uses unless told otherwise. */
  readonly defaultClonePath: ClonePath;
  /** The lock mode a Launcher uses unless told otherwise. */
  readonly defaultLockMode: LockMode;
}

export interface LauncherStats {
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
  readonly syscall: string;
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
  readonly lockMode: LockMode;
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
    const capabilities = Launcher.capabilities;
    this.threads = checkThreads(options.threads);
    this.lockMode = checkChoice(options.lockMode, lockModes, 'lockMode') ?? capabilities.defaultLockMode;
    this.clonePath = checkChoice(options.clonePath, clonePaths, 'clonePath') ?? capabilities.defaultClonePath;
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
      ...(options[simulateKernelWithoutMountSetattr] === true ? { withoutMountSetattr: true } : {}),
      onEvents: (batch, length) => this.#onEvents(batch, length),
    });
  }

  /**
   * Starts a child. Resolves once it has exec'd; rejects with a SpawnError (code, errno, syscall)
   * when a setup step or exec fails, leaving no zombie behind.
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
    if (!pending) return;
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
    pending.settle({ errno, syscall: this.#binding.syscallNames[batch[offset + failedFields.syscall] as number] ?? 'spawn' });
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

function spawnError(failure: SpawnFailure, request: NativeSpawnRequest): SpawnError {
  return new SpawnError({
    errno: failure.errno,
    syscall: failure.syscall,
    path: request.file,
    spawnargs: request.argv.slice(1),
    detail: failureDetail(failure.syscall, request),
  });
}

/** What the failed step was working on, for the error message. */
function failureDetail(syscall: string, request: NativeSpawnRequest): string | undefined {
  switch (syscall) {
    case 'chdir':
      return `working directory ${request.cwd}`;
    case 'cgroup.procs':
      return `cgroup ${request.cgroup}`;
    case 'cgroup.create':
      return `cgroups ${[request.cgroup, ...request.cgroupsV1].filter((directory) => directory !== '').join(', ')}`;
    case 'open':
      return [request.stdoutPath, request.stderrPath].filter((path) => path !== '').join(', ') || undefined;
    default:
      return undefined;
  }
}

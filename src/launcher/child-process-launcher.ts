// The spawn surface the reconciler uses (spawn -> SpawnedProcess, close), on Node's own
// child_process instead of the native engine: the baseline `npm run bench:e2e` compares the native
// launcher against (agent flag --launcher child_process). child_process forks on the JS thread
// and has no namespaces, pivot_root, seccomp or CLONE_INTO_CGROUP, so it refuses a sandbox or a
// cgroup outright rather than run a Task with less isolation than it asked for; the reconciler
// turns that into SandboxUnavailable before it gets here (or runs Tasks unsandboxed with
// --task-sandbox off, for a like-for-like benchmark).
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';

import { errnoDescription, InvalidSpawnOptionError, LauncherClosedError, SpawnError } from './spawn-error.js';
import type { InternalSpawnOptions, OutputOption } from './spawn-options.js';
import { SpawnedProcess, type ExitResult } from './spawned-process.js';

function stdioOf(option: OutputOption | undefined, name: string): 'ignore' | 'pipe' {
  if (option === undefined || option === 'ignore') return 'ignore';
  if (option === 'pipe') return 'pipe';
  // A baseline keeps no logs: writing them here would put every byte through the JS thread, which
  // is what the native log pump exists to avoid. The output is discarded (SpawnedProcess.log null).
  if (typeof option === 'object' && 'log' in option) return 'ignore';
  throw new InvalidSpawnOptionError('ERR_INVALID_ARG_VALUE', `the child_process launcher supports ${name} 'ignore', 'pipe' or { log } (discarded) only`);
}

/**
 * Node's spawn error (code ENOENT, syscall 'spawn /path') as the native launcher's SpawnError: exec
 * failed (Node does not say whether it was the program or the working directory).
 */
function toSpawnError(error: NodeJS.ErrnoException, options: InternalSpawnOptions): SpawnError {
  // Without an errno Node refused the arguments themselves (a NUL byte): its message says how.
  const errno = typeof error.errno === 'number' ? error.errno : -constants.errno.EINVAL;
  const reason = typeof error.errno === 'number' ? errnoDescription(errno) : error.message;
  return new SpawnError({ errno, syscall: 'execve', step: 'exec', path: options.file, spawnargs: [...(options.args ?? [])], description: `${options.file}: ${reason}` });
}

export class ChildProcessLauncher {
  readonly #running = new Set<ChildProcess>();
  #closed = false;
  #drained: (() => void) | undefined;

  /** Starts a child; resolves once Node reports it spawned, rejects with a SpawnError when it could not. */
  spawn(options: InternalSpawnOptions): Promise<SpawnedProcess> {
    if (this.#closed) return Promise.reject(new LauncherClosedError());
    if (options.sandbox !== undefined || options.cgroup !== undefined || (options.cgroupsV1 ?? []).length > 0) {
      return Promise.reject(new InvalidSpawnOptionError('ERR_INVALID_ARG_VALUE', 'the child_process launcher cannot build a sandbox or start a process in a cgroup'));
    }
    let stdio: ['ignore', 'ignore' | 'pipe', 'ignore' | 'pipe'];
    try {
      stdio = ['ignore', stdioOf(options.stdout, 'stdout'), stdioOf(options.stderr, 'stderr')];
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const queuedAt = process.hrtime.bigint();
    let child: ChildProcess;
    try {
      child = spawn(options.file, [...(options.args ?? [])], {
        stdio,
        ...(options.env !== undefined ? { env: options.env } : {}),
        ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      });
    } catch (error) {
      // Invalid arguments (a NUL byte) and EMFILE-like failures throw rather than emit 'error'.
      return Promise.reject(toSpawnError(error as NodeJS.ErrnoException, options));
    }
    const { promise, resolve, reject } = Promise.withResolvers<SpawnedProcess>();
    const { promise: exited, resolve: resolveExit } = Promise.withResolvers<ExitResult>();
    child.once('error', (error: NodeJS.ErrnoException) => {
      // 'error' without 'spawn' first: the process never ran.
      if (child.pid === undefined) reject(toSpawnError(error, options));
    });
    child.once('spawn', () => {
      this.#running.add(child);
      const spawnNs = Number(process.hrtime.bigint() - queuedAt);
      resolve(
        new SpawnedProcess({
          pid: child.pid ?? 0,
          // child_process spawns synchronously on the JS thread: nothing waits in a queue.
          timings: { queuedNs: 0, spawnNs },
          stdout: child.stdout,
          stderr: child.stderr,
          exited,
          log: null,
          kill: (signal) => child.exitCode === null && child.signalCode === null && child.kill(signal),
        }),
      );
    });
    // 'exit', not 'close': the native launcher's exit does not wait for the pipes either.
    child.once('exit', (code, signal) => {
      this.#running.delete(child);
      resolveExit({
        code,
        signal,
        durationNs: Number(process.hrtime.bigint() - queuedAt),
        // child_process does not report the child's rusage.
        rusage: { userUs: 0, systemUs: 0, maxRssKb: 0 },
      });
      if (this.#running.size === 0) this.#drained?.();
    });
    return promise;
  }

  /** Refuses new spawns and resolves once every child has exited (kill them first if you cannot wait). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#running.size === 0) return;
    const { promise, resolve } = Promise.withResolvers<undefined>();
    this.#drained = () => resolve(undefined);
    await promise;
  }
}

// Errors the launcher raises. A failed spawn is a SpawnError shaped like Node's own spawn errors
// (`code`, `errno`, `syscall`, `path`, `spawnargs`), so code written against child_process can
// switch on the same codes; its `step` says which part of the spawn failed, and its message
// starts with it ('cgroup.procs: no such cgroup /sys/fs/cgroup/x, spawning sh (ENOENT)'), not with
// the program, which may never have been reached.
import util from 'node:util';

import type { NativeSpawnStep } from '../native/binding.js';

/**
 * The step of a spawn that failed (SpawnError.step): which option to look at, or which facility
 * of the host. `syscall` says which call within the step.
 *
 * - `'exec'`: the program. Not found (the PATH search included), not executable (EACCES,
 *   ENOEXEC), or its working directory missing (syscall 'chdir'). Look at `file`, `env.PATH`, `cwd`.
 * - `'stdio'`: stdout or stderr. An output file could not be opened ('open'), or the pipes made
 *   ('pipe2', 'dup2'; EMFILE: the process is out of fds).
 * - `'cgroup'`: the `cgroup` could not be joined ('cgroup.procs'; ENOENT: no such cgroup).
 * - `'filesystem'`: a sandbox's filesystem ('mount', 'pivot_root'). ENOENT or ENOTDIR: a path
 *   `sandbox.rootfs` or `sandbox.mounts` names, or /proc, /dev or /tmp in that root, is missing;
 *   EPERM: this process may not mount (it needs root with CAP_SYS_ADMIN).
 * - `'sandbox'`: the rest of a sandbox: namespaces and network ('network'), the task's ids and
 *   hostname ('identity'), rlimits ('prlimit'), seccomp ('seccomp'), the user namespace
 *   ('user_namespace', 'pipe2'), its init helper ('open'). Usually missing privileges.
 * - `'clone'`: making the process ('clone3', 'clone': EAGAIN at a process limit, ENOMEM; with a
 *   sandbox, EPERM when this process may not make namespaces), or the child's own setup before
 *   exec ('rt_sigprocmask', 'close_range').
 */
export type SpawnStep = NativeSpawnStep;

/**
 * What an errno means, as libuv says it ('no such file or directory'). Read through the module
 * object: a named import of getSystemErrorMessage (Node >= 22.12) would stop this file from even
 * loading on an older Node, before the native loader can say which Node is needed.
 */
export function errnoDescription(errno: number): string {
  return util.getSystemErrorMessage(-Math.abs(errno));
}

/** The fields a SpawnError is made from (its launcher makes it; a test double may too). */
export interface SpawnErrorInit {
  /** Either sign; stored negative, as Node does. */
  readonly errno: number;
  readonly syscall: string;
  readonly step: SpawnStep;
  readonly path: string;
  readonly spawnargs: readonly string[];
  /**
   * What failed, in words, for the message after `syscall: `; by default the errno's
   * description and the program ('permission denied, spawning sh').
   */
  readonly description?: string | undefined;
}

/**
 * A spawn that failed at one of its steps (`step`); nothing was left running and no zombie is
 * left. Shaped like Node's spawn errors (`code`, `errno`, `syscall`, `path`, `spawnargs`).
 */
export class SpawnError extends Error {
  /** 'ENOENT', 'EACCES', ...: what a program switches on. */
  readonly code: string;
  /** Negative, as in Node's errors (-2 for ENOENT). */
  readonly errno: number;
  /** The system call that failed, or what a group of them does: 'execve', 'chdir', 'open', 'cgroup.procs', 'mount', 'clone3', ... */
  readonly syscall: string;
  /** The step of the spawn that failed: see SpawnStep. */
  readonly step: SpawnStep;
  /** The executable as the caller named it. */
  readonly path: string;
  /** The arguments after argv[0], as the caller gave them. */
  readonly spawnargs: readonly string[];

  constructor(init: SpawnErrorInit) {
    const errno = -Math.abs(init.errno);
    const code = util.getSystemErrorName(errno);
    super(`${init.syscall}: ${init.description ?? `${errnoDescription(errno)}, spawning ${init.path}`} (${code})`);
    this.name = 'SpawnError';
    this.code = code;
    this.errno = errno;
    this.syscall = init.syscall;
    this.step = init.step;
    this.path = init.path;
    this.spawnargs = init.spawnargs;
  }
}

/** The launcher was closed before or while the call was made. */
export class LauncherClosedError extends Error {
  readonly code = 'ERR_LAUNCHER_CLOSED';
  constructor() {
    super('parafork: the launcher is closed');
    this.name = 'LauncherClosedError';
  }
}

/** An option failed validation; `code` follows Node's ERR_INVALID_ARG_* convention. */
export class InvalidSpawnOptionError extends TypeError {
  readonly code: 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE';
  constructor(code: 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE', message: string) {
    super(`parafork: ${message}`);
    this.name = 'InvalidSpawnOptionError';
    this.code = code;
  }
}

// Errors the launcher raises. A failed spawn is a SpawnError shaped like Node's own spawn errors
// (`code`, `errno`, `syscall`, `path`, `spawnargs`), so code written against child_process can
// switch on the same codes.
import { getSystemErrorName } from 'node:util';

export class SpawnError extends Error {
  /** 'ENOENT', 'EACCES', ...: what a program switches on. */
  readonly code: string;
  /** Negative, as in Node's errors (-2 for ENOENT). */
  readonly errno: number;
  /** The system call that failed: 'execve', 'chdir', 'open', 'clone3', ... */
  readonly syscall: string;
  /** The executable as the caller named it. */
  readonly path: string;
  readonly spawnargs: readonly string[];

  constructor(options: { errno: number; syscall: string; path: string; spawnargs: readonly string[]; detail?: string | undefined }) {
    const code = getSystemErrorName(-Math.abs(options.errno));
    const detail = options.detail === undefined ? '' : `: ${options.detail}`;
    super(`spawn ${options.path} ${code} (${options.syscall}${detail})`);
    this.name = 'SpawnError';
    this.code = code;
    this.errno = -Math.abs(options.errno);
    this.syscall = options.syscall;
    this.path = options.path;
    this.spawnargs = options.spawnargs;
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

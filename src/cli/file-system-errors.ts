// What the `parafork` command says when the machine refuses it a file or directory it needs: one
// line naming the path, what the system said and what to do, instead of a stack trace. Most often
// it is a user who is not root (`parafork run` and `agent` make namespaces, mounts, cgroups and
// root-only directories under /run/parafork), else a directory on a read-only or full file system.
import { accessSync, constants as fsConstants } from 'node:fs';

/** An error of a file system call, as Node's fs functions throw it: code, syscall and path. */
export interface FileSystemError {
  readonly code: string;
  readonly syscall: string;
  readonly path: string;
}

/** The codes this module explains; any other keeps its stack (it is a fault, not a setup problem). */
const explained: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
};

export function isExplainedFileSystemError(error: unknown): error is FileSystemError {
  const { code, syscall, path } = (error ?? {}) as { code?: unknown; syscall?: unknown; path?: unknown };
  return typeof code === 'string' && code in explained && typeof syscall === 'string' && typeof path === 'string';
}

/**
 * One line for the operator, without the "parafork: " prefix: what was refused, by what, and what
 * to do. `effectiveUid` is the process's (process.geteuid()).
 */
export function describeFileSystemError(error: FileSystemError, effectiveUid: number): string {
  const refused = `cannot ${error.syscall} ${error.path}: ${explained[error.code] ?? error.code} (${error.code})`;
  if ((error.code === 'EACCES' || error.code === 'EPERM') && effectiveUid !== 0) {
    return `${refused}. parafork needs root to sandbox Tasks (namespaces, mounts, cgroups; its state is in /run/parafork): run it as root, e.g. sudo scripts/parafork ...`;
  }
  if (error.code === 'ENOSPC' || error.code === 'EDQUOT') return `${refused}: free some space there and run it again`;
  return `${refused}: parafork keeps its state and the Tasks' logs there, so it must be writable by root (is it mounted read-only?)`;
}

/**
 * Why `parafork logs` may find nothing although the logs are there: the directories exist but this
 * user may not read them (they are root's, mode 0700: Task output may hold secrets). A sentence to
 * add to the not-found message (naming the first such directory), or undefined when every one that
 * exists is readable.
 */
export function unreadableLogDirectories(directories: readonly string[], effectiveUid: number): string | undefined {
  const unreadable = directories.find((directory) => {
    try {
      accessSync(directory, fsConstants.R_OK | fsConstants.X_OK);
      return false;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'EACCES';
    }
  });
  if (unreadable === undefined) return undefined;
  const who = effectiveUid === 0 ? 'this process' : `uid ${String(effectiveUid)}`;
  return `${unreadable} cannot be read by ${who}: the logs are root's, run parafork logs as root (sudo)`;
}

// The node's seccomp profiles (spec.sandbox.seccomp type Localhost): files below one directory
// (the agent's --seccomp-profile-dir), each read, checked and compiled once, then reused by every
// Task that names it until the file changes (its inode, size, mtime or ctime). Two files with the
// same content share one compiled filter.
import { createHash } from 'node:crypto';
import { constants as fsConstants, type BigIntStats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

import type { Logger } from 'pino';

import { SeccompFilter, type SeccompAttachPoint, type SeccompFilterSpec } from '../launcher/seccomp-filter.js';
import { parseSeccompProfile, SeccompProfileError } from './seccomp-profile.js';

/** The kubelet's directory for Localhost profiles; parafork reads the same files by default. */
export const defaultSeccompProfileDirectory = '/var/lib/kubelet/seccomp';

/** What the compile-time judgement of a profile's attach point means for its Tasks (SeccompAttachPoint), for the log. */
const attachPointNotes: Readonly<Record<SeccompAttachPoint, string>> = {
  privileged: 'attached while the child still holds CAP_SYS_ADMIN: a full net.core.bpf_jit_limit does not stop its Tasks',
  privilegedUnlessEmptyingUserKeyrings:
    "attached while the child still holds CAP_SYS_ADMIN, except when it empties a leased uid's keyrings (the profile does not allow keyctl): then last, where a full net.core.bpf_jit_limit fails the Task",
  last: "attached last, as the Task's user: it does not allow (SCMP_ACT_ALLOW) every call the child makes after taking its ids, so a full net.core.bpf_jit_limit fails its Tasks",
};

/** Larger than any real profile (Docker's default is ~20 KiB); a bigger file is a mistake. */
const maxProfileBytes = 1024 * 1024;
/** Compiled filters kept by content; past this many (files rewritten again and again) the cache starts over. */
const maxCachedContents = 256;

/** Why a profile cannot be used: InvalidSpec (the Task names a path it may not) or SandboxUnavailable (the node's file). */
export class SeccompProfileUnavailable extends Error {
  readonly reason: 'InvalidSpec' | 'SandboxUnavailable';

  constructor(reason: 'InvalidSpec' | 'SandboxUnavailable', message: string) {
    super(message);
    this.reason = reason;
    this.name = 'SeccompProfileUnavailable';
  }
}

export interface SeccompProfileStoreOptions {
  /** Absolute; localhostProfile paths are relative to it. */
  readonly directory: string;
  /** Told once per compiled profile about system call names this architecture lacks (skipped). */
  readonly logger?: Pick<Logger, 'info'>;
  /** Tests replace the compiler to count compilations. */
  readonly compile?: (spec: SeccompFilterSpec) => SeccompFilter;
}

interface CachedProfile {
  /** dev:ino:size:mtime:ctime of the file the filter was read from. */
  readonly version: string;
  readonly filter: SeccompFilter;
}

export class SeccompProfileStore {
  readonly directory: string;
  readonly #logger: Pick<Logger, 'info'> | undefined;
  readonly #compile: (spec: SeccompFilterSpec) => SeccompFilter;
  readonly #byPath = new Map<string, CachedProfile>();
  readonly #byContent = new Map<string, SeccompFilter>();

  constructor(options: SeccompProfileStoreOptions) {
    if (!path.isAbsolute(options.directory)) throw new TypeError(`the seccomp profile directory must be an absolute path, got ${JSON.stringify(options.directory)}`);
    this.directory = path.resolve(options.directory);
    this.#logger = options.logger;
    this.#compile = options.compile ?? ((spec) => SeccompFilter.compile(spec));
  }

  /** The compiled filter of `localhostProfile`; throws SeccompProfileUnavailable saying what is wrong. */
  async load(localhostProfile: string): Promise<SeccompFilter> {
    const file = this.#resolve(localhostProfile);
    const shown = `seccomp profile ${JSON.stringify(localhostProfile)} (${file})`;
    // The checks are made on the open file, and it is that file which is read: checked by path and
    // read by path again, a file renamed over it in between was compiled unchecked
    // (seccomp-profile-store-swap.test.ts). The path is looked at first only so that nothing but a
    // regular file is opened (opening a FIFO waits for a writer; a device's open may act).
    let handle: FileHandle;
    try {
      if (!(await stat(file)).isFile()) throw new SeccompProfileUnavailable('SandboxUnavailable', `${shown} is not a regular file`);
      handle = await open(file, fsConstants.O_RDONLY | fsConstants.O_NOCTTY | fsConstants.O_NONBLOCK);
    } catch (error) {
      if (error instanceof SeccompProfileUnavailable) throw error;
      throw this.#unreadable(shown, error);
    }
    let version: string;
    let source: Buffer;
    try {
      try {
        version = checkedVersion(await handle.stat({ bigint: true }), shown);
      } catch (error) {
        if (error instanceof SeccompProfileUnavailable) throw error;
        throw this.#unreadable(shown, error);
      }
      const cached = this.#byPath.get(file);
      if (cached?.version === version) return cached.filter;
      try {
        source = await handle.readFile();
      } catch (error) {
        throw this.#unreadable(shown, error);
      }
      // Grown since its stat, by its owner.
      if (source.length > maxProfileBytes) throw new SeccompProfileUnavailable('SandboxUnavailable', `${shown} is larger than ${maxProfileBytes} bytes`);
    } finally {
      await handle.close().catch(() => undefined);
    }
    const digest = createHash('sha256').update(source).digest('hex');
    let filter = this.#byContent.get(digest);
    if (filter === undefined) {
      try {
        filter = this.#compile(parseSeccompProfile(source.toString('utf8')));
      } catch (error) {
        const problem = error instanceof SeccompProfileError ? error.message : (error as Error).message;
        throw new SeccompProfileUnavailable('SandboxUnavailable', `${shown} is invalid: ${problem}`);
      }
      if (this.#byContent.size >= maxCachedContents) this.#byContent.clear();
      this.#byContent.set(digest, filter);
      this.#logger?.info(
        { profile: localhostProfile, instructions: filter.instructionCount, skipped: filter.unknownNames, attachPoint: filter.attachPoint },
        `seccomp profile compiled (skipped: names this architecture has no system call for; ${attachPointNotes[filter.attachPoint]})`,
      );
    }
    this.#byPath.set(file, { version, filter });
    return filter;
  }

  /** The file `localhostProfile` names, refusing any path that could leave the directory. */
  #resolve(localhostProfile: string): string {
    if (typeof localhostProfile !== 'string' || localhostProfile.length === 0) {
      throw new SeccompProfileUnavailable('InvalidSpec', 'sandbox.seccomp.localhostProfile is required with type Localhost');
    }
    if (localhostProfile.startsWith('/') || localhostProfile.split('/').includes('..') || localhostProfile.includes('\0')) {
      throw new SeccompProfileUnavailable('InvalidSpec', `sandbox.seccomp.localhostProfile must be a relative path without '..', got ${JSON.stringify(localhostProfile)}`);
    }
    const file = path.resolve(this.directory, localhostProfile);
    if (!file.startsWith(this.directory === '/' ? '/' : `${this.directory}/`) || file === this.directory) {
      throw new SeccompProfileUnavailable('InvalidSpec', `sandbox.seccomp.localhostProfile must name a file below the profile directory, got ${JSON.stringify(localhostProfile)}`);
    }
    return file;
  }

  #unreadable(shown: string, error: unknown): SeccompProfileUnavailable {
    const code = (error as NodeJS.ErrnoException).code;
    const problem = code === 'ENOENT' ? `does not exist on this node (profiles are read from the agent's --seccomp-profile-dir ${this.directory})` : `cannot be read: ${(error as Error).message}`;
    return new SeccompProfileUnavailable('SandboxUnavailable', `${shown} ${problem}`);
  }
}

/**
 * The cache version (dev:ino:size:mtime:ctime) of a profile file that passes the checks: a
 * regular file, not too large, owned by root or the agent's user and writable by its owner only.
 */
function checkedVersion(status: BigIntStats, shown: string): string {
  if (!status.isFile()) throw new SeccompProfileUnavailable('SandboxUnavailable', `${shown} is not a regular file`);
  if (status.size > BigInt(maxProfileBytes)) throw new SeccompProfileUnavailable('SandboxUnavailable', `${shown} is larger than ${maxProfileBytes} bytes`);
  // As sshd's StrictModes: a filter anyone else could rewrite confines nothing.
  if ((status.mode & 0o022n) !== 0n || (status.uid !== 0n && status.uid !== BigInt(process.getuid?.() ?? 0))) {
    throw new SeccompProfileUnavailable('SandboxUnavailable', `${shown} must be owned by root (or the agent's user) and writable by its owner only; fix it with chown root and chmod go-w`);
  }
  return `${status.dev}:${status.ino}:${status.size}:${status.mtimeNs}:${status.ctimeNs}`;
}

// The options of Launcher.spawn and their validation into a native request. Everything is checked
// here, before C++ sees it (and C++ checks again): wrong types reaching native code make
// hard-to-diagnose crashes, and a clear message here is worth more than one from the kernel.
import { isMainThread } from 'node:worker_threads';

import { nativeOutputModes, type NativeOutputMode, type NativeSpawnRequest } from '../native/binding.js';
import { toNativeSandbox, type InternalSandboxOptions, type SandboxOptions } from './sandbox-options.js';
import { InvalidSpawnOptionError } from './spawn-error.js';

/** Where a child's stdout or stderr goes. stdin is always /dev/null. */
export type OutputOption =
  | 'ignore'
  | 'pipe'
  | {
      /** Created if missing; truncated unless `append`. */
      readonly file: string;
      readonly append?: boolean;
    }
  | LogOutput;

/**
 * A log the native log pump writes (native/src/log_pump.h): each read of a pipe as a chunk tagged
 * with its stream and a timestamp (native/src/log_file.h), at most `maxBytes` on disk in two rotating files (`log` and `log.1`),
 * keeping the newest output. The child is never blocked on it nor killed for it. stdout and stderr
 * may share one log (the same `log` and `maxBytes`); SpawnedProcess.log tells when it is complete.
 */
export interface LogOutput {
  /** The log's path; its directory is made (one level) if missing. */
  readonly log: string;
  /** Defaults to defaultLogMaxBytes; at least minimumLogMaxBytes. */
  readonly maxBytes?: number;
  /**
   * Make the file at the first byte the process writes, so that a process that writes nothing
   * leaves no file (nor end chunk: SpawnedProcess.log still tells when it is complete, with
   * bytes 0). For many short processes that mostly print nothing (Task arrays): creating a file
   * each is the pump's main cost on a busy disk. Default false: the file is made at the spawn.
   */
  readonly createWhenWritten?: boolean;
}

/** 10 MiB, as the kubelet's containerLogMaxSize. */
export const defaultLogMaxBytes = 10 * 1024 * 1024;
/** Below this one record of a long line might not fit in half of the log (native/src/log_file.h). */
export const minimumLogMaxBytes = 64 * 1024;

/** What to start and how: the argument of Launcher.spawn. */
export interface SpawnOptions {
  /** The executable. Without a slash it is looked up in `env.PATH` (or this process's PATH). */
  readonly file: string;
  /** Arguments after argv[0] (which is `file`), as in child_process.spawn. */
  readonly args?: readonly string[];
  /** The child's whole environment; defaults to this process's (process.env). */
  readonly env?: Readonly<Record<string, string>>;
  /** Working directory; defaults to this process's. */
  readonly cwd?: string;
  /** Defaults to 'ignore'. */
  readonly stdout?: OutputOption;
  /** Defaults to 'ignore'. */
  readonly stderr?: OutputOption;
  /**
   * An existing cgroup v2 directory (e.g. /sys/fs/cgroup/my.slice/job-1): the child starts
   * inside it (clone3's CLONE_INTO_CGROUP), so its limits hold from its first instruction.
   */
  readonly cgroup?: string;
  /** Run the child sandboxed (see SandboxOptions); `cwd` is then a path inside the sandbox. */
  readonly sandbox?: SandboxOptions;
}

/**
 * SpawnOptions with what only parafork's own layers set (src/sandbox, src/tasks, benchmarks);
 * not exported from the package. Launcher.spawn checks these fields as it checks the rest.
 */
export interface InternalSpawnOptions extends SpawnOptions {
  /** cgroup v1 directories (one per controller, on hybrid hosts) the child joins before exec. */
  readonly cgroupsV1?: readonly string[];
  /**
   * Make `cgroup` and `cgroupsV1` first (an existing directory is kept) and write these limit
   * files in them, on a spawn thread: cgroupfs work stays off the JS thread. src/sandbox's
   * TaskCgroup.spawnOptions fills it in.
   */
  readonly cgroupSetup?: CgroupSetupOption;
  readonly sandbox?: InternalSandboxOptions;
  /**
   * Give the child a result file at fd 3 (result-file.ts): a memory file it may write a small
   * result to, read back through SpawnedProcess.resultFile once it has exited. Default false.
   */
  readonly resultFile?: boolean;
}

export interface CgroupFileOption {
  /** A file directly inside `cgroup` or one of `cgroupsV1`. */
  readonly path: string;
  readonly value: string;
  /** When the file already reads this (a reused cgroup), it is not written. */
  readonly readBack?: string;
  /** A refused write is ignored: a later entry makes the same setting in another order. */
  readonly mayFail?: boolean;
}

export interface CgroupSetupOption {
  /** Written in order. */
  readonly files: readonly CgroupFileOption[];
  /**
   * fds the caller keeps open for a reused cgroup's joins, so that the spawn thread need not open
   * them at every spawn: `cgroup`'s directory (O_PATH) and each of `cgroupsV1`'s `tasks` files, in
   * the same order. They must stay open until the spawn has settled. An fd whose cgroup was removed
   * meanwhile costs a second try with the paths (native/src/spawn_request.h).
   */
  readonly joinFds?: { readonly cgroup?: number | undefined; readonly cgroupsV1: readonly number[] } | undefined;
}

/**
 * The PATH searched when none is given, as execvp(3) defaults it: the launcher's when neither
 * `env.PATH` nor the agent's PATH is set, an agent's for Tasks whose env sets none, and
 * parafork-init's (native/src/init/parafork_init.c keeps the same list; a unit test compares them).
 */
export const defaultSearchPath = '/usr/local/bin:/usr/bin:/bin';

function invalidType(message: string): never {
  throw new InvalidSpawnOptionError('ERR_INVALID_ARG_TYPE', message);
}

function invalidValue(message: string): never {
  throw new InvalidSpawnOptionError('ERR_INVALID_ARG_VALUE', message);
}

/**
 * A string native code takes as it is: not empty unless allowed, and without NUL. The fast path
 * of checkString for the strings of every spawn (arguments, variables), whose names for the
 * message are made only when one is refused: made up front they cost every spawn a string each.
 */
function isPlainString(value: unknown, allowEmpty: boolean): value is string {
  return typeof value === 'string' && (allowEmpty || value.length !== 0) && !value.includes('\0');
}

function checkString(value: unknown, name: string, allowEmpty = false): string {
  if (typeof value !== 'string') invalidType(`${name} must be a string, got ${describe(value)}`);
  if (!allowEmpty && value.length === 0) invalidValue(`${name} must not be empty`);
  // execve(2) and open(2) would stop at a NUL and use a different string than the one given.
  if (value.includes('\0')) invalidValue(`${name} must not contain NUL bytes`);
  return value;
}

function checkStringList(value: unknown, name: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) invalidType(`${name} must be an array of strings, got ${describe(value)}`);
  return value.map((entry, index) => (isPlainString(entry, false) ? entry : checkString(entry, `${name}[${index}]`)));
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol' || typeof value === 'bigint' || value === undefined) return typeof value;
  // A caller's value, shown in part: an error message must stay a line a person can read.
  const shown = typeof value === 'number' ? String(value) : JSON.stringify(value); // NaN, not null
  return `${typeof value} ${shown.length > 100 ? `${shown.slice(0, 100)}...` : shown}`;
}

interface CheckedOutput {
  readonly mode: NativeOutputMode;
  readonly path: string;
  readonly logMaxBytes: number;
  readonly logCreateWhenWritten: boolean;
}

function checkOutput(value: unknown, name: string): CheckedOutput {
  if (value === undefined || value === 'ignore') return { mode: nativeOutputModes.ignore, path: '', logMaxBytes: 0, logCreateWhenWritten: false };
  if (value === 'pipe') return { mode: nativeOutputModes.pipe, path: '', logMaxBytes: 0, logCreateWhenWritten: false };
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && 'file' in value) {
    const { file, append } = value as { file: unknown; append?: unknown };
    const path = checkString(file, `${name}.file`);
    if (append !== undefined && typeof append !== 'boolean') invalidType(`${name}.append must be a boolean`);
    return { mode: append === true ? nativeOutputModes.fileAppend : nativeOutputModes.file, path, logMaxBytes: 0, logCreateWhenWritten: false };
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && 'log' in value) {
    const { log, maxBytes, createWhenWritten } = value as { log: unknown; maxBytes?: unknown; createWhenWritten?: unknown };
    const path = checkString(log, `${name}.log`);
    if (createWhenWritten !== undefined && typeof createWhenWritten !== 'boolean') invalidType(`${name}.createWhenWritten must be a boolean, got ${describe(createWhenWritten)}`);
    if (maxBytes !== undefined && (typeof maxBytes !== 'number' || !Number.isSafeInteger(maxBytes) || maxBytes < minimumLogMaxBytes)) {
      invalidValue(`${name}.maxBytes must be a whole number of at least ${minimumLogMaxBytes}, got ${describe(maxBytes)}`);
    }
    return { mode: nativeOutputModes.log, path, logMaxBytes: maxBytes ?? defaultLogMaxBytes, logCreateWhenWritten: createWhenWritten === true };
  }
  return invalidValue(`${name} must be 'ignore', 'pipe', { file } or { log }, got ${describe(value)}`);
}

/** stdout and stderr may share one log, never name two: one log per process. */
function checkSharedLog(stdout: CheckedOutput, stderr: CheckedOutput): CheckedOutput {
  if (stdout.mode !== nativeOutputModes.log) return stderr;
  if (stderr.mode === nativeOutputModes.log && (stderr.path !== stdout.path || stderr.logMaxBytes !== stdout.logMaxBytes || stderr.logCreateWhenWritten !== stdout.logCreateWhenWritten)) {
    invalidValue('stdout and stderr must name the same log (and maxBytes, createWhenWritten) when both go to a log: one log tags each line with its stream');
  }
  return stdout;
}

function checkEnvironment(env: unknown): { entries: string[]; path: string | undefined } {
  if (typeof env !== 'object' || env === null || Array.isArray(env)) invalidType(`env must be an object of strings`);
  // Own enumerable names, as Object.entries would give them, without a [name, value] array each.
  const names = Object.keys(env);
  const entries = new Array<string>(names.length);
  let path: string | undefined;
  for (let index = 0; index < names.length; index++) {
    const name = names[index] as string;
    if (name.length === 0 || name.includes('=') || name.includes('\0')) {
      invalidValue(`env has an invalid variable name ${JSON.stringify(name)}`);
    }
    const value: unknown = (env as Record<string, unknown>)[name];
    if (!isPlainString(value, true)) checkString(value, `env.${name}`, true);
    entries[index] = `${name}=${value as string}`;
    if (name === 'PATH') path = value as string;
  }
  return { entries, path };
}

/**
 * The agent's environment as the child inherits it when `env` is not given. On the main thread the
 * native side copies `environ` itself (null here): walking process.env costs 20+ us a spawn. A
 * worker thread's process.env is its own copy, so there it is walked here.
 */
function inheritedEnvironment(): string[] | null {
  if (isMainThread) return null;
  const entries: string[] = [];
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined) entries.push(`${name}=${value}`);
  }
  return entries;
}

/**
 * Frozen file lists already checked, by the directories they were checked against: a reused task
 * cgroup hands the same frozen list to spawn after spawn, and checking it again costs ~20 us.
 */
const checkedCgroupFiles = new WeakMap<object, { readonly directories: string; readonly setup: NonNullable<NativeSpawnRequest['cgroupSetup']> }>();

/**
 * The same for a frozen joinFds object (a pooled cgroup's, CgroupSetupOption.joinFds), with the
 * list it was checked with: the setup it makes is then the same object spawn after spawn.
 */
const checkedJoinFds = new WeakMap<object, { readonly files: object; readonly directories: string; readonly setup: NonNullable<NativeSpawnRequest['cgroupSetup']> }>();

function checkCgroupSetup(setup: unknown, directories: readonly string[], hasV2Cgroup: boolean): NonNullable<NativeSpawnRequest['cgroupSetup']> {
  if (typeof setup !== 'object' || setup === null || !Array.isArray((setup as { files?: unknown }).files)) invalidType('cgroupSetup must be { files: [...] }');
  const { files: givenFiles, joinFds } = setup as { files: unknown[]; joinFds?: unknown };
  const directoriesKey = directories.join('\0');
  const joinChecked = typeof joinFds === 'object' && joinFds !== null ? checkedJoinFds.get(joinFds) : undefined;
  if (joinChecked !== undefined && joinChecked.files === givenFiles && joinChecked.directories === directoriesKey) return joinChecked.setup;
  const fds = joinFds === undefined ? null : checkJoinFds(joinFds, hasV2Cgroup, directories.length - (hasV2Cgroup ? 1 : 0));
  const checked = checkedCgroupFiles.get(givenFiles);
  let result: NonNullable<NativeSpawnRequest['cgroupSetup']>;
  if (checked !== undefined && checked.directories === directoriesKey) {
    result = checked.setup;
  } else {
    result = checkCgroupSetupFiles(givenFiles, directories);
    // Only a list nobody can change afterwards (frozen, entries too) may skip the next check.
    if (Object.isFrozen(givenFiles) && givenFiles.every((entry) => Object.isFrozen(entry))) {
      checkedCgroupFiles.set(givenFiles, { directories: directoriesKey, setup: result });
    }
  }
  if (fds === null) return result;
  const withFds = { files: result.files, joinFds: fds };
  if (checkedCgroupFiles.get(givenFiles)?.setup === result && Object.isFrozen(joinFds) && Object.isFrozen((joinFds as { cgroupsV1: unknown }).cgroupsV1)) {
    checkedJoinFds.set(joinFds as object, { files: givenFiles, directories: directoriesKey, setup: withFds });
  }
  return withFds;
}

function checkFd(fd: unknown, what: string): number {
  if (!Number.isInteger(fd) || (fd as number) < 0 || (fd as number) > 0x7fffffff) invalidType(`${what} must be an fd, got ${describe(fd)}`);
  return fd as number;
}

function checkJoinFds(joinFds: unknown, hasV2Cgroup: boolean, v1Count: number): { cgroup: number; cgroupsV1: number[] } {
  if (typeof joinFds !== 'object' || joinFds === null) invalidType('cgroupSetup.joinFds must be { cgroup, cgroupsV1 }');
  const { cgroup, cgroupsV1 } = joinFds as { cgroup?: unknown; cgroupsV1?: unknown };
  if (cgroup !== undefined && !hasV2Cgroup) invalidValue('cgroupSetup.joinFds.cgroup needs cgroup');
  if (!Array.isArray(cgroupsV1) || (cgroupsV1.length !== 0 && cgroupsV1.length !== v1Count)) invalidValue('cgroupSetup.joinFds.cgroupsV1 must hold one fd per cgroupsV1 directory, or none');
  return {
    cgroup: cgroup === undefined ? -1 : checkFd(cgroup, 'cgroupSetup.joinFds.cgroup'),
    cgroupsV1: cgroupsV1.map((fd, index) => checkFd(fd, `cgroupSetup.joinFds.cgroupsV1[${index}]`)),
  };
}

function checkCgroupSetupFiles(givenFiles: readonly unknown[], directories: readonly string[]): NonNullable<NativeSpawnRequest['cgroupSetup']> {
  if (directories.length === 0) invalidValue('cgroupSetup needs cgroup or cgroupsV1 to make');
  for (const directory of directories) {
    if (!directory.startsWith('/')) invalidValue(`a cgroup to make must be an absolute path, got ${JSON.stringify(directory)}`);
  }
  const files = givenFiles.map((entry, index) => {
    if (typeof entry !== 'object' || entry === null) invalidType(`cgroupSetup.files[${index}] must be { path, value }`);
    const { path: filePath, value, readBack, mayFail } = entry as { path?: unknown; value?: unknown; readBack?: unknown; mayFail?: unknown };
    const checkedPath = checkString(filePath, `cgroupSetup.files[${index}].path`);
    const slash = checkedPath.lastIndexOf('/');
    const name = checkedPath.slice(slash + 1);
    if (!directories.includes(checkedPath.slice(0, slash)) || name === '' || name === '.' || name === '..') {
      invalidValue(`cgroupSetup.files[${index}].path must name a file directly inside cgroup or one of cgroupsV1, got ${JSON.stringify(checkedPath)}`);
    }
    if (mayFail !== undefined && typeof mayFail !== 'boolean') invalidType(`cgroupSetup.files[${index}].mayFail must be a boolean`);
    return {
      path: checkedPath,
      value: checkString(value, `cgroupSetup.files[${index}].value`),
      readBack: readBack === undefined ? '' : checkString(readBack, `cgroupSetup.files[${index}].readBack`),
      mayFail: mayFail === true,
    };
  });
  return { files, joinFds: null };
}

type CheckedCgroupOptions = Pick<NativeSpawnRequest, 'cgroup' | 'cgroupsV1' | 'cgroupSetup'>;

/**
 * The cgroup options checked, by the frozen cgroupSetup they came with, with the `cgroup` and
 * frozen `cgroupsV1` they were checked with: a pooled task cgroup hands the same three to spawn
 * after spawn (src/sandbox's TaskCgroup.spawnOptions), and checking them again cost each spawn
 * a list, a copy and a joined key of its directories.
 */
const checkedCgroupOptions = new WeakMap<object, { readonly cgroup: unknown; readonly cgroupsV1: object; readonly checked: CheckedCgroupOptions }>();

function checkCgroupOptions(cgroup: unknown, cgroupsV1: unknown, cgroupSetup: unknown): CheckedCgroupOptions {
  const known = typeof cgroupSetup === 'object' && cgroupSetup !== null ? checkedCgroupOptions.get(cgroupSetup) : undefined;
  if (known !== undefined && known.cgroup === cgroup && known.cgroupsV1 === cgroupsV1) return known.checked;
  const checkedCgroup = cgroup === undefined ? '' : checkString(cgroup, 'cgroup');
  const checkedCgroupsV1 = checkStringList(cgroupsV1, 'cgroupsV1');
  const checked: CheckedCgroupOptions = {
    cgroup: checkedCgroup,
    cgroupsV1: checkedCgroupsV1,
    cgroupSetup: cgroupSetup === undefined ? null : checkCgroupSetup(cgroupSetup, [checkedCgroup, ...checkedCgroupsV1].filter((directory) => directory !== ''), checkedCgroup !== ''),
  };
  // Only what nobody can change afterwards may skip the next check: the setup (its files and
  // fds, checkCgroupSetup's own condition: it then hands back the same checked setup) and the
  // directories list.
  if (
    checked.cgroupSetup !== null && Object.isFrozen(cgroupSetup) && Array.isArray(cgroupsV1) && Object.isFrozen(cgroupsV1) &&
    checkCgroupSetup(cgroupSetup, [checkedCgroup, ...checkedCgroupsV1].filter((directory) => directory !== ''), checkedCgroup !== '') === checked.cgroupSetup
  ) {
    checkedCgroupOptions.set(cgroupSetup as object, { cgroup, cgroupsV1, checked });
  }
  return checked;
}

/**
 * Checks `options` and builds the native request (without its id). Throws InvalidSpawnOptionError.
 * `maskedPathsByDefault`: a sandbox's masked paths when it gives none (checkMaskedPaths).
 */
export function toNativeRequest(options: unknown, maskedPathsByDefault?: string): Omit<NativeSpawnRequest, 'id'> {
  if (typeof options !== 'object' || options === null) invalidType('spawn takes an options object');
  const { file, args, env, cwd, stdout, stderr, cgroup, cgroupsV1, cgroupSetup, sandbox, resultFile } = options as Record<string, unknown>;
  if (resultFile !== undefined && typeof resultFile !== 'boolean') invalidType(`resultFile must be a boolean, got ${describe(resultFile)}`);
  const checkedFile = checkString(file, 'file');
  const argv = [checkedFile];
  if (args !== undefined) {
    if (!Array.isArray(args)) invalidType(`args must be an array of strings, got ${describe(args)}`);
    for (let index = 0; index < args.length; index++) {
      const arg: unknown = args[index];
      argv.push(isPlainString(arg, true) ? arg : checkString(arg, `args[${index}]`, true));
    }
  }
  const given = env === undefined ? undefined : checkEnvironment(env);
  // process.env.PATH is a getenv through a proxy (microseconds): read only when there is a search.
  const searchPath = checkedFile.includes('/') ? '' : ((given ? given.path : process.env.PATH) ?? defaultSearchPath);
  const stdoutTarget = checkOutput(stdout, 'stdout');
  const stderrTarget = checkOutput(stderr, 'stderr');
  const log = checkSharedLog(stdoutTarget, stderrTarget);
  const cgroups = checkCgroupOptions(cgroup, cgroupsV1, cgroupSetup);
  return {
    file: checkedFile,
    searchPath,
    argv,
    env: given ? given.entries : inheritedEnvironment(),
    cwd: cwd === undefined ? '' : checkString(cwd, 'cwd'),
    stdoutMode: stdoutTarget.mode,
    stdoutPath: stdoutTarget.path,
    stderrMode: stderrTarget.mode,
    stderrPath: stderrTarget.path,
    logMaxBytes: log.logMaxBytes,
    logCreateWhenWritten: log.logCreateWhenWritten,
    resultFile: resultFile === true,
    cgroup: cgroups.cgroup,
    cgroupsV1: cgroups.cgroupsV1,
    cgroupSetup: cgroups.cgroupSetup,
    sandbox: sandbox === undefined ? null : toNativeSandbox(sandbox, cwd === undefined ? undefined : checkString(cwd, 'cwd'), maskedPathsByDefault),
  };
}

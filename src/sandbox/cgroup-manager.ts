// Task cgroups, made only in one group (--cgroup-parent, default `parafork`) beneath the agent's
// own cgroup in each hierarchy as /proc/self/cgroup shows it (cgroup-layout.ts). Under a private
// cgroup namespace that path is `/`, so with the node's cgroupfs mounted the group sits at the
// root of the node's tree (docs/deployment.md, Privileges). Nothing else in the tree is written. Every task gets a cgroup v2 directory when the host mounts cgroup2 (the child starts
// in it through CLONE_INTO_CGROUP, and cgroup.kill ends its whole tree), and each limit goes to
// the hierarchy that has its controller: v2 where it does, else the v1 one (hybrid hosts).
//
// Nothing here writes cgroupfs on the way to a spawn: a TaskCgroup carries the directories and
// limit files as spawn options, and the Launcher's spawn thread makes and writes them before the
// clone. Task cgroups are reused through an idle pool (see CgroupManager.create).
//
// cgroup v2 forbids processes in a cgroup whose controllers are delegated to children ("no
// internal processes"), except at the root: an agent in a non-root cgroup first moves itself into
// a leaf beside the task group, so its own cgroup can enable controllers for the tasks.
//
// A group has one owner (issue 12, finding 12): prepare() takes an exclusive flock(2) on each of
// the group's directories before it writes anything, and holds them for the manager's life (the
// kernel lets go when the process ends, however it ends). A second agent on the same group, in
// this container or another that mounts the same cgroupfs, is refused with CgroupGroupInUseError
// naming the owner, so the leftover sweep only ever ends the Tasks of an owner that is gone.
import { closeSync, constants as fsConstants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { rmdir } from 'node:fs/promises';
import path from 'node:path';

import { FileLock, lockHolder } from '../launcher/file-lock.js';
import type { CgroupFileOption, CgroupSetupOption, InternalSpawnOptions } from '../launcher/spawn-options.js';
import { CgroupFileReader } from './cgroup-file-reader.js';
import { limitControllers, placeControllers, type CgroupLayout, type ControllerPlacement, type LimitController } from './cgroup-layout.js';

export interface CgroupLimits {
  readonly memoryBytes?: number;
  /** CPU in thousandths of a core: 500 is half a core (cpu.max / cfs_quota_us per 100 ms period). */
  readonly cpuMillicores?: number;
  readonly pids?: number;
  /**
   * Most TCP and UDP buffer memory the task's sockets may hold, where the memory controller is on
   * cgroup v1: memory.kmem.tcp.limit_in_bytes of its memory cgroup, a counter apart from
   * memory.limit_in_bytes, and the only thing that makes v1 charge socket buffers to a cgroup at
   * all (writing it turns the accounting on; without it they count only against the node's
   * tcp_mem and udp_mem). Only with memoryBytes (it is the same cgroup). Not written on cgroup v2,
   * which charges socket buffers to memory.max with the rest, nor where a kernel has no such file.
   * Set for a Task with a network (task-sandbox.ts, withSocketBufferLimit); a task without it
   * leaves a reused cgroup's value as it is (#limitFiles says why).
   */
  readonly socketBufferBytes?: number;
}

const cpuPeriodMicroseconds = 100_000;

/** Where a task's memory controller lives: its OOM counter is read there. */
interface MemoryLocation {
  readonly version: 'v2' | 'v1';
  readonly directory: string;
  /** memory.events (v2) or memory.oom_control (v1): joined once, as it is read after every task. */
  readonly oomCounterFile: string;
}

function memoryLocation(version: 'v2' | 'v1', directory: string): MemoryLocation {
  return { version, directory, oomCounterFile: path.join(directory, version === 'v2' ? 'memory.events' : 'memory.oom_control') };
}

/** Reads a cgroupfs file whole: readFileSync, or a pooled cgroup's kept fd (cgroup-file-reader.ts). */
type CgroupFileRead = (file: string) => string;

const readWithoutKeeping: CgroupFileRead = (file) => readFileSync(file, 'utf8');

function readOomKills(memory: MemoryLocation, read: CgroupFileRead): number {
  return readCounter(memory.oomCounterFile, 'oom_kill', read);
}

/**
 * The most memory the cgroup has held, as its memory controller charges it against the limit
 * (resident memory, page cache and kernel memory of its processes): memory.peak on v2 (Linux 5.19),
 * memory.max_usage_in_bytes on v1. Undefined when unreadable.
 */
function readMemoryPeak(memory: MemoryLocation): number | undefined {
  try {
    const value = Number(readFileSync(path.join(memory.directory, memory.version === 'v2' ? 'memory.peak' : 'memory.max_usage_in_bytes'), 'utf8').trim());
    return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Reads "key value" lines (memory.events, memory.oom_control) into a number for `key`. */
function readCounter(file: string, key: string, read: CgroupFileRead): number {
  try {
    const line = read(file).split('\n').find((entry) => entry.startsWith(`${key} `));
    return line === undefined ? 0 : Number(line.slice(key.length + 1));
  } catch {
    return 0;
  }
}

/** What a TaskCgroup last read: spares remove() a second read of each (~15 us on the JS thread). */
interface SeenState {
  empty: boolean;
  oomCounter: number | undefined;
}

/** A task cgroup's directories, kept by its manager between tasks (see CgroupManager.create). */
interface CgroupSlot {
  readonly v2Directory: string | undefined;
  readonly v1ByController: ReadonlyMap<LimitController, string>;
  /** Never used by a task: every limit file holds the kernel's default. */
  fresh: boolean;
  /** The OOM-kill counter when the slot went idle: earlier tasks' kills are not this task's. */
  oomKillsBefore: number;
  readonly v1Directories: readonly string[];
  /**
   * The limit files last listed for a reuse, and for which limits (most tasks ask for the same),
   * with what a TaskCgroup of those limits is given each time (made once: a Task array's indexes
   * reuse slots at the array's rate).
   */
  reused?: {
    readonly limitsKey: string;
    readonly files: readonly CgroupFileOption[];
    readonly joinedV1: readonly string[];
    readonly memory: MemoryLocation | undefined;
    readonly sharedV1Directories: readonly string[];
    readonly giveBack: (seen: SeenState) => boolean;
    /** The slot's and the group's join fds for these directories (SlotJoinFds), once opened. */
    joinFds?: CgroupSetupOption['joinFds'];
    /**
     * TaskCgroup.spawnOptions for these limits and join fds, made once and frozen (whole): the
     * same object spawn after spawn, whose check the Launcher then remembers (spawn-options.ts).
     */
    spawnOptions?: TaskCgroup['spawnOptions'] | undefined;
  } | undefined;
  /** The files read after each task (cgroup.events, the OOM counter), by path, each with its fd kept while the slot lives. */
  readonly readers: Map<string, CgroupFileReader>;
  /**
   * What its tasks join through, by directory, each kept open while the slot lives (opened at its
   * first reuse, when the directories exist): its v2 directory (O_PATH, for CLONE_INTO_CGROUP) and
   * its v1 `tasks` files. The spawn thread then writes them without opening them again: a path
   * walk and a kernfs open and close each, ~20 us of a Task array's index (docs/benchmarks.md).
   */
  readonly joinFds: Map<string, number>;
  /**
   * Its v2 cgroup.events, joined once per slot (its OOM counter's path is joined once per set of
   * limits, in `reused.memory`): joining them again after every task cost each index ~2 KB of
   * garbage and a fresh string to hash for the readers' lookup (docs/benchmarks.md, Task arrays).
   */
  readonly eventsFile: string | undefined;
  /** Its directories (removed with it), and its TaskCgroups' callbacks: the same for every task it holds. */
  readonly ownedDirectories: readonly string[];
  readonly released: (removed: boolean) => void;
  readonly read: CgroupFileRead;
}

/** What Launcher.spawn is given to make a task's cgroup and start the task in it (TaskCgroup.spawnOptions). */
function cgroupSpawnOptions(
  v2Directory: string | undefined,
  v1Directories: readonly string[],
  options: { readonly limitFiles?: readonly CgroupFileOption[]; readonly sharedV1Directories?: readonly string[]; readonly joinFds?: CgroupSetupOption['joinFds'] },
): TaskCgroup['spawnOptions'] {
  return Object.freeze({
    ...(v2Directory !== undefined ? { cgroup: v2Directory } : {}),
    cgroupsV1: Object.freeze([...v1Directories, ...(options.sharedV1Directories ?? [])]),
    ...(v2Directory !== undefined || v1Directories.length > 0
      ? { cgroupSetup: Object.freeze(options.joinFds === undefined ? { files: options.limitFiles ?? [] } : { files: options.limitFiles ?? [], joinFds: options.joinFds }) }
      : {}),
  });
}

export class TaskCgroup {
  /** The cgroup v2 directory, if the host has cgroup2. */
  readonly v2Directory: string | undefined;
  /** The cgroup v1 directories, one per controller placed on v1. */
  readonly v1Directories: readonly string[];
  /**
   * What Launcher.spawn needs to make this cgroup, set its limits and start the task in it: the
   * spawn thread does the cgroupfs work (see CgroupManager.create).
   */
  readonly spawnOptions: Pick<InternalSpawnOptions, 'cgroup' | 'cgroupsV1' | 'cgroupSetup'>;
  readonly #memory: MemoryLocation | undefined;
  readonly #oomKillsBefore: number;
  readonly #memoryPeakIsOwn: boolean;
  readonly #hasKillFile: boolean | undefined;
  readonly #giveBack: ((seen: SeenState) => boolean) | undefined;
  readonly #onReleased: ((removed: boolean) => void) | undefined;
  readonly #read: CgroupFileRead;
  readonly #eventsFile: string | undefined;
  readonly #ownedDirectories: readonly string[];
  readonly #trackRemoval: ((removal: Promise<unknown>) => void) | undefined;
  #released = false;
  #removing: Promise<boolean> | undefined;
  #killed = false;
  #lastOomKills = 0;
  /** What killAll and oomKills read last, so that remove() need not read it again. */
  readonly #seen: SeenState = { empty: false, oomCounter: undefined };

  constructor(
    v2Directory: string | undefined,
    v1Directories: readonly string[],
    memory: MemoryLocation | undefined,
    options: {
      limitFiles?: readonly CgroupFileOption[];
      oomKillsBefore?: number;
      /** The memory peak counts this task only (a new cgroup, or one whose peak was reset). */
      memoryPeakIsOwn?: boolean;
      hasKillFile?: boolean;
      giveBack?: (seen: SeenState) => boolean;
      /** Removed by remove() when not given back; default the task's own directories. */
      ownedDirectories?: readonly string[];
      /** Told of each removeAsync() under way, so that the group is removed only after them. */
      trackRemoval?: (removal: Promise<unknown>) => void;
      /**
       * v1 directories of the group itself that the task joins too (its cpu cgroup: see
       * CgroupManager.create); every task's, so never listed, killed or removed through this one.
       */
      sharedV1Directories?: readonly string[];
      /** Called once, when remove() has given the cgroup back (false) or removed it (true). */
      released?: (removed: boolean) => void;
      /** How its cgroupfs files are read; default readFileSync. */
      read?: CgroupFileRead;
      /** Its v2 cgroup.events, joined already (a pooled slot's); default joined here. */
      eventsFile?: string | undefined;
      /** fds its keeper holds open for the joins (a pooled slot's: CgroupSlot.joinFds). */
      joinFds?: CgroupSetupOption['joinFds'];
      /** Its spawnOptions made already from the same directories, files and fds (a pooled slot's); default made here. */
      spawnOptions?: TaskCgroup['spawnOptions'];
    } = {},
  ) {
    this.v2Directory = v2Directory;
    this.v1Directories = v1Directories;
    this.#memory = memory;
    this.#oomKillsBefore = options.oomKillsBefore ?? 0;
    this.#memoryPeakIsOwn = options.memoryPeakIsOwn ?? false;
    this.#hasKillFile = options.hasKillFile;
    this.#giveBack = options.giveBack;
    this.#onReleased = options.released;
    this.#read = options.read ?? readWithoutKeeping;
    this.#eventsFile = options.eventsFile ?? (v2Directory === undefined ? undefined : path.join(v2Directory, 'cgroup.events'));
    this.#ownedDirectories = options.ownedDirectories ?? [...(v2Directory === undefined ? [] : [v2Directory]), ...v1Directories];
    this.#trackRemoval = options.trackRemoval;
    this.spawnOptions = options.spawnOptions ?? cgroupSpawnOptions(v2Directory, v1Directories, options);
  }

  /** How many times the kernel's OOM killer killed a process of this task. */
  oomKills(): number {
    if (!this.#memory || this.#released) return this.#lastOomKills;
    this.#seen.oomCounter = readOomKills(this.#memory, this.#read);
    this.#lastOomKills = this.#seen.oomCounter - this.#oomKillsBefore;
    return this.#lastOomKills;
  }

  /**
   * The most memory the task's cgroup held (readMemoryPeak), read once its processes are gone and
   * before remove(); undefined without a memory cgroup, or when the peak may be an earlier task's
   * (a reused cgroup v2 directory: memory.peak resets only for the fd that wrote it).
   */
  memoryPeakBytes(): number | undefined {
    if (!this.#memory || this.#released || !this.#memoryPeakIsOwn) return undefined;
    return readMemoryPeak(this.#memory);
  }

  /** SIGKILL to every process of the task: cgroup.kill on v2 (Linux 5.14), else each pid listed. */
  killAll(): void {
    if (this.#released) return; // the directories may hold another task by now
    if (this.v2Directory !== undefined && (this.#hasKillFile ?? existsSync(path.join(this.v2Directory, 'cgroup.kill')))) {
      try {
        // Only a populated cgroup is killed: Linux (seen on 6.18) then SIGKILLs every later child
        // started in it with CLONE_INTO_CGROUP (its kill sequence number moved on), so a killed
        // cgroup is never reused, and the usual call after an exit must not kill an empty one.
        if (this.#eventsFile !== undefined && this.#read(this.#eventsFile).includes('populated 0')) {
          this.#seen.empty = true; // nothing can join it again: its task is over
          return;
        }
        writeFileSync(path.join(this.v2Directory, 'cgroup.kill'), '1');
        this.#killed = true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error; // never made: the spawn failed first
      }
      return;
    }
    for (const directory of [this.v2Directory, ...this.v1Directories]) {
      if (directory === undefined || !existsSync(directory)) continue;
      for (const pid of readFileSync(path.join(directory, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
  }

  /**
   * Gives the cgroup up once its processes are gone: back to its manager's idle pool (a later
   * task reuses it) or, past the pool's size, its directories removed. False if a process is
   * still in one (try again after killAll). The object must not be used afterwards.
   */
  remove(): boolean {
    if (this.#released || this.#gaveBack()) return true;
    let removed = true;
    for (const directory of this.#ownedDirectories) {
      if (!existsSync(directory)) continue;
      try {
        rmdirSync(directory);
      } catch {
        removed = false;
      }
    }
    return this.#removed(removed);
  }

  /** Whether the pool took the cgroup back (not after a kill: what was killed may linger). */
  #gaveBack(): boolean {
    if (this.#killed || this.#giveBack?.(this.#seen) !== true) return false;
    this.#released = true;
    this.#onReleased?.(false);
    return true;
  }

  /** Records how a removal of the directories ended; a failed one may be tried again. */
  #removed(removed: boolean): boolean {
    this.#released = removed;
    if (removed) this.#onReleased?.(true);
    return removed;
  }

  /**
   * remove(), with the directories' rmdir(2) on the thread pool: a cgroupfs rmdir costs ~0.2-0.5
   * ms of kernel time each (v2 and every v1 hierarchy: up to four a task), under the kernel's
   * cgroup_mutex that the spawn threads' mkdirs take too, so 1,000 Tasks ending together held the
   * JS thread for seconds in all (issue 15's event-loop bar). Resolves to what remove() returns.
   */
  async removeAsync(): Promise<boolean> {
    // A second call while the first one's rmdirs are under way waits for them (once released).
    this.#removing ??= this.#removeOnThreadPool();
    const removed = await this.#removing;
    if (!removed) this.#removing = undefined;
    return removed;
  }

  async #removeOnThreadPool(): Promise<boolean> {
    if (this.#released || this.#gaveBack()) return true;
    const removal = Promise.all(this.#ownedDirectories.map((directory) => rmdir(directory).then(
      () => true,
      // Never made (the spawn failed first) is removed.
      (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT',
    )));
    this.#trackRemoval?.(removal);
    return this.#removed((await removal).every(Boolean));
  }
}

/** The reader of one of a slot's files, made at its first read. */
function readerOf(slot: CgroupSlot, file: string): CgroupFileReader {
  let reader = slot.readers.get(file);
  if (reader === undefined) {
    reader = new CgroupFileReader(file);
    slot.readers.set(file, reader);
  }
  return reader;
}

/** Closes what a slot keeps open (its directories go, or the pool lets go of it). */
function closeReaders(slot: CgroupSlot): void {
  for (const reader of slot.readers.values()) reader.close();
  slot.readers.clear();
  closeJoinFds(slot.joinFds);
  if (slot.reused !== undefined) {
    slot.reused.joinFds = undefined;
    slot.reused.spawnOptions = undefined;
  }
}

function closeJoinFds(fds: Map<string, number>): void {
  for (const fd of fds.values()) closeSync(fd);
  fds.clear();
}

/** Not in fs.constants: open(2)'s O_PATH on Linux (x86-64, arm64). */
const openPath = 0o10000000;

/**
 * The fd `directory` is joined through, opened at the first ask and kept in `fds`: the directory
 * itself (O_PATH) for cgroup v2, its `tasks` file for v1 (native/src/cgroup_join.cc says why not
 * cgroup.procs). Undefined when it cannot be opened: the spawn thread then opens it itself.
 */
function joinFd(fds: Map<string, number>, directory: string, version: 'v2' | 'v1'): number | undefined {
  let fd = fds.get(directory);
  if (fd === undefined) {
    try {
      fd = version === 'v2' ? openSync(directory, openPath | fsConstants.O_DIRECTORY) : openSync(path.join(directory, 'tasks'), fsConstants.O_WRONLY);
    } catch {
      return undefined;
    }
    fds.set(directory, fd);
  }
  return fd;
}

/** The group belongs to another live process: a second agent on it would sweep the first one's Tasks. */
export class CgroupGroupInUseError extends Error {
  readonly code = 'ERR_PARAFORK_CGROUP_GROUP_IN_USE';
  /** The locked directory, and its holder where /proc/locks shows it. */
  readonly directory: string;
  readonly holder: { readonly pid: number; readonly command: string | undefined } | undefined;

  /**
   * `nested`: the held directory is not the group's own but another owner's group that holds it
   * or lies inside it (whose start-up sweep, or this one's, would end the inner one's Tasks).
   */
  constructor(group: string, directory: string, nested?: { readonly relation: 'holds' | 'lies inside'; readonly group: string }) {
    const holder = lockHolder(directory);
    const owner = holder === undefined
      ? 'a process this one cannot see (another container\'s pid namespace)'
      : `pid ${holder.pid}${holder.command === undefined ? '' : `: ${holder.command}`}`;
    super(nested === undefined
      ? `the cgroup group ${group} (${directory}) belongs to another running parafork, ${owner}; give this one another --cgroup-parent, or stop that one first`
      : `the cgroup group ${group} ${nested.relation} ${nested.group}, the cgroup group of another running parafork, ${owner} (${directory}): the outer group's owner would end the inner one's Tasks as leftovers; give this one a --cgroup-parent beside that one, or stop that one first`);
    this.name = 'CgroupGroupInUseError';
    this.directory = directory;
    this.holder = holder;
  }
}

export interface CgroupManagerOptions {
  readonly layout: CgroupLayout;
  /** A path relative to the agent's own cgroup in each hierarchy; default 'parafork'. */
  readonly group?: string;
  /**
   * Idle task cgroups kept for reuse (see create); default 64; 0 removes each after its task.
   * Past it, the pool holds what the recent peak of task cgroups in use needs (see create).
   */
  readonly idleCgroups?: number;
  /**
   * Most processes and threads of all the group's tasks together: the group's pids.max, which
   * the kernel applies to every cgroup beneath it, on v1 as on v2. Undefined: no budget.
   */
  readonly tasksPidsMax?: number | undefined;
  /** Monotonic milliseconds (performance.now()); a test's clock. */
  readonly clock?: () => number;
}

/**
 * The lock on a group directory, made first if missing; undefined when another process holds it.
 * Made again when its last owner removes it between our mkdir and our lock (an owner's exit).
 */
function lockDirectory(directory: string): FileLock | undefined {
  for (let attempt = 0; ; attempt++) {
    mkdirSync(directory, { recursive: true });
    try {
      return FileLock.tryAcquire(directory);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 10) throw error;
    }
  }
}

/** A cgroup hierarchy as /proc/PID/cgroup names it: v2 (no controller), or the v1 one of `controller`. */
interface HierarchyOf {
  readonly mountPoint: string;
  readonly controller: LimitController | undefined;
}

/** The root (the process's own cgroup) and group directory of the first v1 hierarchy claimed, if any. */
function firstV1Claim(v1: CgroupLayout['v1'], bases: ReadonlyMap<LimitController, string>): { readonly root: string; readonly directory: string; readonly hierarchy: HierarchyOf } | undefined {
  for (const [controller, directory] of bases) {
    const hierarchy = v1.get(controller);
    if (hierarchy) return { root: path.join(hierarchy.mountPoint, hierarchy.ownPath), directory, hierarchy: { mountPoint: hierarchy.mountPoint, controller } };
  }
  return undefined;
}

/** Whether process `pid` lives in `directory` or below it, in `hierarchy` (false when it cannot be read). */
function livesBelow(pid: number, directory: string, hierarchy: HierarchyOf): boolean {
  let lines: string[];
  try {
    lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
  } catch {
    return false;
  }
  for (const line of lines) {
    const [id, controllers, ...rest] = line.split(':');
    const matches = hierarchy.controller === undefined ? id === '0' && controllers === '' : (controllers ?? '').split(',').includes(hierarchy.controller);
    if (!matches) continue;
    const where = path.join(hierarchy.mountPoint, rest.join(':'));
    return where === directory || where.startsWith(`${directory}/`);
  }
  return false;
}

/** Whether another open file description holds `directory`'s lock (false when it is gone). */
function heldByAnother(directory: string): boolean {
  let lock: FileLock | undefined;
  try {
    lock = FileLock.tryAcquire(directory);
  } catch {
    return false; // removed meanwhile
  }
  if (lock === undefined) return true;
  lock.release();
  return false;
}

/**
 * Another live owner's group nested with `group` (directory `directory` below `root`, the
 * process's own cgroup): a locked directory above it, up to `root`, or anywhere below it (held by
 * a process that does not live in the group itself). The
 * lock keeps owners off one group, and nesting off it: an owner's start-up sweep takes every
 * directory below its group for a leftover task cgroup and kills it, its whole subtree on cgroup
 * v2 (red team, session 16: `--cgroup-parent G` ended the Tasks of a running agent on `G/inner`).
 */
function nestedOwner(root: string, group: string, directory: string, hierarchy: HierarchyOf): { readonly relation: 'holds' | 'lies inside'; readonly group: string; readonly directory: string } | undefined {
  const segments = path.normalize(group).split('/').filter((segment) => segment !== '' && segment !== '.');
  for (let length = 1; length < segments.length; length++) {
    const outer = path.join(root, ...segments.slice(0, length));
    if (heldByAnother(outer)) return { relation: 'lies inside', group: segments.slice(0, length).join('/'), directory: outer };
  }
  const pending = [directory];
  for (let current = pending.pop(); current !== undefined; current = pending.pop()) {
    let entries;
    try {
      entries = readdirSync(current, { withFileTypes: true });
    } catch {
      continue; // removed meanwhile
    }
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const inner = path.join(current, entry.name);
      if (heldByAnother(inner)) {
        // Held from inside the group (a leftover Task's process with the cgroupfs mounted, a
        // privileged one): no owner, and the sweep ends it; an owner lives outside its group.
        const holder = lockHolder(inner);
        if (holder === undefined || !livesBelow(holder.pid, directory, hierarchy)) return { relation: 'holds', group: path.join(group, path.relative(directory, inner)), directory: inner };
      }
      pending.push(inner);
    }
  }
  return undefined;
}

/** The v1 limit on a memory cgroup's socket buffers (CgroupLimits.socketBufferBytes). */
const v1SocketLimitFile = 'memory.kmem.tcp.limit_in_bytes';
/** What a v1 memory limit of "none" reads back as: PAGE_COUNTER_MAX pages of 4 KiB. */
const v1UnlimitedMemory = '9223372036854771712';
/** How long a peak of task cgroups in use keeps its cgroups in the idle pool: one to two of these. */
const peakWindowMs = 30_000;
const pageBytes = 4096;

export class CgroupManager {
  readonly placement: ControllerPlacement;
  readonly #layout: CgroupLayout;
  readonly #group: string;
  readonly #maxIdle: number;
  readonly #tasksPidsMax: number | undefined;
  #prepared = false;
  #v2Base: string | undefined;
  readonly #v1Bases = new Map<LimitController, string>();
  #swapLimitFile = false;
  /** Whether the task cgroups have memory.kmem.tcp.limit_in_bytes (v1, a kernel that still has it). */
  #socketLimitFile = false;
  #hasKillFile = false;
  /** Idle task cgroups, most recently used last (its memory is the likeliest still cached). */
  #idle: CgroupSlot[] = [];
  /** Task cgroups made by create() and not yet given back or removed. */
  #inUse = 0;
  /** The most in use at once in the current window of peakWindowMs, and in the one before. */
  #peakInUse = 0;
  #previousPeakInUse = 0;
  #peakWindowStartedAt: number;
  readonly #clock: () => number;
  /** The group's directories, locked by prepare(): the group is this process's alone. */
  #locks: FileLock[] = [];
  /** Task cgroups being removed by TaskCgroup.removeAsync. */
  readonly #removals = new Set<Promise<unknown>>();
  /** The group's own v1 cgroups that tasks join (its cpu cgroup), through fds kept as a slot keeps its own. */
  readonly #groupJoinFds = new Map<string, number>();

  constructor(options: CgroupManagerOptions) {
    this.#layout = options.layout;
    this.#group = options.group ?? 'parafork';
    if (this.#group.split('/').includes('..') || path.isAbsolute(this.#group)) throw new Error(`the cgroup group must be a relative path without '..', got ${this.#group}`);
    this.#maxIdle = options.idleCgroups ?? 64;
    if (!Number.isInteger(this.#maxIdle) || this.#maxIdle < 0) throw new Error(`idleCgroups must be a whole number, got ${this.#maxIdle}`);
    this.#tasksPidsMax = options.tasksPidsMax;
    if (this.#tasksPidsMax !== undefined && (!Number.isInteger(this.#tasksPidsMax) || this.#tasksPidsMax < 1)) throw new Error(`tasksPidsMax must be a whole number from 1, got ${this.#tasksPidsMax}`);
    this.placement = placeControllers(options.layout);
    this.#clock = options.clock ?? (() => performance.now());
    this.#peakWindowStartedAt = this.#clock();
  }

  /**
   * Makes the group directories and takes the group (once): throws CgroupGroupInUseError when
   * another live process holds it, else with the path and the reason when it cannot.
   */
  prepare(): void {
    if (this.#prepared) return;
    const { v2, v1 } = this.#layout;
    const own = v2 ? path.join(v2.mountPoint, v2.ownPath) : undefined;
    const v2Base = own === undefined ? undefined : path.join(own, this.#group);
    const v1Bases = new Map<LimitController, string>();
    for (const controller of limitControllers) {
      const hierarchy = v1.get(controller);
      if (this.placement[controller] === 'v1' && hierarchy) v1Bases.set(controller, path.join(hierarchy.mountPoint, hierarchy.ownPath, this.#group));
    }
    // Claimed before anything is written, always in this order (v2, then memory, pids, cpu), so
    // that two claimants meet at the same first directory.
    this.#claim([...(v2Base === undefined ? [] : [v2Base]), ...v1Bases.values()]);
    // Then no other live owner's group may hold this one or lie inside it (looked for in the
    // first hierarchy: every owner locks its group in each). Of two nested claimants starting at
    // once, both may be refused.
    const first = v2 && own !== undefined && v2Base !== undefined ? { root: own, directory: v2Base, hierarchy: { mountPoint: v2.mountPoint, controller: undefined } } : firstV1Claim(v1, v1Bases);
    const nested = first === undefined ? undefined : nestedOwner(first.root, this.#group, first.directory, first.hierarchy);
    if (nested !== undefined) {
      this.#releaseGroup();
      throw new CgroupGroupInUseError(this.#group, nested.directory, nested);
    }
    try {
      if (v2 && own !== undefined && v2Base !== undefined) {
        if (v2.ownPath !== '/' && this.#wantedV2Controllers().length > 0) this.#moveSelfIntoLeaf(own);
        this.#enableControllers(own);
        this.#enableControllers(v2Base);
        this.#v2Base = v2Base;
        this.#hasKillFile = existsSync(path.join(v2Base, 'cgroup.kill'));
      }
      // Written at every start: the group may be an earlier owner's, with another budget (or none).
      const pidsBase = this.placement.pids === 'v2' ? v2Base : v1Bases.get('pids');
      const budgetFile = pidsBase === undefined ? undefined : path.join(pidsBase, 'pids.max');
      if (budgetFile !== undefined && (this.#tasksPidsMax !== undefined || existsSync(budgetFile))) writeFileSync(budgetFile, this.#tasksPidsMax === undefined ? 'max' : String(this.#tasksPidsMax));
    } catch (error) {
      this.#releaseGroup(); // a later prepare() takes it again
      throw error;
    }
    for (const [controller, base] of v1Bases) this.#v1Bases.set(controller, base);
    // Looked up once: a task's cgroup has the same files as the group it is made in.
    const memoryBase = this.placement.memory === 'v2' ? this.#v2Base : this.#v1Bases.get('memory');
    const swapFile = this.placement.memory === 'v2' ? 'memory.swap.max' : 'memory.memsw.limit_in_bytes';
    this.#swapLimitFile = memoryBase !== undefined && existsSync(path.join(memoryBase, swapFile));
    this.#socketLimitFile = this.placement.memory === 'v1' && memoryBase !== undefined && existsSync(path.join(memoryBase, v1SocketLimitFile));
    this.#prepared = true;
  }

  /**
   * A cgroup for one task with its limits, made by the spawn that starts the task: pass
   * `spawnOptions` to Launcher.spawn, whose spawn thread makes the directories and writes the
   * limits before the clone. Nothing is written here, on the JS thread.
   *
   * Task cgroups are reused: a cgroupfs mkdir and rmdir cost ~0.45 ms of kernel time a task
   * (serialised by the kernel's cgroup_mutex), more than the sandboxed spawn itself, so an empty
   * cgroup given back by remove() waits in an idle pool (up to `idleCgroups`) for the next task.
   * A reused cgroup gets every limit file listed with the value it must read, and the spawn
   * thread writes only those that differ; its OOM-kill count starts from zero again. Page cache
   * an earlier task left charged to it is reclaimed by the kernel before any OOM kill.
   * The pool holds up to `idleCgroups`, or, when more, what takes the use back to its recent
   * peak (the most in use at once over the last 30-60 s): the cgroups of a Task array's turnover
   * (a burst of indexes ending, then as many starting) are then all reused instead of those past
   * `idleCgroups` being removed and made again, ~0.5 ms of kernel time each, whenever more
   * indexes than that were in flight (an array on a loaded node: docs/benchmarks.md, Task
   * arrays). As the peak falls, the pool goes back to `idleCgroups` (#trimIdle).
   * `name` names the directories when new ones are made; it must be unique among live tasks.
   * `options.memoryPeak: false`: nobody reads this task's memory peak (a Task array's index:
   * status has no per-index usage), so a reused v1 cgroup's peak is not reset at its spawn (one
   * cgroupfs write less) and memoryPeakBytes() is undefined.
   */
  create(name: string, limits: CgroupLimits, options: { readonly memoryPeak?: boolean } = {}): TaskCgroup {
    this.prepare();
    if (!/^[A-Za-z0-9_.-]+$/.test(name) || name === '.' || name === '..') throw new Error(`invalid task cgroup name ${JSON.stringify(name)}`);
    const slot = this.#idle.pop() ?? this.#newSlot(name);
    // A task joins a v1 hierarchy only for a limit set there: each v1 join is a cgroup write in
    // the child (its `tasks` file, which recent kernels spare the global cgroup_threadgroup_rwsem
    // that cgroup.procs takes: native/src/cgroup_join.cc) and a migration under cgroup_mutex. So a
    // Task without a memory limit has no v1 memory cgroup, and an OOM kill by the host's own
    // OOM killer reads as a SIGKILL, not OOMKilled (which stays the verdict of its limit).
    // With a budget on the sum (tasksPidsMax), every task joins the group's v1 pids cgroup: one
    // outside it would not count against the budget.
    const limitSet: Readonly<Record<LimitController, boolean>> = { memory: limits.memoryBytes !== undefined, pids: limits.pids !== undefined || this.#tasksPidsMax !== undefined, cpu: limits.cpuMillicores !== undefined };
    const memoryPeak = options.memoryPeak ?? true;
    const limitsKey = `${limits.memoryBytes}/${limits.cpuMillicores}/${limits.pids}/${limits.socketBufferBytes}/${memoryPeak}`;
    if (slot.fresh || slot.reused?.limitsKey !== limitsKey) slot.reused = this.#reuseOf(slot, limits, limitSet, memoryPeak, limitsKey);
    // A fresh slot's directories are made by its first spawn: its fds are opened at its first reuse.
    if (!slot.fresh && slot.reused.joinFds === undefined) {
      slot.reused.joinFds = this.#joinFds(slot, slot.reused.joinedV1, slot.reused.sharedV1Directories);
      slot.reused.spawnOptions = undefined;
    }
    const { files, joinedV1, memory, sharedV1Directories, giveBack, joinFds } = slot.reused;
    slot.reused.spawnOptions ??= cgroupSpawnOptions(slot.v2Directory, joinedV1, { limitFiles: files, sharedV1Directories, joinFds });
    this.#inUse++;
    this.#trimIdle();
    return new TaskCgroup(slot.v2Directory, joinedV1, memory, {
      sharedV1Directories,
      limitFiles: files,
      oomKillsBefore: slot.oomKillsBefore,
      // A v1 peak is reset by the limit files (#limitFiles); a v2 one cannot be for all readers.
      memoryPeakIsOwn: memoryPeak && (slot.fresh || memory?.version === 'v1'),
      hasKillFile: this.#hasKillFile,
      giveBack,
      ownedDirectories: slot.ownedDirectories,
      trackRemoval: this.#trackRemoval,
      released: slot.released,
      read: slot.read,
      eventsFile: slot.eventsFile,
      joinFds,
      spawnOptions: slot.reused.spawnOptions,
    });
  }

  /** A reused slot's join fds for these directories, in spawnOptions' order; none where one cannot be opened. */
  #joinFds(slot: CgroupSlot, joinedV1: readonly string[], sharedV1Directories: readonly string[]): CgroupSetupOption['joinFds'] {
    const cgroup = slot.v2Directory === undefined ? undefined : joinFd(slot.joinFds, slot.v2Directory, 'v2');
    const cgroupsV1: number[] = [];
    for (const directory of joinedV1) cgroupsV1.push(joinFd(slot.joinFds, directory, 'v1') ?? -1);
    for (const directory of sharedV1Directories) cgroupsV1.push(joinFd(this.#groupJoinFds, directory, 'v1') ?? -1);
    const allV1 = !cgroupsV1.includes(-1);
    if (cgroup === undefined && (!allV1 || cgroupsV1.length === 0)) return undefined;
    return Object.freeze({ ...(cgroup === undefined ? {} : { cgroup }), cgroupsV1: allV1 ? Object.freeze(cgroupsV1) : [] });
  }

  /** What a slot's tasks of these limits are given: their limit files, the v1 cgroups they join, where their memory is. */
  #reuseOf(slot: CgroupSlot, limits: CgroupLimits, limitSet: Readonly<Record<LimitController, boolean>>, memoryPeak: boolean, limitsKey: string): NonNullable<CgroupSlot['reused']> {
    const joins = (controller: LimitController): boolean => limitSet[controller];
    const placedMemory = this.#location(slot, 'memory');
    const memory = placedMemory?.version === 'v1' && !joins('memory') ? undefined : placedMemory;
    const joinedV1 = [...slot.v1ByController].filter(([controller]) => joins(controller)).map(([, directory]) => directory);
    // Where cpu is on v1, a task without a cpu limit of its own joins the group's cpu cgroup: all
    // of them then share the CPU with the rest of the host as one, as they do on v2 (the group's
    // cpu controller). Left in the root cpu cgroup, each sandboxed task (a session of its own,
    // setsid) was a scheduling entity of its own under sched_autogroup: 1,000 running tasks got
    // 1,000 shares of the CPU to the agent's one, whose JS thread then waited on a run queue for
    // most of a burst (issue 15's event-loop bar: p99 0.1-0.4 s, ~3 s waiting in a 3 s burst).
    const sharedCpu = this.placement.cpu === 'v1' && !joins('cpu') ? this.#v1Bases.get('cpu') : undefined;
    return {
      limitsKey,
      files: this.#limitFiles(slot, limits, joins, memoryPeak),
      joinedV1,
      memory,
      sharedV1Directories: sharedCpu === undefined ? [] : [sharedCpu],
      giveBack: (seen) => this.#giveBack(slot, joinedV1, memory, seen),
    };
  }

  /** Keeps a removeAsync() under way until it ends, so that the group is removed only after it. */
  readonly #trackRemoval = (removal: Promise<unknown>): void => {
    this.#removals.add(removal);
    void removal.finally(() => this.#removals.delete(removal));
  };

  /** Resolves once every task cgroup's removeAsync() under way has ended (before removeGroup at shutdown). */
  async removalsSettled(): Promise<void> {
    while (this.#removals.size > 0) await Promise.allSettled([...this.#removals]);
  }

  /**
   * Ends and removes every task cgroup left in the group by an earlier owner (an agent killed -9,
   * or the node rebooted mid-task), and the idle ones: their processes belong to attempts no one
   * will record. The group is this process's (prepare() took it): the owner of whatever is found
   * here is gone. Returns how many were swept.
   */
  sweepLeftovers(): number {
    this.prepare();
    for (const slot of this.#idle) closeReaders(slot);
    this.#idle = [];
    const names = new Set<string>();
    for (const base of [this.#v2Base, ...this.#v1Bases.values()]) {
      if (base === undefined) continue;
      for (const entry of readdirSync(base, { withFileTypes: true })) if (entry.isDirectory()) names.add(entry.name);
    }
    for (const name of names) {
      const leftover = new TaskCgroup(
        this.#v2Base === undefined ? undefined : path.join(this.#v2Base, name),
        [...this.#v1Bases.values()].map((base) => path.join(base, name)),
        undefined,
      );
      leftover.killAll();
      for (let attempt = 0; attempt < 50 && !leftover.remove(); attempt++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
    return names.size;
  }

  /**
   * removeIdle(), with the rmdirs on the thread pool, and resolves once they and every task
   * cgroup's removeAsync() under way have ended: at shutdown, before removeGroup. After a burst
   * the pool holds up to its peak (a 1,000-Task burst: ~3,000 directories), which removeIdle would
   * remove in one stretch of the JS thread.
   */
  async removeIdleAsync(): Promise<void> {
    const idle = this.#idle;
    this.#idle = [];
    for (const slot of idle) this.#removeSlotOnThreadPool(slot);
    await this.removalsSettled();
  }

  /** Removes the idle task cgroups (at shutdown: the pool keeps up to `idleCgroups` between tasks). */
  removeIdle(): void {
    for (const slot of this.#idle) {
      closeReaders(slot);
      for (const directory of [slot.v2Directory, ...slot.v1ByController.values()]) {
        if (directory !== undefined && existsSync(directory)) rmdirSync(directory);
      }
    }
    this.#idle = [];
  }

  /**
   * Removes the idle task cgroups and the (then empty) group directories, and lets go of the
   * group: at an owner's clean exit, for tests and uninstalls. Throws (EBUSY) while a task
   * cgroup still holds a process, and lets go all the same: what is left there is a leftover
   * for the group's next owner to sweep.
   */
  removeGroup(): void {
    try {
      this.removeIdle();
      for (const directory of [this.#v2Base, ...this.#v1Bases.values()]) {
        if (directory !== undefined && existsSync(directory)) rmdirSync(directory);
      }
    } finally {
      closeJoinFds(this.#groupJoinFds);
      this.#releaseGroup();
      this.#prepared = false;
      this.#v1Bases.clear();
    }
  }

  /** Locks every directory of the group, made first where missing; all or none. */
  #claim(directories: readonly string[]): void {
    try {
      for (const directory of directories) {
        const lock = lockDirectory(directory);
        if (lock === undefined) throw new CgroupGroupInUseError(this.#group, directory);
        this.#locks.push(lock);
      }
    } catch (error) {
      this.#releaseGroup();
      throw error;
    }
  }

  #releaseGroup(): void {
    for (const lock of this.#locks) lock.release();
    this.#locks = [];
  }

  #newSlot(name: string): CgroupSlot {
    const v1ByController = new Map<LimitController, string>();
    for (const [controller, base] of this.#v1Bases) v1ByController.set(controller, path.join(base, name));
    const v2Directory = this.#v2Base === undefined ? undefined : path.join(this.#v2Base, name);
    const v1Directories = [...v1ByController.values()];
    const slot: CgroupSlot = {
      v2Directory,
      v1ByController,
      v1Directories,
      fresh: true,
      oomKillsBefore: 0,
      readers: new Map(),
      joinFds: new Map(),
      eventsFile: v2Directory === undefined ? undefined : path.join(v2Directory, 'cgroup.events'),
      ownedDirectories: [...(v2Directory === undefined ? [] : [v2Directory]), ...v1Directories],
      released: (removed) => this.#released(slot, removed),
      read: (file) => readerOf(slot, file).read(),
    };
    return slot;
  }

  /** Asked only when a slot's limits change (#reuseOf, #limitFiles), not at every reuse. */
  #location(slot: CgroupSlot, controller: LimitController): MemoryLocation | undefined {
    if (this.placement[controller] === 'v2' && slot.v2Directory !== undefined) return memoryLocation('v2', slot.v2Directory);
    const directory = slot.v1ByController.get(controller);
    return directory === undefined ? undefined : memoryLocation('v1', directory);
  }

  /**
   * The limit files to write for `limits`. A new cgroup holds the kernel's defaults ("no limit"),
   * so only limits are written; a reused one lists every file with the value it must read back,
   * but for the socket buffers' (v1), listed only for a task that sets that bound (see there).
   */
  #limitFiles(slot: CgroupSlot, limits: CgroupLimits, joins: (controller: LimitController) => boolean, memoryPeak: boolean): readonly CgroupFileOption[] {
    const files: CgroupFileOption[] = [];
    const set = (location: MemoryLocation, file: string, value: string, isDefault: boolean, readBack = value, mayFail = false): void => {
      if (slot.fresh && isDefault) return;
      files.push({ path: path.join(location.directory, file), value, ...(slot.fresh ? {} : { readBack }), ...(mayFail ? { mayFail } : {}) });
    };
    const location = (controller: LimitController): MemoryLocation | undefined => {
      const found = this.#location(slot, controller);
      return found?.version === 'v1' && !joins(controller) ? undefined : found;
    };
    const memory = location('memory');
    if (memory) {
      // The kernel keeps whole pages: the value written is the value read back.
      const wholePages = (value: number): string => String(Math.max(pageBytes, Math.floor(value / pageBytes) * pageBytes));
      const bytes = limits.memoryBytes === undefined ? undefined : wholePages(limits.memoryBytes);
      if (memory.version === 'v2') {
        set(memory, 'memory.max', bytes ?? 'max', bytes === undefined);
        // Swap would turn an OOM kill into a slow crawl: the limit is on memory, not memory + swap.
        if (this.#swapLimitFile) set(memory, 'memory.swap.max', bytes === undefined ? 'max' : '0', bytes === undefined);
      } else if (bytes === undefined) {
        // memsw.limit_in_bytes may never be below limit_in_bytes: raise it first.
        if (this.#swapLimitFile) set(memory, 'memory.memsw.limit_in_bytes', '-1', true, v1UnlimitedMemory);
        set(memory, 'memory.limit_in_bytes', '-1', true, v1UnlimitedMemory);
      } else {
        // Lowering both needs limit first, raising needs memsw first: a reused cgroup's current
        // values are unknown here, so memsw is tried first (refused when lowering) and again last.
        if (this.#swapLimitFile && !slot.fresh) set(memory, 'memory.memsw.limit_in_bytes', bytes, false, bytes, true);
        set(memory, 'memory.limit_in_bytes', bytes, false);
        if (this.#swapLimitFile) set(memory, 'memory.memsw.limit_in_bytes', bytes, false);
      }
      // Socket buffers (v1 only, with a memory limit). A task that sets no bound lists nothing, not
      // "unlimited": that is a Task with network none (every default Task, every array index),
      // whose sockets can carry nothing (its lo is down, without an address: ENETUNREACH), so a
      // bound an earlier task left in a reused cgroup binds nothing it does, and its spawns stay
      // as they were, without one more file to check. A socket is charged to the memory cgroup of
      // the process that made it, fixed then (mem_cgroup_sk_alloc), so a socket passed in from
      // elsewhere is its maker's. Once written, the kernel keeps the cgroup's accounting on; a
      // later task with a bound rewrites the value when it differs.
      if (this.#socketLimitFile && memory.version === 'v1' && bytes !== undefined && limits.socketBufferBytes !== undefined) {
        set(memory, v1SocketLimitFile, wholePages(limits.socketBufferBytes), false);
      }
      // An earlier task's peak goes: writing 0 resets memory.max_usage_in_bytes (cgroup-v1/memory.rst).
      if (memory.version === 'v1' && !slot.fresh && memoryPeak) files.push({ path: path.join(memory.directory, 'memory.max_usage_in_bytes'), value: '0' });
    }
    const pids = location('pids');
    if (pids) set(pids, 'pids.max', limits.pids === undefined ? 'max' : String(limits.pids), limits.pids === undefined);
    const cpu = location('cpu');
    if (cpu) {
      const quota = limits.cpuMillicores === undefined ? undefined : Math.max(1000, Math.round((limits.cpuMillicores * cpuPeriodMicroseconds) / 1000));
      // A new cgroup's period is the kernel's default, 100 ms (cpuPeriodMicroseconds): only the quota is set.
      if (cpu.version === 'v2') set(cpu, 'cpu.max', `${quota ?? 'max'} ${cpuPeriodMicroseconds}`, quota === undefined);
      else set(cpu, 'cpu.cfs_quota_us', quota === undefined ? '-1' : String(quota), quota === undefined);
    }
    // Frozen: the Launcher then checks a reused slot's list once, not at every spawn.
    return Object.freeze(files.map((file) => Object.freeze(file)));
  }

  /** Takes an empty task cgroup back into the idle pool; false: remove it instead. */
  #giveBack(slot: CgroupSlot, joinedV1: readonly string[], memory: MemoryLocation | undefined, seen: SeenState): boolean {
    // #inUse still counts this one, which leaves it for the pool.
    if (this.#maxIdle === 0 || this.#idle.length >= this.#idleAllowance(this.#inUse - 1) || !this.#prepared) return false;
    try {
      // Every process of the task is in each of its cgroups: one of them tells.
      if (seen.empty) {
        // killAll found it empty
      } else if (slot.v2Directory !== undefined) {
        if (slot.eventsFile !== undefined && !readerOf(slot, slot.eventsFile).read().includes('populated 0')) return false;
      } else {
        const [first] = joinedV1;
        if (first === undefined || readFileSync(path.join(first, 'cgroup.procs'), 'utf8') !== '') return false;
      }
      slot.oomKillsBefore = memory === undefined ? 0 : (seen.oomCounter ?? readOomKills(memory, (file) => readerOf(slot, file).read()));
    } catch {
      return false; // never made (the spawn failed first), or gone
    }
    if (slot.fresh) {
      slot.fresh = false;
      slot.reused = undefined; // its list skipped the defaults: a reuse must list every file
    }
    this.#idle.push(slot);
    return true;
  }

  /** A task cgroup was given back (to the pool) or removed (its directories gone: their fds go too). */
  #released(slot: CgroupSlot, removed: boolean): void {
    if (removed) closeReaders(slot);
    this.#inUse--;
    this.#trimIdle();
  }

  /** How many idle cgroups the pool may hold with `inUse` in use: idleCgroups, or what takes the use back to its recent peak. */
  #idleAllowance(inUse: number): number {
    const now = this.#clock();
    if (now - this.#peakWindowStartedAt >= peakWindowMs) {
      this.#previousPeakInUse = this.#peakInUse;
      this.#peakInUse = this.#inUse;
      this.#peakWindowStartedAt = now;
    }
    this.#peakInUse = Math.max(this.#peakInUse, this.#inUse);
    if (this.#maxIdle === 0) return 0;
    return Math.max(this.#maxIdle, Math.max(this.#peakInUse, this.#previousPeakInUse) - inUse);
  }

  /**
   * Removes idle cgroups past the allowance, least recently used first (the peak fell). When a
   * burst's peak falls, that is hundreds of cgroups at once (a 1,000-Task burst: ~3,000
   * directories, 0.15-0.5 s of rmdir(2) under cgroup_mutex), so their rmdirs run on the thread pool.
   */
  #trimIdle(): void {
    while (this.#idle.length > this.#idleAllowance(this.#inUse)) this.#removeSlotOnThreadPool(this.#idle.shift() as CgroupSlot);
  }

  /**
   * Lets go of a slot's files and removes its directories with rmdir(2) on the thread pool,
   * tracked so that removeGroup comes after. Best effort (gone already, or busy): removeGroup's
   * sweep is the backstop.
   */
  #removeSlotOnThreadPool(slot: CgroupSlot): void {
    closeReaders(slot);
    const directories = [slot.v2Directory, ...slot.v1ByController.values()].filter((directory) => directory !== undefined);
    this.#trackRemoval(Promise.allSettled(directories.map((directory) => rmdir(directory))));
  }

  #wantedV2Controllers(): LimitController[] {
    return limitControllers.filter((controller) => this.placement[controller] === 'v2');
  }

  #enableControllers(directory: string): void {
    const wanted = this.#wantedV2Controllers();
    if (wanted.length === 0) return;
    writeFileSync(path.join(directory, 'cgroup.subtree_control'), wanted.map((controller) => `+${controller}`).join(' '));
  }

  #moveSelfIntoLeaf(own: string): void {
    const leaf = path.join(own, 'agent');
    mkdirSync(leaf, { recursive: true });
    writeFileSync(path.join(leaf, 'cgroup.procs'), String(process.pid));
  }
}

// Host ids for Tasks (issue 12, finding 3). The kernel keeps some limits per user: inotify
// instances and watches, processes (RLIMIT_NPROC), user namespaces, pending signals, message
// queue bytes. Tasks that share a uid share those limits (one Task holding its uid's 128 inotify
// instances left the next none), and may signal or read each other's files. So a Task that does
// not ask for an id gets one of its own for the attempt, as systemd's DynamicUser gives a service
// one: uid and gid the same number, from a range that no host account uses, given back when the
// attempt ends and reused least recently used first. A retry of the same Task gets the ids its
// previous attempt had (status.hostIdentity) when no one else holds them, which the
// least-recently-used order makes the rule: so a retry can use the files its earlier attempt made
// in a writable mount. The status is only as true as its last writer, and tasks/status may be
// patched by users: an id this instance last leased to another Task is never given as a previous
// one (a patched status picked a Task that had just ended, and so its files). A runAsUser or
// runAsGroup in the spec is honoured as given.
//
// A userNamespace Task keeps its ids inside (runAsUser, default 65534) and gets a host range of
// its own instead: its ids 0..65535 map to a whole block of 65536 host ids, and the block's first
// id owns its user namespace, so the kernel charges what the Task's processes hold to that id in
// the host's namespace rather than to root's (kernel/ucount.c: inc_ucount charges each namespace
// up to the host's, the parent's share to the namespace's owner; native/src/child.cc).
//
// The range (--task-ids) is split into blocks of 65536. A block belongs to one parafork instance
// at a time through an exclusive flock(2) on its lock file in `lockDirectory`, so instances on one
// machine (agents, `parafork run`, in containers that mount the same directory) never hand out
// the same ids. An instance claims a block for single ids when it first needs one (65536 Tasks at
// once before it needs a second), and one block per running userNamespace Task; it keeps them
// until it ends. Blocks never used since boot are claimed first (the lock files live in /run),
// then the one released longest ago (the file's mtime).
//
// Each instance also declares its whole range there for as long as it runs (a `range-<first>-
// <last>-...` file it holds a flock on), so that every instance can refuse a spec's host id in any
// instance's range, not only in its own (taskIdRangesInUse; sandbox-policy.ts): another's blocks
// are lock files named by their own first id, and an instance claims them only as it needs them.
// So the lock files keep two instances apart only where their blocks line up: ranges that overlap
// with blocks out of step (--task-ids 100000-... beside 120000-...) lock different files for the
// same ids, and leased them to both instances' Tasks (red team, session 16). An instance whose
// range overlaps a running one's that way refuses to start (TaskIdRangeConflictError).
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, utimesSync } from 'node:fs';
import path from 'node:path';

import { FileLock } from '../launcher/file-lock.js';

export const idBlockSize = 65_536;

/**
 * Where every parafork instance of the machine keeps the block lock files, whatever its
 * --state-dir: in a state directory, two instances with different ones each took the first block
 * and gave their Tasks the same uids (red team, task-identities-across-instances.test.ts). /run is
 * cleared at boot, with the ids; the chart mounts the node's directory here.
 */
export const machineTaskIdLockDirectory = '/run/parafork/ids';

/** What a userNamespace Task runs as inside when its spec names no id: nobody, as before. */
const userNamespaceDefaultId = 65_534;

/** What a Task's spec asks for. */
export interface TaskIdentityRequest {
  readonly runAsUser?: number | undefined;
  readonly runAsGroup?: number | undefined;
  readonly userNamespace: boolean;
  /**
   * The host ids the Task's previous attempt ran as (its status.hostIdentity), given again when
   * they are in the range and no one else holds them; else the lease is as without it.
   */
  readonly previous?: { readonly uid?: number | undefined; readonly gid?: number | undefined } | undefined;
  /**
   * Who the ids are for (the Task's uid): recorded with each id or block leased, and a `previous`
   * this instance last leased to another owner is not given.
   */
  readonly owner?: string | undefined;
}

export interface TaskIdentityLease {
  /** The ids the process runs as (inside its user namespace, for a userNamespace Task). */
  readonly runAsUser: number;
  readonly runAsGroup: number;
  /** userNamespace Tasks: the first of the 65536 host ids their ids 0..65535 map to. */
  readonly userNamespaceHostId: number | undefined;
  /** The host ids the processes run as, for the Task's status. */
  readonly hostUid: number;
  readonly hostGid: number;
  /**
   * Whether no other Task's process runs as hostUid while this lease lasts: the spec named no
   * runAsUser and the uid was leased. Then the kernel's per-uid counts, RLIMIT_NPROC's among
   * them, are this Task's alone. False for a userNamespace Task, whose block is its own too but
   * whose ids inside are counted per user namespace: kept on the plainer rule.
   */
  readonly ownUid: boolean;
  /**
   * Gives the ids back (when the attempt's processes are gone); a second call does nothing.
   * `retire`: they are never leased again while this instance runs (a uid whose keyrings an
   * earlier Task left so that they cannot be emptied: sandbox-user-keyrings.test.ts).
   */
  release(options?: { readonly retire?: boolean }): void;
}

/** Where leases come from: the reconciler's view of TaskIdentities. */
export interface TaskIdentitySource {
  lease(request: TaskIdentityRequest): TaskIdentityLease;
}

/** No block of the range is free: every one is held by a parafork instance of this machine. */
export class TaskIdsExhaustedError extends Error {
  readonly code = 'ERR_PARAFORK_TASK_IDS_EXHAUSTED';
}

/**
 * This instance's --task-ids range overlaps a running instance's with blocks out of step: each
 * would lock its own files for ids the other leases too, and their Tasks would share uids.
 */
export class TaskIdRangeConflictError extends Error {
  readonly code = 'ERR_PARAFORK_TASK_IDS_IN_USE';
}

/** A --task-ids range, inclusive. */
export interface TaskIdRange {
  readonly first: number;
  readonly last: number;
}

export interface TaskIdentitiesOptions {
  readonly first: number;
  readonly last: number;
  /** Lock files, one per block; shared by every parafork instance of the machine. */
  readonly lockDirectory: string;
  /** Ids of the host's accounts and groups, never handed out; default: /etc/passwd and /etc/group. */
  readonly hostIds?: () => ReadonlySet<number>;
}

interface ClaimedBlock {
  readonly first: number;
  readonly lock: FileLock;
}

/** A block handing out single ids: those never used first, then those given back longest ago. */
interface SingleIdBlock extends ClaimedBlock {
  /** Offset of the next id never handed out. */
  next: number;
  /** Offsets from `next` on already handed out, to a retry that asked for its earlier id: skipped when `next` gets there. */
  readonly takenAhead: Set<number>;
}

export class TaskIdentities implements TaskIdentitySource {
  readonly #first: number;
  readonly #blockCount: number;
  readonly #lockDirectory: string;
  readonly #readHostIds: () => ReadonlySet<number>;
  #hostIds: ReadonlySet<number> | undefined;
  readonly #singleBlocks: SingleIdBlock[] = [];
  /** Single ids given back, oldest first. */
  readonly #freeIds = new LeastRecentlyUsed<number>();
  readonly #namespaceBlocks: ClaimedBlock[] = [];
  /** Whole blocks given back by userNamespace Tasks, oldest first. */
  readonly #freeBlocks = new LeastRecentlyUsed<ClaimedBlock>();
  /** The owner each single id (by id) and userNamespace block (by its first id) was last leased to. */
  readonly #lastOwners = new Map<number, string | undefined>();
  #leased = 0;
  /** The held file that declares this instance's range to the others (taskIdRangesInUse); undefined once closed. */
  #declaredRange: { readonly file: string; readonly lock: FileLock } | undefined;

  constructor(options: TaskIdentitiesOptions) {
    const { first, last } = options;
    if (!Number.isInteger(first) || !Number.isInteger(last) || first < 1 || last > 4_294_967_294 || last - first + 1 < idBlockSize) {
      throw new RangeError(`task ids must be a range of at least ${idBlockSize} host ids from 1 to 4294967294, got ${first}-${last}`);
    }
    this.#first = first;
    this.#blockCount = Math.floor((last - first + 1) / idBlockSize);
    this.#lockDirectory = options.lockDirectory;
    this.#readHostIds = options.hostIds ?? readHostIds;
    const declared = declareRange(this.#lockDirectory, { first, last });
    // Declared first, then compared: of two instances starting at once, each sees the other.
    const conflict = declaredRanges(this.#lockDirectory).find((other) => other.file !== declared.file && blocksOutOfStep({ first, last }, other));
    if (conflict !== undefined) {
      undeclare(declared);
      throw new TaskIdRangeConflictError(`--task-ids ${first}-${last} overlaps ${conflict.first}-${conflict.last}, the range of another parafork instance running on this machine${conflict.pid === undefined ? '' : ` (pid ${conflict.pid} in its pid namespace)`}, and their blocks of ${idBlockSize} ids do not line up, so both would lease the same host ids to their Tasks; give this one a range that does not overlap that one, or starts at its first id plus a multiple of ${idBlockSize}`);
    }
    this.#declaredRange = declared;
  }

  /** Leases running now. */
  get leased(): number {
    return this.#leased;
  }

  /** Blocks this instance holds. */
  get blocks(): number {
    return this.#singleBlocks.length + this.#namespaceBlocks.length;
  }

  lease(request: TaskIdentityRequest): TaskIdentityLease {
    if (request.userNamespace) {
      const block = this.#previousNamespaceBlock(request.previous?.uid, request.owner) ?? this.#freeBlocks.shift() ?? this.#claimNamespaceBlock();
      this.#lastOwners.set(block.first, request.owner);
      const runAsUser = request.runAsUser ?? userNamespaceDefaultId;
      const runAsGroup = request.runAsGroup ?? userNamespaceDefaultId;
      return this.#lease({ runAsUser, runAsGroup, userNamespaceHostId: block.first, hostUid: block.first + runAsUser, hostGid: block.first + runAsGroup, ownUid: false }, () => this.#freeBlocks.push(block));
    }
    if (request.runAsUser !== undefined && request.runAsGroup !== undefined) {
      return this.#lease({ runAsUser: request.runAsUser, runAsGroup: request.runAsGroup, userNamespaceHostId: undefined, hostUid: request.runAsUser, hostGid: request.runAsGroup, ownUid: false }, () => undefined);
    }
    // The leased id is the uid, or the gid of a Task that names only its runAsUser.
    const previousId = request.runAsUser === undefined ? request.previous?.uid : request.previous?.gid;
    const id = this.#previousSingleId(previousId, request.owner) ?? this.#singleId();
    this.#lastOwners.set(id, request.owner);
    const runAsUser = request.runAsUser ?? id;
    const runAsGroup = request.runAsGroup ?? id;
    return this.#lease({ runAsUser, runAsGroup, userNamespaceHostId: undefined, hostUid: runAsUser, hostGid: runAsGroup, ownUid: request.runAsUser === undefined }, () => this.#freeIds.push(id));
  }

  /** Lets go of every block and of its range's declaration (at exit; the kernel would at the process's end anyway). */
  close(): void {
    if (this.#declaredRange !== undefined) {
      undeclare(this.#declaredRange);
      this.#declaredRange = undefined;
    }
    for (const block of [...this.#singleBlocks, ...this.#namespaceBlocks]) this.#releaseBlock(block);
    this.#singleBlocks.length = 0;
    this.#namespaceBlocks.length = 0;
    this.#freeIds.clear();
    this.#freeBlocks.clear();
    this.#lastOwners.clear();
  }

  #lease(ids: Omit<TaskIdentityLease, 'release'>, giveBack: () => void): TaskIdentityLease {
    this.#leased++;
    let released = false;
    return {
      ...ids,
      release: (options) => {
        if (released) return;
        released = true;
        this.#leased--;
        if (options?.retire !== true) giveBack();
      },
    };
  }

  #singleId(): number {
    const hostIds = this.#knownHostIds();
    for (const block of this.#singleBlocks) {
      while (block.next < idBlockSize) {
        const offset = block.next++;
        if (block.takenAhead.delete(offset)) continue;
        const id = block.first + offset;
        if (!hostIds.has(id)) return id;
      }
    }
    const reused = this.#freeIds.shift();
    if (reused !== undefined) return reused;
    this.#singleBlocks.push({ ...this.#claimBlock(), next: 0, takenAhead: new Set() });
    return this.#singleId();
  }

  /**
   * `id` for a retry that had it before, when it is a single id no one holds: given back here,
   * never handed out yet in a block of ours, or in a block no instance holds (which it claims:
   * the restarted agent of a retry lost its blocks). Undefined otherwise, and for an id out of
   * the range, of a host account, or last leased to another owner (status.hostIdentity is only as
   * true as its last writer).
   */
  #previousSingleId(id: number | undefined, owner: string | undefined): number | undefined {
    const first = this.#blockOf(id);
    if (id === undefined || first === undefined || this.#knownHostIds().has(id) || !this.#lastLeasedTo(id, owner)) return undefined;
    if (this.#namespaceBlocks.some((block) => block.first === first)) return undefined;
    const offset = id - first;
    const ours = this.#singleBlocks.find((block) => block.first === first);
    if (ours !== undefined) {
      if (this.#freeIds.take(id)) return id;
      if (offset < ours.next || ours.takenAhead.has(offset)) return undefined; // leased now
      ours.takenAhead.add(offset);
      return id;
    }
    const claimed = this.#tryClaimBlock(first, { withoutHostIds: false });
    if (claimed === undefined) return undefined;
    this.#singleBlocks.push({ ...claimed, next: 0, takenAhead: new Set([offset]) });
    return id;
  }

  /** The block holding a userNamespace retry's previous host uid, when no one holds it (as for single ids). */
  #previousNamespaceBlock(hostUid: number | undefined, owner: string | undefined): ClaimedBlock | undefined {
    const first = this.#blockOf(hostUid);
    if (first === undefined || this.#singleBlocks.some((block) => block.first === first) || !this.#lastLeasedTo(first, owner)) return undefined;
    const ours = this.#namespaceBlocks.find((block) => block.first === first);
    if (ours !== undefined) return this.#freeBlocks.take(ours) ? ours : undefined;
    const claimed = this.#tryClaimBlock(first, { withoutHostIds: true });
    if (claimed !== undefined) this.#namespaceBlocks.push(claimed);
    return claimed;
  }

  /** Whether this instance never leased `id` (a single id, or a block's first) or last leased it to `owner`. */
  #lastLeasedTo(id: number, owner: string | undefined): boolean {
    return !this.#lastOwners.has(id) || this.#lastOwners.get(id) === owner;
  }

  /** The first id of the range's block that holds `id`; undefined out of the range. */
  #blockOf(id: number | undefined): number | undefined {
    if (id === undefined || !Number.isInteger(id) || id < this.#first || id >= this.#first + this.#blockCount * idBlockSize) return undefined;
    return id - ((id - this.#first) % idBlockSize);
  }

  #claimNamespaceBlock(): ClaimedBlock {
    const block = this.#claimBlock({ withoutHostIds: true });
    this.#namespaceBlocks.push(block);
    return block;
  }

  /**
   * Claims a free block of the range for this instance. A userNamespace Task's block must hold
   * no host account's id (the account would be one of the Task's ids); single ids skip them.
   */
  #claimBlock(options: { withoutHostIds: boolean } = { withoutHostIds: false }): ClaimedBlock {
    mkdirSync(this.#lockDirectory, { recursive: true, mode: 0o700 });
    for (const first of this.#blocksByLeastRecentUse()) {
      const block = this.#tryClaimBlock(first, options);
      if (block !== undefined) return block;
    }
    throw new TaskIdsExhaustedError(`no block of ${idBlockSize} task ids is free in ${this.#first}-${this.#first + this.#blockCount * idBlockSize - 1}: other parafork instances on this machine hold them all (--task-ids sets the range)`);
  }

  /** The block at `first` for this instance; undefined when another holds it (or it must hold no host id and does). */
  #tryClaimBlock(first: number, options: { withoutHostIds: boolean }): ClaimedBlock | undefined {
    if (options.withoutHostIds && containsAny(this.#knownHostIds(), first, first + idBlockSize - 1)) return undefined;
    mkdirSync(this.#lockDirectory, { recursive: true, mode: 0o700 });
    const file = path.join(this.#lockDirectory, lockFileName(first));
    closeSync(openSync(file, 'a', 0o600));
    const lock = FileLock.tryAcquire(file);
    if (lock === undefined) return undefined;
    touch(file);
    return { first, lock };
  }

  /** Every block's first id: those without a lock file (never used since boot) first, then by the file's mtime. */
  #blocksByLeastRecentUse(): number[] {
    const usedAt = new Map<number, number>();
    for (const name of readdirSync(this.#lockDirectory)) {
      const first = Number(/^ids-(\d+)$/.exec(name)?.[1]);
      if (!Number.isInteger(first)) continue;
      try {
        usedAt.set(first, statSync(path.join(this.#lockDirectory, name)).mtimeMs);
      } catch {
        // removed meanwhile: never used, then
      }
    }
    const blocks = Array.from({ length: this.#blockCount }, (_, index) => this.#first + index * idBlockSize);
    const neverUsed = blocks.filter((first) => !usedAt.has(first));
    const used = blocks.filter((first) => usedAt.has(first)).sort((left, right) => (usedAt.get(left) ?? 0) - (usedAt.get(right) ?? 0));
    return [...neverUsed, ...used];
  }

  #releaseBlock(block: ClaimedBlock): void {
    touch(block.lock.path);
    block.lock.release();
  }

  #knownHostIds(): ReadonlySet<number> {
    this.#hostIds ??= this.#readHostIds();
    return this.#hostIds;
  }
}

const rangeFilePattern = /^range-(\d+)-(\d+)-(\d+)?/;

/**
 * Makes and holds the file that says `range` is an instance's while it runs: locked under a
 * temporary name first, then renamed, so a reader never finds it unlocked and takes it for stale.
 */
function declareRange(lockDirectory: string, range: TaskIdRange): { readonly file: string; readonly lock: FileLock } {
  mkdirSync(lockDirectory, { recursive: true, mode: 0o700 });
  const name = `range-${range.first}-${range.last}-${process.pid}-${randomBytes(4).toString('hex')}`;
  const temporary = path.join(lockDirectory, `.${name}`);
  closeSync(openSync(temporary, 'a', 0o600));
  const lock = FileLock.tryAcquire(temporary);
  if (lock === undefined) throw new Error(`cannot lock ${temporary}: a file of this process's own name is held by another`);
  const file = path.join(lockDirectory, name);
  renameSync(temporary, file); // the lock is the inode's: it goes with it
  return { file, lock };
}

/** Removes and lets go of a range's declaration. */
function undeclare(declared: { readonly file: string; readonly lock: FileLock }): void {
  try {
    unlinkSync(declared.file);
  } catch {
    // gone already: the next reader would have removed it anyway once let go
  }
  declared.lock.release();
}

/**
 * Whether two ranges share ids of their blocks (the whole blocks each range holds: ids past its
 * last whole block are never leased) while their blocks start at different offsets, so that the
 * same id lies in blocks with lock files of different names.
 */
function blocksOutOfStep(one: TaskIdRange, other: TaskIdRange): boolean {
  const blockEnd = (range: TaskIdRange): number => range.first + Math.floor((range.last - range.first + 1) / idBlockSize) * idBlockSize - 1;
  const overlap = one.first <= blockEnd(other) && other.first <= blockEnd(one);
  return overlap && (one.first - other.first) % idBlockSize !== 0;
}

/**
 * The --task-ids ranges of the parafork instances of the machine that run now (this one's
 * included): those whose declaration in `lockDirectory` is still held. A declaration whose holder
 * has gone is removed.
 */
export function taskIdRangesInUse(lockDirectory: string): TaskIdRange[] {
  return declaredRanges(lockDirectory).map(({ first, last }) => ({ first, last }));
}

/** The held declarations, with their file and the pid their name carries. */
function declaredRanges(lockDirectory: string): (TaskIdRange & { readonly file: string; readonly pid: number | undefined })[] {
  let names: string[];
  try {
    names = readdirSync(lockDirectory);
  } catch {
    return []; // no instance has declared one since boot
  }
  const ranges: (TaskIdRange & { readonly file: string; readonly pid: number | undefined })[] = [];
  for (const name of names) {
    const parts = rangeFilePattern.exec(name);
    if (parts === null) continue;
    const file = path.join(lockDirectory, name);
    let stale: FileLock | undefined;
    try {
      stale = FileLock.tryAcquire(file);
    } catch {
      continue; // removed meanwhile
    }
    if (stale === undefined) {
      const pid = Number(parts[3]);
      ranges.push({ first: Number(parts[1]), last: Number(parts[2]), file, pid: Number.isInteger(pid) ? pid : undefined });
      continue;
    }
    try {
      unlinkSync(file);
    } catch {
      // removed by another reader meanwhile
    }
    stale.release();
  }
  return ranges;
}

function lockFileName(first: number): string {
  return `ids-${first}`;
}

/** The time a block was last taken or given back: its place in the least-recently-used order. */
function touch(file: string): void {
  try {
    const now = (performance.timeOrigin + performance.now()) / 1000; // seconds, finer than a Date's milliseconds
    utimesSync(file, now, now);
  } catch {
    // only the order of reuse suffers
  }
}

function containsAny(ids: ReadonlySet<number>, first: number, last: number): boolean {
  for (const id of ids) if (id >= first && id <= last) return true;
  return false;
}

/** The uids of /etc/passwd and the gids of /etc/group: a Task's uid and gid are one number. */
function readHostIds(): ReadonlySet<number> {
  const ids = new Set<number>();
  for (const file of ['/etc/passwd', '/etc/group']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const id = Number(line.split(':')[2]);
      if (line.trim() !== '' && !line.startsWith('#') && Number.isInteger(id)) ids.add(id);
    }
  }
  return ids;
}

/**
 * Items given back, to be taken again least recently given back first (shift), or by name (take).
 * A taken item stays in the queue, stale, until shift passes it: each entry carries the number of
 * its giving back, and only the latest one counts.
 */
class LeastRecentlyUsed<Item> {
  readonly #queue = new Queue<{ readonly item: Item; readonly givenBack: number }>();
  /** Each item free now, with the number of its latest giving back. */
  readonly #free = new Map<Item, number>();
  #givenBack = 0;

  push(item: Item): void {
    const givenBack = ++this.#givenBack;
    this.#free.set(item, givenBack);
    this.#queue.push({ item, givenBack });
  }

  shift(): Item | undefined {
    for (let entry = this.#queue.shift(); entry !== undefined; entry = this.#queue.shift()) {
      if (this.#free.get(entry.item) !== entry.givenBack) continue; // taken by name since
      this.#free.delete(entry.item);
      return entry.item;
    }
    return undefined;
  }

  /** Takes `item` if it is free; false if it is not. */
  take(item: Item): boolean {
    return this.#free.delete(item);
  }

  clear(): void {
    this.#queue.clear();
    this.#free.clear();
  }
}

/** A first-in first-out queue with O(1) shift. */
class Queue<Item> {
  #items: Item[] = [];
  #head = 0;

  push(item: Item): void {
    this.#items.push(item);
  }

  shift(): Item | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head++];
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

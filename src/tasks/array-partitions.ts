// How several agents share one Task array (spec.nodeName unset): the ranges of indexes they claim
// in status.partitions, when a range whose holder stopped renewing it may be taken over, and the
// server-side apply bodies that claim, renew and take over a range. Pure: no I/O, no clock.
// docs/arrays.md has the protocol and the argument that no index is launched twice.
//
// - Ranges are fixed: [k * size, (k + 1) * size) with size = partitionSizeFor(completions), so two
//   agents claiming "the next free range" name the same entry (list-map key `start`) and the
//   apiserver lets only one own it: the claim is an apply *without* force, and an apply that
//   would change a field another manager owns fails with 409 Conflict.
// - Expiry is judged on the observer's own monotonic clock, as client-go's leader election does:
//   a range is expired once its renewTime has not changed for leaseDurationMs since this agent
//   first saw that value. No two nodes' clocks are compared.
// - A holder stops launching once renewAt + leaseDurationMs - leaseSafetyMs has passed without a
//   successful renew (its own clock, measured from when it sent the renew), which is before any
//   observer can have seen the lease expire: the observer's count starts when it saw the renew,
//   after it was sent.
import type { TaskIndexPartition } from '../api/task.js';
import type { ApplyConflict } from '../store/task-store.js';
import { arrayRecordProblem, type ArrayOutcome, type ArrayPolicy } from './array-progress.js';
import { IndexSet } from './index-ranges.js';

/** How long a range's holder may go without renewing before another agent may take the range over. */
export const defaultLeaseDurationMs = 30_000;
/** A holder renews (writes its entry) at least this often, changed or not. */
export const defaultRenewIntervalMs = 10_000;
/** A holder stops launching this long before an observer could see its lease expire. */
export const leaseSafetyMs = 5_000;
/** status.partitions holds at most this many entries (the CRD's maxItems). */
export const maxPartitions = 256;

/**
 * The lease timings for a lease of `leaseSeconds` (--array-lease-seconds): renew every third of it,
 * stop a sixth of it before an observer could judge it expired. 30 s gives the defaults above.
 */
export function arrayLeaseTimings(leaseSeconds: number): { readonly durationMs: number; readonly renewIntervalMs: number; readonly safetyMs: number } {
  const durationMs = leaseSeconds * 1000;
  return { durationMs, renewIntervalMs: Math.round(durationMs / 3), safetyMs: Math.round(durationMs / 6) };
}

/** The size of every range of an array: small enough to spread over agents, few enough to fit maxPartitions. */
export function partitionSizeFor(completions: number): number {
  return Math.max(Math.ceil(completions / maxPartitions), Math.min(100, completions), Math.ceil(completions / 64));
}

/** The field manager an agent applies its entries with: one per node, so SSA tells holders apart. */
export function fieldManagerFor(nodeName: string): string {
  return `parafork-agent/${nodeName}`;
}

/** What an agent should do next about an array's ranges. */
export type PartitionAction =
  | { readonly kind: 'claim'; readonly start: number; readonly end: number }
  | { readonly kind: 'take-over'; readonly partition: TaskIndexPartition }
  | { readonly kind: 'none' };

/** Remembers when this agent first saw each range's renewTime, to judge expiry on its own clock. */
export class LeaseObserver {
  readonly #seen = new Map<number, { readonly renewTime: string; readonly since: number }>();

  /** Notes the ranges as they are now (`now`: this agent's monotonic ms). */
  observe(partitions: readonly TaskIndexPartition[], now: number): void {
    const present = new Set<number>();
    for (const partition of partitions) {
      present.add(partition.start);
      const seen = this.#seen.get(partition.start);
      if (seen?.renewTime !== partition.renewTime) this.#seen.set(partition.start, { renewTime: partition.renewTime, since: now });
    }
    for (const start of this.#seen.keys()) if (!present.has(start)) this.#seen.delete(start);
  }

  /** Whether the range's holder has not renewed it for `leaseDurationMs`, as this agent saw it. */
  expired(partition: TaskIndexPartition, now: number, leaseDurationMs = defaultLeaseDurationMs): boolean {
    const seen = this.#seen.get(partition.start);
    return seen !== undefined && seen.renewTime === partition.renewTime && now - seen.since >= leaseDurationMs;
  }
}

/**
 * Why `partition` is not an entry an agent writes for an array of `completions`, or undefined when
 * it is: one of the fixed ranges, its launch fence within it, its index sets readable and within
 * it. Agents write their entries alone, but whoever may patch tasks/status may write one too: an
 * entry past completions was taken over once expired, and its range could not be made (a throw at
 * every pass for ever); one overlapping another's range would be taken over and its indexes run
 * twice (red team, session 15; task-author-api.test.ts).
 */
export function partitionProblem(partition: TaskIndexPartition, completions: number): string | undefined {
  const field = `status.partitions[start=${partition.start}]`;
  const size = partitionSizeFor(completions);
  if (partition.start % size !== 0 || partition.start >= completions) return `${field} starts no range of this array (ranges of ${size} indexes from 0, below completions ${completions})`;
  const end = Math.min(completions, partition.start + size);
  if (partition.end !== end) return `${field}.end is ${partition.end}, not ${end}`;
  if (partition.launchedThrough < partition.start || partition.launchedThrough > end) return `${field}.launchedThrough ${partition.launchedThrough} is outside [${partition.start}, ${end}]`;
  return arrayRecordProblem(partition, field, { start: partition.start, end }, completions);
}

/** The first entry no agent could have written (partitionProblem), or undefined. */
export function forgedPartitionProblem(partitions: readonly TaskIndexPartition[], completions: number): string | undefined {
  for (const partition of partitions) {
    const problem = partitionProblem(partition, completions);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** A range that still has indexes to launch (or launched ones whose end is not recorded). */
function unfinished(partition: TaskIndexPartition): boolean {
  return (partition.succeeded ?? 0) + IndexSet.parse(partition.failedIndexes ?? '', partition.end).size < partition.end - partition.start;
}

/**
 * The next step for `nodeName`: take over an expired unfinished range of another agent first (its
 * indexes are the oldest waiting), else claim the lowest range nobody holds, else nothing. An
 * agent with no room (`hasCapacity` false) or holding an unlaunched range already does nothing:
 * claiming more than it can run would only keep indexes from other agents.
 */
export function nextPartitionAction(options: {
  readonly completions: number;
  readonly partitions: readonly TaskIndexPartition[];
  readonly nodeName: string;
  /**
   * The ranges (by start) this agent holds and runs; default: every entry naming nodeName. An
   * entry naming this node that it does not run (it stopped it: self-fence, or an earlier life of
   * the agent wrote it) is taken over once expired, like anyone else's.
   */
  readonly held?: ReadonlySet<number>;
  readonly hasCapacity: boolean;
  readonly observer: LeaseObserver;
  readonly now: number;
  readonly leaseDurationMs?: number;
}): PartitionAction {
  const { completions, partitions, nodeName, held, observer, now } = options;
  if (!options.hasCapacity) return { kind: 'none' };
  const mine = (partition: TaskIndexPartition): boolean => (held === undefined ? partition.nodeName === nodeName : held.has(partition.start));
  const holdsUnlaunched = partitions.some((partition) => mine(partition) && partition.launchedThrough < partition.end);
  if (holdsUnlaunched) return { kind: 'none' };
  const expired = partitions.find((partition) => !mine(partition) && unfinished(partition) && observer.expired(partition, now, options.leaseDurationMs));
  if (expired !== undefined) return { kind: 'take-over', partition: expired };
  const size = partitionSizeFor(completions);
  const taken = new Set(partitions.map((partition) => partition.start));
  for (let start = 0; start < completions; start += size) {
    if (!taken.has(start)) return { kind: 'claim', start, end: Math.min(completions, start + size) };
  }
  return { kind: 'none' };
}

/**
 * The apply body for a Task's status with every entry this agent holds, and nothing else: what its
 * field manager owns. All of them, each time: server-side apply removes the fields a manager
 * stops sending (an entry left out would be deleted), which is also how an agent gives a range up.
 */
export function partitionApplyBody(task: { readonly apiVersion: string; readonly kind: string; readonly metadata: { readonly name?: string; readonly namespace?: string } }, entries: readonly TaskIndexPartition[]): Record<string, unknown> {
  return {
    apiVersion: task.apiVersion,
    kind: task.kind,
    metadata: { name: task.metadata.name, namespace: task.metadata.namespace },
    status: { partitions: entries },
  };
}

/**
 * The agent that writes the array's merged status (phase, conditions, counts, index sets): the
 * holder of the lowest range whose lease has not expired as this agent sees it. Two agents may
 * briefly both think they are it (their views of the leases differ); they write the same fields
 * under the same field manager (coordinatorFieldManager), so that costs a write, never a conflict.
 */
export function coordinatorOf(partitions: readonly TaskIndexPartition[], observer: LeaseObserver, now: number, leaseDurationMs = defaultLeaseDurationMs): string | undefined {
  let lowest: TaskIndexPartition | undefined;
  for (const partition of partitions) {
    if (observer.expired(partition, now, leaseDurationMs)) continue;
    if (lowest === undefined || partition.start < lowest.start) lowest = partition;
  }
  return lowest?.nodeName;
}

/** The field manager of the merged status: one name whichever agent coordinates, so the role can move without conflicts. */
export const coordinatorFieldManager = 'parafork-array-coordinator';

/** The array as the entries show it: sums, unions, and its outcome once one is known. */
export interface MergedPartitions {
  readonly active: number;
  readonly succeeded: number;
  /** Failed attempts. */
  readonly failed: number;
  readonly completedIndexes: IndexSet;
  readonly failedIndexes: IndexSet;
  /** Every index of [0, completions) lies in some entry. */
  readonly covered: boolean;
  /** Complete or Failed when the entries decide it; undefined while the array runs. */
  readonly outcome: ArrayOutcome | undefined;
}

/**
 * Merges every holder's entry into the array's status fields and decides the array's outcome by
 * the policy, as ArrayProgress does for one agent: maxFailedIndexes and the array-wide
 * backoffLimit are judged on the sums (each holder judges only its own range, which can only be
 * less), Complete when every index succeeded, FailedIndexes when every index is done and some failed.
 */
export function mergePartitions(partitions: readonly TaskIndexPartition[], policy: ArrayPolicy): MergedPartitions {
  const completedIndexes = new IndexSet();
  const failedIndexes = new IndexSet();
  let active = 0;
  let failed = 0;
  let covered = 0;
  for (const partition of partitions) {
    active += partition.active ?? 0;
    failed += partition.failed ?? 0;
    covered += partition.end - partition.start;
    for (const range of IndexSet.parse(partition.completedIndexes ?? '', policy.completions).ranges()) completedIndexes.addRange(range.start, range.end);
    for (const range of IndexSet.parse(partition.failedIndexes ?? '', policy.completions).ranges()) failedIndexes.addRange(range.start, range.end);
  }
  const succeeded = completedIndexes.size;
  let outcome: ArrayOutcome | undefined;
  if (policy.maxFailedIndexes !== undefined && failedIndexes.size > policy.maxFailedIndexes) {
    outcome = { kind: 'Failed', reason: 'MaxFailedIndexesExceeded', message: `${failedIndexes.size} indexes failed, more than maxFailedIndexes ${policy.maxFailedIndexes}` };
  } else if (policy.backoffLimitPerIndex === undefined && failed > policy.backoffLimit) {
    outcome = { kind: 'Failed', reason: 'BackoffLimitExceeded', message: `${failed} failed attempt(s) across the array, backoffLimit ${policy.backoffLimit}` };
  } else if (succeeded === policy.completions) {
    outcome = { kind: 'Complete' };
  } else if (succeeded + failedIndexes.size === policy.completions) {
    outcome = { kind: 'Failed', reason: 'FailedIndexes', message: `${failedIndexes.size} of ${policy.completions} indexes failed` };
  }
  return { active, succeeded, failed, completedIndexes, failedIndexes, covered: covered === policy.completions, outcome };
}

/**
 * The launch fence a holder should record next, or undefined while the recorded one leaves room:
 * once fewer than half a chunk of fresh indexes are left below it, the fence moves a chunk past
 * the next fresh index (never past the range's end). Recording it ahead keeps launches from
 * waiting on the write; the price is that an agent lost at that moment leaves up to a chunk of
 * indexes that never ran counted as launched (in doubt: docs/arrays.md).
 */
export function nextFence(options: { readonly nextFresh: number; readonly recorded: number; readonly end: number; readonly chunk: number }): number | undefined {
  const { nextFresh, recorded, end, chunk } = options;
  if (recorded >= end || recorded - nextFresh >= Math.ceil(chunk / 2)) return undefined;
  return Math.min(end, nextFresh + chunk);
}

/**
 * Whether a holder must stop: its last successful write was sent so long ago that an observer
 * may soon judge its lease expired and take its ranges over. Measured from when the write was
 * *sent*, on the holder's own clock: an observer starts counting only once it sees the write,
 * which is later, so the holder stops at least leaseSafetyMs before any takeover.
 */
export function selfFenceDue(lastRenewSentAt: number | undefined, now: number, leaseDurationMs = defaultLeaseDurationMs, safetyMs = leaseSafetyMs): boolean {
  return lastRenewSentAt !== undefined && now - lastRenewSentAt >= leaseDurationMs - safetyMs;
}

/** What a refused apply of an agent's entries means (decideOnConflicts). */
export interface ConflictDecision {
  /** Ranges another agent took over (their nodeName is another manager's now): to drop at once. */
  readonly lost: readonly number[];
  /**
   * Every other conflict is with the manager of an agent this one took the range over from: server-side
   * apply keeps a manager co-owning the fields a forced apply set to the value it had (the counts
   * and index sets at the takeover), so the new holder's next change to them conflicts with the
   * dead holder. Safe to apply again with force: no conflict names a range's holder (nodeName).
   */
  readonly forceAgain: boolean;
}

/**
 * Reads the conflicts of a refused apply of this agent's entries. `takenFrom`: for each range it
 * holds, the node it took the range over from (undefined for a range it claimed).
 */
export function decideOnConflicts(conflicts: readonly ApplyConflict[], takenFrom: ReadonlyMap<number, string | undefined>): ConflictDecision {
  const lost = new Set<number>();
  let unexplained = conflicts.length === 0;
  for (const conflict of conflicts) {
    const match = /^\.status\.partitions\[start=(\d+)\]\.(\w+)$/.exec(conflict.field);
    const start = match === null ? undefined : Number(match[1]);
    if (start === undefined || !takenFrom.has(start)) {
      unexplained = true;
    } else if (match?.[2] === 'nodeName') {
      lost.add(start);
    } else {
      const previous = takenFrom.get(start);
      if (previous === undefined || conflict.manager !== fieldManagerFor(previous)) unexplained = true;
    }
  }
  return { lost: [...lost], forceAgain: !unexplained && lost.size === 0 };
}

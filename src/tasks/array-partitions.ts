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
import { IndexSet } from './index-ranges.js';

/** How long a range's holder may go without renewing before another agent may take the range over. */
export const defaultLeaseDurationMs = 30_000;
/** A holder renews (writes its entry) at least this often, changed or not. */
export const defaultRenewIntervalMs = 10_000;
/** A holder stops launching this long before an observer could see its lease expire. */
export const leaseSafetyMs = 5_000;
/** status.partitions holds at most this many entries (the CRD's maxItems). */
export const maxPartitions = 256;

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
  readonly hasCapacity: boolean;
  readonly observer: LeaseObserver;
  readonly now: number;
  readonly leaseDurationMs?: number;
}): PartitionAction {
  const { completions, partitions, nodeName, observer, now } = options;
  if (!options.hasCapacity) return { kind: 'none' };
  const holdsUnlaunched = partitions.some((partition) => partition.nodeName === nodeName && partition.launchedThrough < partition.end);
  if (holdsUnlaunched) return { kind: 'none' };
  const expired = partitions.find((partition) => partition.nodeName !== nodeName && unfinished(partition) && observer.expired(partition, now, options.leaseDurationMs));
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

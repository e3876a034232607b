// A Task's resource limits and /tmp size, checked and completed with the agent's defaults, as a
// LimitRange completes a Pod's: each limit the spec leaves unset gets the agent's default for it
// (issue 12, finding 5: without them one Task could fork-bomb the node or take all its memory).
// What the kernel would refuse or misread (a fraction of a byte, 10^23 bytes, a quota under 1m)
// is refused here as the spec's own error, naming the field (finding 11); a /tmp larger than the
// agent allows likewise (finding 9).
import { readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';

import type { IntOrString, TaskLimitName, TaskSpec, TaskStatusResources } from '../api/task.js';
import type { CgroupLimits } from './cgroup-manager.js';
import { formatBytes, formatMillicores, parseQuantity, QuantityError, wholeUnits, wholeUnitsRoundedUp, type Quantity } from './quantity.js';
import { InvalidTaskSpec, shown } from './task-spec-checks.js';

/** The agent's defaults, each applied to Tasks that leave that limit unset; undefined: that default is off. */
export interface TaskLimitDefaults {
  readonly memoryBytes?: number;
  readonly cpuMillicores?: number;
  readonly pids?: number;
}

export interface TaskLimitPolicy {
  readonly defaults: TaskLimitDefaults;
  /** The largest /tmp (sandbox.tmpSizeLimit) a Task may have, in bytes. */
  readonly maxTmpBytes: number;
  /**
   * Most processes and threads of all the instance's Tasks together (pids.max of its cgroup
   * group, --tasks-pids-max); undefined: no budget beyond each Task's own limit.
   */
  readonly tasksPidsMax?: number | undefined;
}

/**
 * The defaults as flags give them (--default-memory, --default-cpu, --default-pids). Chosen for a
 * node shared by many Tasks, each a command rather than a service:
 * - memory 1Gi: ample for a compiler, a test suite or a script, and no single Task can take a
 *   node's memory; a Task that needs more says so in resources.limits.memory.
 * - pids 1024: a busy build or a thread-heavy runtime uses a few hundred; a fork bomb stops at it
 *   (Podman's default for a whole container is 2048). It still takes 32 such Tasks to fill the
 *   kernel's default pid_max of 32768.
 * - cpu none: no default. CPU is not what one Task can exhaust: the scheduler shares it fairly
 *   among whatever runs, and a per-Task cap does not protect a node from N Tasks (N of them at 1
 *   CPU still take N CPUs). On cgroup v2 every Task already has a cgroup of its own under the
 *   agent's group, which the scheduler weighs as one against the rest; on a cgroup v1 host a cpu
 *   default would cost one more cgroup join per spawn (~15% of the Task rate, measured with
 *   burst-1000). Memory and pids are what a single Task can take from all the others. A Task
 *   that should be capped says so in resources.limits.cpu; an agent can set --default-cpu.
 *
 * On a host whose pids controller is on cgroup v1, the pids default of a Task with a uid of its
 * own is enforced as its RLIMIT_NPROC rather than pids.max (task-sandbox.ts, placeDefaultPidsLimit).
 */
export const defaultLimitFlags = { memory: '1Gi', pids: '1024', cpu: 'none' } as const;

/** The CRD's default sandbox.tmpSizeLimit, which every Task that sets none has. */
export const defaultTmpSizeBytes = 64 * 2 ** 20;

/**
 * tmpfs's own default size, half of the node's memory (tmpfs(5)), in whole MiB: the default
 * --max-tmp-size. Never below the CRD's default /tmp, which a Task has without asking.
 */
export function halfOfNodeMemory(): number {
  const mebibyte = 2 ** 20;
  return Math.max(defaultTmpSizeBytes, Math.floor(os.totalmem() / 2 / mebibyte) * mebibyte);
}

/** Where the node's process tables are read (tests point them elsewhere). */
export interface ProcessTableFiles {
  readonly pidMax: string;
  readonly threadsMax: string;
  /** The reader's pid namespace, a link such as `pid:[4026531836]`. */
  readonly pidNamespace: string;
}

const nodeProcessTableFiles: ProcessTableFiles = Object.freeze({
  pidMax: '/proc/sys/kernel/pid_max',
  threadsMax: '/proc/sys/kernel/threads-max',
  pidNamespace: '/proc/self/ns/pid',
});

/** The inode of the node's own pid namespace, the same on every machine (PROC_PID_INIT_INO, include/linux/proc_ns.h). */
const initialPidNamespace = 'pid:[4026531836]';

/**
 * The default --tasks-pids-max: half of the node's process table, so that however many Tasks fork,
 * the node's own daemons keep the other half. The table is the smaller of two limits every fork
 * on the node counts against: pid_max, and threads-max, which binds root too and is the smaller
 * where systemd raises pid_max to 4194304 (192735 on a 24 GiB machine). Since Linux 6.14 pid_max
 * belongs to each pid namespace, and one made without setting it reads 4194304 whatever the
 * node's is, so an agent in a pid namespace of its own (the chart's Pod) cannot read the node's:
 * there the kernel's default for the node stands in for it (32768, or 1024 a CPU on machines with
 * more than 32), unless what it reads is smaller (red team, session 10: the chart's agent had a
 * budget of 2,097,152; task-pids-budget-in-a-pid-namespace.test.ts). A node whose pid_max is
 * larger than that gets a smaller budget than it could take: --tasks-pids-max sets it. undefined
 * where neither table can be read (then no budget).
 */
export function halfOfProcessTable(files: ProcessTableFiles = nodeProcessTableFiles, cpus: number = os.cpus().length): number | undefined {
  const readLimit = (file: string): number | undefined => {
    try {
      const value = Number(readFileSync(file, 'utf8').trim());
      return Number.isInteger(value) && value >= 2 ? value : undefined;
    } catch {
      return undefined;
    }
  };
  let inNodePidNamespace = false;
  try {
    inNodePidNamespace = readlinkSync(files.pidNamespace) === initialPidNamespace;
  } catch {
    // Unknown: read pid_max as a namespace's.
  }
  const pidMaxRead = readLimit(files.pidMax);
  const kernelDefaultPidMax = Math.max(32_768, 1024 * Math.max(1, cpus));
  const pidMax = inNodePidNamespace ? pidMaxRead : Math.min(pidMaxRead ?? kernelDefaultPidMax, kernelDefaultPidMax);
  const tables = [pidMax, readLimit(files.threadsMax)].filter((limit): limit is number => limit !== undefined);
  return tables.length === 0 ? undefined : Math.floor(Math.min(...tables) / 2);
}

/** A --max-tmp-size: at least the CRD's default /tmp, or every Task that leaves tmpSizeLimit unset would be refused. */
export function maxTmpBytes(value: string, field: string): number {
  const bytes = memoryBytes(value, field);
  if (bytes < defaultTmpSizeBytes) throw new InvalidTaskSpec(field, `must be at least ${formatBytes(defaultTmpSizeBytes)}, the /tmp a Task has when it sets no sandbox.tmpSizeLimit; got ${shown(value)}`);
  return bytes;
}

let withoutDefaults: TaskLimitPolicy | undefined;

/** For callers without flags (library use, tests): no default limits, /tmp capped as tmpfs would be. Made once (os.totalmem reads /proc/meminfo). */
export function taskLimitPolicyWithoutDefaults(): TaskLimitPolicy {
  withoutDefaults ??= Object.freeze({ defaults: Object.freeze({}), maxTmpBytes: halfOfNodeMemory() });
  return withoutDefaults;
}

// Bounds on what a cgroup or tmpfs takes and a Task can use.
/** Below 1 MiB a sandboxed process cannot do anything (python3 alone needs 4 MiB); one page fails the sandbox's own mounts with ENOMEM. */
const minimumMemoryBytes = 2 ** 20;
/** 8 PiB: far above any node, and exact in a JavaScript number (the cgroup's own ceiling is 2^63 - 4096). */
const maximumMemoryBytes = 2 ** 53;
/** A million CPUs: far above any node, and a quota cpu.max takes (the kernel's ceiling is 2^44 - 1 us a period, ~1.7e8 CPUs at ours). */
const maximumMillicores = 1_000_000_000;
/** PID_MAX_LIMIT, the most pids.max takes (kernel/cgroup/pids.c). */
const maximumPids = 4_194_304;

function quantityOf(value: IntOrString, field: string): Quantity {
  let quantity: Quantity;
  try {
    quantity = parseQuantity(value);
  } catch (error) {
    if (error instanceof QuantityError) throw new InvalidTaskSpec(field, error.message);
    throw error;
  }
  if (quantity.numerator <= 0n) throw new InvalidTaskSpec(field, `must be a positive quantity, got ${shown(value)}`);
  return quantity;
}

/** Whole bytes from `minimum` to `maximum`; `hint` names the bound in the refusal of a larger one. */
function bytes(value: IntOrString, field: string, minimum: number, maximum: number, hint = ''): number {
  const whole = wholeUnits(quantityOf(value, field));
  if (whole === undefined) throw new InvalidTaskSpec(field, `must be a whole number of bytes, got ${shown(value)}`);
  if (whole < BigInt(minimum)) throw new InvalidTaskSpec(field, `must be at least ${formatBytes(minimum)}, got ${shown(value)}`);
  if (whole > BigInt(maximum)) throw new InvalidTaskSpec(field, `${shown(value)} is more than ${hint || `the most a cgroup takes here, ${formatBytes(maximum)}`}`);
  return Number(whole);
}

/** A memory limit in bytes; throws InvalidTaskSpec naming `field`. */
export function memoryBytes(value: IntOrString, field: string): number {
  return bytes(value, field, minimumMemoryBytes, maximumMemoryBytes);
}

/** A CPU limit in thousandths of a CPU, rounded up as Kubernetes rounds; at least 1m. */
export function cpuMillicores(value: IntOrString, field: string): number {
  const quantity = quantityOf(value, field);
  if (quantity.numerator * 1000n < quantity.denominator) throw new InvalidTaskSpec(field, `must be at least 1m (a thousandth of a CPU), got ${shown(value)}`);
  const millicores = wholeUnitsRoundedUp(quantity, 1000n);
  if (millicores > BigInt(maximumMillicores)) throw new InvalidTaskSpec(field, `${shown(value)} is more than ${formatMillicores(maximumMillicores)} CPUs`);
  return Number(millicores);
}

/** A pids limit: a whole number the kernel's pids.max takes. */
export function pidsLimit(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > maximumPids) {
    throw new InvalidTaskSpec(field, `must be a whole number from 1 to ${maximumPids}, got ${shown(value)}`);
  }
  return value;
}

/** A /tmp size in bytes, at most `maxTmpBytes`; tmpfs rounds it up to whole pages. */
export function tmpSizeBytes(value: IntOrString, field: string, maxTmpBytes: number): number {
  return bytes(value, field, 1, maxTmpBytes, `this agent allows (--max-tmp-size ${formatBytes(maxTmpBytes)})`);
}

export interface TaskLimits {
  readonly limits: CgroupLimits;
  /** status.resources: what the attempt runs under and which came from defaults; undefined with no limit at all. */
  readonly resources: TaskStatusResources | undefined;
  /** The limits that came from the agent's defaults alone. */
  readonly defaulted: readonly TaskLimitName[];
  readonly tmpSizeBytes: number;
}

/** The limits a Task runs under; throws InvalidTaskSpec for a limit no cgroup or tmpfs can take. */
export function limitsForTask(spec: TaskSpec, policy: TaskLimitPolicy): TaskLimits {
  const asked = spec.resources?.limits ?? {};
  const { defaults } = policy;
  const defaulted: TaskLimitName[] = [];
  const pick = <Value>(name: TaskLimitName, fromSpec: () => Value | undefined, fallback: Value | undefined): Value | undefined => {
    const own = fromSpec();
    if (own !== undefined || fallback === undefined) return own;
    defaulted.push(name);
    return fallback;
  };
  // In the CRD's order, cpu, memory, pids: `defaulted` comes out sorted.
  const cpu = pick('cpu', () => (asked.cpu === undefined ? undefined : cpuMillicores(asked.cpu, 'spec.resources.limits.cpu')), defaults.cpuMillicores);
  const memory = pick('memory', () => (asked.memory === undefined ? undefined : memoryBytes(asked.memory, 'spec.resources.limits.memory')), defaults.memoryBytes);
  const pids = pick('pids', () => (asked.pids === undefined ? undefined : pidsLimit(asked.pids, 'spec.resources.limits.pids')), defaults.pids);
  const tmp = spec.sandbox?.tmpSizeLimit === undefined ? Math.min(defaultTmpSizeBytes, policy.maxTmpBytes) : tmpSizeBytes(spec.sandbox.tmpSizeLimit, 'spec.sandbox.tmpSizeLimit', policy.maxTmpBytes);
  const limits: CgroupLimits = {
    ...(memory !== undefined ? { memoryBytes: memory } : {}),
    ...(cpu !== undefined ? { cpuMillicores: cpu } : {}),
    ...(pids !== undefined ? { pids } : {}),
  };
  const shownLimits = {
    ...(cpu !== undefined ? { cpu: formatMillicores(cpu) } : {}),
    ...(memory !== undefined ? { memory: formatBytes(memory) } : {}),
    ...(pids !== undefined ? { pids } : {}),
  };
  const resources = Object.keys(shownLimits).length === 0 ? undefined : { limits: shownLimits, ...(defaulted.length > 0 ? { defaulted } : {}) };
  return { limits, resources, defaulted, tmpSizeBytes: tmp };
}

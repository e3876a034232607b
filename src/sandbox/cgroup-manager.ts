// Task cgroups, made only beneath the agent's own cgroup in each hierarchy (or beneath a parent
// given by the operator), under a group named `parafork`; nothing else in the cgroup tree is
// written. Every task gets a cgroup v2 directory when the host mounts cgroup2 (the child starts
// in it through CLONE_INTO_CGROUP, and cgroup.kill ends its whole tree), and each limit goes to
// the hierarchy that has its controller: v2 where it does, else the v1 one (hybrid hosts).
//
// cgroup v2 forbids processes in a cgroup whose controllers are delegated to children ("no
// internal processes"), except at the root: an agent in a non-root cgroup first moves itself into
// a leaf beside the task group, so its own cgroup can enable controllers for the tasks.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { limitControllers, placeControllers, type CgroupLayout, type ControllerPlacement, type LimitController } from './cgroup-layout.js';

export interface CgroupLimits {
  readonly memoryBytes?: number;
  /** CPU in thousandths of a core: 500 is half a core (cpu.max / cfs_quota_us per 100 ms period). */
  readonly cpuMillicores?: number;
  readonly pids?: number;
}

const cpuPeriodMicroseconds = 100_000;

/** Where a task's memory controller lives: its OOM counter is read there. */
interface MemoryLocation {
  readonly version: 'v2' | 'v1';
  readonly directory: string;
}

/** Reads "key value" lines (memory.events, memory.oom_control) into a number for `key`. */
function readCounter(file: string, key: string): number {
  try {
    const line = readFileSync(file, 'utf8').split('\n').find((entry) => entry.startsWith(`${key} `));
    return line === undefined ? 0 : Number(line.slice(key.length + 1));
  } catch {
    return 0;
  }
}

export class TaskCgroup {
  /** The cgroup v2 directory (for the Launcher's `cgroup`), if the host has cgroup2. */
  readonly v2Directory: string | undefined;
  /** The cgroup v1 directories (for the Launcher's `cgroupsV1`), one per controller placed on v1. */
  readonly v1Directories: readonly string[];
  readonly #memory: MemoryLocation | undefined;

  constructor(v2Directory: string | undefined, v1Directories: readonly string[], memory: MemoryLocation | undefined) {
    this.v2Directory = v2Directory;
    this.v1Directories = v1Directories;
    this.#memory = memory;
  }

  /** How many times the kernel's OOM killer killed a process of this cgroup. */
  oomKills(): number {
    if (!this.#memory) return 0;
    return this.#memory.version === 'v2'
      ? readCounter(path.join(this.#memory.directory, 'memory.events'), 'oom_kill')
      : readCounter(path.join(this.#memory.directory, 'memory.oom_control'), 'oom_kill');
  }

  /** SIGKILL to every process of the task: cgroup.kill on v2 (Linux 5.14), else each pid listed. */
  killAll(): void {
    if (this.v2Directory !== undefined && existsSync(path.join(this.v2Directory, 'cgroup.kill'))) {
      writeFileSync(path.join(this.v2Directory, 'cgroup.kill'), '1');
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

  /** Removes the directories; false if a process is still in one (try again after killAll). */
  remove(): boolean {
    let removed = true;
    for (const directory of [this.v2Directory, ...this.v1Directories]) {
      if (directory === undefined || !existsSync(directory)) continue;
      try {
        rmdirSync(directory);
      } catch {
        removed = false;
      }
    }
    return removed;
  }
}

export interface CgroupManagerOptions {
  readonly layout: CgroupLayout;
  /** A path relative to the agent's own cgroup in each hierarchy; default 'parafork'. */
  readonly group?: string;
}

export class CgroupManager {
  readonly placement: ControllerPlacement;
  readonly #layout: CgroupLayout;
  readonly #group: string;
  #prepared = false;
  #v2Base: string | undefined;
  readonly #v1Bases = new Map<LimitController, string>();

  constructor(options: CgroupManagerOptions) {
    this.#layout = options.layout;
    this.#group = options.group ?? 'parafork';
    if (this.#group.split('/').includes('..') || path.isAbsolute(this.#group)) throw new Error(`the cgroup group must be a relative path without '..', got ${this.#group}`);
    this.placement = placeControllers(options.layout);
  }

  /** Makes the group directories (once); throws with the path and the reason when it cannot. */
  prepare(): void {
    if (this.#prepared) return;
    const { v2, v1 } = this.#layout;
    if (v2) {
      const own = path.join(v2.mountPoint, v2.ownPath);
      if (v2.ownPath !== '/' && this.#wantedV2Controllers().length > 0) this.#moveSelfIntoLeaf(own);
      this.#v2Base = path.join(own, this.#group);
      mkdirSync(this.#v2Base, { recursive: true });
      this.#enableControllers(own);
      this.#enableControllers(this.#v2Base);
    }
    for (const controller of limitControllers) {
      const hierarchy = v1.get(controller);
      if (this.placement[controller] !== 'v1' || !hierarchy) continue;
      const base = path.join(hierarchy.mountPoint, hierarchy.ownPath, this.#group);
      mkdirSync(base, { recursive: true });
      this.#v1Bases.set(controller, base);
    }
    this.#prepared = true;
  }

  /** A cgroup for one task with its limits set; `name` must be unique among live tasks. */
  create(name: string, limits: CgroupLimits): TaskCgroup {
    this.prepare();
    if (!/^[A-Za-z0-9_.-]+$/.test(name) || name === '.' || name === '..') throw new Error(`invalid task cgroup name ${JSON.stringify(name)}`);
    const v2Directory = this.#v2Base === undefined ? undefined : path.join(this.#v2Base, name);
    if (v2Directory) mkdirSync(v2Directory, { recursive: true });
    const v1Directories: string[] = [];
    const v1ByController = new Map<LimitController, string>();
    for (const [controller, base] of this.#v1Bases) {
      const directory = path.join(base, name);
      mkdirSync(directory, { recursive: true });
      v1Directories.push(directory);
      v1ByController.set(controller, directory);
    }
    const directoryFor = (controller: LimitController): MemoryLocation | undefined => {
      if (this.placement[controller] === 'v2' && v2Directory) return { version: 'v2', directory: v2Directory };
      const directory = v1ByController.get(controller);
      return directory === undefined ? undefined : { version: 'v1', directory };
    };
    const memory = directoryFor('memory');
    if (limits.memoryBytes !== undefined && memory) {
      if (memory.version === 'v2') {
        writeFileSync(path.join(memory.directory, 'memory.max'), String(limits.memoryBytes));
        // Swap would turn an OOM kill into a slow crawl: the limit is on memory, not memory + swap.
        if (existsSync(path.join(memory.directory, 'memory.swap.max'))) writeFileSync(path.join(memory.directory, 'memory.swap.max'), '0');
      } else {
        writeFileSync(path.join(memory.directory, 'memory.limit_in_bytes'), String(limits.memoryBytes));
        if (existsSync(path.join(memory.directory, 'memory.memsw.limit_in_bytes'))) {
          writeFileSync(path.join(memory.directory, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes));
        }
      }
    }
    const pids = directoryFor('pids');
    if (limits.pids !== undefined && pids) writeFileSync(path.join(pids.directory, 'pids.max'), String(limits.pids));
    const cpu = directoryFor('cpu');
    if (limits.cpuMillicores !== undefined && cpu) {
      const quota = Math.max(1000, Math.round((limits.cpuMillicores * cpuPeriodMicroseconds) / 1000));
      if (cpu.version === 'v2') {
        writeFileSync(path.join(cpu.directory, 'cpu.max'), `${quota} ${cpuPeriodMicroseconds}`);
      } else {
        writeFileSync(path.join(cpu.directory, 'cpu.cfs_period_us'), String(cpuPeriodMicroseconds));
        writeFileSync(path.join(cpu.directory, 'cpu.cfs_quota_us'), String(quota));
      }
    }
    return new TaskCgroup(v2Directory, v1Directories, memory);
  }

  /**
   * Ends and removes every task cgroup left in the group by an earlier life of the agent (killed
   * -9, or the node rebooted mid-task): their processes belong to attempts no one will record.
   * Only for the group this agent owns alone. Returns how many task cgroups were swept.
   */
  sweepLeftovers(): number {
    this.prepare();
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

  /** Removes the (empty) group directories themselves: for tests and uninstalls, not routine use. */
  removeGroup(): void {
    for (const directory of [this.#v2Base, ...this.#v1Bases.values()]) {
      if (directory !== undefined && existsSync(directory)) rmdirSync(directory);
    }
    this.#prepared = false;
    this.#v1Bases.clear();
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

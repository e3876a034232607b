// Where this host's cgroup hierarchies are mounted and where this process sits in each, read from
// /proc/self/mountinfo and /proc/self/cgroup (cgroups(7)). A v2-only host has one unified
// hierarchy; a hybrid host (like systemd's "hybrid" mode) binds some controllers to v1
// hierarchies and leaves the rest, often none, to the unified one.
import { readFileSync } from 'node:fs';

/** The controllers parafork sets limits with. */
export type LimitController = 'memory' | 'pids' | 'cpu';
export const limitControllers: readonly LimitController[] = ['memory', 'pids', 'cpu'];

export interface Hierarchy {
  readonly mountPoint: string;
  /** This process's cgroup in the hierarchy ('/' for the root). */
  readonly ownPath: string;
}

export interface CgroupLayout {
  readonly v2: (Hierarchy & { readonly controllers: ReadonlySet<string> }) | undefined;
  readonly v1: ReadonlyMap<LimitController, Hierarchy>;
}

/** Where each controller's limits are set on this host. */
export type ControllerPlacement = Readonly<Record<LimitController, 'v2' | 'v1' | 'unavailable'>>;

export function readCgroupLayout(mountInfo = readFileSync('/proc/self/mountinfo', 'utf8'), ownCgroups = readFileSync('/proc/self/cgroup', 'utf8')): CgroupLayout {
  const ownV1 = new Map<string, string>();
  let ownV2 = '/';
  for (const line of ownCgroups.split('\n')) {
    const match = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    const [, id, controllers = '', path = '/'] = match;
    if (id === '0' && controllers === '') ownV2 = path;
    else for (const controller of controllers.split(',')) ownV1.set(controller, path);
  }
  let v2: CgroupLayout['v2'];
  const v1 = new Map<LimitController, Hierarchy>();
  for (const line of mountInfo.split('\n')) {
    // mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
    const separator = line.indexOf(' - ');
    if (separator < 0) continue;
    const fields = line.slice(0, separator).split(' ');
    const [fsType, , superOptions = ''] = line.slice(separator + 3).split(' ');
    const mountPoint = fields[4] ?? '';
    if (fsType === 'cgroup2' && v2 === undefined) {
      const controllers = readFileSync(`${mountPoint}${ownV2 === '/' ? '' : ownV2}/cgroup.controllers`, 'utf8').trim().split(/\s+/).filter(Boolean);
      v2 = { mountPoint, ownPath: ownV2, controllers: new Set(controllers) };
    } else if (fsType === 'cgroup') {
      for (const option of superOptions.split(',')) {
        if ((limitControllers as readonly string[]).includes(option) && !v1.has(option as LimitController)) {
          v1.set(option as LimitController, { mountPoint, ownPath: ownV1.get(option) ?? '/' });
        }
      }
    }
  }
  return { v2, v1 };
}

export function placeControllers(layout: CgroupLayout): ControllerPlacement {
  const place = (controller: LimitController): 'v2' | 'v1' | 'unavailable' =>
    layout.v2?.controllers.has(controller) ? 'v2' : layout.v1.has(controller) ? 'v1' : 'unavailable';
  return { memory: place('memory'), pids: place('pids'), cpu: place('cpu') };
}

// Which cgroup group a parafork instance takes. An agent's group is named (--cgroup-parent,
// default `parafork`) and exclusive: a second agent on it is refused (CgroupGroupInUseError).
// `parafork run` and `agent --manifests` without --cgroup-parent take a group of their own per
// run instead, `parafork-run-<pid>-<random>` beside the agent's, so that they never meet an
// agent's group, nor each other's; each removes its group at a clean exit, and the next one to
// start sweeps the per-run groups whose owner is gone (unlocked: killed, or the machine rebooted).
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';

import type { CgroupLayout } from './cgroup-layout.js';
import { CgroupGroupInUseError, CgroupManager } from './cgroup-manager.js';

const runGroupPattern = /^parafork-run-[0-9]+-[0-9a-f]+$/;

/** Tries with a new name when a sweeper of another run held a fresh group for a moment. */
const runGroupAttempts = 5;

export interface TaskCgroups {
  readonly manager: CgroupManager;
  /** The group taken: the one asked for, or this run's own. */
  readonly group: string;
  /** Task cgroups an earlier owner of the group left, ended and removed. */
  readonly sweptTaskCgroups: number;
  /** Per-run groups whose owner is gone, ended and removed (per-run groups only). */
  readonly sweptRunGroups: number;
}

/**
 * The task cgroups of this instance, their group taken and swept of leftovers: `group` when
 * given (refused with CgroupGroupInUseError while another process holds it), else a per-run group.
 * `tasksPidsMax` bounds the processes of all its Tasks together (CgroupManagerOptions.tasksPidsMax).
 */
export function openTaskCgroups(layout: CgroupLayout, group: string | undefined, tasksPidsMax?: number): TaskCgroups {
  if (group !== undefined) {
    const manager = new CgroupManager({ layout, group, tasksPidsMax });
    return { manager, group, sweptTaskCgroups: manager.sweepLeftovers(), sweptRunGroups: 0 };
  }
  const sweptRunGroups = sweepAbandonedRunGroups(layout);
  for (let attempt = 1; ; attempt++) {
    const name = `parafork-run-${process.pid}-${randomBytes(4).toString('hex')}`;
    const manager = new CgroupManager({ layout, group: name, tasksPidsMax });
    try {
      return { manager, group: name, sweptTaskCgroups: manager.sweepLeftovers(), sweptRunGroups };
    } catch (error) {
      if (!(error instanceof CgroupGroupInUseError) || attempt >= runGroupAttempts) throw error;
    }
  }
}

/** Ends and removes the per-run groups beside this process's own cgroup whose owner is gone. */
function sweepAbandonedRunGroups(layout: CgroupLayout): number {
  const names = new Set<string>();
  const parents = [layout.v2, ...layout.v1.values()].filter((hierarchy) => hierarchy !== undefined).map((hierarchy) => path.join(hierarchy.mountPoint, hierarchy.ownPath));
  for (const parent of new Set(parents)) {
    try {
      for (const entry of readdirSync(parent, { withFileTypes: true })) if (entry.isDirectory() && runGroupPattern.test(entry.name)) names.add(entry.name);
    } catch {
      // a hierarchy this process cannot read: nothing of ours there
    }
  }
  let swept = 0;
  for (const name of names) {
    const abandoned = new CgroupManager({ layout, group: name, idleCgroups: 0 });
    try {
      abandoned.sweepLeftovers(); // takes the group first: a live run's is refused, and skipped
      abandoned.removeGroup();
      swept++;
    } catch {
      // owned by a live run, or not removable yet: the next run looks again
    }
  }
  return swept;
}

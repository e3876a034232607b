// Cgroup groups for the agents a test starts. An agent owns its --cgroup-parent alone (a second
// agent on the same group is refused, src/sandbox/cgroup-groups.ts), and the default, `parafork`,
// is the one a real agent on this machine would take: so every test agent gets a group of its
// own, beside the test process's cgroup, and the test removes it when the agent is gone.
import { randomBytes } from 'node:crypto';

import { readCgroupLayout } from '../../src/sandbox/cgroup-layout.js';
import { CgroupManager } from '../../src/sandbox/cgroup-manager.js';

/** A group name no other agent, test or run uses: `parafork-test-<label>-<pid>-<random>`. */
export function uniqueTestCgroupGroup(label: string): string {
  return `parafork-test-${label}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** The value of --cgroup-parent in agent arguments (`--cgroup-parent X` or `--cgroup-parent=X`), if any. */
export function cgroupParentArgument(args: readonly string[]): string | undefined {
  for (const [index, argument] of args.entries()) {
    if (argument === '--cgroup-parent') return args[index + 1];
    if (argument.startsWith('--cgroup-parent=')) return argument.slice('--cgroup-parent='.length);
  }
  return undefined;
}

/**
 * Ends what an agent that is gone left in its group (a killed agent's Task processes) and removes
 * the group. An agent stopped with SIGTERM removes its group itself; this covers the rest. Does
 * nothing where the machine gives this process no cgroups, or while a live agent holds the group.
 */
export function removeTestCgroupGroup(group: string): void {
  try {
    const manager = new CgroupManager({ layout: readCgroupLayout(), group, idleCgroups: 0 });
    manager.sweepLeftovers();
    manager.removeGroup();
  } catch {
    // no cgroups here, the group is still held, or a directory could not go: nothing more to do
  }
}

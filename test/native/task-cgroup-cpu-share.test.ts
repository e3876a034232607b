// The CPU the agent's Tasks get, as the scheduler sees them (src/sandbox/cgroup-manager.ts,
// CgroupManager.create): every Task without a cpu limit of its own shares the group's cpu cgroup,
// so that together they weigh as one against the agent and the rest of the host, on cgroup v2
// (the group's cpu controller) as on a hybrid host's v1 cpu hierarchy. Without it, on a hybrid
// host each sandboxed Task (a session of its own) was a scheduling entity of its own under
// sched_autogroup, and a burst of 1,000 Tasks kept the agent's JS thread waiting on a run queue
// (issue 15's event-loop bar). Real processes in real cgroups; needs root and a cpu controller.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher } from '../../src/index.js';
import { readCgroupLayout } from '../../src/sandbox/cgroup-layout.js';
import { CgroupManager, type CgroupLimits, type TaskCgroup } from '../../src/sandbox/cgroup-manager.js';
import { uniqueTestCgroupGroup } from '../helpers/cgroup-group.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';

const layout = readCgroupLayout();
const cpuPlacement = layout.v2?.controllers.has('cpu') === true ? 'v2' : layout.v1.has('cpu') ? 'v1' : 'unavailable';
const skip = missingRequirement('task cgroups need root and a cpu controller (v2 or v1)', runningAsRoot && cpuPlacement !== 'unavailable');

describe.skipIf(skip !== undefined)(`the CPU share of a group's tasks${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;
  let manager: CgroupManager;
  const group = uniqueTestCgroupGroup('cpu-share');
  /** Every task cgroup made, removed at the end whatever the tests found. */
  const made: TaskCgroup[] = [];

  beforeAll(() => {
    launcher = new Launcher();
    // No idle pool: each task's cgroup is removed after it, as past the pool's size.
    manager = new CgroupManager({ layout, group, idleCgroups: 0 });
  });

  afterAll(async () => {
    await launcher.close();
    for (const cgroup of made) {
      cgroup.killAll();
      await cgroup.removeAsync();
    }
    await manager.removalsSettled();
    manager.removeGroup();
  });

  /** The group's cpu cgroup: where every task's CPU is shared, on the hierarchy that has the controller. */
  function groupCpuDirectory(): string {
    const hierarchy = cpuPlacement === 'v2' ? layout.v2 : layout.v1.get('cpu');
    if (hierarchy === undefined) throw new Error('no cpu hierarchy');
    return path.join(hierarchy.mountPoint, hierarchy.ownPath, group);
  }

  /** Runs a task that sleeps, and reads meanwhile whether the group's cpu cgroup itself holds a process. */
  async function whileRunning(name: string, limits: CgroupLimits): Promise<{ readonly inGroupItself: boolean; readonly cgroup: TaskCgroup }> {
    const cgroup = manager.create(name, limits);
    made.push(cgroup);
    const child = await launcher.spawn({ file: '/bin/sleep', args: ['0.3'], stdout: 'ignore', stderr: 'ignore', sandbox: {}, ...cgroup.spawnOptions });
    const procs = readFileSync(path.join(groupCpuDirectory(), 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
    await child.exited;
    return { inGroupItself: procs.length > 0, cgroup };
  }

  it('puts a task without a cpu limit under the group s cpu cgroup: in it on v1, beneath it on v2 with the controller on', async () => {
    const { inGroupItself, cgroup } = await whileRunning('no-cpu-limit', {});

    if (cpuPlacement === 'v1') {
      expect(inGroupItself).toBe(true);
    } else {
      expect(cgroup.v2Directory?.startsWith(`${groupCpuDirectory()}/`)).toBe(true);
      expect(readFileSync(path.join(groupCpuDirectory(), 'cgroup.subtree_control'), 'utf8')).toContain('cpu');
    }
  });

  it('gives a task with a cpu limit a cpu cgroup of its own beneath the group, not the group s', async () => {
    const { inGroupItself } = await whileRunning('cpu-limit', { cpuMillicores: 500 });

    expect(inGroupItself).toBe(false);
  });

  it('removes a task s own directories in the background and leaves the group s', async () => {
    const { cgroup } = await whileRunning('removed', {});
    const own = [cgroup.v2Directory, ...cgroup.v1Directories].filter((directory) => directory !== undefined);
    cgroup.killAll();

    expect(await cgroup.removeAsync()).toBe(true);
    expect(own.filter((directory) => existsSync(directory))).toEqual([]);
    expect(existsSync(groupCpuDirectory())).toBe(true);
  });
});

// The sandbox spawn threads in the Task group's shared cgroup v1 pids cgroup (the budget), so
// that every Task is born there instead of writing its `tasks` file before its exec
// (CgroupManager.sandboxThreadCgroupsV1, native/src/thread_cgroups.h). Real cgroups on this hybrid
// host; needs root and the v1 pids and cpu controllers. What is specified: only those threads
// move (the JavaScript thread, the plain spawn threads and helper threads stay at home), the
// children are born there, a full budget makes a spawn wait for room (it failed inside the Task
// before, or was refused at clone), and at close the threads go home so the group can be removed.
// Every Task here is a short `sleep` or /bin/true; each test kills what it started.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { Launcher, type InternalLauncherOptions } from '../../src/launcher/launcher.js';
import { InvalidSpawnOptionError } from '../../src/launcher/spawn-error.js';
import type { SandboxThreadCgroup } from '../../src/launcher/thread-cgroups.js';
import { placeControllers, readCgroupLayout } from '../../src/sandbox/cgroup-layout.js';
import { CgroupManager, type TaskCgroup } from '../../src/sandbox/cgroup-manager.js';
import { uniqueTestCgroupGroup } from '../helpers/cgroup-group.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';

const layout = readCgroupLayout();
const placement = placeControllers(layout);
const onV1 = placement.pids === 'v1' && placement.cpu === 'v1';
const skip = missingRequirement('spawn threads in v1 cgroups need root and the v1 pids and cpu controllers (a hybrid host)', runningAsRoot && onV1);

/** The v1 cgroup (path in its hierarchy) of thread `tid` of process `pid` for `controller`. */
function cgroupOf(pid: number, tid: number | undefined, controller: 'pids' | 'cpu'): string {
  const file = tid === undefined ? `/proc/${pid}/cgroup` : `/proc/${pid}/task/${tid}/cgroup`;
  const line = readFileSync(file, 'utf8').split('\n').find((entry) => entry.split(':')[1]?.split(',').includes(controller));
  return line?.split(':')[2] ?? '';
}

/** This process's threads by name. */
function threadsNamed(name: string): number[] {
  return readdirSync('/proc/self/task').map(Number).filter((tid) => {
    try {
      return readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === name;
    } catch {
      return false;
    }
  });
}

describe.skipIf(skip !== undefined)(`sandbox spawn threads in the Task group's v1 pids cgroup${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher | undefined;
  let manager: CgroupManager | undefined;
  const made: TaskCgroup[] = [];

  afterEach(async () => {
    for (const cgroup of made) cgroup.killAll();
    await launcher?.close();
    for (const cgroup of made.splice(0)) {
      for (let attempt = 0; attempt < 50 && !(await cgroup.removeAsync()); attempt++) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    launcher = undefined;
    await manager?.removeIdleAsync();
    manager?.removeGroup();
    manager = undefined;
  });

  function start(tasksPidsMax: number, threads = 2, counted = true): { readonly cgroups: readonly SandboxThreadCgroup[]; readonly launcher: Launcher; readonly manager: CgroupManager } {
    manager = new CgroupManager({ layout, group: uniqueTestCgroupGroup('threads'), tasksPidsMax });
    // counted: false: as if the threads took none of the budget, to fill a small one on purpose.
    const cgroups = manager.sandboxThreadCgroupsV1(counted ? 2 * threads : 0);
    const options: InternalLauncherOptions = { threads, sandboxThreadCgroupsV1: cgroups };
    launcher = new Launcher(options);
    manager.sandboxThreadsRunIn(cgroups);
    return { cgroups, launcher, manager };
  }

  async function sandboxed(name: string, script: string): Promise<{ readonly pid: number; readonly exited: Promise<{ code: number | null }>; readonly spawnedAt: number }> {
    const cgroup = manager!.create(name, {});
    made.push(cgroup);
    const child = await launcher!.spawn({ file: '/bin/sh', args: ['-c', script], sandbox: {}, ...cgroup.spawnOptions });
    return { pid: child.pid, exited: child.exited, spawnedAt: performance.now() };
  }

  it('moves the sandbox spawn threads alone into the group\'s pids cgroup, and its Tasks are born there without joining it', async () => {
    const { cgroups, manager: tasks } = start(4096);
    const group = (controller: 'pids'): string => {
      const hierarchy = layout.v1.get(controller)!;
      return `/${path.relative(hierarchy.mountPoint, cgroups[0]!.directory)}`;
    };
    expect(cgroups.map(({ directory }) => directory)).toHaveLength(1);
    const sandboxThreads = threadsNamed('parafork-sandbx');
    expect(sandboxThreads).toHaveLength(4);
    for (const tid of sandboxThreads) {
      expect(cgroupOf(process.pid, tid, 'pids')).toBe(group('pids'));
      expect(cgroupOf(process.pid, tid, 'cpu')).toBe(cgroupOf(process.pid, process.pid, 'cpu')); // not among the Tasks
    }
    // The JavaScript thread (issue 15), the plain lane and the helpers stay where the agent runs.
    for (const tid of [process.pid, ...threadsNamed('parafork-spawn'), ...threadsNamed('parafork-reaper'), ...threadsNamed('parafork-logs')]) {
      expect(cgroupOf(process.pid, tid, 'pids')).toBe(cgroupOf(process.pid, process.pid, 'pids'));
      expect(cgroupOf(process.pid, tid, 'pids')).not.toBe(group('pids'));
    }
    const cgroup = tasks.create('born-there', {});
    // Only the group's cpu cgroup is joined on v1 (a Task without a cpu limit of its own).
    expect(cgroup.spawnOptions.cgroupsV1).toEqual([path.join(layout.v1.get('cpu')!.mountPoint, layout.v1.get('cpu')!.ownPath, path.basename(cgroups[0]!.directory))]);
    made.push(cgroup);
    const child = await launcher!.spawn({ file: '/bin/sleep', args: ['5'], sandbox: {}, ...cgroup.spawnOptions });
    expect(cgroupOf(child.pid, undefined, 'pids')).toBe(group('pids'));
    // The network namespace pool's thread, made by a spawn thread at the first sandboxed spawn, starts at home.
    for (const tid of threadsNamed('parafork-netns')) expect(cgroupOf(process.pid, tid, 'pids')).not.toBe(group('pids'));
    cgroup.killAll();
    await child.exited;
  });

  it('makes a spawn wait while the budget is full, and starts it once a Task ends', async () => {
    // 2 sandbox threads + the first Task (its init and sleep) = 4: full.
    const { launcher: spawner } = start(4, 1, false);
    const first = await sandboxed('holds-the-budget', 'exec sleep 1.5');
    const firstEnded = first.exited.then(() => performance.now());
    const second = await sandboxed('waits-for-room', 'exit 0');
    const endedAt = await firstEnded;
    expect(second.spawnedAt).toBeGreaterThanOrEqual(endedAt);
    expect((await second.exited).code).toBe(0);
    expect(spawner.stats().queued).toBe(0);
  });

  it('lets the group be removed after close: the threads go home before they end', async () => {
    const { cgroups, launcher: spawner, manager: tasks } = start(4096);
    await (await sandboxed('one', 'exit 0')).exited;
    await spawner.close();
    launcher = undefined;
    for (const { directory } of cgroups) expect(readFileSync(path.join(directory, 'tasks'), 'utf8')).toBe('');
    for (const cgroup of made.splice(0)) await cgroup.removeAsync();
    await tasks.removeIdleAsync();
    expect(() => tasks.removeGroup()).not.toThrow();
    manager = undefined;
  });

  it('keeps the budget\'s joins where the threads would take more than an eighth of it', () => {
    manager = new CgroupManager({ layout, group: uniqueTestCgroupGroup('threads'), tasksPidsMax: 20 });
    const cgroups = manager.sandboxThreadCgroupsV1(4);
    expect(cgroups).toEqual([]);
    manager.sandboxThreadsRunIn(cgroups);
    const cgroup = manager.create('joins-the-budget', {});
    expect(cgroup.spawnOptions.cgroupsV1).toContainEqual(expect.stringContaining(layout.v1.get('pids')!.mountPoint));
  });
});

describe('InternalLauncherOptions.sandboxThreadCgroupsV1', () => {
  it('is refused unless an array of { directory, home } absolute paths, each directory once', () => {
    const refused = (value: unknown): void => {
      const options = { sandboxThreadCgroupsV1: value } as unknown as InternalLauncherOptions;
      expect(() => new Launcher(options)).toThrow(InvalidSpawnOptionError);
    };
    refused('/sys/fs/cgroup/pids');
    refused([{ directory: 'relative', home: '/' }]);
    refused([{ directory: '/a', home: 7 }]);
    refused([{ directory: '/a\0b', home: '/' }]);
    refused([{ directory: '/a', home: '/' }, { directory: '/a', home: '/' }]);
    refused(Array.from({ length: 9 }, (_, index) => ({ directory: `/a${index}`, home: '/' })));
  });

  it('fails the Launcher when a thread cannot move there, naming the step', () => {
    const options: InternalLauncherOptions = { sandboxThreadCgroupsV1: [{ directory: `/nonexistent-${process.pid}`, home: '/' }] };
    expect(() => new Launcher(options)).toThrow(/tasks file of a sandbox thread cgroup/);
  });
});

// A clone3 that fails after the kernel made the child's pidfd (CLONE_INTO_CGROUP into a cgroup
// removed behind the agent's back, a full pids budget, ...) must not leave the spawn thread holding
// that fd number: copy_process() writes the pidfd to clone_args.pidfd before cgroup_can_fork() and
// frees the number again when the clone fails (kernel/fork.c), so a spawn thread that took the
// number as its own closed it a moment later, by then another spawn's pipe or any other fd of the
// process (a flaky "Unsupported fd type" in cgroup-pool.test.ts, found in session 10 with strace).
// Many spawns into a removed cgroup at once, each with a pipe: every one must arrive with its output.
// Real cgroups on this host; needs root and cgroup v2.
import { openSync, closeSync, constants as fsConstants, rmdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher } from '../../src/index.js';
import { readCgroupLayout } from '../../src/sandbox/cgroup-layout.js';
import { CgroupManager } from '../../src/sandbox/cgroup-manager.js';
import { uniqueTestCgroupGroup } from '../helpers/cgroup-group.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';

const layout = readCgroupLayout();
const skip = missingRequirement('a spawn into a removed cgroup needs root and a cgroup v2 hierarchy', runningAsRoot && layout.v2 !== undefined);

describe.skipIf(skip !== undefined)(`a spawn whose clone fails${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;
  let manager: CgroupManager;

  beforeAll(() => {
    launcher = new Launcher({ threads: 4 });
    manager = new CgroupManager({ layout, group: uniqueTestCgroupGroup('failed-clone'), idleCgroups: 0 });
  });

  afterAll(async () => {
    await launcher.close();
    manager.sweepLeftovers();
    manager.removeGroup();
  });

  it('closes no fd of the process: 200 spawns into a removed cgroup (tried again by path) beside each other, each with a pipe, all read their output', async () => {
    const cgroup = manager.create('removed', {});
    const first = await launcher.spawn({ file: '/bin/true', ...cgroup.spawnOptions });
    await first.exited;
    const directory = cgroup.v2Directory as string;
    const removed = openSync(directory, fsConstants.O_DIRECTORY | 0o10000000 /* O_PATH */);
    rmdirSync(directory);
    try {
      const { cgroupSetup, ...rest } = cgroup.spawnOptions;
      const options = { ...rest, cgroupSetup: { files: cgroupSetup?.files ?? [], joinFds: { cgroup: removed, cgroupsV1: [] } } };
      const outputs = await Promise.all(Array.from({ length: 200 }, async (_, index) => {
        const child = await launcher.spawn({ file: '/bin/echo', args: [`spawn ${index}`], stdout: 'pipe', ...options });
        let output = '';
        child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
        const ended = new Promise((resolve) => child.stdout?.on('close', resolve));
        expect((await child.exited).code).toBe(0);
        await ended;
        return output;
      }));
      expect(outputs).toEqual(Array.from({ length: 200 }, (_, index) => `spawn ${index}\n`));
    } finally {
      closeSync(removed);
      cgroup.killAll();
      cgroup.remove();
    }
  });
});

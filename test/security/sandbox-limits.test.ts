// Resource limits of sandboxed tasks, in real cgroups on this host: cgroup v2 where the host
// mounts it (membership, CLONE_INTO_CGROUP, cgroup.kill) and, on a hybrid host such as this
// project's machines, the v1 memory, pids and cpu controllers. Needs root and writable cgroups.
import { existsSync, readFileSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher } from '../../src/index.js';
import { readCgroupLayout } from '../../src/sandbox/cgroup-layout.js';
import { CgroupManager, type CgroupLimits, type TaskCgroup } from '../../src/sandbox/cgroup-manager.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';

const layout = readCgroupLayout();
const skip = missingRequirement('cgroup limits need root and a cgroup hierarchy', runningAsRoot && (layout.v2 !== undefined || layout.v1.size > 0));

describe.skipIf(skip !== undefined)(`sandboxed tasks in cgroups${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;
  let manager: CgroupManager;
  const made: TaskCgroup[] = [];

  beforeAll(() => {
    launcher = new Launcher();
    manager = new CgroupManager({ layout, group: `parafork-test-${process.pid}` });
  });

  afterAll(async () => {
    await launcher.close();
    for (const cgroup of made) {
      cgroup.killAll();
      cgroup.remove();
    }
    manager.removeGroup();
  });

  async function run(name: string, limits: CgroupLimits, script: string): Promise<{ code: number | null; signal: string | null; output: string; cpuMs: number; cgroup: TaskCgroup }> {
    const cgroup = manager.create(name, limits);
    made.push(cgroup);
    const child = await launcher.spawn({
      file: '/bin/sh',
      args: ['-c', script],
      stdout: 'pipe',
      stderr: 'pipe',
      sandbox: {},
      ...cgroup.spawnOptions,
    });
    let output = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const exit = await child.exited;
    await new Promise((resolve) => setTimeout(resolve, 50));
    return { code: exit.code, signal: exit.signal, output, cpuMs: (exit.rusage.userUs + exit.rusage.systemUs) / 1000, cgroup };
  }

  it('places each limit where its controller is (v2 first, else v1) and says so', () => {
    for (const controller of ['memory', 'pids', 'cpu'] as const) {
      expect(manager.placement[controller]).not.toBe('unavailable');
    }
  });

  it('a memory bomb is OOM-killed by its memory limit, and the kill is counted', async () => {
    const result = await run('memory-bomb', { memoryBytes: 64 * 2 ** 20 }, '/usr/bin/python3 -c "x = bytearray(512 * 2**20); print(len(x))"');
    expect(result.code).toBe(128 + 9); // init reports SIGKILL as a shell would
    expect(result.cgroup.oomKills()).toBeGreaterThanOrEqual(1);
  });

  it('a fork bomb stops at pids.max', async () => {
    const result = await run('fork-bomb', { pids: 16 }, 'i=0; while [ $i -lt 100 ]; do sleep 5 & i=$((i+1)); done; echo forked-all');
    expect(result.output).toContain('Cannot fork');
    expect(result.output).not.toContain('forked-all');
  });

  it('a CPU hog is throttled to its cpu limit', async () => {
    // One second of wall time at a tenth of a core: about 100 ms of CPU, far from the 1,000 it wants.
    const result = await run('cpu-hog', { cpuMillicores: 100 }, 'timeout 1 sh -c "while :; do :; done"; true');
    expect(result.cpuMs).toBeLessThan(300);
  });

  it('limit files are written by the spawn thread, not by create()', () => {
    const cgroup = manager.create('not-yet-made', { pids: 8 });
    made.push(cgroup);
    for (const directory of [cgroup.v2Directory, ...cgroup.v1Directories]) if (directory !== undefined) expect(existsSync(directory)).toBe(false);
    expect(cgroup.spawnOptions.cgroupSetup?.files.map((file) => [path.basename(file.path), file.value])).toContainEqual(['pids.max', '8']);
  });

  it('a reused cgroup takes the next task limits and drops the last one limits', async () => {
    const first = await run('reuse-first', { pids: 16 }, 'echo ran');
    expect(first.output).toContain('ran');
    expect(first.cgroup.remove()).toBe(true); // into the idle pool
    const second = await run('reuse-second', {}, 'i=0; while [ $i -lt 30 ]; do sleep 2 & i=$((i+1)); done; echo forked-all; kill $(jobs -p)');
    expect(second.cgroup.v2Directory ?? second.cgroup.v1Directories[0]).toBe(first.cgroup.v2Directory ?? first.cgroup.v1Directories[0]);
    expect(second.output).toContain('forked-all'); // no pids limit any more
    expect(second.cgroup.remove()).toBe(true);
    const third = await run('reuse-third', { pids: 20 }, 'echo ran');
    const pidsDirectory = manager.placement.pids === 'v2' ? third.cgroup.v2Directory : third.cgroup.v1Directories.find((directory) => directory.includes('/pids/'));
    expect(readFileSync(`${pidsDirectory as string}/pids.max`, 'utf8').trim()).toBe('20');
  });

  it('joins a v1 hierarchy only for a limit set there', () => {
    const unlimited = manager.create('joins-unlimited', {});
    made.push(unlimited);
    const v1Placed = (['memory', 'pids', 'cpu'] as const).filter((controller) => manager.placement[controller] === 'v1');
    expect(unlimited.v1Directories).toEqual([]);
    const memoryOnly = manager.create('joins-memory', { memoryBytes: 2 ** 26 });
    made.push(memoryOnly);
    expect(memoryOnly.v1Directories.length).toBe(v1Placed.includes('memory') ? 1 : 0);
    const limited = manager.create('joins-limited', { pids: 8, cpuMillicores: 500, memoryBytes: 2 ** 26 });
    made.push(limited);
    expect(limited.v1Directories.length).toBe(v1Placed.length);
  });

  it('a pooled cgroup removed behind the agent back is made again, limits and all, by the next spawn', async () => {
    const first = await run('removed-behind', { pids: 16 }, 'echo ran');
    expect(first.cgroup.remove()).toBe(true); // pooled; the spawn threads remember it as made
    for (const directory of [first.cgroup.v2Directory, ...first.cgroup.v1Directories]) if (directory !== undefined) rmdirSync(directory);
    const again = await run('removed-behind-again', { pids: 16 }, 'echo ran again');
    expect(again.output).toContain('ran again');
    const pidsDirectory = manager.placement.pids === 'v2' ? again.cgroup.v2Directory : again.cgroup.v1Directories.find((directory) => directory.includes('/pids/'));
    expect(readFileSync(`${pidsDirectory as string}/pids.max`, 'utf8').trim()).toBe('16');
  });

  it('removeIdle removes the pooled cgroups (the agent at shutdown)', async () => {
    const pooled = await run('pooled-then-removed', {}, 'true');
    expect(pooled.cgroup.remove()).toBe(true);
    expect(existsSync(pooled.cgroup.v2Directory ?? '/nonexistent')).toBe(layout.v2 !== undefined);
    manager.removeIdle();
    for (const directory of [pooled.cgroup.v2Directory, ...pooled.cgroup.v1Directories]) if (directory !== undefined) expect(existsSync(directory)).toBe(false);
  });

  it('an OOM kill counts for its own task only, not for the next task in the same cgroup', async () => {
    const bomb = await run('oom-then-reuse', { memoryBytes: 64 * 2 ** 20 }, '/usr/bin/python3 -c "x = bytearray(512 * 2**20)"');
    expect(bomb.cgroup.oomKills()).toBeGreaterThanOrEqual(1);
    bomb.cgroup.killAll();
    expect(bomb.cgroup.remove()).toBe(true);
    const next = await run('after-oom', { memoryBytes: 64 * 2 ** 20 }, 'echo fine');
    expect(next.cgroup.v2Directory ?? next.cgroup.v1Directories[0]).toBe(bomb.cgroup.v2Directory ?? bomb.cgroup.v1Directories[0]);
    expect(next.output).toContain('fine');
    expect(next.cgroup.oomKills()).toBe(0);
  });

  it('the memory peak counts its own task only: a reused cgroup does not report the earlier task s (status.usage.memoryPeakBytes)', async () => {
    const hungry = await run('peak-then-reuse', { memoryBytes: 128 * 2 ** 20 }, 'head -c 67108864 /dev/zero > /tmp/fill');
    const hungryPeak = hungry.cgroup.memoryPeakBytes();
    expect(hungryPeak).toBeGreaterThanOrEqual(64 * 2 ** 20);
    hungry.cgroup.killAll();
    expect(hungry.cgroup.remove()).toBe(true);
    const small = await run('small-after-peak', { memoryBytes: 128 * 2 ** 20 }, 'true');
    expect(small.cgroup.v2Directory ?? small.cgroup.v1Directories[0]).toBe(hungry.cgroup.v2Directory ?? hungry.cgroup.v1Directories[0]);
    const smallPeak = small.cgroup.memoryPeakBytes();
    // v1: reset by the spawn thread; v2: unknown rather than the earlier task's.
    if (manager.placement.memory === 'v1') expect(smallPeak).toBeLessThan(16 * 2 ** 20);
    else expect(smallPeak).toBeUndefined();
  });

  it('cgroup.kill ends the whole task tree at once (cgroup v2)', async () => {
    if (layout.v2 === undefined) throw new Error('this host has no cgroup2 hierarchy');
    const cgroup = manager.create('tree-kill', {});
    made.push(cgroup);
    const child = await launcher.spawn({ file: '/bin/sh', args: ['-c', 'sleep 100 & sleep 100 & echo started; wait'], stdout: 'pipe', sandbox: {}, ...cgroup.spawnOptions });
    await new Promise((resolve) => child.stdout?.once('data', resolve));
    const members = readFileSync(`${cgroup.v2Directory as string}/cgroup.procs`, 'utf8').trim().split('\n');
    expect(members.length).toBeGreaterThanOrEqual(4); // init, sh, two sleeps
    cgroup.killAll();
    expect((await child.exited).signal).toBe('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(readFileSync(`${cgroup.v2Directory as string}/cgroup.procs`, 'utf8').trim()).toBe('');
    expect(cgroup.remove()).toBe(true);
    // Linux SIGKILLs every later CLONE_INTO_CGROUP child of a killed cgroup: it is removed, not reused.
    expect(existsSync(cgroup.v2Directory as string)).toBe(false);
    const next = manager.create('after-kill', {});
    made.push(next);
    expect(next.v2Directory).not.toBe(cgroup.v2Directory);
  });
});

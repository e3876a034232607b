// The idle pool of task cgroups (src/sandbox/cgroup-manager.ts) under a Task array's turnover:
// while more cgroups are in use than the pool's floor (idleCgroups), every cgroup given back is
// kept for the next task instead of being removed and made again, the pool shrinks back to its
// floor once the peak of use is a minute old, and what a reused cgroup carries over is nothing of the earlier task's:
// no process, its own limits, its own OOM count, and a memory peak only where it is asked for. The
// one limit left as it was: a v1 cgroup's socket buffers' bound, for a Task that sets none (network
// none: its sockets carry nothing), which is given no file more for it.
// Real cgroups on this host; needs root and a cgroup hierarchy.
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher } from '../../src/index.js';
import { CgroupFileReader } from '../../src/sandbox/cgroup-file-reader.js';
import { readCgroupLayout } from '../../src/sandbox/cgroup-layout.js';
import { CgroupManager, type CgroupLimits, type TaskCgroup } from '../../src/sandbox/cgroup-manager.js';
import { uniqueTestCgroupGroup } from '../helpers/cgroup-group.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';

const layout = readCgroupLayout();
const skip = missingRequirement('task cgroups need root and a cgroup hierarchy', runningAsRoot && (layout.v2 !== undefined || layout.v1.size > 0));
const floor = 2;

describe.skipIf(skip !== undefined)(`the idle pool of task cgroups${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;
  let manager: CgroupManager;
  let serial = 0;
  let nowMs = 0;

  beforeAll(() => {
    launcher = new Launcher();
    manager = new CgroupManager({ layout, group: uniqueTestCgroupGroup('pool'), idleCgroups: floor, clock: () => nowMs });
  });

  afterAll(async () => {
    await launcher.close();
    manager.sweepLeftovers();
    manager.removeGroup();
  });

  /** The directory a cgroup is known by: its v2 one, else its first v1 one. */
  const directoryOf = (cgroup: TaskCgroup): string => cgroup.v2Directory ?? cgroup.v1Directories[0] ?? '';

  /** The task cgroups in the group right now (idle or in use), by directory: those beside `sibling`. */
  function groupDirectories(sibling: TaskCgroup): string[] {
    const base = path.dirname(directoryOf(sibling));
    return readdirSync(base, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => path.join(base, entry.name));
  }

  /** Runs `script` sandboxed in a new task cgroup and waits for its exit; the cgroup stays in use. */
  async function runIn(limits: CgroupLimits, script = 'true', options: { memoryPeak?: boolean } = {}): Promise<{ cgroup: TaskCgroup; output: string }> {
    const cgroup = manager.create(`task-${serial++}`, limits, options);
    const child = await launcher.spawn({ file: '/bin/sh', args: ['-c', script], stdout: 'pipe', sandbox: {}, ...cgroup.spawnOptions });
    let output = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    await child.exited;
    await new Promise((resolve) => setTimeout(resolve, 20));
    return { cgroup, output };
  }

  /** Gives a cgroup back as the reconciler does after an exit. */
  function giveBack(cgroup: TaskCgroup): void {
    cgroup.oomKills();
    cgroup.killAll();
    expect(cgroup.remove()).toBe(true);
  }

  it('keeps every cgroup of a turnover larger than its floor: a burst given back while others run is reused whole by the next tasks', async () => {
    const inUse = await Promise.all(Array.from({ length: 6 }, () => runIn({ memoryBytes: 64 * 2 ** 20 })));
    const returned = inUse.slice(0, 4).map(({ cgroup }) => cgroup);
    for (const cgroup of returned) giveBack(cgroup); // four back at once, two still in use
    const next = await Promise.all(Array.from({ length: 4 }, () => runIn({ memoryBytes: 64 * 2 ** 20 }, 'echo next')));
    expect(new Set(next.map(({ cgroup }) => directoryOf(cgroup)))).toEqual(new Set(returned.map(directoryOf)));
    for (const { output } of next) expect(output).toContain('next');
    for (const { cgroup } of [...inUse.slice(4), ...next]) giveBack(cgroup);
  });

  it('holds the cgroups of a peak of use for 30-60 s, then shrinks back to its floor, removing those it let go of', async () => {
    const tasks = await Promise.all(Array.from({ length: 6 }, () => runIn({})));
    const first = tasks[0] as { cgroup: TaskCgroup };
    const before = new Set(groupDirectories(first.cgroup));
    for (const { cgroup } of tasks) giveBack(cgroup);
    expect(groupDirectories(first.cgroup).length).toBe(before.size); // all pooled: the peak is recent
    nowMs += 31_000;
    const later = await runIn({}); // a new window: the peak of the one before still counts
    nowMs += 31_000;
    giveBack(later.cgroup); // the peak is over a minute old
    await manager.removalsSettled(); // the rmdirs of those let go of run on the thread pool
    const left = groupDirectories(first.cgroup);
    expect(left.length).toBe(floor);
    // The fds it kept to read the removed ones, and to join them (their directories and v1 `tasks`
    // files, in every hierarchy), went with them.
    const keptFiles = readdirSync('/proc/self/fd').map((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`); } catch { return ''; } });
    const bases = [first.cgroup.v2Directory, ...first.cgroup.v1Directories].filter((directory) => directory !== undefined).map((directory) => path.dirname(directory));
    const leftNames = left.map((directory) => path.basename(directory));
    for (const base of bases) {
      for (const target of keptFiles.filter((file) => file.startsWith(`${base}/`))) {
        const name = path.relative(base, target).split('/')[0] as string;
        expect(leftNames).toContain(name);
      }
    }
    for (const directory of new Set([...before, ...tasks.map(({ cgroup }) => directoryOf(cgroup))])) {
      if (!left.includes(directory)) expect(existsSync(directory)).toBe(false);
    }
  });

  it('a reused cgroup holds no process of the earlier task and takes the next task limits', async () => {
    const first = await runIn({ pids: 16 }, 'echo first');
    giveBack(first.cgroup);
    const second = await runIn({}, 'cat /proc/self/cgroup > /dev/null; echo second');
    expect(directoryOf(second.cgroup)).toBe(directoryOf(first.cgroup));
    expect(second.output).toContain('second');
    const pidsDirectory = manager.placement.pids === 'v2' ? second.cgroup.v2Directory : second.cgroup.v1Directories.find((directory) => directory.includes('/pids/'));
    if (pidsDirectory !== undefined) expect(readFileSync(path.join(pidsDirectory, 'pids.max'), 'utf8').trim()).toBe('max');
    for (const directory of [second.cgroup.v2Directory, ...second.cgroup.v1Directories]) {
      if (directory !== undefined) expect(readFileSync(path.join(directory, 'cgroup.procs'), 'utf8')).toBe('');
    }
    giveBack(second.cgroup);
  });

  it('a task joined to a v1 cgroup (through its tasks file) has there every process it starts, and nothing of the agent', async () => {
    if (manager.placement.memory !== 'v1') return; // no v1 join on this host: nothing to specify
    const cgroup = manager.create(`task-${serial++}`, { memoryBytes: 64 * 2 ** 20 });
    const child = await launcher.spawn({ file: '/bin/sh', args: ['-c', 'sleep 30 & sleep 30 & echo started; wait'], stdout: 'pipe', sandbox: {}, ...cgroup.spawnOptions });
    await new Promise((resolve) => child.stdout?.once('data', resolve));
    const [memoryDirectory] = cgroup.v1Directories as [string];
    const members = readFileSync(path.join(memoryDirectory, 'cgroup.procs'), 'utf8').trim().split('\n').map(Number);
    expect(members).toContain(child.pid); // the sandbox's init
    expect(members.length).toBe(4); // init, sh and its two sleeps
    expect(members).not.toContain(process.pid);
    cgroup.killAll();
    await child.exited;
    await new Promise((resolve) => setTimeout(resolve, 20));
    giveBack(cgroup);
  });

  it('an index that asks for no memory peak reads none, and the next task in its cgroup that asks gets its own peak, not the index s', async () => {
    const hungry = await runIn({ memoryBytes: 128 * 2 ** 20 }, 'head -c 67108864 /dev/zero > /tmp/fill', { memoryPeak: false });
    expect(hungry.cgroup.memoryPeakBytes()).toBeUndefined();
    giveBack(hungry.cgroup);
    const index = await runIn({ memoryBytes: 128 * 2 ** 20 }, 'true', { memoryPeak: false });
    expect(directoryOf(index.cgroup)).toBe(directoryOf(hungry.cgroup));
    expect(index.cgroup.spawnOptions.cgroupSetup?.files.map((file) => path.basename(file.path))).not.toContain('memory.max_usage_in_bytes');
    giveBack(index.cgroup);
    const task = await runIn({ memoryBytes: 128 * 2 ** 20 }, 'true');
    expect(directoryOf(task.cgroup)).toBe(directoryOf(hungry.cgroup));
    // v1: the spawn thread reset the peak for the task that asks; v2: unknown rather than the earlier task's.
    if (manager.placement.memory === 'v1') expect(task.cgroup.memoryPeakBytes()).toBeLessThan(16 * 2 ** 20);
    else expect(task.cgroup.memoryPeakBytes()).toBeUndefined();
    giveBack(task.cgroup);
  });

  it('a reused v1 memory cgroup takes each Task\'s socket buffers\' bound, and a Task without one (network none) is given no file more for it', async () => {
    if (manager.placement.memory !== 'v1') return; // cgroup v2 charges socket buffers to memory.max: nothing to write
    const memoryBytes = 64 * 2 ** 20;
    const socketLimitOf = (cgroup: TaskCgroup): string => readFileSync(path.join(cgroup.v1Directories[0] ?? '', 'memory.kmem.tcp.limit_in_bytes'), 'utf8').trim();
    const listed = (cgroup: TaskCgroup): string[] => (cgroup.spawnOptions.cgroupSetup?.files ?? []).map((file) => path.basename(file.path));
    const networked = await runIn({ memoryBytes, socketBufferBytes: memoryBytes });
    if (!existsSync(path.join(networked.cgroup.v1Directories[0] ?? '', 'memory.kmem.tcp.limit_in_bytes'))) {
      giveBack(networked.cgroup);
      return; // a kernel without the file (it is deprecated): nothing is listed, nothing to specify
    }
    expect(socketLimitOf(networked.cgroup)).toBe(String(memoryBytes));
    giveBack(networked.cgroup);
    const without = await runIn({ memoryBytes });
    expect(directoryOf(without.cgroup)).toBe(directoryOf(networked.cgroup));
    expect(listed(without.cgroup)).not.toContain('memory.kmem.tcp.limit_in_bytes');
    giveBack(without.cgroup);
    const smaller = await runIn({ memoryBytes, socketBufferBytes: 16 * 2 ** 20 });
    expect(directoryOf(smaller.cgroup)).toBe(directoryOf(networked.cgroup));
    expect(socketLimitOf(smaller.cgroup)).toBe(String(16 * 2 ** 20));
    giveBack(smaller.cgroup);
  });

  /** The cgroup each hierarchy puts the process in, as /proc/self/cgroup lists it ("memory" -> path). */
  function cgroupsIn(procSelfCgroup: string): Map<string, string> {
    const byController = new Map<string, string>();
    for (const line of procSelfCgroup.trim().split('\n')) {
      const [, controllers = '', where = ''] = line.split(':');
      for (const controller of controllers === '' ? ['unified'] : controllers.split(',')) byController.set(controller, where);
    }
    return byController;
  }

  it('a reused cgroup is joined through the fds the pool keeps with it, and its task is in each of its cgroups', async () => {
    const first = await runIn({ memoryBytes: 64 * 2 ** 20 });
    giveBack(first.cgroup);
    const second = manager.create(`task-${serial++}`, { memoryBytes: 64 * 2 ** 20 });
    expect(directoryOf(second)).toBe(directoryOf(first.cgroup));
    const joinFds = second.spawnOptions.cgroupSetup?.joinFds;
    expect(joinFds).toBeDefined();
    if (second.v2Directory !== undefined) expect(readlinkSync(`/proc/self/fd/${joinFds?.cgroup}`)).toBe(second.v2Directory);
    expect((joinFds?.cgroupsV1 ?? []).map((fd) => readlinkSync(`/proc/self/fd/${fd}`))).toEqual((second.spawnOptions.cgroupsV1 ?? []).map((directory) => path.join(directory, 'tasks')));
    expectInside(second, await cgroupsOfTaskIn(second));
    giveBack(second);
  });

  /** /proc/self/cgroup of a task run in `cgroup` without a sandbox (no cgroup namespace: the host's paths). */
  async function cgroupsOfTaskIn(cgroup: TaskCgroup): Promise<Map<string, string>> {
    const child = await launcher.spawn({ file: '/bin/cat', args: ['/proc/self/cgroup'], stdout: 'pipe', ...cgroup.spawnOptions });
    let output = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    expect((await child.exited).code).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    return cgroupsIn(output);
  }

  function expectInside(cgroup: TaskCgroup, inside: Map<string, string>): void {
    const name = path.basename(directoryOf(cgroup));
    if (cgroup.v2Directory !== undefined) expect(inside.get('unified')).toMatch(new RegExp(`/${name}$`));
    if (manager.placement.memory === 'v1') expect(inside.get('memory')).toMatch(new RegExp(`/${name}$`));
  }

  it('a kept join fd whose cgroup was removed and made again behind the pool s back costs a second try with the paths, not the spawn', async () => {
    const first = await runIn({ memoryBytes: 64 * 2 ** 20 });
    giveBack(first.cgroup);
    const cgroup = manager.create(`task-${serial++}`, { memoryBytes: 64 * 2 ** 20 });
    expect(cgroup.spawnOptions.cgroupSetup?.joinFds).toBeDefined();
    // Removed and made again: the kept fds name the removed ones (ENOENT from CLONE_INTO_CGROUP,
    // ENODEV from a v1 `tasks` write). Each case alone: first the v2 one, then the v1 ones.
    const owned = [cgroup.v2Directory, ...cgroup.v1Directories].filter((directory) => directory !== undefined);
    for (const stale of [owned.slice(0, 1), owned.slice(1)]) {
      if (stale.length === 0) continue;
      for (const directory of stale) rmdirSync(directory);
      for (const directory of stale) mkdirSync(directory);
      expectInside(cgroup, await cgroupsOfTaskIn(cgroup));
    }
    // Its limit was written again in the directory made anew.
    if (manager.placement.memory === 'v1') expect(readFileSync(path.join(cgroup.v1Directories[0] as string, 'memory.limit_in_bytes'), 'utf8').trim()).toBe(String(64 * 2 ** 20));
    giveBack(cgroup);
  });

  it('a kept cgroup file reads what the kernel says now, each time, and again once its directory was made anew behind its back', async () => {
    // cgroup.max.depth: a file every cgroup v2 directory has and root may write.
    const { cgroup } = await runIn({});
    giveBack(cgroup);
    if (cgroup.v2Directory === undefined) return; // no cgroup2 here: the pool reads v1 files the same way
    const directory = path.join(path.dirname(cgroup.v2Directory), `reader-${serial++}`);
    mkdirSync(directory);
    const reader = new CgroupFileReader(path.join(directory, 'cgroup.max.depth'));
    try {
      expect(reader.read()).toBe('max\n');
      writeFileSync(path.join(directory, 'cgroup.max.depth'), '3');
      expect(reader.read()).toBe('3\n');
      rmdirSync(directory);
      expect(() => reader.read()).toThrow(/ENOENT/);
      mkdirSync(directory);
      writeFileSync(path.join(directory, 'cgroup.max.depth'), '5');
      expect(reader.read()).toBe('5\n');
    } finally {
      reader.close();
      if (existsSync(directory)) rmdirSync(directory);
    }
  });

  it('removeIdleAsync removes every pooled cgroup and resolves once they are gone (the agent at shutdown)', async () => {
    const tasks = await Promise.all(Array.from({ length: 3 }, () => runIn({})));
    for (const { cgroup } of tasks) giveBack(cgroup);
    const pooled = tasks.map(({ cgroup }) => directoryOf(cgroup)).filter((directory) => existsSync(directory)); // past the pool's allowance, remove() took some
    expect(pooled.length).toBeGreaterThan(0);

    await manager.removeIdleAsync();
    expect(pooled.filter((directory) => existsSync(directory))).toEqual([]);
  });
});

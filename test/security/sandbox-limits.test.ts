// Resource limits of sandboxed tasks, in real cgroups on this host: cgroup v2 where the host
// mounts it (membership, CLONE_INTO_CGROUP, cgroup.kill) and, on a hybrid host such as this
// project's machines, the v1 memory, pids and cpu controllers. Needs root and writable cgroups.
import { readFileSync } from 'node:fs';
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
      ...(cgroup.v2Directory !== undefined ? { cgroup: cgroup.v2Directory } : {}),
      cgroupsV1: cgroup.v1Directories,
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

  it('cgroup.kill ends the whole task tree at once (cgroup v2)', async () => {
    if (layout.v2 === undefined) throw new Error('this host has no cgroup2 hierarchy');
    const cgroup = manager.create('tree-kill', {});
    made.push(cgroup);
    const child = await launcher.spawn({ file: '/bin/sh', args: ['-c', 'sleep 100 & sleep 100 & echo started; wait'], stdout: 'pipe', sandbox: {}, cgroup: cgroup.v2Directory as string, cgroupsV1: cgroup.v1Directories });
    await new Promise((resolve) => child.stdout?.once('data', resolve));
    const members = readFileSync(`${cgroup.v2Directory as string}/cgroup.procs`, 'utf8').trim().split('\n');
    expect(members.length).toBeGreaterThanOrEqual(4); // init, sh, two sleeps
    cgroup.killAll();
    expect((await child.exited).signal).toBe('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(readFileSync(`${cgroup.v2Directory as string}/cgroup.procs`, 'utf8').trim()).toBe('');
    expect(cgroup.remove()).toBe(true);
  });
});

// Issue 12, finding 5: a Task that sets no resources.limits had no pids and no memory limit, so
// one Task could fork-bomb the node or take all its memory. The agent now applies its own defaults
// (--default-pids, --default-memory, --default-cpu), per resource, to every Task that leaves that
// limit unset, as a LimitRange does, and shows what the Task ran under in status.resources.
//
// The limits are read where the kernel enforces them: the Task's own cgroup on the host, found
// through /proc/<pid>/cgroup while it runs, or for a default pids limit on a host whose pids
// controller is on cgroup v1, the Task's RLIMIT_NPROC (/proc/<pid>/limits): its uid is its own,
// and the kernel counts that uid's processes and threads as pids.max counts a cgroup's, without a
// cgroup v1 join per spawn (src/sandbox/task-sandbox.ts, placeDefaultPidsLimit). The fork probes
// are bounded (40 sleeps against a limit of 16; two Tasks of 12 sleeps each).
// Needs root and a cgroup hierarchy with the memory and pids controllers.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Task } from '../../src/api/task.js';
import { placeControllers, readCgroupLayout } from '../../src/sandbox/cgroup-layout.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { processWithArgv } from '../helpers/process-table.js';
import { waitFor } from '../helpers/wait-for.js';
import { parafork, startManifestAgent, tasksOf, writeTask, type CliRun } from './standalone-cli.js';

const layout = readCgroupLayout();
const controllersOf = (name: string): boolean => layout.v1.has(name as never) || (layout.v2?.controllers.has(name) ?? false);
const skip = missingRequirement('default limits need root and the memory and pids cgroup controllers', runningAsRoot && controllersOf('memory') && controllersOf('pids'));

const gibibyte = 2 ** 30;
/** Where a default pids limit is enforced on this host: RLIMIT_NPROC where pids.max would cost a cgroup v1 join. */
const defaultPidsBy = placeControllers(layout).pids === 'v1' ? 'rlimit' : 'cgroup';

/**
 * A cgroup limit file of a process, as the kernel enforces it: in the v1 hierarchy of the
 * controller if the process is in one below the root, else in its cgroup v2 directory.
 */
function limitOf(pid: number, controller: 'pids' | 'memory'): string {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
  const v1File = controller === 'pids' ? 'pids.max' : 'memory.limit_in_bytes';
  const v2File = controller === 'pids' ? 'pids.max' : 'memory.max';
  const v1 = layout.v1.get(controller);
  const v1Path = lines.map((line) => line.split(':')).find(([, names]) => names?.split(',').includes(controller))?.[2];
  if (v1 !== undefined && v1Path !== undefined && v1Path !== '/') return readFileSync(path.join(v1.mountPoint, v1Path, v1File), 'utf8').trim();
  const v2Path = lines.find((line) => line.startsWith('0::'))?.slice(3);
  if (layout.v2 === undefined || v2Path === undefined) return 'not in any cgroup with this controller';
  try {
    return readFileSync(path.join(layout.v2.mountPoint, v2Path, v2File), 'utf8').trim();
  } catch {
    return 'not in any cgroup with this controller';
  }
}

/** The soft and hard RLIMIT_NPROC of a process, as /proc/<pid>/limits shows them ("unlimited" or a number). */
function processLimitOf(pid: number): string {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((entry) => entry.startsWith('Max processes'));
  const [soft, hard] = line?.slice('Max processes'.length).trim().split(/\s+/) ?? [];
  return soft === hard ? String(soft) : `${soft} soft, ${hard} hard`;
}

interface Observed {
  readonly run: CliRun;
  readonly task: Task | undefined;
  /** pids.max of the Task's cgroup, or why there is none. */
  readonly pids: string;
  /** RLIMIT_NPROC of the Task's process. */
  readonly processes: string;
  readonly memory: string;
  /** The Task's pids limit where this host enforces it: in its cgroup or as its RLIMIT_NPROC. */
  readonly pidsLimit: { readonly cgroup: string } | { readonly rlimit: string };
}

/** What a limit of `pids` reads as where the kernel enforces a default one on this host, or an explicit one. */
const defaultPids = (pids: number): Observed['pidsLimit'] => (defaultPidsBy === 'rlimit' ? { rlimit: String(pids) } : { cgroup: String(pids) });
const explicitPids = (pids: number): Observed['pidsLimit'] => ({ cgroup: String(pids) });

describe.skipIf(skip !== undefined)(`a Task without resources.limits${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  let marker = 0;

  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-default-limits-'));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  /** Runs one sleeping Task through `parafork run` and reads its cgroup limits on the host while it sleeps. */
  async function observe(spec: Record<string, unknown>, flags: readonly string[] = []): Promise<Observed> {
    marker++;
    const argv = ['/bin/sleep', `3.${process.pid}${marker}`];
    const file = writeTask(scratch, `sleeper-${marker}`, { ...spec, command: argv });
    const running = parafork(['run', '-f', file, '-o', 'json', ...flags], 30_000);
    const pid = await waitFor(() => processWithArgv(argv), { timeoutMs: 10_000, description: `the Task's ${argv.join(' ')} to run` });
    const limits = { pids: limitOf(pid, 'pids'), processes: processLimitOf(pid), memory: limitOf(pid, 'memory') };
    const run = await running;
    // In the cgroup when it has a pids.max of its own; else the rlimit (an unlimited one too).
    const pidsLimit = /^\d+$/.test(limits.pids) ? { cgroup: limits.pids } : { rlimit: limits.processes };
    return { run, task: tasksOf(run).get(`sleeper-${marker}`), ...limits, pidsLimit };
  }

  it(`gets the agent's default pids and memory limits, pids enforced ${defaultPidsBy === 'rlimit' ? 'as its RLIMIT_NPROC (pids on cgroup v1 here)' : 'in its cgroup'}, memory in its cgroup, both shown in its status`, async () => {
    const observed = await observe({});
    expect(observed.run.status).toBe(0);
    expect(observed.pidsLimit).toEqual(defaultPids(1024));
    expect(Number(observed.memory)).toBe(gibibyte);
    expect(observed.task?.status?.resources).toEqual({ limits: { memory: '1Gi', pids: 1024 }, defaulted: ['memory', 'pids'] });
  });

  it('gets a default only for each limit it leaves unset; a pids limit of its own is its cgroup\'s pids.max', async () => {
    const observed = await observe({ resources: { limits: { pids: 50 } } });
    expect(observed.pidsLimit).toEqual(explicitPids(50));
    expect(Number(observed.memory)).toBe(gibibyte);
    expect(observed.task?.status?.resources).toEqual({ limits: { memory: '1Gi', pids: 50 }, defaulted: ['memory'] });
  });

  it('keeps a default pids limit in its cgroup when the spec names its runAsUser (a uid other Tasks may share)', async () => {
    // A host uid the spec names needs the baseline sandbox policy level (issue 14).
    const observed = await observe({ sandbox: { runAsUser: 65534, runAsGroup: 65534 } }, ['--sandbox-policy', 'baseline']);
    expect(observed.pidsLimit).toEqual(explicitPids(1024));
    expect(observed.task?.status?.resources).toEqual({ limits: { memory: '1Gi', pids: 1024 }, defaulted: ['memory', 'pids'] });
  });

  it('takes the defaults from the flags, and each turns off with none', async () => {
    const set = await observe({}, ['--default-pids', '77', '--default-memory', '96Mi', '--default-cpu', '250m']);
    expect(set.pidsLimit).toEqual(defaultPids(77));
    expect(Number(set.memory)).toBe(96 * 2 ** 20);
    expect(set.task?.status?.resources).toEqual({ limits: { cpu: '250m', memory: '96Mi', pids: 77 }, defaulted: ['cpu', 'memory', 'pids'] });

    const off = await observe({}, ['--default-pids', 'none', '--default-memory', 'none', '--default-cpu', 'none']);
    expect(off.pids).toMatch(/^(max|not in any cgroup with this controller)$/);
    expect(off.processes).toBe(processLimitOf(process.pid)); // the agent's own, inherited
    expect(off.task?.status?.resources).toBeUndefined();
  });

  it('has no CPU limit by default (--default-cpu none), and gets one from the flag', async () => {
    const unset = await observe({});
    expect(unset.task?.status?.resources?.limits?.cpu).toBeUndefined();
    const set = await observe({}, ['--default-cpu', '500m']);
    expect(set.task?.status?.resources).toEqual({ limits: { cpu: '500m', memory: '1Gi', pids: 1024 }, defaulted: ['cpu', 'memory', 'pids'] });
  });

  it('cannot fork past the default pids limit (a bounded probe: 40 sleeps against a limit of 16)', async () => {
    const file = writeTask(scratch, 'forker', { command: ['/bin/sh', '-c', 'i=0; while [ $i -lt 40 ]; do sleep 2 & i=$((i+1)); done; echo forked-all >&2'] });
    const run = await parafork(['run', '-f', file, '-o', 'json', '--default-pids', '16'], 30_000);
    const status = tasksOf(run).get('forker')?.status;
    expect(status?.stderrTail).toMatch(/Cannot fork|Resource temporarily unavailable/);
    expect(status?.stderrTail).not.toContain('forked-all');
  });

  it('counts each Task\'s processes apart: two Tasks of 14 processes each run side by side under a default of 16', async () => {
    // init, sh and 12 sleeps each: 28 together, which one shared count of 16 would refuse.
    const folder = mkdtempSync(path.join(scratch, 'pair-'));
    // sh stops at its first failed fork (exit 2): Succeeded means all 12 sleeps were forked.
    for (const name of ['first', 'second']) writeTask(folder, name, { command: ['/bin/sh', '-c', 'i=0; while [ $i -lt 12 ]; do sleep 2 & i=$((i+1)); done; wait'] });
    const run = await parafork(['run', '-f', folder, '-o', 'json', '--default-pids', '16'], 30_000);
    const tasks = tasksOf(run);
    for (const name of ['first', 'second']) expect(tasks.get(name)?.status, name).toMatchObject({ phase: 'Succeeded' });
    // Side by side: each started before the other ended.
    const [first, second] = [tasks.get('first')?.status, tasks.get('second')?.status];
    expect(Date.parse(first?.startTime ?? '') < Date.parse(second?.completionTime ?? '') && Date.parse(second?.startTime ?? '') < Date.parse(first?.completionTime ?? '')).toBe(true);
  });

  it('gets the same defaults from agent --manifests, shown at /tasks', async () => {
    const folder = mkdtempSync(path.join(scratch, 'folder-'));
    writeTask(folder, 'from-folder', { command: ['/bin/true'], resources: { limits: { memory: '64Mi' } } });
    const agent = await startManifestAgent(folder, ['--default-pids', '99']);
    try {
      const status = await waitFor(async () => {
        const found = (await agent.tasks()).get('from-folder')?.status;
        return found?.phase === 'Succeeded' ? found : undefined;
      }, { timeoutMs: 15_000, description: 'the folder\'s Task to succeed' });
      expect(status.resources).toEqual({ limits: { memory: '64Mi', pids: 99 }, defaulted: ['pids'] });
    } finally {
      await agent.stop();
    }
  });

  it('refuses a default that is not a limit, exit 2', async () => {
    for (const [flag, value] of [['--default-memory', '0.5'], ['--default-pids', '-3'], ['--default-cpu', 'lots']] as const) {
      const run = await parafork(['run', '-f', path.resolve('examples/hello.yaml'), flag, value]);
      expect(run.status, `${flag} ${value}`).toBe(2);
      expect(run.stderr).toContain(flag);
    }
  });
});

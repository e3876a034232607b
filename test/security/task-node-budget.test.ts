// docs/security.md, "what the per-Task limits do not bound": each Task's pids limit is its own, and
// nothing bounded their sum, so 32 default Tasks (1024 processes each) filled a 2-CPU node's
// pid_max of 32768 and the node's own daemons could not fork. Tasks also inherited the agent's
// oom_score_adj, so the kernel's OOM killer weighed a Task's memory as it weighed the agent's.
//
// Now every Task of an instance sits in its group's pids cgroup, whose pids.max is the node-wide
// budget (--tasks-pids-max; on cgroup v1 too, where a default Task used to stay in the agent's
// pids cgroup), and every Task starts with an oom_score_adj above the agent's that it cannot lower
// (below the agent's at all; below its own where the agent holds CAP_SYS_RESOURCE, as the chart's does).
//
// The fork probes are bounded and clean up after themselves: three Tasks each try to start 150
// sleeping children under a budget of 200; a Task whose fork is refused exits, and its pid
// namespace's processes go with it; the others' children sleep 6 s.
// What the Tasks held is read two ways while the run lasts: the kernel's own count of the run's
// group (pids.peak, the most it ever held, so no moment is missed; pids.current where a kernel
// lacks it) and the sleepers seen in /proc. The /proc
// scan alone saw none in one loaded CI run: when the three Tasks fork side by side, all three meet
// the budget before any has its 150, so all three exit and their sleepers live only for the
// ramp, which a 50 ms scan (itself slow under load) can miss whole.
// Needs root and the pids cgroup controller.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { toNativeSandbox } from '../../src/launcher/sandbox-options.js';
import { InvalidSpawnOptionError } from '../../src/launcher/spawn-error.js';
import { placeControllers, readCgroupLayout } from '../../src/sandbox/cgroup-layout.js';
import { hasCapability, missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { parafork, tasksOf, writeTask } from './standalone-cli.js';

const layout = readCgroupLayout();
const hasPids = layout.v1.has('pids') || (layout.v2?.controllers.has('pids') ?? false);
const skip = missingRequirement('a node-wide Task budget needs root and the pids cgroup controller', runningAsRoot && hasPids);

/** The host pids of processes whose command line is exactly `argv`. */
function processesRunning(argv: readonly string[]): number[] {
  const wanted = `${argv.join('\0')}\0`;
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8') === wanted) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** A cgroup file's text, or undefined (not there, or the group is gone). */
function readCgroupFile(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * What the pids cgroup group of the `parafork run` with pid `runPid` held (its per-run group,
 * `parafork-run-<pid>-<random>` beside this process's cgroup: src/sandbox/cgroup-groups.ts), read
 * by `sample()` for as long as the group is there.
 */
class RunGroupPids {
  /** The most processes and threads the group held: pids.peak, or the most pids.current read. */
  most = 0;
  /** Whether the group was found and read at least once, and whether it had pids.peak. */
  seen = false;
  peakRead = false;
  readonly #runPid: () => number | undefined;
  #directory: string | undefined;

  constructor(runPid: () => number | undefined) {
    this.#runPid = runPid;
  }

  sample(): void {
    this.#directory ??= this.#find();
    if (this.#directory === undefined) return;
    const current = readCgroupFile(path.join(this.#directory, 'pids.current'));
    if (current === undefined) return;
    this.seen = true;
    const peak = readCgroupFile(path.join(this.#directory, 'pids.peak'));
    if (peak !== undefined) this.peakRead = true;
    this.most = Math.max(this.most, Number(current), peak === undefined ? 0 : Number(peak));
  }

  #find(): string | undefined {
    const runPid = this.#runPid();
    const placement = placeControllers(layout).pids;
    const hierarchy = placement === 'v2' ? layout.v2 : placement === 'v1' ? layout.v1.get('pids') : undefined;
    if (runPid === undefined || hierarchy === undefined) return undefined;
    const parent = path.join(hierarchy.mountPoint, hierarchy.ownPath);
    const name = readdirSync(parent).find((entry) => entry.startsWith(`parafork-run-${runPid}-`));
    return name === undefined ? undefined : path.join(parent, name);
  }
}

describe.skipIf(skip !== undefined)(`the Tasks of a parafork instance together${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;

  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-node-budget-'));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('never hold more processes than --tasks-pids-max, each Task well within its own limit, and the host still forks', async () => {
    const budget = 200;
    const perTask = 150;
    // A marker no other process has: the test counts the Tasks' children by it on the host.
    const sleeper = ['sleep', `6.${process.pid}`];
    const folder = path.join(scratch, 'fork-bomb');
    mkdirSync(folder);
    for (const index of [1, 2, 3]) {
      writeTask(folder, `forker-${index}`, {
        command: ['/bin/sh', '-c', `i=0; while [ $i -lt ${perTask} ]; do ${sleeper.join(' ')} & i=$((i+1)); done; wait`],
      });
    }
    let runPid: number | undefined;
    const running = parafork(['run', '-f', folder, '-o', 'json', '--tasks-pids-max', String(budget)], 60_000, (pid) => (runPid = pid));
    const group = new RunGroupPids(() => runPid);
    // Three small reads every 5 ms, apart from the slow /proc scan below.
    const sampler = setInterval(() => group.sample(), 5);
    let most = 0;
    let hostForked = true;
    let finished = false;
    void running.then(() => (finished = true));
    try {
      while (!finished) {
        group.sample();
        most = Math.max(most, processesRunning(sleeper).length);
        group.sample();
        try {
          execFileSync('/bin/true');
        } catch {
          hostForked = false;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      clearInterval(sampler);
    }
    const run = await running;
    const tasks = tasksOf(run);
    // Each Task alone (150 sleeps, a shell and an init) is far within its default limit of 1024:
    // only the budget on their sum can refuse a fork, and it must have refused one.
    const phases = [...tasks.values()].map((task) => task.status?.phase);
    expect(phases, run.stderr).toContain('Failed');
    expect(group.seen).toBe(true);
    // The Tasks forked up to the budget and no further: a fork is refused only where the group
    // holds pids.max already, so its peak is the budget exactly (sampled pids.current, where the
    // kernel has no pids.peak, may miss that moment but never exceeds it). The pids.events of the
    // group do not count those refusals on cgroup v1: they are the forking Task cgroup's.
    expect(group.most).toBeGreaterThan(0);
    expect(group.most).toBeLessThanOrEqual(budget);
    if (group.peakRead) expect(group.most).toBe(budget);
    expect(most).toBeLessThanOrEqual(budget);
    expect(hostForked).toBe(true);
    expect(processesRunning(sleeper)).toEqual([]);
  }, 90_000);

  it('fail with a Task that says why when the budget is full at its start, not a silent exit 126', async () => {
    // A Task joins the group's pids cgroup before its exec, and the kernel lets a join pass
    // pids.max (only forks are refused): its init then could not fork the program and exited 126
    // with no word, as if the program were not executable. A budget of 1 is full with init alone.
    const name = `no-room-${process.pid}`;
    const run = await parafork(['run', '-f', writeTask(scratch, name, { command: ['/bin/echo', 'never printed'] }), '-o', 'json', '--tasks-pids-max', '1'], 30_000);
    const status = tasksOf(run).get(name)?.status;
    expect(status?.phase, run.stderr).toBe('Failed');
    expect(status?.exitCode).toBe(126);
    expect(status?.stderrTail).toMatch(/fork refused \(EAGAIN\).*resources\.limits\.pids.*--tasks-pids-max/);
    expect(status?.stderrTail).not.toContain('never printed');
  }, 60_000);

  /** What a Task printed: its oom_score_adj, then which lowering worked, then its score again. */
  async function oomScoreRun(agentScore: number): Promise<{ readonly first: number; readonly lines: readonly string[] }> {
    const name = `oom-score-${process.pid}`;
    const script = [
      'cat /proc/self/oom_score_adj',
      `echo ${agentScore - 1} > /proc/self/oom_score_adj && echo lowered-below-agent`,
      'echo 999 > /proc/self/oom_score_adj && echo lowered',
      'cat /proc/self/oom_score_adj',
    ].join('; ');
    const run = await parafork(['run', '-f', writeTask(scratch, name, { command: ['/bin/sh', '-c', script] }), '-o', 'json'], 30_000);
    expect(tasksOf(run).get(name)?.status?.phase, run.stderr).toBeDefined();
    // stdout and stderr are two pipes, so the refused write's error may be logged after the last
    // score (the log pump stamps each when it reads it): the scores are the numeric lines.
    const lines = execFileSync(process.execPath, [path.resolve('dist/cli/main.js'), 'logs', name], { encoding: 'utf8' }).trim().split('\n').filter((line) => !line.startsWith('/bin/sh:'));
    return { first: Number(lines[0]), lines: lines.slice(1) };
  }

  const agentScore = Number(readFileSync('/proc/self/oom_score_adj', 'utf8'));

  it("start with an oom_score_adj above the agent's, and cannot go below the agent's", async () => {
    const { first, lines } = await oomScoreRun(agentScore);
    expect(first).toBeGreaterThan(agentScore);
    expect(lines).not.toContain('lowered-below-agent');
  }, 60_000);

  // The kernel makes a score the least a process may set only when the writer holds
  // CAP_SYS_RESOURCE (proc(5), oom_score_adj_min); the chart asks for it. Root on this test VM lacks
  // it (not in its bounding set), so both outcomes are specified: where the agent holds it, 1000 is
  // the Task's floor; where it does not, the floor is the agent's own score (the test above).
  const agentHoldsSysResource = hasCapability(24);
  it(agentHoldsSysResource
    ? 'cannot lower their oom_score_adj at all (the agent holds CAP_SYS_RESOURCE)'
    : 'can lower their oom_score_adj, never below the agent\'s, where the agent lacks CAP_SYS_RESOURCE (as here)', async () => {
    const { first, lines } = await oomScoreRun(agentScore);
    if (agentHoldsSysResource) {
      expect(lines).not.toContain('lowered');
      expect(lines.at(-1)).toBe(String(first));
    } else {
      expect(lines).toContain('lowered');
      expect(Number(lines.at(-1))).toBeGreaterThan(agentScore);
    }
  }, 60_000);
});

describe('sandbox.oomScoreAdjust', () => {
  it('is a whole number from -1000 to 1000, the agent\'s own when unset', () => {
    expect(toNativeSandbox({ oomScoreAdjust: 1000 }, undefined).oomScoreAdjust).toBe(1000);
    expect(toNativeSandbox({ oomScoreAdjust: -1000 }, undefined).oomScoreAdjust).toBe(-1000);
    expect(toNativeSandbox({}, undefined).oomScoreAdjust).toBeNull();
    for (const value of [1001, -1001, 0.5, '1000', Number.NaN]) {
      expect(() => toNativeSandbox({ oomScoreAdjust: value }, undefined)).toThrow('sandbox.oomScoreAdjust must be a whole number from -1000 to 1000');
    }
  });

  it('is refused with a user namespace, whose child would set the agent\'s own score with it', () => {
    expect(() => toNativeSandbox({ oomScoreAdjust: 1000, userNamespace: true }, undefined)).toThrow(InvalidSpawnOptionError);
  });
});

// The node-wide budget of all Tasks' processes (--tasks-pids-max, task-node-budget.test.ts) is by
// default half of the node's process table, read from /proc/sys/kernel/pid_max. Since Linux 6.14
// pid_max belongs to each pid namespace, and a namespace made without setting it reads 4194304
// (PID_MAX_LIMIT) there, whatever the node's is. The chart's agent runs in a Pod, which has a pid
// namespace of its own (not hostPID): its default budget was 2,097,152 processes, no budget at all,
// and 32 default Tasks (an array of 32) filled a node's pid_max of 32768 again, the fork bomb the
// budget was made for (red team, session 10). Nor was pid_max the only table: every fork on the
// node counts against kernel.threads-max too, root's included, and where systemd raises pid_max to
// 4194304 (its default since v243) threads-max is the smaller (192735 on this 24 GiB machine).
//
// The default is now half the smaller of the two; in a pid namespace other than the node's, where
// pid_max cannot be read, the kernel's own default stands in for it (32768, or 1024 a CPU on
// larger machines). What the test does: parses the agent's flags, as the agent does at start, in a
// process in a pid namespace of its own (unshare(1)), and compares the budget with the node's
// tables as this process reads them. Nothing forks beyond that one process. Needs root (unshare)
// and a build (dist/).
import { execFileSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';

/** The inode of the node's own pid namespace (PROC_PID_INIT_INO, include/linux/proc_ns.h). */
const initialPidNamespace = 'pid:[4026531836]';
const inNodePidNamespace = (() => {
  try {
    return readlinkSync('/proc/self/ns/pid') === initialPidNamespace;
  } catch {
    return false;
  }
})();

const skip =
  missingRequirement('a pid namespace of its own needs root', runningAsRoot) ??
  (inNodePidNamespace ? undefined : 'this test reads the node\'s pid_max, so it must run in the node\'s pid namespace');

const readNumber = (file: string): number => Number(readFileSync(file, 'utf8').trim());

/** The default --tasks-pids-max of an agent started with `prefix` (e.g. unshare) before node. */
function defaultBudget(prefix: readonly string[]): number | null {
  const config = path.resolve('dist/config/agent-config.js');
  const script = `const { parseAgentConfig } = await import(${JSON.stringify(config)});
console.log(JSON.stringify(parseAgentConfig(['--node-name', 'node'], {}).taskLimits.tasksPidsMax ?? null));`;
  const command = [...prefix, process.execPath, '--input-type=module', '-e', script];
  const output = execFileSync(command[0]!, command.slice(1), { encoding: 'utf8', timeout: 30_000 });
  return JSON.parse(output.trim()) as number | null;
}

describe.skipIf(skip !== undefined)(`the default budget of all Tasks' processes${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const pidMax = readNumber('/proc/sys/kernel/pid_max');
  const threadsMax = readNumber('/proc/sys/kernel/threads-max');
  const nodeTable = Math.min(pidMax, threadsMax);

  it('in the node\'s pid namespace, is at most half the smaller of pid_max and threads-max', () => {
    const budget = defaultBudget([]);
    expect(budget).not.toBeNull();
    expect(budget!).toBeGreaterThan(0);
    expect(budget!).toBeLessThanOrEqual(Math.floor(nodeTable / 2));
  });

  it('in a pid namespace of its own (the chart\'s Pod), is still at most half of the node\'s tables', () => {
    const budget = defaultBudget(['unshare', '--pid', '--fork']);
    expect(budget).not.toBeNull();
    expect(budget!).toBeGreaterThan(0);
    expect(budget!).toBeLessThanOrEqual(Math.floor(nodeTable / 2));
  });
});

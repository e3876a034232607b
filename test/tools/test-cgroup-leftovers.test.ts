// The global teardown's sweep of cgroup groups that killed test runs left behind
// (test/helpers/test-cgroup-leftovers.ts), on a directory tree standing in for the cgroup mounts:
// a file in a directory stands for a process in a cgroup (rmdir fails on both).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { deadTestCgroupGroups, removeDeadTestCgroupGroups } from '../helpers/test-cgroup-leftovers.js';

/** The pid of a process that has ended (and been reaped). */
function deadPid(): number {
  const child = spawnSync('/bin/sh', ['-c', 'echo $$'], { encoding: 'utf8' });
  return Number(child.stdout.trim());
}

describe('the sweep of test cgroup groups left by killed runs', () => {
  let root: string;
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('removes the groups of test processes that are gone, in every hierarchy and below a job\'s own cgroup, and keeps the rest', () => {
    root = mkdtempSync(path.join(tmpdir(), 'parafork-cgroup-leftovers-'));
    const dead = deadPid();
    const unified = path.join(root, 'unified');
    const memory = path.join(root, 'memory');
    const gone = [
      path.join(unified, `parafork-test-failed-clone-${dead}-5eb62534`),
      path.join(unified, `parafork-test-agent-${dead}-parafork-agent-state-Xq0A36`),
      path.join(memory, 'process_api', '1873792afa77', `parafork-test-pool-${dead}-318917ab`),
    ];
    const kept = [
      path.join(unified, `parafork-test-pool-${process.pid}-0123abcd`),  // its process lives
      path.join(unified, 'parafork'),  // an agent's group
      path.join(unified, `parafork-bench-array-${dead}`),  // not a test's
      path.join(unified, `parafork-test-pool-${dead}-xyz`),  // not the name a test gives
    ];
    for (const directory of [...gone, ...kept]) mkdirSync(path.join(directory, 'task-3'), { recursive: true });
    expect(deadTestCgroupGroups([unified, memory]).sort()).toEqual([...gone].sort());
    expect(removeDeadTestCgroupGroups([unified, memory])).toEqual([]);
    for (const directory of gone) expect(existsSync(directory)).toBe(false);
    for (const directory of kept) expect(existsSync(path.join(directory, 'task-3'))).toBe(true);
  });

  it('leaves a group with a process in it (a file here), and says so', () => {
    root = mkdtempSync(path.join(tmpdir(), 'parafork-cgroup-leftovers-'));
    const group = path.join(root, `parafork-test-pool-${deadPid()}-0123abcd`);
    mkdirSync(path.join(group, 'task-1'), { recursive: true });
    mkdirSync(path.join(group, 'task-2'), { recursive: true });
    writeFileSync(path.join(group, 'task-2', 'cgroup.procs'), '4242\n');
    expect(removeDeadTestCgroupGroups([root])).toEqual([group]);
    expect(existsSync(path.join(group, 'task-1'))).toBe(false);
    expect(existsSync(path.join(group, 'task-2', 'cgroup.procs'))).toBe(true);
  });
});

// The cgroup groups of test processes that are gone: a test removes its group when it ends
// (cgroup-group.ts), but a run that was killed (a timeout, ^C, a machine's session ending) leaves
// the group's directories behind, in every hierarchy, for good. The global teardown sweeps the
// groups whose test process is no longer alive: their names carry its pid (uniqueTestCgroupGroup,
// standalone-cli.ts's agents). A group whose process lives (another run beside this one) is not
// touched, and only empty directories are removed: a process still in one was started by a test
// that is gone, and is reported, not killed (its pid may since have been reused).
import { readdirSync, readFileSync, rmdirSync } from 'node:fs';
import path from 'node:path';

/** `parafork-test-<label>-<pid>-<8 hex>` and `parafork-test-agent-<pid>-parafork-agent-state-<6>`: the pid of the test process. */
const testGroupName = /^parafork-test-(?:.+-(\d+)-[0-9a-f]{8}|agent-(\d+)-parafork-agent-state-[A-Za-z0-9]{6})$/;

/** How deep below a hierarchy's root a test group may lie (the test process's own cgroup, e.g. a CI job's, and its parents). */
const searchDepth = 4;

/** The mount points of the cgroup hierarchies (v1 and v2) this process sees. */
function cgroupMounts(): string[] {
  let mounts: string;
  try {
    mounts = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return [];
  }
  const points = new Set<string>();
  for (const line of mounts.split('\n')) {
    const [, point, type] = line.split(' ');
    if (point !== undefined && (type === 'cgroup' || type === 'cgroup2')) points.add(point);
  }
  return [...points];
}

function subdirectories(directory: string): string[] {
  try {
    return readdirSync(directory, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => path.join(directory, entry.name));
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Removes `directory` and the directories below it, deepest first; false if one could not go (a process in it). */
function removeEmptyTree(directory: string): boolean {
  let removedAll = true;
  for (const below of subdirectories(directory)) removedAll = removeEmptyTree(below) && removedAll;
  if (!removedAll) return false;
  try {
    rmdirSync(directory);
    return true;
  } catch {
    return false;
  }
}

/** The directories of test cgroup groups whose test process is gone, in every hierarchy. */
export function deadTestCgroupGroups(mounts: readonly string[] = cgroupMounts()): string[] {
  const found: string[] = [];
  const walk = (directory: string, depth: number): void => {
    for (const below of subdirectories(directory)) {
      const match = testGroupName.exec(path.basename(below));
      if (match !== null) {
        if (!alive(Number(match[1] ?? match[2]))) found.push(below);
      } else if (depth < searchDepth) {
        walk(below, depth + 1);
      }
    }
  };
  for (const mount of mounts) walk(mount, 1);
  return found;
}

/** Removes what killed test runs left of their cgroup groups; says on stderr what it could not remove, and returns those. */
export function removeDeadTestCgroupGroups(mounts: readonly string[] = cgroupMounts()): string[] {
  const left: string[] = [];
  for (const directory of deadTestCgroupGroups(mounts)) {
    if (removeEmptyTree(directory)) continue;
    left.push(directory);
    process.stderr.write(`a cgroup of a test run that is gone still holds a process, left as is: ${directory}\n`);
  }
  return left;
}

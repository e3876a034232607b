// Task arrays (issue 17) on a real apiserver and agent: a 1,000-index array runs every index exactly
// once (each index leaves a marker, the test counts them), per-index retries and the failed-index
// budget end it as an Indexed Job would, the deadline and deletion stop every index, suspend
// pauses and resuming continues. Sandboxed, so it needs root (as the agent does).
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { applyTask as applyTaskTo, createTestNamespace, getTask, kubectl, waitFor, waitForTaskPhase, type TestNamespace } from '../helpers/cluster.js';

const nodeName = 'array-node';
let agent: AgentProcess;
let namespace: TestNamespace;
let scratch: string;

beforeAll(async () => {
  namespace = await createTestNamespace('arrays');
  scratch = mkdtempSync(path.join(tmpdir(), 'parafork-arrays-'));
  chmodSync(scratch, 0o777); // the sandboxed indexes run as uids of their own
  agent = await startAgent(nodeName);
});

afterAll(async () => {
  await agent.stop();
  await namespace.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

/** A folder the indexes of one test write into, mounted at /mnt. */
function markerFolder(name: string): { folder: string; mount: Record<string, unknown> } {
  const folder = path.join(scratch, name);
  mkdirSync(folder, { mode: 0o777 });
  chmodSync(folder, 0o777);
  return { folder, mount: { mounts: [{ hostPath: folder, mountPath: '/mnt', readOnly: false }] } };
}

async function applyTask(name: string, spec: Record<string, unknown>): Promise<void> {
  await applyTaskTo(namespace.name, name, nodeName, spec);
}

/**
 * A shell command that leaves one new marker file per run, named by the index: a run of another
 * attempt has a uid of its own and could not append to a file an earlier run made, so every run
 * makes its own file (mktemp), and a second run of an index shows as a second file.
 */
const leaveMarker = (content: string): string => `echo "${content}" > "$(mktemp "/mnt/$PARAFORK_TASK_INDEX.XXXXXXXX")"`;

/** The marker files' contents, by index: one entry per run. */
function markers(folder: string): Map<number, string[]> {
  const runs = new Map<number, string[]>();
  for (const file of readdirSync(folder)) {
    if (!/^\d+\./.test(file)) continue; // not a marker (the suspend test's gate)
    const index = Number(file.split('.')[0]);
    runs.set(index, [...(runs.get(index) ?? []), readFileSync(path.join(folder, file), 'utf8').trimEnd()]);
  }
  return runs;
}

describe('a 1,000-index array', () => {
  it('ends Complete with every index run exactly once, its index and count in env and args', async () => {
    const { folder, mount } = markerFolder('thousand');
    await applyTask('thousand', {
      command: ['/bin/sh', '-c', leaveMarker('$1 $JOB_COMPLETION_INDEX $PARAFORK_TASK_COUNT'), 'sh'],
      args: ['$(PARAFORK_TASK_INDEX)'],
      completions: 1000,
      sandbox: mount,
    });
    const task = await waitForTaskPhase(namespace.name, 'thousand', ['Succeeded', 'Failed'], 120_000);

    expect(task.status).toMatchObject({ phase: 'Succeeded', reason: 'Completed', progress: '1000/1000', succeeded: 1000, failed: 0, active: 0, completedIndexes: '0-999', failedIndexes: '' });
    expect(task.status?.conditions?.find((condition) => condition.type === 'Complete')).toMatchObject({ status: 'True' });
    const runs = markers(folder);
    expect(runs.size).toBe(1000);
    for (let index = 0; index < 1000; index++) expect(runs.get(index), `index ${index}`).toEqual([`${index} ${index} 1000`]);
    expect(task.status?.indexTimings?.attempts).toBe(1000);
    expect(task.status?.indexTimings?.spawnLatency?.p99Nanoseconds).toBeGreaterThan(0);
    expect(Buffer.byteLength(JSON.stringify(task.status))).toBeLessThan(32 * 1024);
    expect(await kubectl(['get', 'ptask', 'thousand', '-n', namespace.name, '--no-headers'])).toContain('1000/1000');
  }, 150_000);
});

describe('failed indexes', () => {
  it('are retried per backoffLimitPerIndex, listed in failedIndexes, and end the array Failed with FailedIndexes once all are done', async () => {
    const { folder, mount } = markerFolder('retried');
    await applyTask('retried', {
      command: ['/bin/sh', '-c', `${leaveMarker('run')}; case $PARAFORK_TASK_INDEX in 3|7) echo "index $PARAFORK_TASK_INDEX: no input" >&2; exit 4;; esac`],
      completions: 10,
      backoffLimitPerIndex: 1,
      maxFailedIndexes: 5,
      backoff: { initialSeconds: 1, maxSeconds: 1 },
      sandbox: mount,
    });
    const task = await waitForTaskPhase(namespace.name, 'retried', ['Succeeded', 'Failed'], 30_000);

    expect(task.status).toMatchObject({ phase: 'Failed', reason: 'FailedIndexes', completedIndexes: '0-2,4-6,8,9', failedIndexes: '3,7', succeeded: 8, failed: 4, progress: '8/10' });
    expect(task.status?.failures?.map((failure) => [failure.index, failure.attempt, failure.exitCode])).toEqual(
      expect.arrayContaining([[3, 1, 4], [3, 2, 4], [7, 1, 4], [7, 2, 4]]),
    );
    expect(task.status?.failures?.find((failure) => failure.index === 3)?.stderrTail).toContain('index 3: no input');
    expect(task.status?.conditions?.find((condition) => condition.type === 'Failed')).toMatchObject({ status: 'True', reason: 'FailedIndexes' });
    const runs = markers(folder);
    expect(runs.get(3)).toHaveLength(2);
    expect(runs.get(0)).toHaveLength(1);
  }, 60_000);

  it('end the array at once with MaxFailedIndexesExceeded when one more than maxFailedIndexes failed, starting no more indexes', async () => {
    const { folder, mount } = markerFolder('budget');
    await applyTask('budget', {
      command: ['/bin/sh', '-c', `${leaveMarker('run')}; exit 1`],
      completions: 100,
      parallelism: 2,
      backoffLimitPerIndex: 0,
      maxFailedIndexes: 1,
      sandbox: mount,
    });
    const task = await waitForTaskPhase(namespace.name, 'budget', ['Succeeded', 'Failed'], 30_000);

    expect(task.status).toMatchObject({ phase: 'Failed', reason: 'MaxFailedIndexesExceeded', active: 0 });
    expect(markers(folder).size).toBeLessThan(10);
  }, 60_000);
});

describe('the whole array', () => {
  it('is stopped when activeDeadlineSeconds passes: every running index killed, DeadlineExceeded', async () => {
    await applyTask('deadline', { command: ['sleep', '60'], completions: 4, activeDeadlineSeconds: 2 });
    const task = await waitForTaskPhase(namespace.name, 'deadline', ['Succeeded', 'Failed'], 30_000);
    expect(task.status).toMatchObject({ phase: 'Failed', reason: 'DeadlineExceeded', active: 0, succeeded: 0 });
    expect(task.status?.conditions?.find((condition) => condition.type === 'Failed')).toMatchObject({ status: 'True', reason: 'DeadlineExceeded' });
  }, 60_000);

  it('pauses while suspended (running indexes finish, no new one starts) and continues where it stopped once resumed', async () => {
    const { folder, mount } = markerFolder('suspended');
    // Each index waits for /mnt/go after leaving its marker: the first two are still running when
    // the agent sees the suspend, however slowly kubectl and the watch go on a loaded machine (with
    // a fixed run time, all eight could end before the patch arrives).
    const gate = path.join(folder, 'go');
    await applyTask('suspended', {
      command: ['/bin/sh', '-c', `${leaveMarker('run')}; while [ ! -e /mnt/go ]; do sleep 0.05; done`],
      completions: 8,
      parallelism: 2,
      sandbox: mount,
    });
    await waitFor(() => (markers(folder).size >= 2 ? true : undefined), { description: 'two indexes to start' });
    await kubectl(['patch', 'ptask', 'suspended', '-n', namespace.name, '--type=merge', '-p', '{"spec":{"suspend":true}}']);
    // The agent has seen the suspend once it wrote a status of the patched generation.
    const generation = (await getTask(namespace.name, 'suspended')).metadata.generation;
    await waitFor(async (observed) => {
      const status = (await getTask(namespace.name, 'suspended')).status;
      observed(status);
      return status?.observedGeneration === generation ? true : undefined;
    }, { description: `the agent to write a status of generation ${generation} (suspended)`, timeoutMs: 20_000 });
    // What was running when the patch arrived finishes; then nothing starts.
    writeFileSync(gate, '');
    const paused = await waitForTaskPhase(namespace.name, 'suspended', ['Pending'], 20_000);
    expect(paused.status).toMatchObject({ active: 0, succeeded: 2 });
    expect(paused.status?.conditions?.find((condition) => condition.type === 'Running')).toMatchObject({ status: 'False', reason: 'Suspended' });
    expect(markers(folder).size).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(markers(folder).size).toBe(2);

    await kubectl(['patch', 'ptask', 'suspended', '-n', namespace.name, '--type=merge', '-p', '{"spec":{"suspend":false}}']);
    const task = await waitForTaskPhase(namespace.name, 'suspended', ['Succeeded', 'Failed'], 30_000);
    expect(task.status).toMatchObject({ phase: 'Succeeded', completedIndexes: '0-7' });
    const runs = markers(folder);
    expect(runs.size).toBe(8);
    for (const indexRuns of runs.values()) expect(indexRuns).toEqual(['run']);
  }, 60_000);

  it('is killed whole when deleted: every index\'s process stops before the Task goes', async () => {
    const { folder, mount } = markerFolder('deleted');
    await applyTask('deleted', {
      command: ['/bin/sh', '-c', 'while :; do date +%s%N > "/mnt/$PARAFORK_TASK_INDEX"; sleep 0.05; done'],
      completions: 4,
      sandbox: mount,
    });
    await waitFor(() => (readdirSync(folder).length === 4 ? true : undefined), { description: 'four indexes beating' });
    await waitFor(async () => ((await getTask(namespace.name, 'deleted')).metadata.finalizers?.includes('parafork.dev/process') ? true : undefined), { description: 'the finalizer' });
    await kubectl(['delete', 'ptask', 'deleted', '-n', namespace.name, '--timeout=30s']);
    const beats = readdirSync(folder).map((file) => statSync(path.join(folder, file)).mtimeMs);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(readdirSync(folder).map((file) => statSync(path.join(folder, file)).mtimeMs)).toEqual(beats);
    expect(existsSync(folder)).toBe(true);
  }, 60_000);
});

describe('an agent SIGKILLed mid-array', () => {
  it('resumes the array when it comes back: no index run twice as new, the ones in doubt retried, the array Complete', async () => {
    const restartNode = 'array-restart-node';
    const { folder, mount } = markerFolder('restarted');
    let first: AgentProcess | undefined = await startAgent(restartNode);
    let second: AgentProcess | undefined;
    try {
      await applyTaskTo(namespace.name, 'restarted', restartNode, {
        command: ['/bin/sh', '-c', `${leaveMarker('run')}; sleep 0.3`],
        completions: 300,
        parallelism: 20,
        // An index in doubt (launched, its end never recorded) is a failed attempt: one retry lets it run again.
        backoffLimitPerIndex: 1,
        backoff: { initialSeconds: 1, maxSeconds: 1 },
        sandbox: mount,
      });
      await waitFor(() => (markers(folder).size >= 80 ? true : undefined), { description: '80 indexes to run', timeoutMs: 60_000 });
      await first.crash();
      first = undefined;
      const atCrash = markers(folder).size;
      second = await startAgent(restartNode);
      const task = await waitForTaskPhase(namespace.name, 'restarted', ['Succeeded', 'Failed'], 120_000);

      expect(task.status).toMatchObject({ phase: 'Succeeded', completedIndexes: '0-299', succeeded: 300 });
      const runs = markers(folder);
      expect(runs.size).toBe(300);
      // Only indexes in doubt at the crash may have run twice: those running, and those that ended
      // after the last status write (at most a second of them, ~66 at this pace), each retried
      // once as a lost attempt; every index after them ran exactly once.
      const twice = [...runs].filter(([, lines]) => lines.length > 1).map(([index]) => index);
      expect(twice.length).toBeLessThanOrEqual(150);
      for (const index of twice) expect(index).toBeLessThan(atCrash + 64);
      expect([...runs.values()].every((lines) => lines.length <= 2)).toBe(true);
    } finally {
      await first?.crash();
      await second?.stop();
    }
  }, 240_000);
});

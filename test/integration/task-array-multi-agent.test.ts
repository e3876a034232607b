// An array shared by two agents (spec.indexPlacement AcrossNodes, docs/arrays.md) on a real
// apiserver: both claim ranges of it and run some, one is SIGKILLed halfway, the other takes its
// unfinished ranges over once their lease has expired, and the array ends Complete with every
// index run to its end exactly once (each run leaves a marker; the test counts them).
//
// What the test arranges, and why (docs/arrays.md, "Why no index runs twice"):
// - Before the SIGKILL, no index may have ended without its end being in the agent's entry: an
//   index that wrote its marker and exited in the moment before the agent died is in doubt, and
//   no protocol can tell it from one that never ran (the only witness died). So new indexes are
//   held at their start (a `hold` file), the test waits until every marker is counted in the
//   entries, and only then kills the agent.
// - The killed agent's processes are ended by its node, as they would be by the agent's restart
//   there (which sweeps its cgroup group) or by the node's own fencing: the takeover's premise is
//   that they are gone once the lease has expired. The test sweeps the group itself.
// Sandboxed, so it needs root (as the agent does).
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { taskApiVersion, taskKind, type Task } from '../../src/api/task.js';
import { startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { removeTestCgroupGroup } from '../helpers/cgroup-group.js';
import { createTestNamespace, getTask, kubectl, waitFor, waitForTaskPhase, type TestNamespace } from '../helpers/cluster.js';

let namespace: TestNamespace;
let scratch: string;
const agents: AgentProcess[] = [];

beforeAll(async () => {
  namespace = await createTestNamespace('array-multi');
  scratch = mkdtempSync(path.join(tmpdir(), 'parafork-array-multi-'));
  chmodSync(scratch, 0o777); // the sandboxed indexes run as uids of their own
});

afterAll(async () => {
  for (const agent of agents) await agent.stop();
  await namespace.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

/**
 * Each agent's lease: short, so the takeover comes within seconds (renewed every 4 s, self-fenced
 * after 10 s without an accepted write). Not shorter: with the control plane on this machine's two
 * loaded cores a status write can take seconds; with a 6 s lease (self-fence after 5 s) one run
 * in ten ended with an index failed twice, most likely the survivor fencing itself.
 */
const leaseArguments = ['--array-lease-seconds', '12', '--max-concurrent', '16'];

/** Markers per index: one file per run (mktemp), so a second run of an index shows as a second file. */
function markerCounts(folder: string): Map<number, number> {
  const runs = new Map<number, number>();
  for (const file of readdirSync(folder)) {
    const index = Number(file.split('.')[0]);
    runs.set(index, (runs.get(index) ?? 0) + 1);
  }
  return runs;
}

function succeededIn(task: Task, nodeName: string): number {
  return (task.status?.partitions ?? []).filter((entry) => entry.nodeName === nodeName).reduce((sum, entry) => sum + (entry.succeeded ?? 0), 0);
}

describe('an array shared by two agents', () => {
  it('completes with every index run exactly once when one agent is SIGKILLed halfway and the other takes over its ranges', async () => {
    const folder = path.join(scratch, 'markers');
    mkdirSync(folder, { mode: 0o777 });
    chmodSync(folder, 0o777);
    const hold = path.join(scratch, 'hold');
    const first = await startAgent('multi-a', leaseArguments);
    agents.push(first);
    const second = await startAgent('multi-b', leaseArguments);
    agents.push(second);

    const manifest = {
      apiVersion: taskApiVersion,
      kind: taskKind,
      metadata: { name: 'shared', namespace: namespace.name },
      spec: {
        command: ['/bin/sh', '-c', 'while [ -e /mnt/hold ]; do sleep 0.05; done; sleep 0.02; echo ran > "$(mktemp "/mnt/markers/$PARAFORK_TASK_INDEX.XXXXXXXX")"'],
        completions: 1000,
        indexPlacement: 'AcrossNodes',
        // An index in doubt at the takeover (launched, its end not recorded) is a lost attempt,
        // retried as on an agent's restart: here those are the ones held at their start.
        backoffLimitPerIndex: 1,
        backoff: { initialSeconds: 1, maxSeconds: 1 },
        sandbox: { mounts: [{ hostPath: scratch, mountPath: '/mnt', readOnly: false }] },
      },
    };
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });

    await waitFor(() => (markerCounts(folder).size >= 400 ? true : undefined), { description: '400 indexes to run', timeoutMs: 120_000 });
    writeFileSync(hold, '');
    // Every index that got past the hold has ended, and every end is in its agent's entry.
    const atCrash = await waitFor(
      async () => {
        const task = await getTask(namespace.name, 'shared');
        const ran = [...markerCounts(folder).values()].reduce((sum, runs) => sum + runs, 0);
        return succeededIn(task, 'multi-a') + succeededIn(task, 'multi-b') === ran ? task : undefined;
      },
      { description: 'every marker counted in the entries', timeoutMs: 30_000 },
    );
    expect(succeededIn(atCrash, 'multi-a')).toBeGreaterThan(0);
    expect(succeededIn(atCrash, 'multi-b')).toBeGreaterThan(0);
    const heldByB = (atCrash.status?.partitions ?? []).filter((entry) => entry.nodeName === 'multi-b' && (entry.succeeded ?? 0) < entry.end - entry.start);
    expect(heldByB.length).toBeGreaterThan(0);

    await second.crash();
    removeTestCgroupGroup(second.cgroupGroup); // the node ends what the dead agent left running
    rmSync(hold);

    const task = await waitForTaskPhase(namespace.name, 'shared', ['Succeeded', 'Failed'], 180_000);
    // On a failure, say why: the failure records and the survivor's warnings.
    const warnings = first.logs().split('\n').filter((line) => /"level":[4-6]0/.test(line)).slice(-20).join('\n');
    expect(task.status, `${JSON.stringify(task.status?.failures)}\n${warnings}`).toMatchObject({ phase: 'Succeeded', progress: '1000/1000', succeeded: 1000, completedIndexes: '0-999', failedIndexes: '' });
    expect(task.status?.conditions?.find((condition) => condition.type === 'Complete')).toMatchObject({ status: 'True' });
    const runs = markerCounts(folder);
    expect(runs.size).toBe(1000);
    const twice = [...runs].filter(([, count]) => count !== 1).map(([index]) => index);
    expect(twice).toEqual([]);
    // Every range B had not finished is A's now, its fence and completed indexes carried over.
    for (const old of heldByB) {
      const now = task.status?.partitions?.find((entry) => entry.start === old.start);
      expect(now?.nodeName, `range ${old.start}`).toBe('multi-a');
      expect(now?.launchedThrough).toBe(old.end);
    }
    expect(first.logs()).toContain('took over a range of a shared array');
    expect(Buffer.byteLength(JSON.stringify(task.status))).toBeLessThan(32 * 1024);
  }, 300_000);
});

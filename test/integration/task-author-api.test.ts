// Red team, session 15 (docs/security.md): a Task author, with create/update on Tasks (and
// tasks/status) of one namespace and nothing else, against the agent through the API. What parafork
// writes about a Task (its Events, status.message, the agent's own log lines) must reach the
// operator, whatever the Task's name and spec hold, and carry no terminal control the author put
// there. Harmless markers only: a refused host path that names nothing, a command that does not
// exist, a Task that exits 1.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { taskApiVersion, taskKind } from '../../src/api/task.js';
import { applyTask, createTestNamespace, getTask, kubectl, waitFor, waitForTaskPhase, type TestNamespace } from '../helpers/cluster.js';

const suffix = randomBytes(3).toString('hex');
const nodeName = `task-author-${suffix}`;
let namespace: TestNamespace;
let stateDirectory: string;
let agent: AgentProcess;

/** Any C0 control, DEL, or a C1 control (U+009B is CSI to xterm in UTF-8). */
// eslint-disable-next-line no-control-regex -- what must never reach a terminal from parafork's own words
const terminalControl = /[\u0000-\u001f\u007f-\u009f]/;
/** What the author puts in a field that parafork quotes: ESC [ 2 J (clear screen), CSI 2 J in C1, and OSC 0 (window title). */
const hostileText = '\u001b[2J\u009b2J\u009d0;parafork-red-team\u0007';

interface EventItem {
  readonly metadata: { readonly name: string };
  readonly reason: string;
  readonly note?: string;
  readonly regarding: { readonly name: string };
}

async function eventsOf(taskName: string): Promise<EventItem[]> {
  const list = JSON.parse(await kubectl(['get', 'events.events.k8s.io', '-n', namespace.name, '-o', 'json'])) as { items: EventItem[] };
  return list.items.filter((event) => event.regarding.name === taskName);
}

async function waitForEvent(taskName: string, reason: string): Promise<EventItem> {
  return waitFor(
    async (observed) => {
      const events = await eventsOf(taskName);
      observed(events.map((event) => event.reason));
      return events.find((event) => event.reason === reason);
    },
    { description: `a ${reason} Event of Task ${taskName.slice(0, 40)}...`, timeoutMs: 20_000 },
  );
}

beforeAll(async () => {
  namespace = await createTestNamespace('task-author');
  stateDirectory = mkdtempSync(path.join(tmpdir(), 'parafork-task-author-'));
  agent = await startAgent(nodeName, ['--state-dir', stateDirectory, '--sandbox-policy', 'restricted']);
});

afterAll(async () => {
  await agent?.stop();
  await namespace?.cleanup();
  rmSync(stateDirectory, { recursive: true, force: true });
});

describe('a Task author against the agent, through the API', () => {
  it('a Task named with the longest name the apiserver takes (253 characters) still gets its Events', async () => {
    // Events are named `<object>.<hex>`, as the kubelet names them: past 253 characters the
    // apiserver refuses the name, and every Event of the Task was dropped without a word.
    const name = `long-${'a'.repeat(248)}`;
    expect(name).toHaveLength(253);
    await applyTask(namespace.name, name, nodeName, { command: ['sh', '-c', 'exit 1'] });
    await waitForTaskPhase(namespace.name, name, ['Failed'], 30_000);
    const failed = await waitForEvent(name, 'Failed');
    expect(failed.metadata.name.length).toBeLessThanOrEqual(253);
    expect(failed.note).toContain('exited with code 1');
  });

  it('a failure whose message is long in bytes (a command of two-byte characters) still gets its Event', async () => {
    // events.k8s.io's note holds at most 1024 bytes; the agent cut it at 1024 characters, so a
    // message of two-byte characters was refused and the Event lost.
    const name = 'wide-command';
    await applyTask(namespace.name, name, nodeName, { command: [`/nonexistent-${'é'.repeat(1500)}`] });
    const task = await waitForTaskPhase(namespace.name, name, ['Failed'], 30_000);
    expect(task.status?.reason).toBe('ExecFailed');
    const failed = await waitForEvent(name, 'Failed');
    expect(Buffer.byteLength(failed.note ?? '')).toBeLessThanOrEqual(1024);
    expect(failed.note).toContain('nonexistent-é');
  });

  it('what parafork writes about a refused Task (status.message, its Event, the agent\'s log) carries no terminal control from its spec', async () => {
    const name = 'hostile-host-path';
    await applyTask(namespace.name, name, nodeName, {
      command: ['true'],
      sandbox: { mounts: [{ hostPath: `/parafork-red-team-${hostileText}`, mountPath: '/mnt' }] },
    });
    const task = await waitForTaskPhase(namespace.name, name, ['Failed'], 30_000);
    expect(task.status?.reason).toBe('Forbidden');
    expect(task.status?.message).toContain('parafork-red-team');
    expect(task.status?.message).not.toMatch(terminalControl);
    for (const condition of task.status?.conditions ?? []) expect(condition.message).not.toMatch(terminalControl);
    const forbidden = await waitForEvent(name, 'Forbidden');
    expect(forbidden.note).toContain('parafork-red-team');
    expect(forbidden.note).not.toMatch(terminalControl);
    const logged = agent.logs().split('\n').filter((line) => line.includes('parafork-red-team'));
    expect(logged.length).toBeGreaterThan(0);
    for (const line of logged) expect(line).not.toMatch(terminalControl);
  });
});

/** What an author with `patch tasks/status` can write: a merge patch of the Task's status. */
async function patchStatus(name: string, status: Record<string, unknown>): Promise<void> {
  await kubectl(['patch', 'tasks.parafork.dev', name, '-n', namespace.name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
}

describe('a Task whose status its author has rewritten (tasks/status)', () => {
  it('an array or a Task ends Failed, naming the field, when the status is no record an agent writes (indexes descending, counts at int32\'s largest), instead of failing every reconcile for ever', async () => {
    // Bound to a node whose agent starts only once the statuses are written: the agent resumes an
    // array from its status (an earlier life of it, docs/arrays.md) and read "5,3" with a throw; a
    // count at int32's largest left no number for the next attempt that a status write could carry.
    const node = `${nodeName}-late`;
    const forged = [
      { name: 'forged-indexes', spec: { completions: 8 }, status: { completedIndexes: '5,3' }, field: 'status.completedIndexes' },
      // Its indexes fail, so that the count goes up; an array is resumed once its status has completedIndexes.
      { name: 'forged-failed-count', spec: { completions: 2, backoffLimitPerIndex: 0, command: ['false'] }, status: { completedIndexes: '', failed: 2_147_483_647 }, field: 'status.failed' },
      { name: 'forged-attempts', spec: { backoffLimit: 2 }, status: { attempts: 2_147_483_647 }, field: 'status.attempts' },
    ];
    for (const { name, spec, status } of forged) {
      await applyTask(namespace.name, name, node, { command: ['true'], ...spec });
      await patchStatus(name, status);
    }
    const late = await startAgent(node, ['--state-dir', path.join(stateDirectory, 'late'), '--sandbox-policy', 'restricted']);
    try {
      for (const { name, field } of forged) {
        const task = await waitForTaskPhase(namespace.name, name, ['Failed', 'Succeeded'], 30_000);
        expect(task.status?.reason, name).toBe('InvalidSpec');
        expect(task.status?.message, name).toContain(field);
      }
      expect(late.logs()).not.toContain('reconcile failed; retrying with backoff');
    } finally {
      await late.stop();
    }
  });

  it('a shared array (AcrossNodes) ends Failed, naming the entry, when status.partitions holds an entry no agent could have written, instead of taking it over and failing for ever', async () => {
    // Suspended while the entry is forged, so that no agent has claimed the range first. The
    // entry covers indexes far past completions; taken over, it could not be run.
    const name = 'forged-partition';
    const manifest = {
      apiVersion: taskApiVersion,
      kind: taskKind,
      metadata: { name, namespace: namespace.name },
      spec: { command: ['true'], completions: 4, indexPlacement: 'AcrossNodes', suspend: true },
    };
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
    await patchStatus(name, { partitions: [{ start: 0, end: 100_000, nodeName: 'parafork-red-team-ghost', launchedThrough: 0, renewTime: new Date().toISOString() }] });
    await kubectl(['patch', 'tasks.parafork.dev', name, '-n', namespace.name, '--type=merge', '-p', JSON.stringify({ spec: { suspend: false } })]);
    const task = await waitForTaskPhase(namespace.name, name, ['Failed', 'Succeeded'], 45_000);
    expect(task.status?.reason).toBe('InvalidSpec');
    expect(task.status?.message).toContain('status.partitions[start=0]');
    expect((await getTask(namespace.name, name)).status?.phase).toBe('Failed');
  });
});

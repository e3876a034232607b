// The agent when things break: it crashes and comes back, it is told to stop, the apiserver goes away.
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Task } from '../../src/api/task.js';
import { startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { applyTask as applyTaskTo, createTestNamespace, getTask, kubectl, restartApiserver, waitFor, waitForTaskPhase, type TestNamespace } from '../helpers/cluster.js';

let namespace: TestNamespace;
let scratch: string;
const agents: AgentProcess[] = [];

beforeAll(async () => {
  namespace = await createTestNamespace('resilience');
  scratch = mkdtempSync(path.join(tmpdir(), 'parafork-resilience-'));
  // Mounted at /mnt in Tasks that run as uids of their own: they leave and look for files in it.
  chmodSync(scratch, 0o777);
});

/** A sandbox that mounts the scratch folder at /mnt, writable. */
function withScratch(): Record<string, unknown> {
  return { mounts: [{ hostPath: scratch, mountPath: '/mnt', readOnly: false }] };
}

afterAll(async () => {
  await Promise.all(agents.map((agent) => agent.stop()));
  await namespace.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

async function applyTask(name: string, nodeName: string, spec: Record<string, unknown>): Promise<void> {
  await applyTaskTo(namespace.name, name, nodeName, spec);
}

async function waitForPhase(name: string, phases: readonly string[], timeoutMs = 20_000): Promise<Task> {
  return waitForTaskPhase(namespace.name, name, phases, timeoutMs);
}

async function eventNotes(name: string): Promise<string[]> {
  const notes = await kubectl(['get', 'events.events.k8s.io', '-n', namespace.name, '--field-selector', `regarding.name=${name}`, '-o', 'jsonpath={range .items[*]}{.note}{"\\n"}{end}']);
  return notes.split('\n').filter(Boolean);
}

describe('an agent that crashes', () => {
  it('finds its Running Task without a process on restart, records AgentRestarted and retries it', async () => {
    const nodeName = 'crash-node';
    const first = await startAgent(nodeName);
    agents.push(first); // stopped in afterAll even if the test fails before the crash
    // The first attempt runs until the second agent ends it (a fixed short run could end before
    // the test, polling with kubectl on a loaded machine, ever saw it Running); the retry finds the
    // first attempt's marker and exits 0 at once.
    await applyTask('survivor', nodeName, {
      command: ['sh', '-c', 'if [ -e /mnt/survivor-ran ]; then exit 0; fi; touch /mnt/survivor-ran; exec sleep 60'],
      backoffLimit: 1,
      backoff: { initialSeconds: 1 },
      sandbox: withScratch(),
    });
    await waitForPhase('survivor', ['Running']);
    // The first agent's process goes on without it; the second agent ends it (its cgroup is swept).
    await first.crash();

    agents.push(await startAgent(nodeName));
    const task = await waitForPhase('survivor', ['Succeeded', 'Failed'], 30_000);
    expect(task.status).toMatchObject({ phase: 'Succeeded', attempts: 2 });
    expect(await eventNotes('survivor')).toContain('attempt 1: the agent restarted and lost the process; retrying in 1s');
  });
});

describe('an agent told to stop (SIGTERM)', () => {
  it('lets Tasks finish within the grace period, then kills and records the rest, and exits 0', async () => {
    const nodeName = 'drain-node';
    const agent = await startAgent(nodeName, ['--shutdown-grace-seconds', '2']);
    agents.push(agent); // stopped in afterAll if the test fails before it stops it
    // quick runs until the test opens its gate, once the agent has begun to shut down: so it is
    // Running when the test looks (a fixed 1 s run could end between two kubectl polls on a loaded
    // machine) and it ends inside the grace period, not before it began.
    const gate = path.join(scratch, 'quick-may-end');
    await applyTask('quick', nodeName, { command: ['sh', '-c', 'while [ ! -e /mnt/quick-may-end ]; do sleep 0.05; done'], sandbox: withScratch() });
    await applyTask('slow', nodeName, { command: ['sleep', '60'] });
    await waitForPhase('quick', ['Running']);
    await waitForPhase('slow', ['Running']);

    const stopped = agent.stop();
    await waitFor(() => agent.logs().includes('"msg":"shutting down: no more claims or launches"') || undefined, { description: 'the agent to begin its shutdown' });
    writeFileSync(gate, '');
    const exitCode = await stopped;
    expect(exitCode).toBe(0);
    const quick = await getTask(namespace.name, 'quick');
    const slow = await getTask(namespace.name, 'slow');
    expect(quick.status).toMatchObject({ phase: 'Succeeded', reason: 'Completed' });
    expect(slow.status).toMatchObject({ phase: 'Failed', reason: 'AgentRestarted', signal: 'SIGTERM' });
    expect(slow.status?.message).toContain('the agent shut down');
  });
});

describe('an apiserver that restarts', () => {
  it('does not lose the agent: Tasks started before, during and after the restart all end in a terminal phase', async () => {
    const nodeName = 'restart-node';
    agents.push(await startAgent(nodeName));
    // Each leaves a marker as it starts: the test waits for the process itself, not for a Running
    // status it could miss between two kubectl polls of a loaded machine (the run lasts 2 s).
    for (let index = 0; index < 5; index++) {
      await applyTask(`before-${index}`, nodeName, { command: ['sh', '-c', `touch /mnt/before-${index}-started; sleep 2`], sandbox: withScratch() });
    }
    await waitFor(() => existsSync(path.join(scratch, 'before-0-started')) || undefined, { description: 'before-0 to start', timeoutMs: 20_000 });
    // The processes run on while the apiserver is away; their endings must still be recorded.
    restartApiserver();
    for (let index = 0; index < 5; index++) await applyTask(`after-${index}`, nodeName, { command: ['true'] });
    restartApiserver();
    for (const name of [...Array.from({ length: 5 }, (_, index) => `before-${index}`), ...Array.from({ length: 5 }, (_, index) => `after-${index}`)]) {
      const task = await waitForPhase(name, ['Succeeded', 'Failed'], 60_000);
      expect(task.status).toMatchObject({ phase: 'Succeeded', attempts: 1 });
    }
  });
});

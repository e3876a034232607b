// The agent on a real apiserver: what a user sees through `kubectl` for the life of a Task.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { load } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Task } from '../../src/api/task.js';
import { startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { applyTask as applyTaskTo, createTestNamespace, getTask, kubectl, kubectlResult, waitFor, waitForTaskPhase, type TestNamespace } from '../helpers/cluster.js';

const nodeName = 'lifecycle-node';
let agent: AgentProcess;
let namespace: TestNamespace;
let scratch: string;

beforeAll(async () => {
  namespace = await createTestNamespace('lifecycle');
  scratch = mkdtempSync(path.join(tmpdir(), 'parafork-lifecycle-'));
  agent = await startAgent(nodeName);
});

afterAll(async () => {
  await agent.stop();
  await namespace.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

async function applyTask(name: string, spec: Record<string, unknown>): Promise<void> {
  await applyTaskTo(namespace.name, name, nodeName, spec);
}

async function waitForPhase(name: string, phases: readonly string[], timeoutMs = 20_000): Promise<Task> {
  return waitForTaskPhase(namespace.name, name, phases, timeoutMs);
}

describe('a Task applied with kubectl', () => {
  it('runs and reports Succeeded with its exit code, spawn timings, times and conditions', async () => {
    await applyTask('hello', { command: ['sh', '-c', 'echo hello'] });
    const task = await waitForPhase('hello', ['Succeeded', 'Failed']);
    const status = task.status!;
    expect(status).toMatchObject({ phase: 'Succeeded', exitCode: 0, reason: 'Completed', attempts: 1, nodeName });
    expect(status.spawnTimings?.spawnNanoseconds).toBeGreaterThan(0);
    expect(status.startTime).toMatch(/\.\d{9}Z$/);
    expect(status.completionTime).toMatch(/\.\d{9}Z$/);
    expect(status.duration).toMatch(/^\d/);
    expect(status.conditions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'Succeeded', status: 'True', reason: 'Completed' }),
        expect.objectContaining({ type: 'Running', status: 'False' }),
      ]),
    );
    // The finalizer that guards the process is gone once it has finished.
    expect(task.metadata.finalizers ?? []).not.toContain('parafork.dev/process');
    const columns = await kubectl(['get', 'ptask', 'hello', '-n', namespace.name, '--no-headers']);
    expect(columns).toMatch(/^hello\s+Succeeded\s+lifecycle-node\s+0\s+1\s+\S+/);
  });

  it('reports a failing command as Failed with its exit code and the tail of its stderr', async () => {
    await applyTask('failing', { command: ['sh', '-c', 'echo "something broke" >&2; exit 3'] });
    const task = await waitForPhase('failing', ['Failed']);
    expect(task.status).toMatchObject({ phase: 'Failed', exitCode: 3, reason: 'Error', stderrTail: 'something broke\n' });
  });

  it('reports a missing executable as Failed with reason ExecFailed and the errno code in the message', async () => {
    await applyTask('missing', { command: ['/no/such/program'] });
    const task = await waitForPhase('missing', ['Failed']);
    expect(task.status?.reason).toBe('ExecFailed');
    expect(task.status?.message).toContain('ENOENT');
    expect(task.status?.attempts).toBe(1);
  });

  it('kills a Task whose activeDeadlineSeconds passes and reports DeadlineExceeded', async () => {
    await applyTask('deadline', { command: ['sleep', '60'], activeDeadlineSeconds: 1 });
    const task = await waitForPhase('deadline', ['Failed'], 15_000);
    expect(task.status).toMatchObject({ reason: 'DeadlineExceeded', signal: 'SIGTERM' });
  });

  it('retries per backoffLimit, each wait longer than the last, then reports BackoffLimitExceeded', async () => {
    await applyTask('retries', { command: ['sh', '-c', 'exit 1'], backoffLimit: 2, backoff: { initialSeconds: 1, maxSeconds: 60 } });
    const task = await waitForPhase('retries', ['Failed'], 30_000);
    expect(task.status).toMatchObject({ attempts: 3, reason: 'BackoffLimitExceeded', exitCode: 1 });
    const notes = (await kubectl(['get', 'events.events.k8s.io', '-n', namespace.name, '--field-selector', 'regarding.name=retries', '-o', 'jsonpath={range .items[*]}{.note}{"\\n"}{end}']))
      .split('\n')
      .filter((note) => note.includes('retrying in'));
    expect(notes.sort()).toEqual(['attempt 1: exited with code 1; retrying in 1s', 'attempt 2: exited with code 1; retrying in 2s']);
  });

  it('kills the running process through the finalizer when the Task is deleted', async () => {
    // The sandboxed task beats into a file the test mounts in writable; the beat stops when it dies.
    chmodSync(scratch, 0o777);
    const heartbeat = path.join(scratch, 'heartbeat');
    await applyTask('deleted', {
      command: ['sh', '-c', 'while :; do date +%s%N > /mnt/heartbeat; sleep 0.05; done'],
      sandbox: { mounts: [{ hostPath: scratch, mountPath: '/mnt', readOnly: false }] },
    });
    await waitForPhase('deleted', ['Running']);
    await waitFor(() => (existsSync(heartbeat) ? true : undefined), { description: 'the first heartbeat' });
    const task = await getTask(namespace.name, 'deleted');
    expect(task.metadata.finalizers).toContain('parafork.dev/process');
    // `kubectl delete` waits for the object to go, which the finalizer holds until the kill.
    await kubectl(['delete', 'ptask', 'deleted', '-n', namespace.name, '--timeout=30s']);
    const beatAfterDelete = readFileSync(heartbeat, 'utf8');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(readFileSync(heartbeat, 'utf8')).toBe(beatAfterDelete);
  });

  it('cancels a running Task when suspend is set, reporting Cancelled', async () => {
    await applyTask('cancelled', { command: ['sleep', '60'] });
    await waitForPhase('cancelled', ['Running']);
    await kubectl(['patch', 'ptask', 'cancelled', '-n', namespace.name, '--type=merge', '-p', '{"spec":{"suspend":true}}']);
    const task = await waitForPhase('cancelled', ['Failed']);
    expect(task.status?.reason).toBe('Cancelled');
  });

  it('runs a Task with default settings sandboxed: its own pid namespace, a uid of its own, no capabilities, no network', async () => {
    // The task reports through its stderr tail; exit 1 keeps the tail in the status.
    await applyTask('sandboxed', { command: ['sh', '-c', 'id -u >&2; echo pid=$$ >&2; grep CapEff /proc/self/status >&2; ls /sys/class/net >&2; exit 1'] });
    const task = await waitForPhase('sandboxed', ['Failed']);
    const uid = task.status?.hostIdentity?.uid;
    expect(uid).toBeGreaterThanOrEqual(1879048192); // the agent's --task-ids range, not nobody's 65534
    expect(task.status?.stderrTail).toContain(`${uid}\npid=2\nCapEff:\t0000000000000000\n`);
    expect(task.status?.stderrTail).toContain('No such file or directory'); // no /sys, no network
  });

  it('reports OOMKilled when a Task goes over resources.limits.memory', async () => {
    await applyTask('memory-bomb', {
      command: ['/usr/bin/python3', '-c', 'x = bytearray(512 * 2**20)'],
      resources: { limits: { memory: '64Mi' } },
    });
    const task = await waitForPhase('memory-bomb', ['Failed']);
    expect(task.status).toMatchObject({ reason: 'OOMKilled', signal: 'SIGKILL' });
    expect(task.status?.message).toContain('64Mi');
  });

  it.each([
    ['limits-memory.yaml', { phase: 'Failed', reason: 'OOMKilled' }, undefined],
    ['limits-pids.yaml', { phase: 'Failed', reason: 'Error' }, 'Cannot fork'],
  ])('runs examples/%s with its limit enforced: %j', async (example, expected, stderr) => {
    const manifest = load(readFileSync(path.join('examples', example), 'utf8')) as { metadata: { name: string }; spec: Record<string, unknown> };
    await applyTask(manifest.metadata.name, manifest.spec);
    const task = await waitForPhase(manifest.metadata.name, ['Succeeded', 'Failed'], 60_000);
    expect(task.status).toMatchObject(expected);
    if (stderr !== undefined) expect(task.status?.stderrTail).toContain(stderr);
  });

  it('fails a Task bound to this node whose nodeSelector the node does not match, with InvalidSpec', async () => {
    await applyTask('mismatched', { command: ['true'], nodeSelector: { 'parafork.dev/test-label': 'absent' } });
    const task = await waitForPhase('mismatched', ['Failed', 'Succeeded']);
    expect(task.status).toMatchObject({ phase: 'Failed', reason: 'InvalidSpec', attempts: 0 });
    expect(task.status?.message).toContain('nodeSelector');
  });

  it('deletes a finished Task once ttlSecondsAfterFinished has passed', async () => {
    await applyTask('short-lived', { command: ['true'], ttlSecondsAfterFinished: 1 });
    await waitFor(
      async () => {
        const result = await kubectlResult(['get', 'ptask', 'short-lived', '-n', namespace.name]);
        return result.status !== 0 && result.stderr.includes('NotFound') ? true : undefined;
      },
      { description: 'the finished Task to be deleted', timeoutMs: 15_000 },
    );
  });
});

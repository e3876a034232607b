// Results in status (issue 15, item 5) against the real apiserver: what a Task writes to the file
// $PARAFORK_RESULT names lands in status.result (its first 4096 bytes, resultTruncated past them)
// on success and on failure; spec.resultPolicy FallbackToLogsOnError fills it from the end of a
// failed attempt's output when the file is empty; a later attempt without a result clears it; and
// status.usage carries the attempt's memory peak beside its CPU time.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { applyTask, createTestNamespace, kubectl, waitForTaskPhase, type TestNamespace } from '../helpers/cluster.js';

const nodeName = `result-node-${randomBytes(3).toString('hex')}`;
let namespace: TestNamespace;
let stateDirectory: string;
let agent: AgentProcess;

beforeAll(async () => {
  namespace = await createTestNamespace('result');
  stateDirectory = mkdtempSync(path.join(tmpdir(), 'parafork-result-state-'));
  agent = await startAgent(nodeName, ['--state-dir', stateDirectory]);
});

afterAll(async () => {
  await agent?.stop();
  await namespace?.cleanup();
  rmSync(stateDirectory, { recursive: true, force: true });
});

const sh = (script: string): string[] => ['/bin/sh', '-c', script];

describe('status.result', () => {
  it('is what a successful Task wrote to $PARAFORK_RESULT, readable with kubectl jsonpath', async () => {
    await applyTask(namespace.name, 'counts', nodeName, { command: sh('printf \'{"rows":42}\' > "$PARAFORK_RESULT"'), resources: { limits: { memory: '64Mi' } } });
    const task = await waitForTaskPhase(namespace.name, 'counts', ['Succeeded', 'Failed']);
    expect(task.status).toMatchObject({ phase: 'Succeeded', result: '{"rows":42}' });
    expect(task.status?.resultTruncated).toBeUndefined();
    expect(await kubectl(['get', 'tasks.parafork.dev', 'counts', '--namespace', namespace.name, '-o', 'jsonpath={.status.result}'])).toBe('{"rows":42}');
  });

  it('is kept for a failed Task too, beside its stderrTail', async () => {
    await applyTask(namespace.name, 'half-done', nodeName, { command: sh('echo "processed 7 of 10" > "$PARAFORK_RESULT"; echo "disk full" >&2; exit 2') });
    const task = await waitForTaskPhase(namespace.name, 'half-done', ['Failed']);
    expect(task.status).toMatchObject({ reason: 'Error', exitCode: 2, result: 'processed 7 of 10\n', stderrTail: 'disk full\n' });
  });

  it('holds the first 4096 bytes of a longer result and says it was truncated', async () => {
    await applyTask(namespace.name, 'long', nodeName, { command: sh('head -c 5000 /dev/zero | tr "\\0" r > "$PARAFORK_RESULT"') });
    const task = await waitForTaskPhase(namespace.name, 'long', ['Succeeded']);
    expect({ result: task.status?.result, resultTruncated: task.status?.resultTruncated }).toEqual({ result: 'r'.repeat(4096), resultTruncated: true });
  });

  it('is unset for a failed Task that wrote nothing under the default policy (File)', async () => {
    await applyTask(namespace.name, 'silent', nodeName, { command: sh('echo "some output"; exit 1') });
    const task = await waitForTaskPhase(namespace.name, 'silent', ['Failed']);
    expect(task.spec.resultPolicy).toBe('File'); // the CRD's default
    expect(task.status?.result).toBeUndefined();
  });

  it('is the end of a failed Task s output under FallbackToLogsOnError when the file is empty, stdout and stderr in order', async () => {
    await applyTask(namespace.name, 'fallback', nodeName, { command: sh('echo "step 1"; echo "step 2 failed" >&2; exit 1'), resultPolicy: 'FallbackToLogsOnError' });
    const task = await waitForTaskPhase(namespace.name, 'fallback', ['Failed']);
    expect(task.status?.result).toBe('step 1\nstep 2 failed\n');
  });

  it('is not taken from the output of a Task that succeeded, whatever its policy', async () => {
    await applyTask(namespace.name, 'fine', nodeName, { command: sh('echo "all good"'), resultPolicy: 'FallbackToLogsOnError' });
    const task = await waitForTaskPhase(namespace.name, 'fine', ['Succeeded']);
    expect(task.status?.result).toBeUndefined();
  });

  it('describes the latest attempt: a retry that writes no result clears the first attempt s', async () => {
    // Each attempt has a /tmp of its own: a host folder (mounted writable; the agent runs Tasks at privileged) tells the retry it is one.
    const folder = mkdtempSync(path.join(tmpdir(), 'parafork-result-attempts-'));
    try {
      await applyTask(namespace.name, 'retried', nodeName, {
        command: sh('if [ -e /mnt/tried ]; then exit 0; fi; touch /mnt/tried; echo "first try" > "$PARAFORK_RESULT"; exit 1'),
        backoffLimit: 1,
        backoff: { initialSeconds: 1, maxSeconds: 1 },
        sandbox: { runAsUser: 0, mounts: [{ hostPath: folder, mountPath: '/mnt', readOnly: false }] },
      });
      const task = await waitForTaskPhase(namespace.name, 'retried', ['Succeeded', 'Failed'], 30_000);
      expect(task.status).toMatchObject({ phase: 'Succeeded', attempts: 2 });
      expect(task.status?.result).toBeUndefined();
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('refuses a resultPolicy other than File or FallbackToLogsOnError', async () => {
    await expect(applyTask(namespace.name, 'bad-policy', nodeName, { command: ['/bin/true'], resultPolicy: 'Stdout' })).rejects.toThrow(/resultPolicy.*Unsupported value/s);
  });

  it('is explained by kubectl explain', async () => {
    expect(await kubectl(['explain', 'tasks.spec.resultPolicy', '--api-version', 'parafork.dev/v1alpha1'])).toMatch(/terminationMessagePolicy/);
    expect(await kubectl(['explain', 'tasks.status.result', '--api-version', 'parafork.dev/v1alpha1'])).toMatch(/PARAFORK_RESULT/);
  });
});

describe('status.usage', () => {
  it('carries the attempt s memory peak (its cgroup s) beside its CPU time', async () => {
    // 32 MiB held in /tmp: tmpfs pages are charged to the Task's memory cgroup.
    await applyTask(namespace.name, 'hungry', nodeName, { command: sh('head -c 33554432 /dev/zero > /tmp/fill'), resources: { limits: { memory: '128Mi' } } });
    const task = await waitForTaskPhase(namespace.name, 'hungry', ['Succeeded', 'Failed']);
    expect(task.status?.phase).toBe('Succeeded');
    expect(task.status?.usage?.memoryPeakBytes).toBeGreaterThanOrEqual(32 * 1024 * 1024);
    expect(task.status?.usage?.memoryPeakBytes).toBeLessThanOrEqual(128 * 1024 * 1024);
    expect(task.status?.usage?.userCpuMicroseconds).toBeGreaterThanOrEqual(0);
  });
});

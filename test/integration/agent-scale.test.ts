// Several agents and many Tasks on one apiserver: claims never run a Task twice, and a burst of
// Tasks created at once all reach a terminal phase.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { ApiClient } from '../../src/k8s/api-client.js';
import { startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { createTestNamespace, kubectl, waitForTerminalTasks, type TestNamespace } from '../helpers/cluster.js';

let namespace: TestNamespace;
let scratch: string;
const agents: AgentProcess[] = [];
const nodes: string[] = [];

beforeAll(async () => {
  namespace = await createTestNamespace('scale');
  scratch = mkdtempSync(path.join(tmpdir(), 'parafork-scale-'));
});

afterAll(async () => {
  await Promise.all(agents.map((agent) => agent.stop()));
  for (const node of nodes) await kubectl(['delete', 'node', node, '--ignore-not-found']);
  await namespace.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

function taskList(tasks: Record<string, unknown>[]): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: tasks });
}


describe('claiming', () => {
  it('two agents claim 200 unbound Tasks between them, and no Task runs twice', async () => {
    const pool = `pool-${randomBytes(3).toString('hex')}`;
    for (const node of ['claim-a', 'claim-b']) {
      // Agents claim by matching their Node's labels; the test makes the Node objects itself.
      await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: node, labels: { 'parafork.dev/test-pool': pool } } }) });
      nodes.push(node);
      agents.push(await startAgent(node));
    }
    // Each sandboxed run appends its name to a file the test mounts into it writable. Every Task
    // runs as a uid of its own, so the file is made beforehand, writable for all of them.
    chmodSync(scratch, 0o777);
    const marker = path.join(scratch, 'claims.log');
    writeFileSync(marker, '');
    chmodSync(marker, 0o666);
    const tasks = Array.from({ length: 200 }, (_, index) => ({
      apiVersion: 'parafork.dev/v1alpha1',
      kind: 'Task',
      metadata: { name: `claim-${index}`, namespace: namespace.name },
      spec: {
        nodeSelector: { 'parafork.dev/test-pool': pool },
        command: ['sh', '-c', `echo claim-${index} >> /mnt/claims.log`],
        sandbox: { mounts: [{ hostPath: scratch, mountPath: '/mnt', readOnly: false }] },
      },
    }));
    await kubectl(['apply', '-f', '-'], { input: taskList(tasks) });
    const finished = await waitForTerminalTasks(namespace.name, 'claim-', 200, 180_000);

    const runs = readFileSync(marker, 'utf8').trim().split('\n');
    expect(runs).toHaveLength(200);
    expect(new Set(runs).size).toBe(200);
    const unexpected = finished.filter((task) => task.status?.phase !== 'Succeeded' || task.status.attempts !== 1);
    expect(unexpected.map((task) => ({ name: task.metadata.name, status: task.status }))).toEqual([]);
    const claimedBy = new Set(finished.map((task) => task.spec.nodeName));
    expect([...claimedBy].every((node) => node === 'claim-a' || node === 'claim-b')).toBe(true);
  }, 240_000);
});

describe('a burst', () => {
  it('500 Tasks created at once all reach a terminal phase; the throughput is recorded', async () => {
    const node = 'burst-node';
    agents.push(await startAgent(node));
    const tasks = Array.from({ length: 500 }, (_, index) => ({
      apiVersion: 'parafork.dev/v1alpha1',
      kind: 'Task',
      metadata: { name: `burst-${index}`, namespace: namespace.name },
      spec: { nodeName: node, command: ['true'] },
    }));
    // Created as fast as a client can (50 requests in flight), not one by one as kubectl does,
    // so the figure measures the agent rather than the client.
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(inject('kubeconfigPath'));
    const client = new ApiClient({ kubeConfig, qps: 10_000, burst: 10_000, userAgent: 'parafork-test' });
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        for (let task = tasks[next++]; task !== undefined; task = tasks[next++]) {
          await client.request({ method: 'POST', path: `/apis/parafork.dev/v1alpha1/namespaces/${namespace.name}/tasks`, body: task });
        }
      }),
    );
    const created = performance.now();
    const burst = await waitForTerminalTasks(namespace.name, 'burst-', 500, 180_000);
    const done = performance.now();
    const unexpected = burst.filter((task) => task.status?.phase !== 'Succeeded');
    expect(unexpected.map((task) => ({ name: task.metadata.name, status: task.status }))).toEqual([]);
    const seconds = (done - started) / 1000;
    console.log(`500 Tasks: created in ${((created - started) / 1000).toFixed(1)} s, all terminal after ${seconds.toFixed(1)} s: ${(500 / seconds).toFixed(1)} Tasks/s end to end (2-core machine, apiserver and etcd on it)`);
  }, 240_000);
});

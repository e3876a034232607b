// Red team, session 16: the sandbox policy while the agent's cache of labelled namespaces is not
// filled yet. The agent reads a namespace's level from a list+watch of the labelled namespaces,
// and reads the namespace afresh only to confirm a refusal; it starts its Tasks without waiting
// for that list. Until the list came (at every start, and for as long as it failed: a ClusterRole
// not yet updated, an apiserver in trouble), every namespace read as unlabelled, at the agent's
// default level: with `--sandbox-policy baseline` (a default above restricted, lowered for some
// namespaces by their label, as the chart allows), a Task of a namespace labelled restricted ran
// with `network: loopback`. Until the cache has its first list the agent now holds every Task to
// restricted, so that anything more is confirmed against the namespace read afresh.
//
// The same, later: while the watch of the labelled namespaces was down (and its relist failed), a
// namespace relabelled lower kept its old level in the cache, and its Tasks ran at it. While the
// watch is down the agent now holds every Task to restricted too.
//
// The agent talks to the apiserver through the fault proxy, which refuses every list (and, in the
// second part, watch) of namespaces (500) and passes the rest, a namespace's own GET included.
// Needs root (the sandbox).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { taskApiVersion, taskKind } from '../../src/api/task.js';
import { startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { createTestNamespace, kubectl, waitFor, waitForTaskPhase, type TestNamespace } from '../helpers/cluster.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';

const skip = missingRequirement('the agent sandboxes its Tasks, which needs root', runningAsRoot);

const nodeName = 'policy-unlisted-node';

/** A Task bound to the agent's node with a network of its own (level baseline). */
function loopbackTask(namespace: string, name: string): string {
  const spec = { nodeName, command: ['/bin/true'], sandbox: { network: 'loopback' } };
  return JSON.stringify({ apiVersion: taskApiVersion, kind: taskKind, metadata: { name, namespace }, spec });
}

describe.skipIf(skip !== undefined)(`the sandbox policy before the agent has listed the labelled namespaces${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  let proxy: FaultProxy;
  let agent: AgentProcess | undefined;
  const namespaces: TestNamespace[] = [];

  async function newNamespace(prefix: string, level?: string): Promise<string> {
    const namespace = await createTestNamespace(prefix);
    namespaces.push(namespace);
    if (level !== undefined) await kubectl(['label', 'namespace', namespace.name, `parafork.dev/sandbox-policy=${level}`, '--overwrite']);
    return namespace.name;
  }

  beforeAll(async () => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-policy-unlisted-'));
    proxy = await startFaultProxy({ upstreamUrl: inject('apiserverUrl'), clusterStateDir: inject('clusterStateDir'), workDirectory: scratch });
    proxy.setRules([{ name: 'list namespaces', methods: ['GET'], path: /^\/api\/v1\/namespaces(\?|$)/, watch: false, probability: 1, fault: { kind: 'status', status: 500, reason: 'InternalError' } }]);
    agent = await startAgent(nodeName, ['--kubeconfig', proxy.kubeconfigPath, '--sandbox-policy', 'baseline']);
  });

  afterAll(async () => {
    await agent?.stop();
    await proxy?.close();
    for (const namespace of namespaces) await namespace.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('refuses a Task more than its namespace\'s label allows, though the agent\'s default allows it', async () => {
    const restricted = await newNamespace('policy-unlisted-restricted', 'restricted');
    await kubectl(['apply', '-f', '-'], { input: loopbackTask(restricted, 'loopback') });
    const task = await waitForTaskPhase(restricted, 'loopback', ['Succeeded', 'Failed']);
    expect(task.status, 'the Task ran at the agent\'s default level, not its namespace\'s').toMatchObject({ phase: 'Failed', reason: 'Forbidden' });
    expect(task.status?.message).toContain('spec.sandbox.network "loopback" is not allowed at sandbox policy level restricted');
    expect(task.status?.attempts ?? 0).toBe(0);
    // The list was refused all along: the cache never had the namespace.
    expect(proxy.injected().get('list namespaces') ?? 0).toBeGreaterThan(0);
  });

  it('runs the same Task in a namespace labelled baseline, and in an unlabelled one at the agent\'s default, each read afresh', async () => {
    const baseline = await newNamespace('policy-unlisted-baseline', 'baseline');
    const unlabelled = await newNamespace('policy-unlisted-default');
    for (const namespace of [baseline, unlabelled]) await kubectl(['apply', '-f', '-'], { input: loopbackTask(namespace, 'loopback') });
    for (const namespace of [baseline, unlabelled]) {
      const task = await waitForTaskPhase(namespace, 'loopback', ['Succeeded', 'Failed']);
      expect(task.status, namespace).toMatchObject({ phase: 'Succeeded' });
    }
    await waitFor(() => (proxy.requests.some((request) => request.method === 'GET' && request.url.includes(`/api/v1/namespaces/${baseline}`)) ? true : undefined), { description: 'the agent to read the namespace afresh' });
  });
});

describe.skipIf(skip !== undefined)(`the sandbox policy while the agent's watch of the labelled namespaces is down${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const watchDownNode = 'policy-watch-down-node';
  let scratch: string;
  let proxy: FaultProxy;
  let agent: AgentProcess | undefined;
  let namespace: TestNamespace | undefined;

  beforeAll(async () => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-policy-watch-down-'));
    proxy = await startFaultProxy({ upstreamUrl: inject('apiserverUrl'), clusterStateDir: inject('clusterStateDir'), workDirectory: scratch });
  });

  afterAll(async () => {
    await agent?.stop();
    await proxy?.close();
    await namespace?.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('refuses a Task of a namespace relabelled lower while the watch was down, though the cache still shows the old level', async () => {
    namespace = await createTestNamespace('policy-watch-down');
    await kubectl(['label', 'namespace', namespace.name, 'parafork.dev/sandbox-policy=baseline']);
    agent = await startAgent(watchDownNode, ['--kubeconfig', proxy.kubeconfigPath, '--sandbox-policy', 'restricted']);
    // Listed (with its baseline label), then watched.
    await waitFor(() => (proxy.requests.some((request) => request.route === 'watch namespaces' && request.status === 200) ? true : undefined), { description: 'the agent to watch the labelled namespaces' });
    proxy.setRules([{ name: 'namespaces down', methods: ['GET'], path: /^\/api\/v1\/namespaces(\?|$)/, probability: 1, fault: { kind: 'status', status: 500, reason: 'InternalError' } }]);
    proxy.cutWatches();
    await waitFor(() => ((proxy.injected().get('namespaces down') ?? 0) > 0 ? true : undefined), { description: 'the agent to try the namespaces again and be refused', timeoutMs: 20_000 });
    await kubectl(['label', 'namespace', namespace.name, 'parafork.dev/sandbox-policy=restricted', '--overwrite']);
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: taskApiVersion, kind: taskKind, metadata: { name: 'loopback', namespace: namespace.name }, spec: { nodeName: watchDownNode, command: ['/bin/true'], sandbox: { network: 'loopback' } } }) });
    const task = await waitForTaskPhase(namespace.name, 'loopback', ['Succeeded', 'Failed']);
    expect(task.status, 'the Task ran at the level the cache kept from before the relabel').toMatchObject({ phase: 'Failed', reason: 'Forbidden' });
    expect(task.status?.message).toContain('is not allowed at sandbox policy level restricted');
  });
});

// A kubeconfig whose user is an exec plugin (as every EKS, GKE and AKS kubeconfig is) works end to
// end: the agent loads it through client-node's KubeConfig, runs the plugin (a small script printing
// an ExecCredential with a token this run's apiserver accepts), and runs a Task to Succeeded.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { load } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { applyTask, createTestNamespace, kubectl, waitForTaskPhase, type TestNamespace } from '../helpers/cluster.js';

const suffix = randomBytes(3).toString('hex');
const nodeName = `exec-node-${suffix}`;
const serviceAccount = 'exec-plugin-agent';
const binding = `parafork-exec-plugin-${suffix}`;

let namespace: TestNamespace;
let scratch: string;
let agent: AgentProcess | undefined;
/** The plugin appends a line here each time it runs. */
let pluginRuns: string;

/** A kubeconfig for this run's apiserver whose user is `plugin`, an exec credential plugin. */
function execPluginKubeconfig(plugin: string): string {
  const admin = load(readFileSync(inject('kubeconfigPath'), 'utf8')) as { clusters: { cluster: { 'certificate-authority-data': string } }[] };
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server: inject('apiserverUrl'), 'certificate-authority-data': admin.clusters[0]!.cluster['certificate-authority-data'] } }],
    users: [{ name: 'plugin-user', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' } } }],
    contexts: [{ name: 'agent', context: { cluster: 'test', user: 'plugin-user' } }],
    'current-context': 'agent',
  });
}

beforeAll(async () => {
  namespace = await createTestNamespace('exec-plugin');
  scratch = mkdtempSync(path.join(tmpdir(), 'parafork-exec-plugin-'));
  // The token the plugin hands out: a ServiceAccount's, with enough rights for an agent
  // (rbac-agent.test.ts checks the chart's narrower role; this test is about the plugin).
  await kubectl(['create', 'serviceaccount', serviceAccount, '--namespace', namespace.name]);
  await kubectl(['create', 'clusterrolebinding', binding, '--clusterrole=cluster-admin', `--serviceaccount=${namespace.name}:${serviceAccount}`]);
  const token = (await kubectl(['create', 'token', serviceAccount, '--namespace', namespace.name, '--duration=1h'])).trim();
  const plugin = path.join(scratch, 'credential-plugin.sh');
  const credential = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token } });
  pluginRuns = path.join(scratch, 'plugin-runs');
  writeFileSync(plugin, `#!/bin/sh\necho ran >> '${pluginRuns}'\ncat <<'CREDENTIAL'\n${credential}\nCREDENTIAL\n`, { mode: 0o700 });
  chmodSync(plugin, 0o700);
  const kubeconfig = path.join(scratch, 'agent.kubeconfig');
  writeFileSync(kubeconfig, execPluginKubeconfig(plugin), { mode: 0o600 });
  // The later --kubeconfig wins over the admin one that startAgent passes.
  agent = await startAgent(nodeName, ['--kubeconfig', kubeconfig]);
});

afterAll(async () => {
  await agent?.stop();
  await kubectl(['delete', 'clusterrolebinding', binding, '--ignore-not-found', '--wait=false']);
  await namespace.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

describe('an agent whose kubeconfig user is an exec plugin', () => {
  it('authenticates with the credential the plugin prints and runs a Task to Succeeded', async () => {
    await applyTask(namespace.name, 'hello', nodeName, { command: ['sh', '-c', 'echo hello'] });
    const task = await waitForTaskPhase(namespace.name, 'hello', ['Succeeded', 'Failed'], 30_000);
    expect(task.status).toMatchObject({ phase: 'Succeeded', exitCode: 0, nodeName });
    expect(readFileSync(pluginRuns, 'utf8')).toContain('ran');
  });
});

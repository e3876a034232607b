// The chart's RBAC is enough and no more: the ServiceAccount, ClusterRole and ClusterRoleBinding
// rendered by `helm template` are applied to this run's apiserver, the agent runs with nothing
// but a token minted for that ServiceAccount (as it would in its Pod), and everything it does to
// Tasks, Events, its Node and the namespaces' sandbox policy labels is allowed, while Secrets and everything else the role does not list
// are refused.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { load } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import type { Task } from '../../src/api/task.js';
import { startAgentCommand, type RunningAgentCommand } from '../helpers/agent-command.js';
import { createTestNamespace, getTask, kubectl, kubectlResult, waitFor, type TestNamespace } from '../helpers/cluster.js';
import { onlyObject, parseManifests, renderChart, repositoryRoot } from '../helpers/helm.js';

const suffix = randomBytes(3).toString('hex');
const release = `rbac-${suffix}`;
const nodeName = `rbac-node-${suffix}`;
const poolLabel = 'parafork.dev/test-pool';
const rbacTemplates = ['templates/serviceaccount.yaml', 'templates/clusterrole.yaml', 'templates/clusterrolebinding.yaml'];

let namespace: TestNamespace;
let rbacManifests: string;
let serviceAccount: string;
let scratch: string;
let agentKubeconfig: string;
let agent: RunningAgentCommand | undefined;

/** A kubeconfig that authenticates with `token` alone, trusting this run's cluster CA. */
function tokenKubeconfig(token: string): string {
  const admin = load(readFileSync(inject('kubeconfigPath'), 'utf8')) as { clusters: { cluster: { 'certificate-authority-data': string } }[] };
  const caData = admin.clusters[0]!.cluster['certificate-authority-data'];
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server: inject('apiserverUrl'), 'certificate-authority-data': caData } }],
    users: [{ name: serviceAccount, user: { token } }],
    contexts: [{ name: 'agent', context: { cluster: 'test', user: serviceAccount } }],
    'current-context': 'agent',
  });
}

/** `kubectl auth can-i` for the ServiceAccount, asked by the admin through impersonation. */
async function serviceAccountCan(verb: string, resource: string, options: { subresource?: string; namespace?: string } = {}): Promise<boolean> {
  const scope = options.namespace === undefined ? ['--all-namespaces'] : ['--namespace', options.namespace];
  const args = ['auth', 'can-i', verb, resource, `--as=system:serviceaccount:${namespace.name}:${serviceAccount}`, ...scope];
  if (options.subresource !== undefined) args.push(`--subresource=${options.subresource}`);
  const result = await kubectlResult(args);
  // can-i answers "yes" (exit 0) or "no" (exit 1); anything else is an error of the question.
  if (result.stdout.trim() === 'yes' && result.status === 0) return true;
  if (result.stdout.trim() === 'no' && result.status === 1) return false;
  throw new Error(`kubectl ${args.join(' ')}: ${result.status} ${result.stdout} ${result.stderr}`);
}

async function applyTask(name: string, spec: Record<string, unknown>): Promise<void> {
  const manifest = { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name, namespace: namespace.name }, spec };
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
}

function waitForPhase(name: string, phase: string): Promise<Task> {
  return waitFor(
    async (observed) => {
      const task = await getTask(namespace.name, name);
      observed(task.status);
      return task.status?.phase === phase ? task : undefined;
    },
    { description: `Task ${name} to be ${phase}`, timeoutMs: 30_000 },
  );
}

beforeAll(async () => {
  namespace = await createTestNamespace('rbac');
  scratch = mkdtempSync(path.join(tmpdir(), 'parafork-rbac-'));
  rbacManifests = await renderChart({ release, namespace: namespace.name, showOnly: rbacTemplates });
  serviceAccount = onlyObject(parseManifests(rbacManifests), 'ServiceAccount').metadata.name;
  await kubectl(['apply', '-f', '-'], { input: rbacManifests });
  // The agent's Node, with a label that a Task's nodeSelector below asks for: the agent claims
  // that Task only if it could read its Node (nodes get).
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: nodeName, labels: { [poolLabel]: suffix } } }) });

  const token = (await kubectl(['create', 'token', serviceAccount, '--namespace', namespace.name, '--duration=1h'])).trim();
  agentKubeconfig = path.join(scratch, 'agent.kubeconfig');
  writeFileSync(agentKubeconfig, tokenKubeconfig(token), { mode: 0o600 });
  chmodSync(agentKubeconfig, 0o600);
  agent = await startAgentCommand({
    file: process.execPath,
    args: [path.join(repositoryRoot, 'dist/cli/main.js'), 'agent', '--kubeconfig', agentKubeconfig, '--listen-address', '127.0.0.1', '--port', '0', '--termination-grace-seconds', '2'],
    // NODE_NAME, as the DaemonSet sets it from the Downward API.
    env: { PATH: process.env.PATH, NODE_NAME: nodeName },
  });
});

afterAll(async () => {
  await agent?.stop();
  await namespace.cleanup();
  await kubectl(['delete', 'node', nodeName, '--ignore-not-found', '--wait=false']);
  if (rbacManifests) await kubectl(['delete', '--ignore-not-found', '--wait=false', '-f', '-'], { input: rbacManifests });
  rmSync(scratch, { recursive: true, force: true });
});

describe('the agent with only the chart RBAC', () => {
  it('runs a Task bound to its node to Succeeded, and records its events', async () => {
    await applyTask('bound', { nodeName, command: ['sh', '-c', 'echo hello'] });
    const task = await waitForPhase('bound', 'Succeeded');
    expect(task.status).toMatchObject({ exitCode: 0, reason: 'Completed', nodeName });
    // The finalizer was added (a patch) before the launch and removed after it.
    expect(task.metadata.finalizers ?? []).not.toContain('parafork.dev/process');
    const reasons = await waitFor(
      async (observed) => {
        const json = await kubectl(['get', 'events.events.k8s.io', '--namespace', namespace.name, '--field-selector', 'regarding.name=bound', '-o', 'json']);
        const found = (JSON.parse(json) as { items: { reason: string; reportingController: string }[] }).items;
        observed(found);
        return found.some((event) => event.reason === 'Completed') ? found : undefined;
      },
      { description: 'the Completed event of Task bound' },
    );
    expect(reasons.map((event) => event.reportingController)).toContain('parafork.dev/agent');
  });

  it('claims an unbound Task whose nodeSelector its Node matches (read with nodes get), and runs it', async () => {
    await applyTask('claimed', { nodeSelector: { [poolLabel]: suffix }, command: ['true'] });
    const task = await waitForPhase('claimed', 'Succeeded');
    expect(task.spec.nodeName).toBe(nodeName);
  });

  it('deletes a finished Task once ttlSecondsAfterFinished has passed', async () => {
    await applyTask('expiring', { nodeName, command: ['true'], ttlSecondsAfterFinished: 0 });
    await waitFor(
      async (observed) => {
        const result = await kubectlResult(['get', 'tasks.parafork.dev', 'expiring', '--namespace', namespace.name, '-o', 'jsonpath={.status.phase}']);
        observed(result.stdout || result.stderr);
        return result.status !== 0 && result.stderr.includes('NotFound') ? true : undefined;
      },
      { description: 'Task expiring to be deleted', timeoutMs: 30_000 },
    );
  });

  it('runs a Task at the sandbox policy level of its namespace\'s label (namespaces list, watch and get)', async () => {
    await kubectl(['label', 'namespace', namespace.name, 'parafork.dev/sandbox-policy=baseline', '--overwrite']);
    await applyTask('loopback', { nodeName, command: ['true'], sandbox: { network: 'loopback' } });
    const task = await waitForPhase('loopback', 'Succeeded');
    expect(task.status).toMatchObject({ reason: 'Completed' });
  });

  it('was refused nothing by the apiserver', () => {
    const logs = agent!.logs();
    expect(logs).toContain('"msg":"agent ready"');
    expect(logs).not.toMatch(/forbidden|\b403\b/i);
    expect(logs).not.toContain('could not read this node');
  });
});

describe('the ServiceAccount', () => {
  it('cannot read Secrets, in its own namespace or any other', async () => {
    expect(await serviceAccountCan('get', 'secrets', { namespace: namespace.name })).toBe(false);
    expect(await serviceAccountCan('list', 'secrets')).toBe(false);
    expect(await serviceAccountCan('watch', 'secrets')).toBe(false);
    const asAgent = await kubectlResult(['get', 'secrets', '--namespace', namespace.name], { kubeconfig: agentKubeconfig });
    expect(asAgent.status).not.toBe(0);
    expect(asAgent.stderr).toContain('forbidden');
  });

  it('may do exactly what the ClusterRole lists, cluster-wide', async () => {
    const allowed: [string, string, string?][] = [
      ['list', 'tasks.parafork.dev'],
      ['watch', 'tasks.parafork.dev'],
      ['patch', 'tasks.parafork.dev'],
      ['delete', 'tasks.parafork.dev'],
      ['patch', 'tasks.parafork.dev', 'status'],
      ['create', 'events.events.k8s.io'],
      ['patch', 'events.events.k8s.io'],
      ['get', 'nodes'],
      ['get', 'namespaces'],
      ['list', 'namespaces'],
      ['watch', 'namespaces'],
    ];
    const refused: [string, string, string?][] = [
      ['get', 'tasks.parafork.dev'],
      ['create', 'tasks.parafork.dev'],
      ['update', 'tasks.parafork.dev'],
      ['deletecollection', 'tasks.parafork.dev'],
      ['update', 'tasks.parafork.dev', 'status'],
      ['update', 'tasks.parafork.dev', 'finalizers'],
      ['list', 'events.events.k8s.io'],
      ['create', 'events'],
      ['list', 'nodes'],
      ['patch', 'nodes'],
      ['patch', 'namespaces'],
      ['update', 'namespaces'],
      ['get', 'pods'],
      ['create', 'pods'],
      ['get', 'configmaps'],
      ['create', 'serviceaccounts', 'token'],
      ['escalate', 'clusterroles.rbac.authorization.k8s.io'],
    ];
    const answers = async (questions: [string, string, string?][]): Promise<string[]> =>
      Promise.all(questions.map(async ([verb, resource, subresource]) => {
        const can = await serviceAccountCan(verb, resource, subresource === undefined ? {} : { subresource });
        return `${verb} ${resource}${subresource === undefined ? '' : `/${subresource}`}: ${can ? 'yes' : 'no'}`;
      }));
    expect(await answers(allowed)).toEqual(allowed.map(([verb, resource, subresource]) => `${verb} ${resource}${subresource === undefined ? '' : `/${subresource}`}: yes`));
    expect(await answers(refused)).toEqual(refused.map(([verb, resource, subresource]) => `${verb} ${resource}${subresource === undefined ? '' : `/${subresource}`}: no`));
  });
});

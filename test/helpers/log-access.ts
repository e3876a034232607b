// What the Task log tests need to read logs as a user would, through the real apiserver: a
// kubeconfig that authenticates with a token alone, and a Pod object standing for the agent so the
// apiserver's pod proxy reaches it (no kubelet here; the proxy refuses loopback addresses, so the
// Pod's IP is this machine's first non-loopback IPv4 address).
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import { load } from 'js-yaml';
import { expect, inject } from 'vitest';

import { kubectl } from './cluster.js';

/** A kubeconfig in `directory` that authenticates with `token` alone, trusting this run's cluster CA. */
export function tokenKubeconfig(token: string, directory: string): string {
  const admin = load(readFileSync(inject('kubeconfigPath'), 'utf8')) as { clusters: { cluster: { 'certificate-authority-data': string } }[] };
  const file = path.join(directory, `kubeconfig-${randomBytes(3).toString('hex')}`);
  writeFileSync(file, JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server: inject('apiserverUrl'), 'certificate-authority-data': admin.clusters[0]?.cluster['certificate-authority-data'] } }],
    users: [{ name: 'user', user: { token } }],
    contexts: [{ name: 'user', context: { cluster: 'test', user: 'user' } }],
    'current-context': 'user',
  }), { mode: 0o600 });
  return file;
}

/** A Running Pod named `agent` in `namespace` on `nodeName`, labelled as the chart labels the agents, whose IP and port are this agent's. */
export async function standInAgentPod(namespace: string, nodeName: string, port: number): Promise<void> {
  const address = Object.values(networkInterfaces()).flat().find((entry) => entry?.family === 'IPv4' && !entry.internal)?.address;
  expect(address, 'a non-loopback IPv4 address for the pod proxy').toBeDefined();
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'agent', namespace, labels: { 'app.kubernetes.io/name': 'parafork' } }, spec: { nodeName, containers: [{ name: 'agent', image: 'parafork', ports: [{ name: 'http', containerPort: port }] }] } };
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify(pod) });
  await kubectl(['patch', 'pod', 'agent', '--namespace', namespace, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { phase: 'Running', podIP: address, podIPs: [{ ip: address }] } })]);
}

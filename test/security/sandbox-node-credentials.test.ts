// Credentials a Kubernetes node keeps outside /run, /var/lib/kubelet and /etc/kubernetes, where the
// default mask list did not reach (red team, session 10):
// - /etc/cni: CNI plugins' own kubeconfigs with a service-account token (Calico's
//   calico-kubeconfig, Multus' multus.kubeconfig) and etcd TLS keys (Calico's calico-tls), written
//   world-readable by their installers for years (projectcalico/cni-plugin#459, #481);
// - /etc/containerd: config.toml may carry registry credentials in plain text (the CRI plugin's
//   registry.configs.<host>.auth), and the packages install it 0644;
// - /etc/pki/tls/private: RHEL's and Fedora's place for TLS private keys (Debian's /etc/ssl/private
//   was masked already);
// - /srv/kubernetes: kube-up's and kops' known_tokens.csv, basic_auth.csv and server keys;
// - /var/lib/k0s and /var/snap/microk8s: k0s' and MicroK8s' state and credentials (k3s'
//   /var/lib/rancher was masked already).
// A default Task runs as a uid of its own with no groups, so only files readable by others leak;
// those that are leak to every Task unless masked.
//
// This machine has none of them, and the test writes nothing outside its temp directory: the Task
// gets a root of its own (sandbox.rootfs) built in a temp directory, with the node's /usr bound in
// read-only for its shell, and marker files at those places, world-readable; the default masks
// apply to a root of a Task's own as to the agent's. Needs root (the sandbox).
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher } from '../../src/index.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { runSandboxed } from './sandbox-helpers.js';

const skip = missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root)', runningAsRoot);

const marker = `parafork-node-credential-marker-${process.pid}`;

/** Where each node keeps them, as a path inside the Task's root. */
const credentialFiles = [
  '/etc/cni/net.d/calico-kubeconfig',
  '/etc/cni/net.d/calico-tls/etcd-key',
  '/etc/containerd/config.toml',
  '/etc/pki/tls/private/node.key',
  '/srv/kubernetes/known_tokens.csv',
  '/var/lib/k0s/pki/admin.conf',
  '/var/snap/microk8s/current/credentials/client.config',
  // Masked before: shows that the masks apply to this root at all.
  '/var/lib/kubelet/config.json',
];

describe.skipIf(skip !== undefined)(`a node's credentials outside /run and the kubelet's directory${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;
  let scratch: string;
  let root: string;

  beforeAll(() => {
    launcher = new Launcher();
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-node-credentials-'));
    root = path.join(scratch, 'root');
    for (const directory of ['usr', 'proc', 'dev', 'tmp']) mkdirSync(path.join(root, directory), { recursive: true });
    // The merged /usr of Debian and Fedora: the shell and its libraries through these links.
    for (const link of ['bin', 'lib', 'lib64', 'sbin']) symlinkSync(`usr/${link}`, path.join(root, link));
    for (const file of credentialFiles) {
      mkdirSync(path.join(root, path.dirname(file)), { recursive: true, mode: 0o755 });
      writeFileSync(path.join(root, file), `${marker} ${file}\n`, { mode: 0o644 });
    }
  });

  afterAll(async () => {
    await launcher.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('are masked: a default Task reads none of them, whatever their mode', async () => {
    const script = `for file in ${credentialFiles.join(' ')}; do cat "$file" 2>/dev/null; done; echo done`;
    const run = await runSandboxed(launcher, '/bin/sh', ['-c', script], { rootfs: root, mounts: [{ hostPath: '/usr', mountPath: '/usr' }] });
    expect(run.stdout.trim().split('\n').at(-1)).toBe('done');
    expect(run.stdout).not.toContain(marker);
  });
});

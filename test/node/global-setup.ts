// Vitest globalSetup of the `node` project (npm run test:node): the agent image built without
// Docker (scripts/build-image.sh), a one-node cluster with a real kubelet and containerd
// (scripts/dev-cluster.sh up --node) and that image imported into its containerd, for the files
// in test/node/ to install the chart on. The control plane part is the integration project's
// setup (test/integration/global-setup.ts); helpers/cluster.ts and helpers/helm.ts work as there.
//
// The node needs root (containerd, runc, a bridge, cgroups). Without root the setup starts
// nothing and tells the tests why (nodeUnavailable), so they skip with that reason; under CI a
// missing requirement fails the run instead (helpers/requirements.ts).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

import { describeFailure, readEnvFile, runCommand, setupCluster } from '../integration/global-setup.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Why the node cluster is not there (the tests skip with it), or '' when it is. */
    nodeUnavailable: string;
    /** The node's name, address and the kubelet's cgroup root (KEY=VALUE lines of node.env). */
    nodeEnv: Record<string, string>;
    /** The agent image as containerd names it (docker.io/library/parafork:TAG). */
    agentImage: string;
    /** The OCI archive of that image, for tests that import it under another tag. */
    agentImageArchive: string;
    /** The agent image with Debian's python3 added (scripts/build-image.sh agent-python), for test/security's payloads in a Pod. */
    agentPythonImage: string;
    /** Where containerd, ctr, crictl and runc are. */
    nodeBinDir: string;
  }
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** npm ci twice and the native build, or mmdebstrap cold: minutes, not seconds. */
const imageBuildTimeoutMs = 30 * 60_000;
const importTimeoutMs = 5 * 60_000;
export const agentImage = 'docker.io/library/parafork:e2e';
export const agentPythonImage = 'docker.io/library/parafork-python:e2e';

function log(message: string): void {
  process.stderr.write(`[node] ${message}\n`);
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const unavailable = missingRequirement('the node cluster needs root (containerd, runc, a bridge, cgroups)', runningAsRoot);
  if (unavailable !== undefined) {
    project.provide('nodeUnavailable', unavailable);
    project.provide('nodeEnv', {});
    project.provide('agentImage', agentImage);
    project.provide('agentImageArchive', '');
    project.provide('agentPythonImage', agentPythonImage);
    project.provide('nodeBinDir', '');
    return () => Promise.resolve();
  }
  let archive = '';
  let pythonArchive = '';
  let nodeEnv: Record<string, string> = {};
  const teardownCluster = await setupCluster(project, {
    runDirPrefix: 'parafork-node-',
    upArguments: ['--node'],
    log,
    beforeUp: async (runDir) => {
      const started = performance.now();
      archive = path.join(runDir, 'agent-image.tar');
      pythonArchive = path.join(runDir, 'agent-python-image.tar');
      // The second one reuses the first one's agent layer.
      for (const [kind, output, name] of [['agent', archive, agentImage], ['agent-python', pythonArchive, agentPythonImage]] as const) {
        const build = await runCommand(path.join(repoRoot, 'scripts/build-image.sh'), [kind, output, name], {
          timeoutMs: imageBuildTimeoutMs,
          echoStderr: true,
        });
        if (build.status !== 0) throw new Error(describeFailure(`scripts/build-image.sh ${kind}`, build));
      }
      log(`agent images built in ${((performance.now() - started) / 1000).toFixed(1)}s`);
    },
    afterUp: async ({ stateDir }) => {
      const nodeEnvFile = path.join(stateDir, 'node.env');
      if (!existsSync(nodeEnvFile)) throw new Error(`scripts/dev-cluster.sh up --node wrote no ${nodeEnvFile}`);
      const binDir = readFileSync(path.join(stateDir, 'node-bin-dir'), 'utf8').trim();
      for (const file of [archive, pythonArchive]) {
        const imported = await runCommand(
          path.join(binDir, 'ctr'),
          ['--address', path.join(stateDir, 'containerd/containerd.sock'), '--namespace', 'k8s.io', 'images', 'import', file],
          { timeoutMs: importTimeoutMs },
        );
        if (imported.status !== 0) throw new Error(describeFailure(`ctr images import ${path.basename(file)}`, imported));
      }
      nodeEnv = Object.fromEntries(readEnvFile(nodeEnvFile));
      project.provide('nodeUnavailable', '');
      project.provide('nodeEnv', nodeEnv);
      project.provide('agentImage', agentImage);
      project.provide('agentImageArchive', archive);
      project.provide('agentPythonImage', agentPythonImage);
      project.provide('nodeBinDir', binDir);
    },
  });
  // `down` must leave nothing of the node on the machine: its bridge, its cgroups, its mounts.
  return async () => {
    await teardownCluster();
    const leftovers: string[] = [];
    if (nodeEnv.NODE_BRIDGE !== undefined && existsSync(`/sys/class/net/${nodeEnv.NODE_BRIDGE}`)) leftovers.push(`bridge ${nodeEnv.NODE_BRIDGE}`);
    for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const [, mountPoint = '', type = ''] = line.split(' ');
      if ((type === 'cgroup' || type === 'cgroup2') && nodeEnv.CGROUP_ROOT !== undefined && existsSync(path.join(mountPoint, nodeEnv.CGROUP_ROOT))) {
        leftovers.push(`cgroup ${path.join(mountPoint, nodeEnv.CGROUP_ROOT)}`);
      }
      if (mountPoint.includes('/parafork-node-')) leftovers.push(`mount ${mountPoint}`);
    }
    if (leftovers.length > 0) throw new Error(`scripts/dev-cluster.sh down left on the machine: ${leftovers.join(', ')}`);
    log('the node left nothing behind (bridge, cgroups, mounts)');
  };
}

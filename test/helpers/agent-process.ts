// Runs `parafork agent` (the built CLI in dist/) as a child process against the integration
// run's apiserver, and stops it the way a kubelet would: SIGTERM, or kill -9 for crash tests.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';

import { cgroupParentArgument, removeTestCgroupGroup } from './cgroup-group.js';
import { waitFor } from './cluster.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(repoRoot, 'dist', 'cli', 'main.js');

export interface AgentProcess {
  readonly nodeName: string;
  readonly process: ChildProcess;
  /** The agent's cgroup group (--cgroup-parent). */
  readonly cgroupGroup: string;
  /** Everything the agent logged so far (JSON lines). */
  logs(): string;
  /** SIGTERM, then waits for the exit and removes the agent's group if it left one; returns the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, as a crash; waits for the exit. The group and its Tasks stay for the next agent of the node. */
  crash(): Promise<void>;
}

/**
 * The cgroup group of this test process's agents for a node: one per node name, so that an agent
 * started again for the node takes over (and sweeps) what the one before left, and unique to this
 * process, so that agents of another test run on the machine never meet it.
 */
export function agentCgroupGroup(nodeName: string): string {
  return `parafork-test-${nodeName}-${process.pid}`;
}

/**
 * The node-local state (launch journal, Task logs) of this test process's agents, as their cgroup
 * group: of this process alone, so that a test run of the same file elsewhere on the machine (a
 * second checkout, a CI run) never meets it (the agent refuses a second agent of a node name on
 * one state dir); the same for every agent of the process, so one started again for a node finds
 * what its predecessor left. Inside the run's folder, removed with it.
 */
export function agentStateDirectory(): string {
  return path.join(inject('clusterStateDir'), `agent-state-${process.pid}`);
}

/**
 * Starts an agent for `nodeName`. Unless `extraArgs` set --sandbox-policy, the agent runs Tasks of
 * unlabelled namespaces at privileged: the agent's tests watch Tasks write marker files into
 * writable host folders (test/integration/sandbox-policy.test.ts tests the levels themselves).
 */
export async function startAgent(nodeName: string, extraArgs: readonly string[] = []): Promise<AgentProcess> {
  const cgroupGroup = cgroupParentArgument(extraArgs) ?? agentCgroupGroup(nodeName);
  const policy = extraArgs.some((argument) => argument.startsWith('--sandbox-policy')) ? [] : ['--sandbox-policy', 'privileged'];
  const stateDirectory = extraArgs.some((argument) => argument.startsWith('--state-dir')) ? [] : ['--state-dir', agentStateDirectory()];
  const child = spawn(
    process.execPath,
    [cli, 'agent', '--node-name', nodeName, '--kubeconfig', inject('kubeconfigPath'), '--port', '0', '--termination-grace-seconds', '2', ...(cgroupParentArgument(extraArgs) === undefined ? ['--cgroup-parent', cgroupGroup] : []), ...policy, ...stateDirectory, ...extraArgs],
    // A session of its own (setsid): the agent raises its session's autogroup (thread-priority.ts),
    // and one the tests SIGKILL cannot put it back; the tests' own session keeps its priority.
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`the agent exited with ${child.exitCode}: ${output}`);
      return output.includes('"msg":"agent ready"') ? true : undefined;
    },
    { description: `agent ${nodeName} to be ready`, timeoutMs: 30_000 },
  );
  return {
    nodeName,
    process: child,
    cgroupGroup,
    logs: () => output,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      const code = await exited;
      removeTestCgroupGroup(cgroupGroup); // refused, and left alone, while another agent of the node holds it
      return code;
    },
    crash: async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

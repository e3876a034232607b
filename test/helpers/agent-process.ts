// Runs `parafork agent` (the built CLI in dist/) as a child process against the integration
// run's apiserver, and stops it the way a kubelet would: SIGTERM, or kill -9 for crash tests.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';

import { waitFor } from './cluster.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(repoRoot, 'dist', 'cli', 'main.js');

export interface AgentProcess {
  readonly nodeName: string;
  readonly process: ChildProcess;
  /** Everything the agent logged so far (JSON lines). */
  logs(): string;
  /** SIGTERM, then waits for the exit; returns the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, as a crash; waits for the exit. */
  crash(): Promise<void>;
}

export async function startAgent(nodeName: string, extraArgs: readonly string[] = []): Promise<AgentProcess> {
  const child = spawn(
    process.execPath,
    // Each test agent gets its own cgroup group: an agent sweeps its group of leftovers at start.
    [cli, 'agent', '--node-name', nodeName, '--kubeconfig', inject('kubeconfigPath'), '--port', '0', '--termination-grace-seconds', '2', '--cgroup-parent', `parafork-test-${nodeName}`, ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'] },
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
    logs: () => output,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
    crash: async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

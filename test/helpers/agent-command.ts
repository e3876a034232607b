// Starts `parafork agent` from any command line: the built CLI with a kubeconfig of its own (a
// ServiceAccount's token, say), or an image's entrypoint in an assembled runtime tree. Where
// helpers/agent-process.ts always runs dist/cli/main.js as the cluster admin, this runs what it is
// given and waits, as a kubelet's readiness probe would, for /readyz to answer 200. Each agent
// gets a cgroup group of its own (test/helpers/cgroup-group.ts) unless its arguments name one.
import { spawn, type ChildProcess } from 'node:child_process';

import { cgroupParentArgument, removeTestCgroupGroup, uniqueTestCgroupGroup } from './cgroup-group.js';
import { waitFor } from './cluster.js';

export interface AgentCommand {
  /** The program, e.g. process.execPath or 'parafork' (looked up in env.PATH). */
  readonly file: string;
  /** The agent's arguments; without --cgroup-parent, one naming a group of its own is added. */
  readonly args: readonly string[];
  /** The whole environment of the agent. */
  readonly env: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

export interface RunningAgentCommand {
  readonly process: ChildProcess;
  /** The port of /healthz, /readyz (and /metrics), from the agent's "agent ready" log line. */
  readonly port: number;
  /** Everything the agent wrote to stdout and stderr so far (JSON log lines). */
  logs(): string;
  /** The agent's cgroup group (--cgroup-parent). */
  readonly cgroupGroup: string;
  /** SIGTERM, then waits for the exit and removes the agent's group if it left one; returns the exit code. */
  stop(): Promise<number | null>;
}

const readyLine = /\{[^\n]*"msg":"agent ready"[^\n]*\}/;

async function readyzStatus(port: number): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2_000) });
  return response.status;
}

/** Starts the command and resolves once it logged "agent ready" and its /readyz answers 200. */
export async function startAgentCommand(command: AgentCommand, timeoutMs = 30_000): Promise<RunningAgentCommand> {
  const asked = cgroupParentArgument(command.args);
  const cgroupGroup = asked ?? uniqueTestCgroupGroup('agent');
  const args = asked === undefined ? [...command.args, '--cgroup-parent', cgroupGroup] : [...command.args];
  const child = spawn(command.file, args, {
    env: command.env,
    ...(command.cwd === undefined ? {} : { cwd: command.cwd }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let spawnError: Error | undefined;
  child.on('error', (error) => (spawnError = error));
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null && spawnError === undefined) child.kill('SIGTERM');
    const code = spawnError === undefined ? await exited : null;
    // A group the test named is the test's to keep (another agent may be meant to take it over).
    if (asked === undefined) removeTestCgroupGroup(cgroupGroup);
    return code;
  };
  try {
    const port = await waitFor(
      () => {
        if (spawnError) throw new Error(`${command.file} could not start: ${spawnError.message}`);
        if (child.exitCode !== null) throw new Error(`the agent exited with ${child.exitCode}: ${output}`);
        const line = readyLine.exec(output)?.[0];
        return line === undefined ? undefined : (JSON.parse(line) as { port: number }).port;
      },
      { description: `${command.file} ${args.join(' ')} to log "agent ready"`, timeoutMs },
    );
    await waitFor(async () => ((await readyzStatus(port)) === 200 ? true : undefined), { description: `/readyz on port ${port} to answer 200` });
    return { process: child, port, cgroupGroup, logs: () => output, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

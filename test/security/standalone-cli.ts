// Runs the built `parafork` CLI (dist/cli/main.js, no cluster) as an operator would, with a time
// bound: a hostile manifest must not be able to hang the test run. Build first (npm run build).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { Task } from '../../src/api/task.js';
import { removeTestCgroupGroup } from '../helpers/cgroup-group.js';
import { waitFor } from '../helpers/wait-for.js';

export const cli = path.resolve('dist/cli/main.js');

export interface CliRun {
  /** The exit code, or null when the process was killed (see timedOut). */
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** True when it was still running after the time bound and was killed. */
  readonly timedOut: boolean;
  readonly elapsedMs: number;
}

/**
 * Runs `parafork ...args`; SIGKILLs it after `timeoutMs`. Output past 1 MiB is cut (a runaway cannot
 * fill the test's memory). `onStarted` gets the process's pid (a run's cgroup group carries it).
 */
export async function parafork(args: readonly string[], timeoutMs = 60_000, onStarted?: (pid: number) => void): Promise<CliRun> {
  const started = performance.now();
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid !== undefined) onStarted?.(child.pid);
  let stdout = '';
  let stderr = '';
  const keep = (text: string, chunk: Buffer): string => (text.length < 1 << 20 ? text + chunk.toString('utf8') : text);
  child.stdout.on('data', (chunk: Buffer) => (stdout = keep(stdout, chunk)));
  child.stderr.on('data', (chunk: Buffer) => (stderr = keep(stderr, chunk)));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const status = await new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  clearTimeout(timer);
  return { status, stdout, stderr, timedOut, elapsedMs: performance.now() - started };
}

/** A Task manifest (JSON is YAML) named `name` with this spec. */
export function writeTask(directory: string, name: string, spec: Record<string, unknown>): string {
  const file = path.join(directory, `${name}.yaml`);
  writeFileSync(file, JSON.stringify({ apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name }, spec }));
  return file;
}

/** The Tasks of `parafork run -o json`, by name. */
export function tasksOf(run: CliRun): Map<string, Task> {
  let list: { items: Task[] };
  try {
    list = JSON.parse(run.stdout) as { items: Task[] };
  } catch {
    throw new Error(`parafork run printed no JSON list (exit ${run.status}): ${run.stderr.slice(0, 2000)}`);
  }
  return new Map(list.items.map((task) => [task.metadata.name ?? '', task]));
}

export interface ManifestAgent {
  /** http://127.0.0.1:PORT of its /healthz, /tasks, ... */
  readonly base: string;
  /** Everything it logged so far (JSON lines). */
  logs(): string;
  /** Its Tasks now, by name (GET /tasks). */
  tasks(): Promise<Map<string, Task>>;
  /** SIGTERM (it removes its cgroups), SIGKILL after 10 s, then whatever is left of its group and its state folder removed. */
  stop(): Promise<void>;
}

/**
 * Starts `parafork agent --manifests folder` with a cgroup group and state folder of its own; resolves once it is ready,
 * and rejects at once, with what it printed, if it exits before.
 * `limits.openFiles`: its RLIMIT_NOFILE (soft and hard), set by prlimit(1) before it starts.
 */
export async function startManifestAgent(folder: string, flags: readonly string[] = [], limits: { readonly openFiles?: number } = {}): Promise<ManifestAgent> {
  const state = mkdtempSync(path.join(tmpdir(), 'parafork-agent-state-'));
  const group = `parafork-test-agent-${process.pid}-${path.basename(state)}`;
  const args = ['agent', '--manifests', folder, '--port', '0', '--listen-address', '127.0.0.1', '--cgroup-parent', group, '--state-dir', state, '--shutdown-grace-seconds', '1', ...flags];
  const command = [process.execPath, cli, ...args];
  if (limits.openFiles !== undefined) command.unshift('/usr/bin/prlimit', `--nofile=${limits.openFiles}:${limits.openFiles}`, '--');
  const agent = spawn(command[0] ?? process.execPath, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  agent.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  agent.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise((resolve) => agent.once('exit', resolve));
  const stop = async (): Promise<void> => {
    if (agent.exitCode === null && agent.signalCode === null) {
      agent.kill('SIGTERM');
      const killer = setTimeout(() => agent.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    }
    // What an agent that had to be killed (or never got ready) left in its group.
    removeTestCgroupGroup(group);
    rmSync(state, { recursive: true, force: true });
  };
  try {
    const port = await waitFor(() => (agent.exitCode !== null || agent.signalCode !== null ? null : /"port":(\d+)[^\n]*"msg":"agent ready"/.exec(output)?.[1]), { timeoutMs: 20_000, description: 'the agent to say it is ready' });
    if (port === null) throw new Error(`the agent exited (${agent.exitCode ?? agent.signalCode}) before it was ready: ${output.slice(-2000)}`);
    const base = `http://127.0.0.1:${port}`;
    const tasks = async (): Promise<Map<string, Task>> => {
      const list = (await (await fetch(`${base}/tasks`)).json()) as { items: Task[] };
      return new Map(list.items.map((task) => [task.metadata.name ?? '', task]));
    };
    return { base, logs: () => output, tasks, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

// Issue 12, finding 12: two agents, one cgroup group. An agent sweeps its cgroup group of leftover
// task cgroups when it starts (their processes belong to an earlier life of the agent); a second
// agent on the same group took the first one's running Tasks for leftovers and SIGKILLed them. A
// group is owned now: flock(2) on its directory, held for the owner's life. A second agent on it
// refuses to start, and `parafork run` and `agent --manifests` without --cgroup-parent take a
// group of their own per run, so that several instances can share a machine.
//
// Runs the built CLI as a user would, with Task manifests in a temp folder; needs root (the
// sandbox) and a writable cgroup hierarchy. Every group name is unique to this test run.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { removeTestCgroupGroup } from '../helpers/cgroup-group.js';
import { cgroup2Root, missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { waitFor } from '../helpers/wait-for.js';

const cli = path.resolve('dist/cli/main.js');
const skip = missingRequirement('agents sandbox their Tasks in cgroups, which needs root and a writable cgroup2 hierarchy', runningAsRoot && cgroup2Root() !== undefined);

interface StartedAgent {
  readonly process: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

const started: StartedAgent[] = [];

function startCli(args: readonly string[]): StartedAgent {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const agent = { process: child, output: () => output, exited: new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code))) };
  started.push(agent);
  return agent;
}

function manifestAgentArguments(folder: string, group: string | undefined): string[] {
  return ['agent', '--manifests', folder, '--port', '0', '--listen-address', '127.0.0.1', '--shutdown-grace-seconds', '1', '--termination-grace-seconds', '1', ...(group === undefined ? [] : ['--cgroup-parent', group])];
}

function sleeperFolder(name: string): string {
  const folder = mkdtempSync(path.join(tmpdir(), 'parafork-owned-group-'));
  writeFileSync(path.join(folder, `${name}.yaml`), `apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: ${name}}\nspec: {command: ["sleep", "300"]}\n`);
  return folder;
}

/** The pid of a Task's process once the agent logs it running. */
async function runningTaskPid(agent: StartedAgent, name: string): Promise<number> {
  const pattern = new RegExp(`"task":"default/${name}","attempt":1,"pid":(\\d+)`);
  return Number(await waitFor(() => {
    if (agent.process.exitCode !== null) throw new Error(`the agent exited with ${agent.process.exitCode}: ${agent.output()}`);
    return pattern.exec(agent.output())?.[1];
  }, { timeoutMs: 20_000, description: `${name} to be running` }));
}

/** The exit code and stderr of a CLI run that should end by itself; killed (code null) if not within `timeoutMs`. */
async function runToExit(args: readonly string[], timeoutMs: number): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
  clearTimeout(timer);
  return { code, stderr };
}

describe.skipIf(skip !== undefined)(`a cgroup group has one owner${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const folders: string[] = [];

  beforeAll(() => {
    // The default group of `agent --manifests` on older code: this test must not sweep another's.
    expect(existsSync(path.join(cgroup2Root() ?? '', 'parafork')) && readdirSync(path.join(cgroup2Root() ?? '', 'parafork'), { withFileTypes: true }).some((entry) => entry.isDirectory())).toBe(false);
  });

  afterEach(async () => {
    for (const agent of started.splice(0)) {
      if (agent.process.exitCode === null && agent.process.signalCode === null) agent.process.kill('SIGTERM');
      await agent.exited;
    }
  });

  afterAll(() => {
    for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  });

  /** A manifest agent on `group` (undefined: its default) running one `sleep 300` Task, and that Task's pid. */
  async function agentWithSleeper(group: string | undefined, task: string): Promise<{ agent: StartedAgent; pid: number }> {
    const folder = sleeperFolder(task);
    folders.push(folder);
    const agent = startCli(manifestAgentArguments(folder, group));
    return { agent, pid: await runningTaskPid(agent, task) };
  }

  function emptyFolder(): string {
    const folder = mkdtempSync(path.join(tmpdir(), 'parafork-owned-group-'));
    folders.push(folder);
    return folder;
  }

  it('refuses a second agent on the group of a running one with a one-line error naming the owner, and leaves its Tasks running', async () => {
    const group = `parafork-test-owned-${process.pid}`;
    const { agent: first, pid } = await agentWithSleeper(group, 'sleeper');
    const second = await runToExit(manifestAgentArguments(emptyFolder(), group), 15_000);

    // The first agent's Task was not swept as a leftover: its process is still there.
    expect(existsSync(`/proc/${pid}`)).toBe(true);
    expect(first.process.exitCode).toBeNull();
    expect(second.code).not.toBeNull(); // it ended by itself, not at the timeout
    expect(second.code).not.toBe(0);
    expect(second.stderr.trim().split('\n')).toHaveLength(1);
    expect(second.stderr).toContain(group);
    expect(second.stderr).toContain(`pid ${first.process.pid}`);
    expect(second.stderr).toContain('agent --manifests');
  });

  // Red team, session 16: the lock kept two agents off one group, not off groups nested in each
  // other (`--cgroup-parent G` beside `--cgroup-parent G/inner`): the outer agent took the inner
  // one's group for a leftover task cgroup at its start and killed its Tasks (cgroup.kill ends a
  // v2 cgroup's whole subtree), and the inner one made its group inside the outer's. Each now
  // refuses to start while the other runs, naming it.
  it('refuses an agent whose group holds a running agent\'s, or lies inside it, and leaves that agent\'s Tasks running', async () => {
    const outer = `parafork-test-nesting-${process.pid}`;
    const inner = `${outer}/inner`;
    try {
      const { agent: innerAgent, pid: innerTask } = await agentWithSleeper(inner, 'nested');
      const outerRun = await runToExit(manifestAgentArguments(emptyFolder(), outer), 15_000);
      expect(existsSync(`/proc/${innerTask}`), 'the outer agent swept the inner agent\'s Task as a leftover').toBe(true);
      expect(outerRun.code).toBe(1);
      expect(outerRun.stderr).toContain(`holds ${inner}, the cgroup group of another running parafork, pid ${innerAgent.process.pid}`);
      innerAgent.process.kill('SIGTERM');
      await innerAgent.exited;

      const { agent: outerAgent, pid: outerTask } = await agentWithSleeper(outer, 'outer');
      const innerRun = await runToExit(manifestAgentArguments(emptyFolder(), inner), 15_000);
      expect(existsSync(`/proc/${outerTask}`)).toBe(true);
      expect(innerRun.code).toBe(1);
      expect(innerRun.stderr).toContain(`lies inside ${outer}, the cgroup group of another running parafork, pid ${outerAgent.process.pid}`);
    } finally {
      for (const agent of started.splice(0)) {
        if (agent.process.exitCode === null && agent.process.signalCode === null) agent.process.kill('SIGTERM');
        await agent.exited;
      }
      removeTestCgroupGroup(inner);
      removeTestCgroupGroup(outer);
    }
  });

  // The check above must not take a leftover for an owner: a Task's process that holds a lock on
  // its own task cgroup (a privileged Task sees the cgroupfs, read-only, and may flock it) would
  // otherwise keep the agent from starting after a crash, and only that start's sweep ends it.
  it('takes a group whose leftover task cgroup is held locked by a process inside it, and ends that process', async () => {
    const group = `parafork-test-held-leftover-${process.pid}`;
    const leftover = path.join(cgroup2Root() ?? '', group, 'leftover-task');
    mkdirSync(leftover, { recursive: true });
    const holder = spawn('/bin/sh', ['-c', `echo $$ > ${leftover}/cgroup.procs && exec flock ${leftover} sleep 300`], { stdio: 'ignore' });
    const holderExited = new Promise((resolve) => holder.once('exit', resolve));
    try {
      await waitFor(() => (readFileSync('/proc/locks', 'utf8').includes(` ${holder.pid} `) ? true : undefined), { timeoutMs: 5_000, description: 'the process in the leftover cgroup to hold its lock' });
      const next = startCli(manifestAgentArguments(emptyFolder(), group));
      await waitFor(() => {
        if (next.process.exitCode !== null) throw new Error(`the agent exited with ${next.process.exitCode}: ${next.output()}`);
        return next.output().includes('"msg":"agent ready"') || undefined;
      }, { timeoutMs: 20_000, description: 'the agent to start' });
      await waitFor(() => holder.exitCode !== null || holder.signalCode !== null || undefined, { timeoutMs: 5_000, description: 'the leftover process to be ended' });
    } finally {
      // The holder and its sleep, wherever the sweep left them: only this test's processes are in there.
      if (existsSync(leftover)) writeFileSync(path.join(leftover, 'cgroup.kill'), '1');
      if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
      await holderExited;
      for (const agent of started.splice(0)) {
        if (agent.process.exitCode === null && agent.process.signalCode === null) agent.process.kill('SIGTERM');
        await agent.exited;
      }
      removeTestCgroupGroup(group);
    }
  });

  it('lets the next agent take the group of one killed with -9 (its Tasks hold no lock) and end the Tasks it left', async () => {
    const group = `parafork-test-crashed-${process.pid}`;
    const { agent: crashed, pid } = await agentWithSleeper(group, 'orphan');
    crashed.process.kill('SIGKILL');
    await crashed.exited;
    expect(existsSync(`/proc/${pid}`)).toBe(true); // the Task outlives its agent...

    const next = startCli(manifestAgentArguments(emptyFolder(), group));
    await waitFor(() => next.output().includes('"msg":"agent ready"') || undefined, { timeoutMs: 20_000, description: 'the next agent to start' });
    // ...until the group's next owner sweeps it as a leftover.
    await waitFor(() => !existsSync(`/proc/${pid}`) || undefined, { timeoutMs: 5_000, description: 'the orphaned Task to be ended' });
    expect(next.output()).toContain('ended the processes an earlier owner of the group left in task cgroups');
  });

  it('runs two manifest agents without --cgroup-parent side by side, each in a group of its own', async () => {
    const { pid: firstPid } = await agentWithSleeper(undefined, 'first');
    const { pid: secondPid } = await agentWithSleeper(undefined, 'second');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(existsSync(`/proc/${firstPid}`)).toBe(true);
    expect(existsSync(`/proc/${secondPid}`)).toBe(true);
    const groupOf = (pid: number): string => readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((line) => line.startsWith('0::'))?.split('/')[1] ?? '';
    expect(groupOf(firstPid)).toMatch(/^parafork-run-/);
    expect(groupOf(secondPid)).toMatch(/^parafork-run-/);
    expect(groupOf(firstPid)).not.toBe(groupOf(secondPid));
  });

  it('sweeps a per-run group whose owner is gone (its processes ended, the group removed) when the next run starts', async () => {
    const root = cgroup2Root() ?? '';
    const abandoned = path.join(root, `parafork-run-${process.pid}-dead`);
    const taskCgroup = path.join(abandoned, 'task-1');
    mkdirSync(taskCgroup, { recursive: true });
    const canary = spawn('sleep', ['300'], { stdio: 'ignore' });
    const canaryExited = new Promise((resolve) => canary.once('exit', resolve));
    try {
      writeFileSync(path.join(taskCgroup, 'cgroup.procs'), String(canary.pid));
      const hello = emptyFolder();
      writeFileSync(path.join(hello, 'hello.yaml'), 'apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: hello}\nspec: {command: ["true"]}\n');
      const run = await runToExit(['run', '-f', hello], 60_000);
      expect(run.code).toBe(0);
      await waitFor(() => canary.exitCode !== null || canary.signalCode !== null || undefined, { timeoutMs: 5_000, description: 'the abandoned group\'s process to be ended' });
      expect(existsSync(abandoned)).toBe(false);
    } finally {
      if (canary.exitCode === null && canary.signalCode === null) canary.kill('SIGKILL');
      await canaryExited;
      for (const directory of [taskCgroup, abandoned]) if (existsSync(directory)) rmdirSync(directory);
    }
  });
});

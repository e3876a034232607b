// `parafork agent --manifests DIR`: the agent without a cluster, following a folder of Task
// manifests as the kubelet follows static pods, serving /metrics and /tasks. Runs the built CLI as a
// user would. Needs root (the sandbox).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { waitFor } from '../helpers/wait-for.js';

const cli = path.resolve('dist/cli/main.js');
const skip = missingRequirement('the agent sandboxes its Tasks, which needs root', runningAsRoot);

interface ListedTask {
  metadata: { name: string; uid: string };
  status?: { phase?: string; exitCode?: number; reason?: string; attempts?: number; stderrTail?: string };
}

function taskManifest(name: string, command: string[]): string {
  return `apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: ${name}}\nspec: {command: ${JSON.stringify(command)}}\n`;
}

/** Writes a file whole in one step (write aside, rename), as a careful user or a ConfigMap does. */
function writeManifest(directory: string, file: string, text: string): void {
  const aside = path.join(directory, `.${file}.tmp`);
  writeFileSync(aside, text);
  renameSync(aside, path.join(directory, file));
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

describe.skipIf(skip !== undefined)(`parafork agent --manifests${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let folder: string;
  // Mounted into a Task that waits there for the test's gate file (an allowed host path).
  let gates: string;
  let agent: ChildProcess;
  let output = '';
  let base = '';

  async function tasks(): Promise<Map<string, ListedTask>> {
    const response = await fetch(`${base}/tasks`);
    const list = (await response.json()) as { kind: string; items: ListedTask[] };
    expect(list.kind).toBe('List');
    return new Map(list.items.map((task) => [task.metadata.name, task]));
  }

  async function phaseOf(name: string): Promise<string | undefined> {
    return (await tasks()).get(name)?.status?.phase;
  }

  beforeAll(async () => {
    folder = mkdtempSync(path.join(tmpdir(), 'parafork-manifests-'));
    gates = mkdtempSync(path.join(tmpdir(), 'parafork-manifests-gates-'));
    chmodSync(gates, 0o777); // Tasks run as uids of their own
    writeManifest(folder, 'hello.yaml', taskManifest('hello', ['sh', '-c', 'echo hi']));
    agent = spawn(process.execPath, [cli, 'agent', '--manifests', folder, '--port', '0', '--listen-address', '127.0.0.1', '--cgroup-parent', `parafork-test-manifests-${process.pid}`, '--shutdown-grace-seconds', '2', '--termination-grace-seconds', '1', '--allowed-host-paths', gates], { stdio: ['ignore', 'pipe', 'pipe'] });
    agent.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    agent.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const port = await waitFor(() => /"port":(\d+)[^\n]*"msg":"agent ready"/.exec(output)?.[1], { timeoutMs: 20_000, description: 'the agent to say it is ready' });
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    if (agent.exitCode === null) {
      agent.kill('SIGKILL');
      await new Promise((resolve) => agent.once('exit', resolve));
    }
    rmSync(folder, { recursive: true, force: true });
    rmSync(gates, { recursive: true, force: true });
  });

  it('runs the folder\'s Tasks, shows them at /tasks and counts them at /metrics', async () => {
    await waitFor(async () => (await phaseOf('hello')) === 'Succeeded' || undefined, { timeoutMs: 15_000, description: 'hello to succeed' });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^parafork_spawn_duration_seconds_count [1-9]/m);
    expect(metrics).toMatch(/^parafork_tasks_finished_total\{result="succeeded",reason="Completed"\} 1$/m);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });

  it('holds a Task bound to another node Pending, never running it, and says why', async () => {
    const marker = path.join(folder, 'held-ran');
    writeManifest(folder, 'held.yaml', `apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: held}\nspec: {nodeName: other-node, command: [touch, ${JSON.stringify(marker)}]}\n`);
    writeManifest(folder, 'after-held.yaml', taskManifest('after-held', ['true']));
    await waitFor(async () => (await phaseOf('after-held')) === 'Succeeded' || undefined, { timeoutMs: 15_000, description: 'after-held to succeed' });
    const held = (await tasks()).get('held');
    expect(held?.status).toMatchObject({ phase: 'Pending', reason: 'WaitingForAgent' });
    expect(existsSync(marker)).toBe(false);
    unlinkSync(path.join(folder, 'held.yaml'));
    unlinkSync(path.join(folder, 'after-held.yaml'));
  });

  it('sits idle once its Tasks are done (no reconcile loop on finished Tasks)', async () => {
    const before = cpuSeconds(agent.pid ?? 0);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(cpuSeconds(agent.pid ?? 0) - before).toBeLessThan(0.3);
  });

  it('reports an invalid manifest by file and field, keeps running, and runs the next good one', async () => {
    writeManifest(folder, 'bad.yaml', 'apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: bad}\nspec: {command: ["true"], backoffLimit: -1}\n');
    await waitFor(() => output.includes('bad.yaml#1 (Task bad): spec.backoffLimit: must be >= 0') || undefined, { timeoutMs: 10_000, description: 'the invalid manifest to be reported' });
    expect((await tasks()).has('bad')).toBe(false);
    writeManifest(folder, 'after.yaml', taskManifest('after', ['sh', '-c', 'exit 3']));
    await waitFor(async () => (await phaseOf('after')) === 'Failed' || undefined, { timeoutMs: 15_000, description: 'after to fail' });
    expect((await tasks()).get('after')?.status).toMatchObject({ exitCode: 3, reason: 'Error' });
    expect(agent.exitCode).toBeNull();
  });

  it('replaces a Task whose manifest changed: a new object, run again', async () => {
    const first = (await tasks()).get('hello');
    writeManifest(folder, 'hello.yaml', taskManifest('hello', ['sh', '-c', 'echo changed >&2; exit 5']));
    await waitFor(async () => {
      const task = (await tasks()).get('hello');
      return (task?.metadata.uid !== first?.metadata.uid && task?.status?.phase === 'Failed') || undefined;
    }, { timeoutMs: 15_000, description: 'hello to be replaced and run again' });
    expect((await tasks()).get('hello')?.status).toMatchObject({ exitCode: 5, stderrTail: 'changed\n', attempts: 1 });
  });

  it('keeps a Task\'s output for parafork logs, which -f follows live until the attempt ends', async () => {
    // talker writes two lines, then waits for the test's gate before its last: the follower shows
    // them while the attempt runs and the last once it is written. (A fixed sleep could end before
    // the test, polling on a loaded machine, saw the Task Running, or before the follower started.)
    const command = ['sh', '-c', 'echo first; echo oops >&2; while [ ! -e /mnt/go ]; do sleep 0.05; done; echo second'];
    writeManifest(folder, 'talker.yaml', `apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: talker}\nspec: {command: ${JSON.stringify(command)}, sandbox: {mounts: [{hostPath: ${JSON.stringify(gates)}, mountPath: /mnt}]}}\n`);
    await waitFor(async () => (await phaseOf('talker')) === 'Running' || undefined, { timeoutMs: 15_000, description: 'talker to run' });
    const follower = spawn(process.execPath, [cli, 'logs', 'talker', '-f'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let followed = '';
      let complaints = '';
      follower.stdout?.on('data', (chunk: Buffer) => (followed += chunk.toString()));
      follower.stderr?.on('data', (chunk: Buffer) => (complaints += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => follower.once('exit', (code) => resolve(code)));
      await waitFor(() => followed.includes('oops\n') || undefined, { timeoutMs: 15_000, description: `the follower to show the first two lines (so far ${JSON.stringify(followed)}, stderr ${JSON.stringify(complaints)})` });
      expect(followed).toBe('first\noops\n');
      writeFileSync(path.join(gates, 'go'), '');
      expect(await exited).toBe(0);
      expect(followed).toBe('first\noops\nsecond\n');
    } finally {
      if (follower.exitCode === null) follower.kill('SIGKILL');
      writeFileSync(path.join(gates, 'go'), '');
    }
    // A succeeding attempt's status does not wait for its log to be complete (task-launch.ts): the
    // follower can see the log's end before the agent records the exit.
    await waitFor(async () => (await phaseOf('talker')) === 'Succeeded' || undefined, { timeoutMs: 15_000, description: 'talker to succeed' });
    expect(spawnSync(process.execPath, [cli, 'logs', 'talker', '--stream', 'stderr'], { encoding: 'utf8' }).stdout).toBe('oops\n');
  });

  it('stops the process of a Task whose manifest was removed, and forgets the Task and its logs', async () => {
    writeManifest(folder, 'sleeper.yaml', taskManifest('sleeper', ['sh', '-c', 'echo sleeping; exec sleep 300']));
    await waitFor(async () => (await phaseOf('sleeper')) === 'Running' || undefined, { timeoutMs: 15_000, description: 'sleeper to run' });
    const uid = (await tasks()).get('sleeper')?.metadata.uid ?? '';
    // In the agent's own directory beside the cluster agents' (src/logs/instance-log-directory.ts).
    const root = '/run/parafork/logs';
    const own = readdirSync(root).find((entry) => entry.startsWith(`manifests_${agent.pid}_`)) ?? 'none';
    const logDirectory = path.join(root, own, `default_sleeper_${uid}`);
    await waitFor(() => existsSync(path.join(logDirectory, '1.log')) || undefined, { timeoutMs: 5_000, description: 'the sleeper\'s log' });
    const pid = Number(await waitFor(() => /"task":"default\/sleeper","attempt":1,"pid":(\d+)/.exec(output)?.[1], { timeoutMs: 5_000, description: 'the sleeper\'s pid in the log' }));
    expect(existsSync(`/proc/${pid}`)).toBe(true);
    unlinkSync(path.join(folder, 'sleeper.yaml'));
    await waitFor(async () => !(await tasks()).has('sleeper') || undefined, { timeoutMs: 15_000, description: 'sleeper to be deleted' });
    // The Task's init (pid) and the sleep under it are gone, not left running.
    await waitFor(() => !existsSync(`/proc/${pid}`) || undefined, { timeoutMs: 5_000, description: 'the sleeper process to end' });
    await waitFor(() => !existsSync(logDirectory) || undefined, { timeoutMs: 5_000, description: 'the sleeper\'s logs to go' });
  });

  it('drains and exits 0 on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => agent.once('exit', (code) => resolve(code)));
    const started = Date.now();
    agent.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(output).toContain('"msg":"agent stopped"');
  });

  it.each([
    [['--manifests', '/no/such/folder'], /--manifests "\/no\/such\/folder": no such directory/],
    [['--manifests', 'examples/hello.yaml'], /is not a directory/],
    [['--manifests', 'examples', '--kubeconfig', '/dev/null'], /--manifests and --kubeconfig cannot be used together/],
    [['--manifests', 'examples', '--watch-silence-seconds', '0'], /--watch-silence-seconds must be a whole number from 1 to 86400, got "0"/],
  ])('refuses agent %j with a one-line error and exit 2', (args, message) => {
    const result = spawnSync(process.execPath, [cli, 'agent', ...args], { encoding: 'utf8', timeout: 30_000 });
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
  });
});

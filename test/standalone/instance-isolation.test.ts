// More than one parafork may run on a machine: nothing one instance does may touch another's Task
// logs. Two `parafork run`s at once with Tasks of the same names each show and keep their own
// output, and neither's start-up sweep removes the other's; an `agent --manifests` starting beside
// another agent leaves that agent's logs alone. Runs the built CLI as a user would. Needs root (the sandbox).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { waitFor } from '../helpers/wait-for.js';

const cli = path.resolve('dist/cli/main.js');
const skip = missingRequirement('parafork sandboxes its Tasks, which needs root', runningAsRoot);
const runLogRoot = '/run/parafork/run-logs';

function parafork(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function taskManifest(name: string, script: string, extra = ''): string {
  return `apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: ${name}}\nspec:\n  command: [sh, -c, '${script}']\n${extra}`;
}

/** The log files below `root` (any layout) whose Task directory is `default_<name>_…` and that hold `text`. */
function logsHolding(root: string, name: string, text: string): string[] {
  let files: string[];
  try {
    files = readdirSync(root, { recursive: true, encoding: 'utf8' });
  } catch {
    return [];
  }
  return files
    .filter((file) => file.split(path.sep).some((part) => part.startsWith(`default_${name}_`)) && /\.log$/.test(file))
    .map((file) => path.join(root, file))
    .filter((file) => {
      try {
        return readFileSync(file, 'utf8').includes(text);
      } catch {
        return false;
      }
    });
}

describe.skipIf(skip !== undefined)(`parafork instances side by side${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  // Output no other run writes: other tests (and other people) may run Tasks of these names.
  const token = `${process.pid}-${Date.now()}`;
  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-isolation-'));
    chmodSync(scratch, 0o755);
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('two runs at once with Tasks of the same names each show and keep their own output; neither\'s start removes the other\'s logs', async () => {
    // Run A's first Task writes a line, then waits (up to 60 s) for a file the test makes once run B
    // has started and ended: B starts while A's Tasks have logs, and A writes again after B's sweep.
    const gate = path.join(scratch, 'gate');
    mkdirSync(gate, { mode: 0o755 });
    const waitForGate = 'i=0; while [ ! -e /mnt/open ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done';
    const mount = `  sandbox: {mounts: [{hostPath: ${gate}, mountPath: /mnt}]}\n`;
    const manifestA = path.join(scratch, 'a.yaml');
    writeFileSync(manifestA, [taskManifest('iso-same', `echo a-first-${token}; ${waitForGate}; echo a-second-${token}`, mount), taskManifest('iso-other', `echo a-other-${token}`)].join('---\n'));
    const manifestB = path.join(scratch, 'b.yaml');
    writeFileSync(manifestB, [taskManifest('iso-same', `echo b-first-${token}`), taskManifest('iso-other', `echo b-other-${token}`)].join('---\n'));

    const runA = spawn(process.execPath, [cli, 'run', '-f', manifestA, '-o', 'json', '--allowed-host-paths', scratch], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdoutA = '';
    let stderrA = '';
    runA.stdout.setEncoding('utf8').on('data', (text: string) => (stdoutA += text));
    runA.stderr.setEncoding('utf8').on('data', (text: string) => (stderrA += text));
    const endA = once(runA, 'close') as Promise<[number | null]>;
    try {
      await waitFor(() => (logsHolding(runLogRoot, 'iso-same', `a-first-${token}`).length > 0 && logsHolding(runLogRoot, 'iso-other', `a-other-${token}`).length > 0) || undefined, { timeoutMs: 60_000, description: `run A's Tasks to write their first lines (stderr: ${stderrA})` });

      // B: the same names, its own output, printed live after the names; A is still running.
      const runB = spawn(process.execPath, [cli, 'run', '-f', manifestB], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdoutB = '';
      runB.stdout.setEncoding('utf8').on('data', (text: string) => (stdoutB += text));
      const [statusB] = (await once(runB, 'close')) as [number | null];
      expect(statusB).toBe(0);
      expect(stdoutB).toContain(`iso-same  | b-first-${token}\n`);
      expect(stdoutB).toContain(`iso-other | b-other-${token}\n`);
      expect(stdoutB).not.toContain(`a-first-${token}`);
      writeFileSync(path.join(gate, 'open'), '');

      const [statusA] = await endA;
      expect(statusA, stderrA).toBe(0);
      // A's log files, as its -o json names them, hold all A's Tasks wrote, before and after B ran.
      const list = JSON.parse(stdoutA) as { items: { metadata: { name: string; annotations?: Record<string, string> } }[] };
      const filesOf = (name: string): string[] => list.items.find((task) => task.metadata.name === name)?.metadata.annotations?.['parafork.dev/log-files']?.split(',') ?? [];
      expect(filesOf('iso-same')).toHaveLength(1);
      expect(readFileSync(filesOf('iso-same')[0] ?? '', 'utf8')).toMatch(new RegExp(`^parafork-log 2\\n[^]*\\S+ stdout \\d+\\na-first-${token}\\n[^]*a-second-${token}\\n`));
      expect(readFileSync(filesOf('iso-other')[0] ?? '', 'utf8')).toMatch(new RegExp(`^parafork-log 2\\n\\S+ stdout \\d+\\na-other-${token}\\n`));
      // B's logs are still there after A ended: A's end removes nothing of B's.
      expect(logsHolding(runLogRoot, 'iso-same', `b-first-${token}`)).toHaveLength(1);
      expect(logsHolding(runLogRoot, 'iso-other', `b-other-${token}`)).toHaveLength(1);
    } finally {
      writeFileSync(path.join(gate, 'open'), '');
      if (runA.exitCode === null) runA.kill('SIGKILL');
      await endA;
    }
  }, 180_000);

  it('a later run of Tasks of the same names, once the earlier run has ended, replaces its logs (parafork logs shows the newest)', () => {
    const manifest = (word: string): string => {
      const file = path.join(scratch, `replace-${word}.yaml`);
      writeFileSync(file, taskManifest('iso-replaced', `echo ${word}-${token}`));
      return file;
    };
    expect(parafork('run', '-q', '-f', manifest('earlier')).status).toBe(0);
    expect(logsHolding(runLogRoot, 'iso-replaced', `earlier-${token}`)).toHaveLength(1);
    // Left straight in the folder by a parafork before per-run directories: one of the same name goes too, another stays.
    const legacy = (name: string): string => path.join(runLogRoot, `default_${name}_legacy-${token}`);
    for (const name of ['iso-replaced', 'iso-unrelated']) {
      mkdirSync(legacy(name));
      writeFileSync(path.join(legacy(name), '1.log'), '');
    }
    expect(parafork('run', '-q', '-f', manifest('later')).status).toBe(0);
    expect(logsHolding(runLogRoot, 'iso-replaced', `earlier-${token}`)).toHaveLength(0);
    expect(existsSync(legacy('iso-replaced'))).toBe(false);
    expect(existsSync(legacy('iso-unrelated'))).toBe(true);
    rmSync(legacy('iso-unrelated'), { recursive: true });
    expect(parafork('logs', 'iso-replaced', '--state-dir', scratch)).toMatchObject({ status: 0, stdout: `later-${token}\n` });
  }, 120_000);

  it('refuses a cluster agent, before it contacts any cluster, while another holds its node\'s logs and launch journal in the same --state-dir', async () => {
    // The holder stands in for a live agent of node iso-node (as one holds it: an flock on the directory).
    const state = path.join(scratch, 'node-state');
    const directory = path.join(state, 'logs', 'iso-node');
    mkdirSync(directory, { recursive: true });
    const holder = spawn('flock', ['-n', directory, 'sleep', '60'], { stdio: 'ignore' });
    try {
      await waitFor(() => readFileSync('/proc/locks', 'utf8').split('\n').some((line) => line.includes(` ${holder.pid} `)) || undefined, { timeoutMs: 10_000, description: 'the stand-in agent to hold the lock' });
      const refused = parafork('agent', '--state-dir', state, '--node-name', 'iso-node', '--port', '0', '--listen-address', '127.0.0.1');
      expect(refused.status).toBe(1);
      expect(refused.stderr).toBe(`parafork: another running agent keeps node iso-node's Task logs and launch journal in --state-dir ${state} (${directory}), pid ${holder.pid}: flock -n ${directory} sleep 60: each would sweep the other's logs as Tasks it does not know; give this one another --state-dir or --node-name, or stop that one first\n`);
    } finally {
      holder.kill('SIGKILL');
      await once(holder, 'exit').catch(() => undefined);
    }
  });

  it('an agent --manifests leaves the logs of a cluster agent on the same --state-dir and of another agent --manifests alone; one on a taken port is refused in one line', async () => {
    const state = path.join(scratch, 'state');
    // A cluster agent's Task log on this node, as it lays them out (src/logs/task-log-store.ts).
    const clusterLog = path.join(state, 'logs', hostname(), 'default_cluster-task_0b6f3c1e-4a2b-4c55-9d1e-2f0a5b7c8d9e', '1.log');
    mkdirSync(path.dirname(clusterLog), { recursive: true });
    writeFileSync(clusterLog, '2026-12-07T00:00:00.000000000Z stdout F from the cluster agent\n');
    const agents: ChildProcess[] = [];
    const outputs: string[] = [];
    const start = async (name: string): Promise<void> => {
      const folder = path.join(scratch, `folder-${name}`);
      mkdirSync(folder);
      writeFileSync(path.join(folder, '.task.tmp'), taskManifest(name, `echo ${name}-${token}`));
      renameSync(path.join(folder, '.task.tmp'), path.join(folder, 'task.yaml'));
      const agent = spawn(process.execPath, [cli, 'agent', '--manifests', folder, '--state-dir', state, '--port', '0', '--listen-address', '127.0.0.1', '--shutdown-grace-seconds', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
      agents.push(agent);
      const slot = outputs.push('') - 1;
      const collect = (chunk: Buffer): void => {
        outputs[slot] = `${outputs[slot] ?? ''}${chunk.toString()}`;
      };
      agent.stderr?.on('data', collect);
      agent.stdout?.on('data', collect);
      const output = (): string => outputs[slot] ?? '';
      await waitFor(() => /"msg":"agent ready"/.test(output()) || undefined, { timeoutMs: 30_000, description: `agent ${name} to be ready (${output()})` });
      await waitFor(() => parafork('logs', name, '--state-dir', state).stdout === `${name}-${token}\n` || undefined, { timeoutMs: 30_000, description: `${name}'s output in its log` });
    };
    try {
      await start('iso-manifest-one');
      await start('iso-manifest-two');
      // A third on the port the first listens on is refused in one line, and takes nothing of the others'.
      const port = /"port":(\d+)[^\n]*"msg":"agent ready"/.exec(outputs[0] ?? '')?.[1] ?? '';
      const busy = parafork('agent', '--manifests', path.join(scratch, 'folder-iso-manifest-one'), '--state-dir', state, '--port', port, '--listen-address', '127.0.0.1');
      expect(busy.status).toBe(1);
      expect(busy.stderr).toBe(`parafork: 127.0.0.1:${port} is in use, by another agent on this machine or another program: give this one another --port (0: any free port)\n`);
      // The second agent's start took nothing of the first's, nor of the cluster agent's.
      expect(parafork('logs', 'iso-manifest-one', '--state-dir', state)).toMatchObject({ status: 0, stdout: `iso-manifest-one-${token}\n` });
      expect(readFileSync(clusterLog, 'utf8')).toContain('from the cluster agent');
    } finally {
      for (const agent of agents) {
        if (agent.exitCode === null) {
          agent.kill('SIGTERM');
          await once(agent, 'exit');
        }
      }
    }
    // A third, once both have ended, removes their logs (each life's Tasks are new objects), not the cluster agent's.
    await start('iso-manifest-three');
    try {
      expect(parafork('logs', 'iso-manifest-one', '--state-dir', state).status).toBe(1);
      expect(readFileSync(clusterLog, 'utf8')).toContain('from the cluster agent');
    } finally {
      const third = agents.at(-1);
      if (third?.exitCode === null) {
        third.kill('SIGTERM');
        await once(third, 'exit');
      }
    }
  }, 180_000);
});

// `parafork run`: manifests in, Tasks run sandboxed on this machine, a report out, an exit code
// that says whether every Task succeeded. Runs the built CLI as a user would. Needs root (sandbox).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';

const cli = path.resolve('dist/cli/main.js');
// `parafork logs NAME` reads the newest Task of that name among every run on the machine, so a Task
// this file reads back carries this run's token: another checkout's tests running the same file at
// once (a shared machine) make Tasks of the same test but never of the same name.
const runToken = Math.random().toString(36).slice(2, 8);
const skip = missingRequirement('parafork run sandboxes its Tasks, which needs root', runningAsRoot);

function parafork(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Waits until a live run has made the log directory of its Task `name` (/run/parafork/run-logs/run_*\/default_<name>_*). */
async function waitForRunLogs(name: string): Promise<void> {
  const root = '/run/parafork/run-logs';
  for (let tries = 0; tries < 200; tries++) {
    // Other runs of the machine (other test files, at once) make and remove theirs meanwhile: one
    // listed may be gone by the time it is read (and the root is made by the first run).
    const entriesOf = (directory: string): string[] => {
      try {
        return readdirSync(directory);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw error;
      }
    };
    const runs = entriesOf(root).filter((entry) => entry.startsWith('run_'));
    if (runs.some((run) => entriesOf(path.join(root, run)).some((entry) => entry.startsWith(`default_${name}_`)))) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no log directory of ${name} in ${root} after 10 s`);
}

describe.skipIf(skip !== undefined)(`parafork run${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-run-'));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('runs the hello example and prints a kubectl-like table, then a line of totals; exit 0', () => {
    const result = parafork('run', '-f', 'examples/hello.yaml');
    expect(result.status).toBe(0);
    // Each Task's output comes first, then the table.
    expect(result.stdout).toMatch(/^NAME\s+PHASE\s+EXIT\s+ATTEMPTS\s+DURATION\s+REASON\n/m);
    expect(result.stdout).toMatch(/\bhello\s+Succeeded\s+0\s+1\s+\S+\s+Completed/);
    expect(result.stderr.trimEnd().split('\n').at(-1)).toMatch(/^1 Task in \d+\.\d s: 1 succeeded, 0 failed \| [\d.]+ Tasks\/s \| spawn p99 [\d.]+ ms$/);
  });

  it('summarises the 1,000-Task burst in a screenful (a row each with --wide), its totals last', () => {
    const summary = parafork('run', '-f', 'examples/burst-1000.yaml');
    expect(summary.status).toBe(0);
    expect(summary.stdout).toMatch(/^PHASE\s+REASON\s+TASKS\nSucceeded\s+Completed\s+1000\n\nSlowest:\n/);
    expect(summary.stdout.trimEnd().split('\n').length).toBeLessThanOrEqual(12);
    // Not a thousand Tasks' output: where it is kept.
    expect(summary.stderr).toContain('output is kept in /run/parafork/run-logs');
    expect(summary.stderr.trimEnd().split('\n').at(-1)).toMatch(/^1000 Tasks in [\d.]+ s: 1000 succeeded, 0 failed \|/);
    const wide = parafork('run', '-f', 'examples/burst-1000.yaml', '--wide');
    expect(wide.status).toBe(0);
    expect(wide.stdout.trimEnd().split('\n')).toHaveLength(1001);
  }, 120_000);

  it('runs the examples a machine can run alone to the outcomes their headers describe', () => {
    const examples = ['hello', 'failing', 'deadline', 'limits-memory', 'limits-pids'];
    const result = parafork('run', '-o', 'json', ...examples.flatMap((name) => ['-f', `examples/${name}.yaml`]));
    expect(result.status).toBe(1);
    const list = JSON.parse(result.stdout) as { items: { metadata: { name: string }; status: Record<string, unknown> }[] };
    const byName = Object.fromEntries(list.items.map((task) => [task.metadata.name, task.status]));
    expect(byName.hello).toMatchObject({ phase: 'Succeeded', exitCode: 0, reason: 'Completed' });
    expect(byName.failing).toMatchObject({ phase: 'Failed', exitCode: 3, attempts: 3, reason: 'BackoffLimitExceeded' });
    expect(byName.failing?.stderrTail).toContain('cannot open /data/input.csv');
    expect(byName.deadline).toMatchObject({ phase: 'Failed', reason: 'DeadlineExceeded', signal: 'SIGTERM' });
    expect(byName['limits-memory']).toMatchObject({ phase: 'Failed', reason: 'OOMKilled' });
    expect(byName['limits-pids']).toMatchObject({ phase: 'Failed', reason: 'Error' });
    expect(byName['limits-pids']?.stderrTail).toContain('Cannot fork');
  }, 120_000);

  it('prints each Task\'s output prefixed by its name, and keeps it for parafork logs', () => {
    const result = parafork('run', '-f', 'examples/hello.yaml');
    expect(result.stdout).toMatch(/^hello \| hello from parafork\nNAME /);
    // --state-dir: no agent's logs (another test's agent may run a `hello` of its own), only the run's.
    const logs = parafork('logs', 'hello', '--state-dir', scratch);
    expect(logs).toMatchObject({ status: 0, stdout: 'hello from parafork\n' });
    expect(parafork('logs', 'hello', '--timestamps', '--state-dir', scratch).stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z hello from parafork\n$/);
  });

  it('prints each line while its Task runs, in the order the Tasks wrote them, stderr marked with ! (each Task waits until the run has printed the other\'s line)', async () => {
    // The Tasks read a folder the test writes into (mounted read-only): `late` writes once the run
    // has printed `early`'s first line, `early` goes on once it has printed `late`'s. Printed
    // only after the run, the lines would never come: each Task would wait out its 30 s. At /mnt:
    // a mount point must exist in the root (the host's, read-only), as /mnt does on Debian and Ubuntu.
    const gate = path.join(scratch, 'gate');
    mkdirSync(gate, { recursive: true });
    chmodSync(scratch, 0o755);
    chmodSync(gate, 0o755);
    const waitFor = (file: string): string => `i=0; while [ ! -e /mnt/${file} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done`;
    const manifest = path.join(scratch, 'interleaved.yaml');
    writeFileSync(
      manifest,
      [
        ['early', `echo first; ${waitFor('late-printed')}; echo third`],
        ['late', `${waitFor('early-printed')}; echo second; echo warning >&2`],
      ]
        .map(([name, script]) => `apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: ${name}}\nspec:\n  command: [sh, -c, '${script}']\n  sandbox: {mounts: [{hostPath: ${gate}, mountPath: /mnt}]}\n`)
        .join('---\n'),
    );
    const run = spawn(process.execPath, [cli, 'run', '-f', manifest, '--allowed-host-paths', scratch], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    run.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
      if (stdout.includes('early | first\n')) writeFileSync(path.join(gate, 'early-printed'), '');
      if (stdout.includes('late  ! warning\n')) writeFileSync(path.join(gate, 'late-printed'), '');
    });
    const [status] = (await once(run, 'close')) as [number | null];
    expect(status).toBe(0);
    expect(stdout).toMatch(/^early \| first\nlate {2}\| second\nlate {2}! warning\nearly \| third\nNAME /);
  }, 120_000);

  it('prints none of the output with --quiet, nor with -o json, whose Tasks name their log files, which hold it', () => {
    // Names no other test runs: a run removes the logs of ended runs' Tasks of its Tasks' names.
    const manifest = path.join(scratch, 'json-logs.yaml');
    writeFileSync(
      manifest,
      [
        `apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: json-says}\nspec: {command: [sh, -c, 'echo said']}\n`,
        `apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: json-fails}\nspec: {command: [sh, -c, 'echo cannot >&2; exit 3'], backoffLimit: 1, backoff: {initialSeconds: 1}}\n`,
      ].join('---\n'),
    );
    expect(parafork('run', '-q', '-f', manifest).stdout).toMatch(/^NAME /);
    const result = parafork('run', '-f', manifest, '-o', 'json');
    const list = JSON.parse(result.stdout) as { items: { metadata: { name: string; annotations?: Record<string, string> } }[] };
    const files = Object.fromEntries(list.items.map((task) => [task.metadata.name, task.metadata.annotations?.['parafork.dev/log-files']?.split(',') ?? []]));
    expect(files['json-says']).toHaveLength(1);
    expect(readFileSync(files['json-says']?.[0] ?? '', 'utf8')).toMatch(/^parafork-log 2\n\S+ stdout 5\nsaid\n/);
    // One log per attempt, oldest first, each holding that attempt's stderr.
    expect(files['json-fails']?.map((file) => path.basename(file))).toEqual(['1.log', '2.log']);
    for (const file of files['json-fails'] ?? []) expect(readFileSync(file, 'utf8')).toMatch(/^parafork-log 2\n\S+ stderr 7\ncannot\n/);
    const directory = list.items.find((task) => task.metadata.name === 'json-says')?.metadata.annotations?.['parafork.dev/log-directory'];
    expect(path.dirname(files['json-says']?.[0] ?? '')).toBe(directory);
  }, 120_000);

  it('prints and keeps the output of Tasks of the longest valid name (253 characters), single and an array\'s indexes (after name[index]), for parafork logs', () => {
    // Four DNS labels: 63 + 63 + 63 + 61 characters and three dots. Names this long are this file's alone.
    const longName = (first: string): string => [first.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.');
    const single = longName('s');
    const array = longName('x');
    expect(single).toHaveLength(253);
    const manifest = path.join(scratch, 'long-names.yaml');
    writeFileSync(
      manifest,
      [
        `apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: ${single}}\nspec: {command: [sh, -c, 'echo single says hi']}\n`,
        `apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: ${array}}\nspec: {command: [sh, -c, 'echo index $PARAFORK_TASK_INDEX says hi'], completions: 3}\n`,
      ].join('---\n'),
    );
    const result = parafork('run', '-f', manifest);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain(`${single}    | single says hi\n`); // padded to the widest label, the array's `[2]`
    expect(result.stdout).toContain(`${array}[2] | index 2 says hi\n`);
    expect(parafork('logs', single, '--state-dir', scratch)).toMatchObject({ status: 0, stdout: 'single says hi\n' });
    expect(parafork('logs', array, '--index', '2', '--state-dir', scratch)).toMatchObject({ status: 0, stdout: 'index 2 says hi\n' });
  });

  it('parafork logs --index N -f waits for an index that has not printed yet and ends with it; for one that ended silent it says so', async () => {
    const manifest = path.join(scratch, 'index-follow.yaml');
    const name = `index-follow-${runToken}`;
    // Index 1 prints after a while; index 0 prints nothing.
    writeFileSync(manifest, `apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: ${name}}\nspec: {command: [sh, -c, 'if [ $PARAFORK_TASK_INDEX = 1 ]; then sleep 2; echo one wrote late; fi'], completions: 2}\n`);
    const run = spawn(process.execPath, [cli, 'run', '-q', '-f', manifest], { stdio: 'ignore' });
    const runEnded = once(run, 'close');
    // Once the run has made the array's logs (its directory, before any index printed).
    await waitForRunLogs(name);
    const follow = spawn(process.execPath, [cli, 'logs', name, '--index', '1', '-f', '--state-dir', scratch], { stdio: ['ignore', 'pipe', 'pipe'] });
    let followed = '';
    follow.stdout.setEncoding('utf8').on('data', (text: string) => (followed += text));
    const [status] = (await once(follow, 'close')) as [number | null];
    expect({ status, followed }).toEqual({ status: 0, followed: 'one wrote late\n' });
    await runEnded;
    const silent = parafork('logs', name, '--index', '0', '-f', '--state-dir', scratch);
    expect(silent.status).toBe(1);
    expect(silent.stderr).toContain(`index 0 of Task default/${name} succeeded and no log of it is kept: it printed nothing`);
  }, 60_000);

  it('lets a Task write 1 GiB as fast as it can to exit 0, keeping at most its spec.logs.maxBytes on disk', () => {
    const manifest = path.join(scratch, 'flood.yaml');
    const maxBytes = 1024 * 1024;
    const name = `log-flood-${runToken}`;
    writeFileSync(manifest, `apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: ${name}}\nspec:\n  command: ["sh", "-c", "head -c 1073741824 /dev/zero | tr '\\\\000' x; echo; echo last line"]\n  logs: {maxBytes: ${maxBytes}}\n`);
    const result = parafork('run', '-o', 'json', '-f', manifest);
    expect(result.status).toBe(0);
    const [task] = (JSON.parse(result.stdout) as { items: { status: { phase: string; exitCode: number }; metadata: { annotations: Record<string, string> } }[] }).items;
    expect(task?.status).toMatchObject({ phase: 'Succeeded', exitCode: 0 });
    const directory = task?.metadata.annotations['parafork.dev/log-directory'] ?? '';
    const onDisk = readdirSync(directory).reduce((sum, file) => sum + statSync(path.join(directory, file)).size, 0);
    expect(onDisk).toBeLessThanOrEqual(maxBytes);
    const shown = parafork('logs', name, '--tail', '1', '--state-dir', scratch);
    expect(shown.stdout).toBe('last line\n');
    const head = parafork('logs', name, '--state-dir', scratch).stdout.split('\n', 1)[0];
    expect(head).toMatch(/^\[parafork: \d+ bytes of output dropped here by the log's cap\]$/);
  }, 180_000);

  it('exits 1 when a Task failed, and -o json prints the Tasks with their status', () => {
    const manifest = path.join(scratch, 'mixed.yaml');
    writeFileSync(manifest, ['ok', 'broken'].map((name) => `apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: ${name}}\nspec: {command: ["sh", "-c", "${name === 'ok' ? 'exit 0' : 'echo oops >&2; exit 4'}"]}\n`).join('---\n'));
    const result = parafork('run', '-f', manifest, '-o', 'json');
    expect(result.status).toBe(1);
    const list = JSON.parse(result.stdout) as { items: { metadata: { name: string }; status: { phase: string; exitCode?: number; stderrTail?: string } }[] };
    const byName = Object.fromEntries(list.items.map((task) => [task.metadata.name, task.status]));
    expect(byName.ok).toMatchObject({ phase: 'Succeeded', exitCode: 0 });
    expect(byName.broken).toMatchObject({ phase: 'Failed', exitCode: 4, stderrTail: 'oops\n' });
  });

  it('holds a Task bound to another node Pending, saying so, and runs the rest (as the cluster agent never sees it)', () => {
    const result = parafork('run', '-f', 'examples/node-bound.yaml', '-f', 'examples/hello.yaml', '-o', 'json');
    expect(result.status).toBe(0);
    const list = JSON.parse(result.stdout) as { items: { metadata: { name: string }; status: { phase: string; reason?: string; message?: string; attempts?: number } }[] };
    const byName = Object.fromEntries(list.items.map((task) => [task.metadata.name, task.status]));
    expect(byName['node-bound']).toMatchObject({ phase: 'Pending', reason: 'WaitingForAgent', message: expect.stringMatching(/^bound to node worker-1 by spec\.nodeName; this machine is \S+, so it is left for that node's agent$/) as string });
    expect(byName['node-bound']?.attempts).toBeUndefined();
    expect(byName.hello).toMatchObject({ phase: 'Succeeded' });
  });

  it.each([
    [['run'], /run needs at least one -f/],
    [['run', '-f', '/no/such/manifests'], /no such file or directory/],
    [['run', '--bogus'], /Unknown option '--bogus'; 'parafork run --help' lists the flags$/m],
    [['run', 'examples/hello.yaml'], /^parafork: run takes its manifests after -f: parafork run -f examples\/hello\.yaml$/m],
    [['logs', 'hello', '--tial', '3'], /Unknown option '--tial'; 'parafork logs --help' lists the flags$/m],
    [['agent', '--nod-name', 'x'], /Unknown option '--nod-name'; 'parafork agent --help' lists the flags$/m],
    [['run', '-f', 'examples/hello.yaml', '-o', 'xml'], /-o must be table, wide, json or yaml/],
    [['run', '-f', 'examples/hello.yaml', '-o', 'json', '--wide'], /--wide goes with a table, not -o json/],
  ])('refuses %j with a one-line error and exit 2', (args, message) => {
    const result = parafork(...args);
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
  });

  it('refuses a schema-invalid manifest, naming the file, the Task and the field', () => {
    const manifest = path.join(scratch, 'invalid.yaml');
    writeFileSync(manifest, 'apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: bad}\nspec: {command: ["true"], backoffLimit: -1}\n');
    const result = parafork('run', '-f', manifest);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(`${manifest}#1 (Task bad): spec.backoffLimit: must be >= 0`);
  });
});

// Machines of this kind ship Node 20 as /usr/bin/node; the project's scripts bring Node 24. Loading
// the Node-API 10 addon on Node 20 crashed it (SIGSEGV) before the loader checked the version.
const systemNode = '/usr/bin/node';
const systemNodeVersion = (() => {
  try {
    return execFileSync(systemNode, ['-p', 'process.versions.napi + " " + process.version'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
})();
const oldSystemNode = systemNodeVersion !== undefined && Number(systemNodeVersion.split(' ')[0]) < 10;
const oldNodeSkip = oldSystemNode ? undefined : `${systemNode} is ${systemNodeVersion ?? 'missing'}, not a Node older than Node-API 10`;

describe.skipIf(oldNodeSkip !== undefined)(`parafork on an older Node.js${oldNodeSkip ? ` (skipped: ${oldNodeSkip})` : ''}`, () => {
  it('refuses in one line naming the Node.js needed, exit 1, no crash', () => {
    const result = spawnSync(systemNode, [cli, 'run', '-f', 'examples/hello.yaml'], { encoding: 'utf8', timeout: 60_000 });
    expect(result.signal).toBeNull();
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/parafork needs Node\.js 22\.19 or newer \(Node-API 10\); this is Node\.js v\d+/);
  });
});

describe('parafork --help of every command', () => {
  it.each([['run'], ['logs'], ['agent'], ['help']])('%s: lines of at most 100 columns, each default said once', (command) => {
    const result = parafork(command, '--help');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^Usage: parafork /);
    for (const line of result.stdout.trimEnd().split('\n')) expect(line.length, line).toBeLessThanOrEqual(100);
    expect(result.stdout).not.toMatch(/\(default \)|\(default: [^)]*\) \(default/);
  });
});

describe('scripts/parafork in a checkout that was never built', () => {
  it('says in one line to run scripts/setup.sh, exit 1, no stack trace', () => {
    const checkout = mkdtempSync(path.join(tmpdir(), 'parafork-unbuilt-'));
    try {
      mkdirSync(path.join(checkout, 'scripts'));
      copyFileSync('scripts/parafork', path.join(checkout, 'scripts/parafork'));
      const result = spawnSync(path.join(checkout, 'scripts/parafork'), ['run', '-f', 'examples/hello.yaml'], { encoding: 'utf8', timeout: 30_000 });
      expect(result.status).toBe(1);
      expect(result.stderr).toBe(`parafork: not built yet in ${checkout}: run scripts/setup.sh first (about a minute)\n`);
    } finally {
      rmSync(checkout, { recursive: true, force: true });
    }
  });
});

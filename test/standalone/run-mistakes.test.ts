// `parafork run` and `parafork logs` meeting a new user's common mistakes: Ctrl-C in the middle of
// a run, running without root, a log directory that cannot be written. Each gets one line saying
// what went wrong and what to do, and nothing is left behind. Runs the built CLI as a user would.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, copyFileSync, linkSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';

const cli = path.resolve('dist/cli/main.js');
const skip = missingRequirement('parafork run sandboxes its Tasks, which needs root', runningAsRoot);
const nobody = 65534;

/** Pids of the processes whose command line holds `marker` (only this test's Tasks carry it). */
function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker)) pids.push(Number(entry));
    } catch {
      // ended meanwhile
    }
  }
  return pids;
}

describe.skipIf(skip !== undefined)(`parafork run and logs, common mistakes${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-mistakes-'));
    chmodSync(scratch, 0o755);
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('stops the running Tasks on Ctrl-C (SIGINT), prints the report and exits 130, leaving no Task process behind', async () => {
    // A harmless marker in each Task's command line finds its processes; the sandbox's init is pid 1
    // of the Task's namespace, so only the command line names them from here.
    const marker = `parafork-interrupt-test-${Math.random().toString(36).slice(2, 10)}`;
    const manifest = path.join(scratch, 'interrupted.yaml');
    writeFileSync(
      manifest,
      [
        `apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: quick-${marker}}\nspec: {command: [echo, done]}\n`,
        // A child in the background too: the whole Task goes, not only its main process.
        `apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: slow-${marker}}\nspec: {command: [sh, -c, 'sh -c "sleep 600; : ${marker}" & echo started; sleep 600; : ${marker}']}\n`,
      ].join('---\n'),
    );
    const run = spawn(process.execPath, [cli, 'run', '-f', manifest], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let stdout = '';
      let stderr = '';
      run.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
      run.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
      const started = Date.now();
      while (!stdout.includes('| started') && Date.now() - started < 60_000) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(stdout).toContain('| started');
      expect(processesWith(marker).length).toBeGreaterThanOrEqual(2);
      const interrupted = Date.now();
      run.kill('SIGINT');
      const [code] = (await once(run, 'close')) as [number | null];
      // The sleeping shell ends at SIGTERM: no wait for the SIGKILL 10 s later.
      expect(Date.now() - interrupted).toBeLessThan(8_000);
      expect(code).toBe(130);
      expect(stderr).toContain('parafork: SIGINT: stopping the running Tasks');
      expect(stdout).toMatch(new RegExp(`^quick-${marker}\\s+Succeeded\\s+0\\s+1\\s+\\S+\\s+Completed`, 'm'));
      expect(stdout).toMatch(new RegExp(`^slow-${marker}\\s+Failed\\s+SIGTERM\\s+1\\s+\\S+\\s+AgentRestarted\\s+the agent shut down`, 'm'));
      expect(stderr.trimEnd().split('\n').at(-1)).toMatch(/^2 Tasks in [\d.]+ s: 1 succeeded, 1 failed \|/);
      expect(processesWith(marker)).toEqual([]);
    } finally {
      run.kill('SIGKILL');
      for (const pid of processesWith(marker)) process.kill(pid, 'SIGKILL');
    }
  }, 120_000);

  it('says in one line which directory is read-only when it cannot keep the logs, exit 1, no stack trace', () => {
    // In a mount namespace of the test's own: a read-only tmpfs over the runs' log folder, seen by no one else.
    const script = `mount --make-rprivate / && mkdir -p /run/parafork/run-logs && mount -t tmpfs -o ro tmpfs /run/parafork/run-logs && exec "$0" "$@"`;
    const result = spawnSync('unshare', ['-m', 'sh', '-c', script, process.execPath, cli, 'run', '-f', 'examples/hello.yaml'], { encoding: 'utf8', timeout: 60_000 });
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^parafork: cannot mkdir \/run\/parafork\/run-logs\/run_\d+_[0-9a-f]+: read-only file system \(EROFS\): .*must be writable by root/);
  });

  describe('as a user who is not root', () => {
    // Node as nobody may read: this one linked (or copied) into a folder of the test's own, as the
    // one the project's scripts install lives in root's home.
    let node: string;
    let readable = false;
    beforeAll(() => {
      node = path.join(scratch, 'node');
      try {
        linkSync(process.execPath, node);
      } catch {
        copyFileSync(process.execPath, node);
      }
      chmodSync(node, 0o755);
      readable = spawnSync('setpriv', [`--reuid=${String(nobody)}`, `--regid=${String(nobody)}`, '--clear-groups', node, '-e', `require('fs').accessSync(${JSON.stringify(cli)})`]).status === 0;
    });
    const asNobody = (...args: string[]): { status: number | null; stderr: string } => {
      const result = spawnSync('setpriv', [`--reuid=${String(nobody)}`, `--regid=${String(nobody)}`, '--clear-groups', node, cli, ...args], { encoding: 'utf8', timeout: 60_000 });
      return { status: result.status, stderr: result.stderr };
    };

    it('refuses to run in one line saying it needs root, exit 1, no stack trace', ({ skip: skipTest }) => {
      skipTest(!readable, 'this checkout is not readable by nobody');
      const result = asNobody('run', '-f', 'examples/hello.yaml');
      expect(result.status).toBe(1);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(/^parafork: cannot mkdir \/run\/parafork\S*: permission denied \(EACCES\)\. parafork needs root .*run it as root/);
    });

    it('parafork logs says the logs are root\'s rather than only that there are none', ({ skip: skipTest }) => {
      skipTest(!readable, 'this checkout is not readable by nobody');
      const result = asNobody('logs', 'hello');
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/^parafork: no logs of Task default\/hello on this node .*; \/run\/parafork\S* cannot be read by uid 65534: the logs are root's, run parafork logs as root/);
    });
  });
});

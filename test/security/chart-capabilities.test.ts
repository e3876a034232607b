// The sandbox with exactly the capabilities the chart gives the agent's container (values.yaml,
// securityContext.capabilities: every one dropped but those added), as the kubelet starts it: root,
// no CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER or CAP_CHOWN, so file modes bind the agent
// too. Found by issue 18's first run in a real Pod: the template's mask directory was made 0555
// before its entries were created in it, which only a root holding CAP_DAC_OVERRIDE may do, and
// every Task failed with SandboxUnavailable (EACCES in mount). Here `setpriv` stands in for the
// container runtime: same bounding set, nothing inheritable. Needs root and the build (dist/).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { load } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { cli, tasksOf, writeTask, type CliRun } from './standalone-cli.js';

const skip = missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root)', runningAsRoot);

const values = load(readFileSync(path.resolve('charts/parafork/values.yaml'), 'utf8')) as {
  securityContext: { capabilities: { drop: string[]; add: string[] } };
};
const chartCapabilities = values.securityContext.capabilities.add.map((name) => name.toLowerCase());

/** `parafork ...args` as root with only the chart's capabilities (setpriv(1) sets the bounding set before exec). */
function paraforkWithChartCapabilities(args: readonly string[]): Promise<CliRun> {
  const started = performance.now();
  const bounding = ['-all', ...chartCapabilities.map((name) => `+${name}`)].join(',');
  const child = spawn('setpriv', [`--bounding-set=${bounding}`, '--inh-caps=-all', '--', process.execPath, cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr, timedOut: status === null, elapsedMs: performance.now() - started });
    }),
  );
}

describe.skipIf(skip !== undefined)(`the sandbox with only the chart's capabilities${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-chart-capabilities-'));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('drops every capability but a few, CAP_DAC_OVERRIDE among those dropped (what this test is about)', () => {
    expect(values.securityContext.capabilities.drop).toEqual(['ALL']);
    expect(chartCapabilities).not.toContain('dac_override');
  });

  it('runs a Task sandboxed by default to Succeeded, its masks and read-only /proc knobs in place', async () => {
    const file = writeTask(scratch, 'masked', {
      command: ['sh', '-c', 'test ! -w /proc/sys/kernel/hostname && test ! -s /proc/kcore && cat /etc/hostname >/dev/null'],
    });
    // No limits, so no cgroups: this machine's cgroup roots are 0555 (root without
    // CAP_DAC_OVERRIDE may not make a group there), unlike a Pod's cgroup, which the kubelet makes.
    const run = await paraforkWithChartCapabilities(['run', '-o', 'json', '-f', file, '--default-memory', 'none', '--default-pids', 'none', '--default-cpu', 'none']);
    const task = tasksOf(run).get('masked');
    expect(task?.status, run.stderr.slice(-2000)).toMatchObject({ phase: 'Succeeded', exitCode: 0 });
  });
});

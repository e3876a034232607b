// What a Task could inherit from whoever started it: `parafork run` and the agent hold the
// operator's environment (tokens, KUBECONFIG, cloud credentials), open files (log files, the launch
// journal, id-block locks, sockets to the apiserver) and a cgroup of their own. A default Task gets
// none of it: only its spec's environment and PATH, only descriptors 0, 1, 2 and its result file (3), and a cgroup view
// and process list of its own. A regression test (nothing found): it runs the real CLI so the
// agent's own descriptors are open while the Task starts. Needs root (the sandbox) and a build.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { cli } from './standalone-cli.js';

// `parafork logs NAME` reads the newest Task of that name among all runs on the machine: the name
// carries this run's token, so another checkout's run of this file at once is never read instead.
const taskName = `inherit-${Math.random().toString(36).slice(2, 8)}`;
const skip = missingRequirement('parafork sandboxes the Tasks it runs, which needs root', runningAsRoot);

const secret = 'operator-secret-93b2';

describe.skipIf(skip !== undefined)(`a default Task inherits nothing of parafork run s${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  let report = '';
  beforeAll(async () => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-inheritance-'));
    const script = 'echo "--env"; env; echo "--fds"; ls /proc/self/fd; echo "--fd3"; readlink /proc/self/fd/3; echo "--cgroup"; cat /proc/self/cgroup; echo "--pids"; ls /proc | grep -c "^[0-9]"; echo "--end"';
    const manifest = path.join(scratch, 'inherit.yaml');
    writeFileSync(manifest, JSON.stringify({ apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: taskName }, spec: { command: ['/bin/sh', '-c', script], env: [{ name: 'ASKED_FOR', value: 'yes' }] } }));
    const environment = { ...process.env, PARAFORK_TEST_SECRET: secret, KUBECONFIG: `/nonexistent/${secret}`, AWS_SECRET_ACCESS_KEY: secret };
    // -o json: no live output; `parafork logs` then reads what the Task wrote.
    const run = spawn(process.execPath, [cli, 'run', '-o', 'json', '-f', manifest], { env: environment, stdio: ['ignore', 'ignore', 'inherit'] });
    await new Promise((resolve) => run.once('close', resolve));
    const logs = spawn(process.execPath, [cli, 'logs', taskName], { stdio: ['ignore', 'pipe', 'inherit'] });
    logs.stdout.on('data', (chunk: Buffer) => (report += chunk.toString()));
    await new Promise((resolve) => logs.once('close', resolve));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  const section = (name: string): string[] => {
    const start = report.indexOf(`--${name}\n`);
    const rest = report.slice(start + name.length + 3);
    return rest.slice(0, rest.indexOf('\n--')).split('\n').filter(Boolean);
  };

  it('sees its spec s environment and PATH, and none of the operator s', () => {
    expect(report).not.toContain(secret);
    expect(section('env')).toContain('ASKED_FOR=yes');
    expect(section('env').map((line) => line.split('=')[0]).sort()).toEqual(['ASKED_FOR', 'PARAFORK_RESULT', 'PATH', 'PWD']);
    expect(section('env')).toContain('PARAFORK_RESULT=/dev/fd/3');
  });

  it('holds descriptors 0, 1, 2 and its own result file at 3 only (4 is ls s own directory)', () => {
    expect(section('fds').map(Number).sort()).toEqual([0, 1, 2, 3, 4]);
    // The result file is an anonymous memory file made for this attempt, nothing of the agent's.
    expect(section('fd3')).toEqual([expect.stringMatching(/^\/memfd:/)]);
  });

  it('sees only its own cgroup (its namespace root) and its own processes', () => {
    for (const line of section('cgroup')) expect(line).toMatch(/:\/$/);
    expect(Number(section('pids')[0])).toBeLessThanOrEqual(4);
  });
});

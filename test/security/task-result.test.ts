// Issue 15, item 5: a Task's result file ($PARAFORK_RESULT) against a hostile Task. The agent reads
// status.result from a memory file it holds its own fd to (src/launcher/result-file.ts), never
// through a path the Task names: whatever the Task does to $PARAFORK_RESULT or its fd 3 (a link to
// a host file it may not read, a hard link, a FIFO, a directory), status.result carries only what
// was written to that file, the agent never blocks on it, and a 1 GiB write costs the Task's own
// memory limit, not the node's disk or the agent's memory.
//
// Each hostile Task first writes `mine` to its result file, then attacks; the positive check (the
// result is exactly `mine\n`) fails on code without results. Needs root (the sandbox).
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Task } from '../../src/api/task.js';
import { readCgroupLayout } from '../../src/sandbox/cgroup-layout.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { waitFor } from '../helpers/wait-for.js';
import { parafork, startManifestAgent, tasksOf, writeTask } from './standalone-cli.js';

const skip = missingRequirement('the sandbox needs root', runningAsRoot);
const layout = readCgroupLayout();
const hasMemoryController = layout.v1.has('memory') || (layout.v2?.controllers.has('memory') ?? false);

/** Host content no Task may get into status.result: a root-only file, and an environment variable of the agent. */
const secretInFile = `file-secret-${process.pid}-${Date.now()}`;
const secretInEnvironment = `environment-secret-${process.pid}-${Date.now()}`;

/** Attacks on the result file after writing `mine` to it; each step may fail, the script goes on. */
function hostileScript(secretFile: string): string {
  return [
    'echo mine > "$PARAFORK_RESULT"',
    // Replace the name with a link to a host file, or with a FIFO or a directory.
    `ln -sf ${secretFile} "$PARAFORK_RESULT" 2>/dev/null`,
    'rm -rf "$PARAFORK_RESULT" 2>/dev/null; mkdir "$PARAFORK_RESULT" 2>/dev/null; mkfifo "$PARAFORK_RESULT" 2>/dev/null',
    // The agent's /proc entries, had it any in this pid namespace, and the parent's.
    'for pid in 1 $PPID; do ln -sf /proc/$pid/environ /tmp/environ-$pid 2>/dev/null; done',
    // A hard link of the host file, then fd 3 itself pointed at the links, a FIFO and a directory.
    `ln ${secretFile} /tmp/hard 2>/dev/null`,
    'mkfifo /tmp/fifo 2>/dev/null',
    // (`command exec`: a failed redirection does not end the shell.)
    `command exec 3>&-; command exec 3<${secretFile} 2>/dev/null || command exec 3</tmp/hard 2>/dev/null || command exec 3<>/tmp/fifo`,
    'command exec 3</tmp 2>/dev/null',
    'exit 0',
  ].join('\n');
}

function resultOf(tasks: Map<string, Task>, name: string): Task['status'] {
  const status = tasks.get(name)?.status;
  expect(status, `${name} has a status`).toBeDefined();
  return status;
}

function expectNoHostContent(status: Task['status']): void {
  expect(status?.result ?? '').not.toContain(secretInFile);
  expect(status?.result ?? '').not.toContain(secretInEnvironment);
  expect(status?.message ?? '').not.toContain(secretInFile);
}

describe.skipIf(skip !== undefined)(`a hostile Task's result file${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  let secretFile: string;

  beforeAll(() => {
    process.env.PARAFORK_TEST_RESULT_SECRET = secretInEnvironment; // in every `parafork run` this test starts
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-result-'));
    chmodSync(scratch, 0o755); // the Task sees the path through the read-only host root...
    secretFile = path.join(scratch, 'secret');
    writeFileSync(secretFile, `${secretInFile}\n`, { mode: 0o600 }); // ...but may not read the file
  });
  afterAll(() => {
    delete process.env.PARAFORK_TEST_RESULT_SECRET;
    rmSync(scratch, { recursive: true, force: true });
  });

  it('carries only what was written to the file, whatever the Task then does to its name or its fd 3', async () => {
    const restricted = writeTask(scratch, 'hostile', { command: ['/bin/sh', '-c', hostileScript(secretFile)] });
    const fallback = writeTask(scratch, 'hostile-fallback', { command: ['/bin/sh', '-c', hostileScript(secretFile).replace('echo mine > "$PARAFORK_RESULT"', ': > "$PARAFORK_RESULT"').replace('exit 0', 'exit 1')], resultPolicy: 'FallbackToLogsOnError' });
    const run = await parafork(['run', '-f', restricted, '-f', fallback, '-o', 'json'], 60_000);
    expect(run.timedOut).toBe(false);
    const tasks = tasksOf(run);
    const status = resultOf(tasks, 'hostile');
    expect(status).toMatchObject({ phase: 'Succeeded', result: 'mine\n' });
    expectNoHostContent(status);
    // An empty file and a failure: the result is the Task's own output, not the files it pointed at.
    const fallbackStatus = resultOf(tasks, 'hostile-fallback');
    expect(fallbackStatus?.phase).toBe('Failed');
    expectNoHostContent(fallbackStatus);
  });

  it('holds for a privileged Task (uid 0, no seccomp filter), which may read the host file itself but cannot make the agent read it', async () => {
    const privileged = writeTask(scratch, 'hostile-root', { command: ['/bin/sh', '-c', hostileScript(secretFile)], sandbox: { runAsUser: 0, runAsGroup: 0, seccomp: { type: 'Unconfined' } } });
    const run = await parafork(['run', '-f', privileged, '-o', 'json', '--sandbox-policy', 'privileged'], 60_000);
    expect(run.timedOut).toBe(false);
    const status = resultOf(tasksOf(run), 'hostile-root');
    expect(status).toMatchObject({ phase: 'Succeeded', result: 'mine\n' });
    expectNoHostContent(status);
  });

  it('holds with no sandbox at all (agent --task-sandbox off): the agent still reads only its own fd', async () => {
    const folder = mkdtempSync(path.join(scratch, 'manifests-'));
    writeTask(folder, 'hostile-unsandboxed', { command: ['/bin/sh', '-c', hostileScript(secretFile).replaceAll('/tmp/', `${scratch}/unsandboxed-`)] });
    const agent = await startManifestAgent(folder, ['--task-sandbox', 'off']);
    try {
      const status = await waitFor(async () => {
        const found = (await agent.tasks()).get('hostile-unsandboxed')?.status;
        return found?.phase === 'Succeeded' || found?.phase === 'Failed' ? found : undefined;
      }, { timeoutMs: 30_000, description: 'the unsandboxed Task to end' });
      expect(status).toMatchObject({ phase: 'Succeeded', result: 'mine\n' });
      expectNoHostContent(status);
    } finally {
      await agent.stop();
    }
  });

  it('gives each of 30 Tasks run at once its own result, none lost and none another s', async () => {
    const files = Array.from({ length: 30 }, (_, index) => writeTask(scratch, `crowd-${index}`, { command: ['/bin/sh', '-c', 'echo "$TASK_NAME" > "$PARAFORK_RESULT"'], env: [{ name: 'TASK_NAME', value: `crowd-${index}` }] }));
    const run = await parafork(['run', ...files.flatMap((file) => ['-f', file]), '-o', 'json'], 60_000);
    const tasks = tasksOf(run);
    for (let index = 0; index < 30; index++) expect(tasks.get(`crowd-${index}`)?.status?.result, `crowd-${index}`).toBe(`crowd-${index}\n`);
  });

  it('never blocks the agent: a Task that leaves a FIFO open on fd 3, and one whose child holds fd 3 open, end at once', async () => {
    const fifo = writeTask(scratch, 'fifo', { command: ['/bin/sh', '-c', 'echo mine > "$PARAFORK_RESULT"; mkfifo /tmp/f; command exec 3<>/tmp/f; (sleep 1 &); exit 0'] });
    const run = await parafork(['run', '-f', fifo, '-o', 'json'], 30_000);
    expect(run.timedOut).toBe(false);
    expect(run.elapsedMs).toBeLessThan(20_000);
    expect(resultOf(tasksOf(run), 'fifo')).toMatchObject({ phase: 'Succeeded', result: 'mine\n' });
  });

  it.skipIf(!hasMemoryController)('bounds a 1 GiB write by the Task\'s own memory limit: no disk, 4096 bytes read, the Task ends', async () => {
    const flood = writeTask(scratch, 'flood', {
      command: ['/bin/sh', '-c', 'head -c 1073741824 /dev/zero | tr "\\0" x > "$PARAFORK_RESULT"; echo "write ended: $?" >&2'],
      resources: { limits: { memory: '64Mi' } },
    });
    const run = await parafork(['run', '-f', flood, '-o', 'json'], 120_000);
    expect(run.timedOut).toBe(false);
    const status = resultOf(tasksOf(run), 'flood');
    // The pages were the Task's: its cgroup peaked at its limit, and the write stopped there.
    expect(status?.usage?.memoryPeakBytes ?? 0).toBeLessThanOrEqual(64 * 1024 * 1024 + 1024 * 1024);
    expect(status?.resultTruncated).toBe(true);
    expect(Buffer.byteLength(status?.result ?? '')).toBe(4096);
    expect(status?.result).toBe('x'.repeat(4096));
  });
});

describe.skipIf(skip !== undefined)(`the agent's own environment${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('never reaches status.result, though the Task aims its fd 3 at every environ it can find', async () => {
    process.env.PARAFORK_TEST_RESULT_SECRET = secretInEnvironment;
    const scratch = mkdtempSync(path.join(tmpdir(), 'parafork-result-env-'));
    try {
      const file = writeTask(scratch, 'environ', { command: ['/bin/sh', '-c', 'echo mine > "$PARAFORK_RESULT"; for f in /proc/*/environ; do command exec 3<"$f"; done 2>/dev/null; exit 0'], resultPolicy: 'FallbackToLogsOnError' });
      const run = await parafork(['run', '-f', file, '-o', 'json'], 30_000);
      const status = resultOf(tasksOf(run), 'environ');
      expect(status).toMatchObject({ phase: 'Succeeded', result: 'mine\n' });
      expectNoHostContent(status);
    } finally {
      delete process.env.PARAFORK_TEST_RESULT_SECRET;
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

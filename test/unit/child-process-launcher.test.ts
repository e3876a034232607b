// The child_process launcher (the benchmark baseline behind --launcher child_process) keeps the
// native launcher's surface: a pid once the child runs, its stderr, its exit, kill, and a
// SpawnError an exec failure maps from; and it refuses what it cannot do (a sandbox, a cgroup).
import { describe, expect, it } from 'vitest';

import { ChildProcessLauncher } from '../../src/launcher/child-process-launcher.js';
import { InvalidSpawnOptionError, SpawnError } from '../../src/launcher/spawn-error.js';

async function readAll(stream: NodeJS.ReadableStream | null): Promise<string> {
  let text = '';
  for await (const chunk of stream ?? []) text += String(chunk);
  return text;
}

describe('ChildProcessLauncher', () => {
  it('runs a command with its env and cwd, and reports its stderr and exit code', async () => {
    const launcher = new ChildProcessLauncher();
    const child = await launcher.spawn({ file: '/bin/sh', args: ['-c', 'echo "$GREETING from $(pwd)" >&2; exit 7'], env: { GREETING: 'hello' }, cwd: '/tmp', stderr: 'pipe' });
    expect(child.pid).toBeGreaterThan(0);
    const [stderr, exit] = await Promise.all([readAll(child.stderr), child.exited]);
    expect(stderr).toBe('hello from /tmp\n');
    expect(exit).toMatchObject({ code: 7, signal: null });
    await launcher.close();
  });

  it('kills with a signal, and says false once the child has exited', async () => {
    const launcher = new ChildProcessLauncher();
    const child = await launcher.spawn({ file: 'sleep', args: ['30'] });
    expect(child.kill('SIGTERM')).toBe(true);
    expect(await child.exited).toMatchObject({ code: null, signal: 'SIGTERM' });
    expect(child.kill('SIGKILL')).toBe(false);
    await launcher.close();
  });

  it('rejects a missing executable with a SpawnError of step exec for execve, code ENOENT, as the native launcher does', async () => {
    const launcher = new ChildProcessLauncher();
    const error: unknown = await launcher.spawn({ file: '/no/such/program' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SpawnError);
    expect(error).toMatchObject({ step: 'exec', code: 'ENOENT', syscall: 'execve', path: '/no/such/program', message: 'execve: /no/such/program: no such file or directory (ENOENT)' });
  });

  it('refuses a sandbox and a cgroup rather than run with less isolation', async () => {
    const launcher = new ChildProcessLauncher();
    await expect(launcher.spawn({ file: 'true', sandbox: {} })).rejects.toBeInstanceOf(InvalidSpawnOptionError);
    await expect(launcher.spawn({ file: 'true', cgroup: '/sys/fs/cgroup/x' })).rejects.toThrow(/cannot build a sandbox or start a process in a cgroup/);
  });
});

// Launcher.spawn: what a caller gets back, exit codes, exec errors, environment, cwd, stdio.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher, SpawnError, SpawnedProcess } from '../../src/index.js';
import { readAll, zombieChildren } from '../helpers/process-table.js';

let launcher: Launcher;
let scratch: string;

beforeAll(() => {
  launcher = new Launcher();
  scratch = mkdtempSync(path.join(tmpdir(), 'parafork-spawn-'));
});

afterAll(async () => {
  await launcher.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe('a successful spawn', () => {
  it('resolves once the child has exec d, with its pid and native timings', async () => {
    const child = await launcher.spawn({ file: '/bin/true' });
    expect(child).toBeInstanceOf(SpawnedProcess);
    expect(child.pid).toBeGreaterThan(1);
    expect(child.timings.spawnNs).toBeGreaterThan(0);
    expect(child.timings.queuedNs).toBeGreaterThanOrEqual(0);
    const exit = await child.exited;
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.durationNs).toBeGreaterThan(0);
    expect(exit.rusage.maxRssKb).toBeGreaterThan(0);
  });

  it('passes args after argv[0], which is the file as given', async () => {
    const child = await launcher.spawn({ file: 'sh', args: ['-c', 'echo "$0|$1|$2"', 'one', 'two words'], stdout: 'pipe' });
    expect(await readAll(child.stdout)).toBe('one|two words|\n');
  });

  it('reports the exit code the child chose', async () => {
    const child = await launcher.spawn({ file: 'sh', args: ['-c', 'exit 42'] });
    expect(await child.exited).toMatchObject({ code: 42, signal: null });
  });

  it('reports the signal that ended the child', async () => {
    const child = await launcher.spawn({ file: 'sh', args: ['-c', 'kill -SEGV $$'] });
    expect(await child.exited).toMatchObject({ code: null, signal: 'SIGSEGV' });
  });

  it('counts CPU time in rusage', async () => {
    const child = await launcher.spawn({ file: 'sh', args: ['-c', 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'] });
    const exit = await child.exited;
    expect(exit.rusage.userUs + exit.rusage.systemUs).toBeGreaterThan(10_000);
  });
});

describe('exec and setup errors', () => {
  it('rejects with ENOENT from execve for a missing absolute path, like child_process', async () => {
    const failure = launcher.spawn({ file: '/no/such/program', args: ['x'] });
    await expect(failure).rejects.toBeInstanceOf(SpawnError);
    await expect(failure).rejects.toMatchObject({
      code: 'ENOENT',
      errno: -2,
      syscall: 'execve',
      path: '/no/such/program',
      spawnargs: ['x'],
    });
  });

  it('rejects with ENOENT when no PATH entry holds the file', async () => {
    await expect(launcher.spawn({ file: 'parafork-no-such-tool', env: { PATH: scratch } })).rejects.toMatchObject({
      code: 'ENOENT',
      syscall: 'execve',
    });
  });

  it('rejects with EACCES for a file that is not executable', async () => {
    const script = path.join(scratch, 'not-executable.sh');
    writeFileSync(script, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    await expect(launcher.spawn({ file: script })).rejects.toMatchObject({ code: 'EACCES', syscall: 'execve' });
  });

  it('rejects with ENOEXEC for an executable the kernel cannot run (no #! line)', async () => {
    const garbage = path.join(scratch, 'garbage');
    writeFileSync(garbage, 'not a program', { mode: 0o755 });
    await expect(launcher.spawn({ file: garbage })).rejects.toMatchObject({ code: 'ENOEXEC', syscall: 'execve' });
  });

  it('rejects with ENOENT from chdir for a missing working directory, naming it', async () => {
    const failure = launcher.spawn({ file: '/bin/true', cwd: '/no/such/dir' });
    await expect(failure).rejects.toMatchObject({ code: 'ENOENT', syscall: 'chdir' });
    await expect(failure).rejects.toThrow(/\/no\/such\/dir/);
  });

  it('rejects with the open error for an output file it cannot create', async () => {
    await expect(launcher.spawn({ file: '/bin/true', stdout: { file: '/no/such/dir/out.log' } })).rejects.toMatchObject({
      code: 'ENOENT',
      syscall: 'open',
    });
  });

  it('names the awaiting caller in the error s stack', async () => {
    let error: Error | undefined;
    try {
      await launcher.spawn({ file: '/no/such/program' });
    } catch (caught) {
      error = caught as Error;
    }
    expect(error?.stack).toContain('launcher-spawn.test.ts');
  });

  it('leaves no zombie behind after failures', async () => {
    const failures = Array.from({ length: 50 }, () => launcher.spawn({ file: '/no/such/program' }).catch(() => undefined));
    await Promise.all(failures);
    expect(zombieChildren()).toEqual([]);
  });
});

describe('invalid options', () => {
  it.each([
    [{ file: '' }, 'ERR_INVALID_ARG_VALUE'],
    [{ file: 42 }, 'ERR_INVALID_ARG_TYPE'],
    [{ file: '/bin/true', args: 'no' }, 'ERR_INVALID_ARG_TYPE'],
    [{ file: '/bin/true', args: ['a\0b'] }, 'ERR_INVALID_ARG_VALUE'],
    [{ file: '/bin/true', env: { 'A=B': 'x' } }, 'ERR_INVALID_ARG_VALUE'],
    [{ file: '/bin/true', env: { A: 1 } }, 'ERR_INVALID_ARG_TYPE'],
    [{ file: '/bin/true', stdout: 'inherit' }, 'ERR_INVALID_ARG_VALUE'],
    [{ file: '/bin/true', stdout: { file: '' } }, 'ERR_INVALID_ARG_VALUE'],
    [{ file: '/bin/true', cwd: '' }, 'ERR_INVALID_ARG_VALUE'],
    // cgroupSetup writes only inside the cgroups the spawn makes.
    [{ file: '/bin/true', cgroupSetup: { files: [] } }, 'ERR_INVALID_ARG_VALUE'],
    [{ file: '/bin/true', cgroupsV1: ['/sys/fs/cgroup/pids/t'], cgroupSetup: { files: [{ path: '/etc/passwd', value: 'x' }] } }, 'ERR_INVALID_ARG_VALUE'],
    [{ file: '/bin/true', cgroupsV1: ['/sys/fs/cgroup/pids/t'], cgroupSetup: { files: [{ path: '/sys/fs/cgroup/pids/t/../release_agent', value: 'x' }] } }, 'ERR_INVALID_ARG_VALUE'],
    [{ file: '/bin/true', cgroupsV1: ['/sys/fs/cgroup/pids/t'], cgroupSetup: { files: [{ path: '/sys/fs/cgroup/pids/t/pids.max', value: 8 }] } }, 'ERR_INVALID_ARG_TYPE'],
    // Kept join fds: whole fds, one per v1 directory (or none), a v2 one only with a v2 cgroup.
    [{ file: '/bin/true', cgroupsV1: ['/sys/fs/cgroup/pids/t'], cgroupSetup: { files: [], joinFds: { cgroupsV1: [3, 4] } } }, 'ERR_INVALID_ARG_VALUE'],
    [{ file: '/bin/true', cgroupsV1: ['/sys/fs/cgroup/pids/t'], cgroupSetup: { files: [], joinFds: { cgroupsV1: [-1] } } }, 'ERR_INVALID_ARG_TYPE'],
    [{ file: '/bin/true', cgroupsV1: ['/sys/fs/cgroup/pids/t'], cgroupSetup: { files: [], joinFds: { cgroup: 3, cgroupsV1: [] } } }, 'ERR_INVALID_ARG_VALUE'],
    [{ file: '/bin/true', sandbox: { userNamespace: 'yes' } }, 'ERR_INVALID_ARG_VALUE'],
    [{ file: '/bin/true', sandbox: { userNamespace: true, runAsUser: 65536 } }, 'ERR_INVALID_ARG_VALUE'],
  ])('rejects %j with %s before anything reaches native code', async (options, code) => {
    await expect(launcher.spawn(options as never)).rejects.toMatchObject({ code });
  });

  it('refuses an unknown lock mode or thread count at construction', () => {
    expect(() => new Launcher({ lockMode: 'fast' } as never)).toThrow(/lockMode must be one of 'free', 'xor', 'serial'/);
    expect(() => new Launcher({ threads: 0 })).toThrow(/threads must be a whole number/);
  });
});

describe('environment and working directory', () => {
  it('gives the child exactly the env it was given', async () => {
    const child = await launcher.spawn({ file: '/usr/bin/env', env: { ONLY: 'this', EMPTY: '' }, stdout: 'pipe' });
    expect((await readAll(child.stdout)).split('\n').filter(Boolean).sort()).toEqual(['EMPTY=', 'ONLY=this']);
  });

  it('inherits the agent s environment when env is not given', async () => {
    process.env.PARAFORK_TEST_MARKER = 'inherited';
    try {
      const child = await launcher.spawn({ file: 'sh', args: ['-c', 'echo $PARAFORK_TEST_MARKER'], stdout: 'pipe' });
      expect(await readAll(child.stdout)).toBe('inherited\n');
    } finally {
      delete process.env.PARAFORK_TEST_MARKER;
    }
  });

  it('looks a bare file name up in env.PATH', async () => {
    const tool = path.join(scratch, 'parafork-test-tool');
    writeFileSync(tool, '#!/bin/sh\necho found-in-path\n');
    chmodSync(tool, 0o755);
    const child = await launcher.spawn({ file: 'parafork-test-tool', env: { PATH: `/nonexistent:${scratch}` }, stdout: 'pipe' });
    expect(await readAll(child.stdout)).toBe('found-in-path\n');
  });

  it('runs in the given working directory', async () => {
    const child = await launcher.spawn({ file: '/bin/pwd', cwd: scratch, stdout: 'pipe' });
    expect(await readAll(child.stdout)).toBe(`${scratch}\n`);
  });
});

describe('stdio', () => {
  it('gives the child /dev/null as stdin', async () => {
    const child = await launcher.spawn({ file: '/bin/readlink', args: ['/proc/self/fd/0'], stdout: 'pipe' });
    expect(await readAll(child.stdout)).toBe('/dev/null\n');
  });

  it('pipes stdout and stderr separately', async () => {
    const child = await launcher.spawn({ file: 'sh', args: ['-c', 'echo out; echo err >&2'], stdout: 'pipe', stderr: 'pipe' });
    const [out, err] = await Promise.all([readAll(child.stdout), readAll(child.stderr)]);
    expect({ out, err }).toEqual({ out: 'out\n', err: 'err\n' });
  });

  it('pipes output larger than a pipe buffer without losing any', async () => {
    const child = await launcher.spawn({ file: 'sh', args: ['-c', 'head -c 1000000 /dev/zero'], stdout: 'pipe' });
    expect((await readAll(child.stdout)).length).toBe(1_000_000);
    expect(await child.exited).toMatchObject({ code: 0 });
  });

  it('discards output by default', async () => {
    const child = await launcher.spawn({ file: 'sh', args: ['-c', 'echo ignored; target=$(readlink /proc/$$/fd/1); echo "$target" >&2'], stderr: 'pipe' });
    expect(child.stdout).toBeNull();
    expect(await readAll(child.stderr)).toBe('/dev/null\n');
  });

  it('writes output to a file, truncating it first', async () => {
    const log = path.join(scratch, 'truncate.log');
    writeFileSync(log, 'old content that must go\n');
    const child = await launcher.spawn({ file: 'sh', args: ['-c', 'echo new'], stdout: { file: log } });
    await child.exited;
    expect(readFileSync(log, 'utf8')).toBe('new\n');
  });

  it('appends to a file when asked', async () => {
    const log = path.join(scratch, 'append.log');
    writeFileSync(log, 'first\n');
    const child = await launcher.spawn({ file: 'sh', args: ['-c', 'echo second'], stdout: { file: log, append: true } });
    await child.exited;
    expect(readFileSync(log, 'utf8')).toBe('first\nsecond\n');
  });

  it('shares one open file when stdout and stderr name the same path', async () => {
    const log = path.join(scratch, 'both.log');
    const child = await launcher.spawn({
      file: 'sh',
      args: ['-c', 'echo one; echo two >&2; echo three'],
      stdout: { file: log },
      stderr: { file: log },
    });
    await child.exited;
    expect(readFileSync(log, 'utf8')).toBe('one\ntwo\nthree\n');
  });
});

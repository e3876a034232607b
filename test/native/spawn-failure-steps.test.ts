// A failed spawn says which step failed (SpawnError.step), as the native failure table
// (native/src/syscall_id.h) defines it, and its message names that step's subject first: the
// cgroup, the output file, the working directory, not the program it never reached.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher, SpawnError, type SpawnOptions } from '../../src/index.js';
import type { InternalLauncherOptions } from '../../src/launcher/launcher.js';
import { loadNativeBinding } from '../../src/native/binding.js';
import { cgroup2Root, missingRequirement, runningAsRoot } from '../helpers/requirements.js';

let launcher: Launcher;
let scratch: string;

beforeAll(() => {
  launcher = new Launcher({ threads: 2 });
  scratch = mkdtempSync(path.join(tmpdir(), 'parafork-steps-'));
});

afterAll(async () => {
  await launcher.close();
  rmSync(scratch, { recursive: true, force: true });
});

async function failure(options: SpawnOptions, using: Launcher = launcher): Promise<SpawnError> {
  const outcome = await using.spawn(options).then(
    async (child) => {
      await child.exited;
      return undefined;
    },
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(SpawnError);
  return outcome as SpawnError;
}

describe('the native failure table', () => {
  it('gives every failure point one of the six documented steps, and every step a point', () => {
    const steps = new Set(loadNativeBinding().failurePoints.map((point) => point.step));
    expect([...steps].sort()).toEqual(['cgroup', 'clone', 'exec', 'filesystem', 'sandbox', 'stdio']);
  });

  it('names each point with a system call and says what it was doing', () => {
    for (const point of loadNativeBinding().failurePoints) {
      expect(point.syscall).toMatch(/^[a-z_0-9.]+$/);
      expect(point.what.length).toBeGreaterThan(0);
    }
  });
});

describe('step exec', () => {
  it('is a missing executable: ENOENT in execve, the message naming the program', async () => {
    const error = await failure({ file: '/no/such/program', args: ['x'] });
    expect(error).toMatchObject({ step: 'exec', code: 'ENOENT', errno: -2, syscall: 'execve', path: '/no/such/program', spawnargs: ['x'] });
    expect(error.message).toBe('execve: /no/such/program: no such file or directory (ENOENT)');
  });

  it('is a program no PATH entry holds, the message naming the PATH searched', async () => {
    const error = await failure({ file: 'parafork-no-such-tool', env: { PATH: scratch } });
    expect(error).toMatchObject({ step: 'exec', code: 'ENOENT', syscall: 'execve' });
    expect(error.message).toBe(`execve: parafork-no-such-tool: not found in PATH ${scratch} (ENOENT)`);
  });

  it('is a missing working directory: ENOENT in chdir, the message naming the directory before the program', async () => {
    const error = await failure({ file: '/bin/true', cwd: '/no/such/dir' });
    expect(error).toMatchObject({ step: 'exec', code: 'ENOENT', syscall: 'chdir' });
    expect(error.message).toBe('chdir: working directory /no/such/dir: no such file or directory, spawning /bin/true (ENOENT)');
  });
});

describe('step stdio', () => {
  it('is an output file that cannot be opened, the message naming the file', async () => {
    const error = await failure({ file: '/bin/true', stdout: { file: '/no/such/dir/out.log' } });
    expect(error).toMatchObject({ step: 'stdio', code: 'ENOENT', syscall: 'open' });
    expect(error.message).toBe('open: output file /no/such/dir/out.log: no such file or directory, spawning /bin/true (ENOENT)');
  });
});

const cgroupRoot = cgroup2Root();
const cgroupSkip = missingRequirement('needs root and a writable cgroup2 hierarchy', runningAsRoot && cgroupRoot !== undefined);

describe.skipIf(cgroupSkip !== undefined)(`step cgroup ${cgroupSkip ? `(skipped: ${cgroupSkip})` : ''}`, () => {
  it.each(['clone3', 'clone'] as const)('is a cgroup that does not exist: "cgroup.procs: no such cgroup ...", not an ENOENT of the program (%s)', async (clonePath) => {
    const ownPath = readFileSync('/proc/self/cgroup', 'utf8').match(/^0::(.*)$/m)?.[1] ?? '/';
    const missing = path.join(cgroupRoot as string, ownPath, `parafork-test-${process.pid}-missing`);
    const options: InternalLauncherOptions = { threads: 1, clonePath };
    const cgroupLauncher = new Launcher(options);
    try {
      const error = await failure({ file: 'sh', cgroup: missing }, cgroupLauncher);
      expect(error).toMatchObject({ step: 'cgroup', code: 'ENOENT', syscall: 'cgroup.procs', path: 'sh' });
      expect(error.message).toBe(`cgroup.procs: no such cgroup ${missing}, spawning sh (ENOENT)`);
    } finally {
      await cgroupLauncher.close();
    }
  });
});

const sandboxSkip = missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root) and setpriv(1) (util-linux)', runningAsRoot && existsSync('/usr/bin/setpriv'));

describe.skipIf(sandboxSkip !== undefined)(`steps filesystem and sandbox ${sandboxSkip ? `(skipped: ${sandboxSkip})` : ''}`, () => {
  it('filesystem: a rootfs that does not exist is ENOENT in mount, the message naming the root', async () => {
    const error = await failure({ file: 'true', sandbox: { rootfs: '/no/such/root' } });
    expect(error).toMatchObject({ step: 'filesystem', code: 'ENOENT', syscall: 'mount' });
    expect(error.message).toMatch(/^mount: the sandbox's filesystem \(root \/no\/such\/root\): no such file or directory \(the root, a mount's hostPath or mountPath, .*\), spawning true \(ENOENT\)$/);
  });

  it('filesystem: a mount whose hostPath does not exist is ENOENT in mount', async () => {
    const error = await failure({ file: 'true', sandbox: { mounts: [{ hostPath: path.join(scratch, 'absent'), mountPath: '/mnt' }] } });
    expect(error).toMatchObject({ step: 'filesystem', code: 'ENOENT', syscall: 'mount' });
    expect(error.message).toMatch(/^mount: the sandbox's filesystem \(root \/, 1 mount\): /);
  });

  it('sandbox: a process without CAP_NET_ADMIN cannot bring up a task\'s loopback: EPERM in network', () => {
    // A Launcher in a node of its own whose capabilities lack CAP_NET_ADMIN (setpriv(1)); the
    // rest of the sandbox still builds, so only the network step can fail.
    const program = path.join(path.dirname(fileURLToPath(import.meta.url)), 'spawn-failure-probe.ts');
    const probe = spawnSync('/usr/bin/setpriv', ['--bounding-set=-net_admin', '--inh-caps=-net_admin', process.execPath, program, JSON.stringify({ file: 'true', sandbox: { network: 'loopback' } })], {
      encoding: 'utf8',
    });
    expect(probe.stderr).toBe('');
    expect(JSON.parse(probe.stdout)).toEqual({
      step: 'sandbox',
      code: 'EPERM',
      syscall: 'network',
      message: "network: the task's network namespace: operation not permitted, spawning true (EPERM)",
    });
  });
});

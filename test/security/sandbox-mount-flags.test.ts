// Bind mounts into a sandboxed task (issue 12, finding 8): readOnly holds for everything under
// the mount, submounts included, and no bind mount, writable or not, honours setuid bits or device
// nodes. The host directory here has a tmpfs of the test's own mounted on a subdirectory (unmounted
// in afterAll) and a /dev/null-like device node (char 1:3) in each. Needs root.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher, type SandboxOptions } from '../../src/index.js';
import { simulateKernelWithoutMountSetattr, type InternalLauncherOptions } from '../../src/launcher/launcher.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python, runSandboxed } from './sandbox-helpers.js';

const skip = missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root)', runningAsRoot);

/** The mount options of each mount point the task lists (from its /proc/self/mountinfo). */
const mountOptionsScript = `awk '{ print $5, $6 }' /proc/self/mountinfo`;

function optionsOf(mountinfo: string, mountPoint: string): string[] {
  const line = mountinfo.split('\n').find((entry) => entry.split(' ')[0] === mountPoint);
  return line?.split(' ')[1]?.split(',') ?? [];
}

describe.skipIf(skip !== undefined)(`bind mounts into a sandboxed task${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;
  let hostDirectory: string;
  let submount: string;

  beforeAll(() => {
    launcher = new Launcher();
    hostDirectory = mkdtempSync(path.join(tmpdir(), 'parafork-mount-flags-'));
    chmodSync(hostDirectory, 0o777);
    submount = path.join(hostDirectory, 'sub');
    mkdirSync(submount);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=1777', 'parafork-test-submount', submount]);
    // Device nodes a task could use if nodev were missing: the null device, harmless either way.
    execFileSync('mknod', ['-m', '666', path.join(hostDirectory, 'null-device'), 'c', '1', '3']);
    execFileSync('mknod', ['-m', '666', path.join(submount, 'null-device'), 'c', '1', '3']);
  });

  afterAll(async () => {
    await launcher.close();
    execFileSync('umount', [submount]);
    rmSync(hostDirectory, { recursive: true, force: true });
  });

  const mount = (readOnly: boolean): SandboxOptions => ({ mounts: [{ hostPath: hostDirectory, mountPath: '/mnt', readOnly }] });

  // Red team: whatever a Task may write is its own. Every mount it has is read-only but its /tmp
  // and its /proc (whose kernel knobs are read-only mounts of their own), every one is nosuid, and
  // of /proc's entries other than its processes' none is writable (/proc/pressure was, for any
  // user: it is read-only now). Root (runAsUser 0) owns /proc/mtrr, whose writes the kernel refuses
  // without CAP_SYS_ADMIN: the open itself fails with EPERM, checked below.
  const writableScript = [
      'import os',
      'for line in open("/proc/self/mountinfo"):',
      '    point, options = line.split()[4], line.split()[5].split(",")',
      '    if "rw" in options: print("rw", point)',
      '    if "nosuid" not in options: print("suid", point)',
      'for name in sorted(os.listdir("/proc")):',
      '    if name.isdigit() or name in ("self", "thread-self"): continue',
      '    for root, directories, files in os.walk(os.path.join("/proc", name)):',
      '        for entry in directories + files:',
      '            if os.access(os.path.join(root, entry), os.W_OK): print("writable", os.path.join(root, entry))',
      '    if os.access(os.path.join("/proc", name), os.W_OK): print("writable", os.path.join("/proc", name))',
      'if os.path.exists("/proc/mtrr"):',
      '    try: os.close(os.open("/proc/mtrr", os.O_WRONLY)); print("mtrr opened")',
      '    except OSError as error: print("mtrr", os.strerror(error.errno))',
  ].join('\n');

  it.each([
    ['a default Task', {}, []],
    ['root in a user namespace', { userNamespace: true, runAsUser: 0, runAsGroup: 0 }, []],
    ['root (runAsUser 0)', { runAsUser: 0, runAsGroup: 0 }, ['writable /proc/mtrr']],
  ] as const)('%s can write only its /tmp and its own processes\' /proc entries; every mount is nosuid', async (_name, sandbox, rootsOwn) => {
    const run = await runSandboxed(launcher, '/usr/bin/python3', ['-c', writableScript], sandbox);
    expect(run.stderr).toBe('');
    const lines = run.stdout.trim().split('\n').filter((line) => !line.startsWith('mtrr'));
    const hasMtrr = run.stdout.includes('mtrr ');
    expect(lines.sort()).toEqual(['rw /proc', 'rw /tmp', ...(hasMtrr ? rootsOwn : [])].sort());
    if (hasMtrr) expect(run.stdout).toContain(rootsOwn.length > 0 ? 'mtrr Operation not permitted' : 'mtrr Permission denied');
  });

  it('a readOnly mount is read-only all the way down: a submount refuses writes too', async () => {
    const run = await runSandboxed(launcher, '/bin/sh', ['-c', 'ls /mnt/sub; echo x > /mnt/sub/marker; echo x > /mnt/marker'], mount(true));
    expect(run.stdout).toContain('null-device'); // the submount is shown...
    expect(run.stderr.match(/Read-only file system/g)).toHaveLength(2); // ...and read-only
    expect(existsSync(path.join(submount, 'marker'))).toBe(false);
    expect(existsSync(path.join(hostDirectory, 'marker'))).toBe(false);
  });

  it.each([
    ['readOnly', true],
    ['writable', false],
  ])('a %s mount and its submounts are nosuid and nodev', async (_name, readOnly) => {
    const run = await runSandboxed(launcher, '/bin/sh', ['-c', mountOptionsScript], mount(readOnly));
    for (const mountPoint of ['/mnt', '/mnt/sub']) {
      expect(optionsOf(run.stdout, mountPoint)).toEqual(expect.arrayContaining(['nosuid', 'nodev', readOnly ? 'ro' : 'rw']));
    }
  });

  it('cannot use a device node found in a writable mount', async () => {
    const run = await runSandboxed(launcher, '/bin/sh', ['-c', 'echo x > /mnt/null-device; echo x > /mnt/sub/null-device'], { ...mount(false), runAsUser: 0 });
    expect(run.stderr.match(/Permission denied/g)).toHaveLength(2);
  });

  it('reaches no device even through a mount of the host s /dev', async () => {
    // The null and zero devices: harmless to write to, were the write allowed.
    const run = await runSandboxed(launcher, '/bin/sh', ['-c', 'echo x > /mnt/null; echo x > /mnt/zero'], { mounts: [{ hostPath: '/dev', mountPath: '/mnt', readOnly: false }], runAsUser: 0 });
    expect(run.stderr.match(/Permission denied/g)).toHaveLength(2);
  });

  it('brings in the host s /proc only read-only: its kernel knobs stay out of reach', async () => {
    await expect(launcher.spawn({ file: '/bin/true', sandbox: { mounts: [{ hostPath: '/proc', mountPath: '/mnt', readOnly: false }], runAsUser: 0 } })).rejects.toThrow(/readOnly must be true/);
    // Opened for writing and closed unwritten: EROFS is the answer wanted.
    const run = await runSandboxed(launcher, python, ['-c', 'import os\ntry:\n  os.close(os.open("/mnt/sys/kernel/core_pattern", os.O_WRONLY)); print("opened")\nexcept OSError as e: print(e.strerror)'], { mounts: [{ hostPath: '/proc', mountPath: '/mnt' }], runAsUser: 0 });
    expect(run.stdout.trim()).toBe('Read-only file system');
  });

  it('a writable root is nosuid and nodev too', async () => {
    const run = await runSandboxed(launcher, '/bin/sh', ['-c', mountOptionsScript], { readOnlyRootFilesystem: false, ...mount(false) });
    expect(optionsOf(run.stdout, '/')).toEqual(expect.arrayContaining(['nosuid', 'nodev', 'rw']));
    const shared = await runSandboxed(launcher, '/bin/sh', ['-c', mountOptionsScript], { readOnlyRootFilesystem: false });
    expect(optionsOf(shared.stdout, '/')).toEqual(expect.arrayContaining(['nosuid', 'nodev', 'rw']));
  });

  describe('on a kernel without mount_setattr (before 5.12)', () => {
    let oldKernelLauncher: Launcher;
    beforeAll(() => {
      const options: InternalLauncherOptions = { [simulateKernelWithoutMountSetattr]: true };
      oldKernelLauncher = new Launcher(options);
    });
    afterAll(async () => {
      await oldKernelLauncher.close();
    });

    it.each([
      ['readOnly', true],
      ['writable', false],
    ])('a %s mount leaves its submounts out rather than show them writable or with devices', async (_name, readOnly) => {
      const run = await runSandboxed(oldKernelLauncher, '/bin/sh', ['-c', `ls -A /mnt/sub; ${mountOptionsScript}`], mount(readOnly));
      expect(run.stdout).not.toContain('null-device');
      expect(optionsOf(run.stdout, '/mnt/sub')).toEqual([]);
      expect(optionsOf(run.stdout, '/mnt')).toEqual(expect.arrayContaining(['nosuid', 'nodev', readOnly ? 'ro' : 'rw']));
    });
  });
});

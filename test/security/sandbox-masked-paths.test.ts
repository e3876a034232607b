// What a sandboxed task can read of the node and which kernel knobs it can reach through /proc
// (issue 12, findings 6 and 7). The default root is the agent's own filesystem (the host's, for
// `parafork run`): its secrets and the node's identity are masked, as OCI runtimes mask /proc
// paths; every task's fresh /proc has the kernel's global knobs read-only and runc's masked list
// applied, whatever the task's user. Both ways the filesystem is made are covered: the shared
// template (a task without mounts) and the per-task build (a task with a mount). Needs root.
// Payloads are harmless: files are read, and opened for writing only to be closed unwritten.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { defaultMaskedPaths, Launcher, type SandboxOptions } from '../../src/index.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { makeTaskVisibleScratch } from '../helpers/task-visible-scratch.js';
import { python, runSandboxed } from './sandbox-helpers.js';

const skip = missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root)', runningAsRoot);

/** What the task saw at each path: file contents, directory entries, or an errno name. */
interface Observations {
  readonly read: Record<string, string>;
  readonly list: Record<string, string[] | string>;
  readonly openForWriting: Record<string, string>;
}

// Reads each file, lists each directory, and opens each "write" path O_WRONLY and closes it
// without writing a byte (a sysctl is never written).
const observe = `
import errno, json, os, sys
request = json.loads(sys.argv[1])
def attempt(action):
    try:
        return action()
    except OSError as error:
        return errno.errorcode[error.errno]
def read(name):
    with open(name, 'rb') as file:
        return file.read(4096).decode('latin-1')
def open_for_writing(name):
    os.close(os.open(name, os.O_WRONLY))
    return 'opened'
print(json.dumps({
    'read': {name: attempt(lambda: read(name)) for name in request['read']},
    'list': {name: attempt(lambda: sorted(os.listdir(name))) for name in request['list']},
    'openForWriting': {name: attempt(lambda: open_for_writing(name)) for name in request['openForWriting']},
}))
`;

async function observeIn(launcher: Launcher, sandbox: SandboxOptions, request: { read?: string[]; list?: string[]; openForWriting?: string[] }): Promise<Observations> {
  const run = await runSandboxed(launcher, python, ['-c', observe, JSON.stringify({ read: [], list: [], openForWriting: [], ...request })], sandbox);
  if (run.code !== 0) throw new Error(`observer failed (${run.code}): ${run.stderr}`);
  return JSON.parse(run.stdout) as Observations;
}

describe.skipIf(skip !== undefined)(`what a sandboxed task sees of the node${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;
  let scratch: string;
  let stateDirectory: string;

  beforeAll(() => {
    launcher = new Launcher();
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-masks-'));
    // Outside /tmp (a task has its own) and /var/tmp (masked), so that the task's root shows it
    // unless it is masked.
    stateDirectory = makeTaskVisibleScratch('parafork-masks-state-');
    chmodSync(stateDirectory, 0o755);
    writeFileSync(path.join(stateDirectory, 'journal'), 'world-readable agent state\n', { mode: 0o644 });
  });

  afterAll(async () => {
    await launcher.close();
    rmSync(scratch, { recursive: true, force: true });
    rmSync(stateDirectory, { recursive: true, force: true });
  });

  /** What a write-open of a knob should meet: EROFS, or ENOENT where this kernel has no such file. */
  const readOnlyOrAbsent = (knob: string, hostPath = knob) => [knob, existsSync(hostPath) ? 'EROFS' : 'ENOENT'];
  /** Masked /proc files read as empty; a file this kernel lacks stays absent. */
  const emptyOrAbsent = (file: string) => [file, existsSync(file) ? '' : 'ENOENT'];

  // The shared template serves tasks without mounts; a mount makes the child build its own.
  const filesystems = [
    ['the shared filesystem template', () => ({})],
    ['a per-task filesystem (a task with a mount)', () => ({ mounts: [{ hostPath: scratch, mountPath: '/mnt' }] })],
  ] as const;

  describe.each(filesystems)('in %s', (_name, base) => {
    it('the node s name, kernel command line and machine id read as empty', async () => {
      const seen = await observeIn(launcher, base(), { read: ['/etc/hostname', '/proc/cmdline', '/etc/machine-id'] });
      expect(readFileSync('/proc/cmdline', 'utf8')).not.toBe('');
      expect(seen.read).toEqual({ '/etc/hostname': '', '/proc/cmdline': '', '/etc/machine-id': '' });
    });

    it('/etc/hosts names only localhost, unless the task is on the node s network', async () => {
      const seen = await observeIn(launcher, base(), { read: ['/etc/hosts'] });
      expect(seen.read['/etc/hosts']).toBe('127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n');
      const onHostNetwork = await observeIn(launcher, { ...base(), network: 'host' }, { read: ['/etc/hosts'] });
      expect(onHostNetwork.read['/etc/hosts']).toBe(readFileSync('/etc/hosts', 'utf8'));
    });

    it('/root, /home and /run are empty read-only directories', async () => {
      const seen = await observeIn(launcher, base(), { list: ['/root', '/home', '/run', '/var/run'] });
      expect(seen.list).toEqual({ '/root': [], '/home': [], '/run': [], '/var/run': [] });
    });

    it('runc s masked /proc files read as empty and its masked /proc directories list nothing', async () => {
      const files = ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/interrupts', '/proc/latency_stats', '/proc/sched_debug'];
      const seen = await observeIn(launcher, base(), { read: files, list: ['/proc/acpi'] });
      expect(seen.read).toEqual(Object.fromEntries(files.map(emptyOrAbsent)));
      expect(seen.list).toEqual({ '/proc/acpi': existsSync('/proc/acpi') ? [] : 'ENOENT' });
    });

    it('masks the paths a launcher is given, such as the agent s state directory', async () => {
      const journal = path.join(stateDirectory, 'journal');
      const seen = await observeIn(launcher, { ...base(), maskedPaths: [...defaultMaskedPaths, stateDirectory] }, { list: [stateDirectory], read: [journal] });
      expect(seen.list[stateDirectory]).toEqual([]);
      expect(seen.read[journal]).toBe('ENOENT');
    });

    it('has no /sys and no cgroup filesystem', async () => {
      const seen = await observeIn(launcher, base(), { list: ['/sys'] });
      expect(seen.list['/sys']).toEqual([]);
    });

    it('its read-only /proc/sys still answers for the task s own namespaces (pid, network, hostname)', async () => {
      const run = await runSandboxed(launcher, '/bin/sh', ['-c', 'cat /proc/sys/kernel/ns_last_pid /proc/sys/kernel/hostname; ls /proc/sys/net/ipv4/conf'], { ...base(), network: 'loopback' });
      const [lastPid, name, ...interfaces] = run.stdout.trim().split('\n');
      expect(Number(lastPid)).toBeLessThan(100);
      expect(name).toBe('parafork');
      expect(interfaces).toEqual(['all', 'default', 'lo']);
    });

    describe('as root (runAsUser 0, no user namespace)', () => {
      const asRoot = () => ({ ...base(), runAsUser: 0, runAsGroup: 0 });

      it('cannot open a kernel knob under /proc for writing: EROFS', async () => {
        const knobs = [
          readOnlyOrAbsent('/proc/sys/kernel/core_pattern'),
          readOnlyOrAbsent('/proc/sys/net/ipv4/ip_forward'),
          readOnlyOrAbsent('/proc/sys/vm/drop_caches'),
          readOnlyOrAbsent('/proc/sys/kernel/modprobe'),
          readOnlyOrAbsent('/proc/sysrq-trigger'),
          readOnlyOrAbsent('/proc/pressure/memory'),
          readOnlyOrAbsent('/proc/irq/default_smp_affinity'),
          readOnlyOrAbsent('/proc/self/root/proc/sys/kernel/core_pattern', '/proc/sys/kernel/core_pattern'),
          // parafork-init is not dumpable (parafork_init.c): the kernel refuses its /proc/1/root
          // to a task without CAP_SYS_PTRACE before the path is walked, root or not (proc(5)).
          ['/proc/1/root/proc/sys/kernel/core_pattern', 'EACCES'],
        ];
        const seen = await observeIn(launcher, asRoot(), { openForWriting: knobs.map(([knob]) => knob as string) });
        expect(seen.openForWriting).toEqual(Object.fromEntries(knobs));
      });

      it('can still read /proc/sys, and its own /proc/self files stay writable', async () => {
        const seen = await observeIn(launcher, asRoot(), { read: ['/proc/sys/kernel/ostype'], openForWriting: ['/proc/self/comm'] });
        expect(seen.read['/proc/sys/kernel/ostype']).toBe('Linux\n');
        expect(seen.openForWriting['/proc/self/comm']).toBe('opened');
      });

      it('reads nothing of /etc/shadow, /root or /proc/timer_list', async () => {
        const seen = await observeIn(launcher, asRoot(), { read: ['/etc/shadow', '/etc/gshadow', '/proc/timer_list'], list: ['/root', '/etc/ssh'] });
        expect(readFileSync('/etc/shadow', 'utf8')).not.toBe('');
        expect(seen.read).toEqual({ '/etc/shadow': '', '/etc/gshadow': '', '/proc/timer_list': '' });
        expect(seen.list).toEqual({ '/root': [], '/etc/ssh': [] });
      });

      it('cannot write into a masked directory or file', async () => {
        const seen = await observeIn(launcher, asRoot(), { openForWriting: ['/etc/shadow', '/proc/timer_list'] });
        expect(seen.openForWriting).toEqual({ '/etc/shadow': 'EROFS', '/proc/timer_list': 'EROFS' });
        const run = await runSandboxed(launcher, '/bin/sh', ['-c', 'echo x > /run/parafork-marker'], asRoot());
        expect(run.stderr).toContain('Read-only file system');
      });

      it('cannot lower its own OOM score (no CAP_SYS_RESOURCE)', async () => {
        const run = await runSandboxed(launcher, '/bin/sh', ['-c', 'echo -1000 > /proc/self/oom_score_adj; cat /proc/self/oom_score_adj'], asRoot());
        expect(run.stderr).not.toBe('');
        expect(run.stdout.trim()).not.toBe('-1000');
      });
    });
  });

  describe('through the host paths a task brings in', () => {
    it('a mount of the host s root shows its masked paths masked', async () => {
      const seen = await observeIn(launcher, { mounts: [{ hostPath: '/', mountPath: '/mnt' }], runAsUser: 0 }, { read: ['/mnt/etc/shadow', '/mnt/etc/hostname'], list: ['/mnt/root', '/mnt/run'] });
      expect(seen.read).toEqual({ '/mnt/etc/shadow': '', '/mnt/etc/hostname': '' });
      expect(seen.list).toEqual({ '/mnt/root': [], '/mnt/run': [] });
    });

    it('a mount or root that is a masked path, or inside one, is refused at spawn', async () => {
      await expect(launcher.spawn({ file: '/bin/true', sandbox: { mounts: [{ hostPath: '/run', mountPath: '/mnt' }] } })).rejects.toThrow(/is the masked path \/run/);
      await expect(launcher.spawn({ file: '/bin/true', sandbox: { mounts: [{ hostPath: '/proc/self/root/root', mountPath: '/mnt' }] } })).rejects.toThrow(/is the masked path \/root/);
      await expect(launcher.spawn({ file: '/bin/true', sandbox: { rootfs: '/etc/ssh' } })).rejects.toThrow(/rootfs must not be a masked path/);
    });
  });

  it('masks as much with a user namespace', async () => {
    const seen = await observeIn(launcher, { userNamespace: true, runAsUser: 0 }, { read: ['/etc/hostname', '/proc/timer_list'], openForWriting: ['/proc/sys/kernel/core_pattern'] });
    expect(seen.read).toEqual({ '/etc/hostname': '', '/proc/timer_list': '' });
    // Root inside is an unprivileged host id: refused as not the owner before the read-only mount.
    expect(seen.openForWriting['/proc/sys/kernel/core_pattern']).toMatch(/^(EACCES|EROFS)$/);
  });
});

// userNamespace mode: the task runs in its own user namespace, ids 0..65535 inside mapped to the
// unprivileged host ids 100000..165535 (userNamespaceIds). Root inside must still be nobody to
// the host: no host file it may write, no module it may load, no host process it may see.
// Several cases run with seccomp unconfined on purpose: the user namespace alone must deny them.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher, type SandboxOptions } from '../../src/index.js';
import { userNamespaceIds } from '../../src/launcher/sandbox-options.js';
import { sandboxForTask } from '../../src/sandbox/task-sandbox.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python, runSandboxed, syscallProbe } from './sandbox-helpers.js';

function userNamespacesAllowed(): boolean {
  try {
    return Number(readFileSync('/proc/sys/user/max_user_namespaces', 'utf8')) > 0;
  } catch {
    return false;
  }
}

const skip = missingRequirement('userNamespace mode needs root and user namespaces (user.max_user_namespaces > 0)', runningAsRoot && userNamespacesAllowed());
const rootInside: SandboxOptions = { userNamespace: true, runAsUser: 0, runAsGroup: 0 };

/** A host process's ids and capabilities as the host sees them (/proc/PID/status). */
function hostView(pid: number): { uid: string; gid: string; effectiveCapabilities: string } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): string => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1] ?? '';
  return { uid: field('Uid').split(/\s+/)[0] ?? '', gid: field('Gid').split(/\s+/)[0] ?? '', effectiveCapabilities: field('CapEff') };
}

describe.skipIf(skip !== undefined)(`userNamespace mode${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;
  let scratch: string;
  let canary: ChildProcess;

  beforeAll(() => {
    launcher = new Launcher();
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-userns-'));
    chmodSync(scratch, 0o755); // root's on the host: only the host's uid 0 may write here
    canary = spawn('/bin/sleep', ['301'], { stdio: 'ignore' });
  });

  afterAll(async () => {
    canary.kill('SIGKILL');
    await launcher.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('is uid 0 inside, and an unprivileged host uid outside', async () => {
    const child = await launcher.spawn({ file: '/bin/sh', args: ['-c', 'id -u; id -g; cat /proc/self/uid_map; sleep 5'], stdout: 'pipe', sandbox: rootInside });
    let output = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    await new Promise((resolve) => setTimeout(resolve, 200));
    // The pid Launcher reports is init's, on the host: its ids are the task's.
    const outside = hostView(child.pid);
    child.kill('SIGKILL');
    await child.exited;
    const [uid, gid, map] = output.trim().split('\n');
    expect([uid, gid]).toEqual(['0', '0']);
    expect(map?.trim().split(/\s+/)).toEqual(['0', String(userNamespaceIds.hostId), String(userNamespaceIds.size)]);
    expect(outside.uid).toBe(String(userNamespaceIds.hostId));
    expect(outside.gid).toBe(String(userNamespaceIds.hostId));
    expect(outside.effectiveCapabilities).toBe('0000000000000000');
  });

  it('maps to host ids no account on the host has', () => {
    const hostIds = readFileSync('/etc/passwd', 'utf8').split('\n').filter(Boolean).map((line) => Number(line.split(':')[2]));
    const mapped = (id: number): boolean => id >= userNamespaceIds.hostId && id < userNamespaceIds.hostId + userNamespaceIds.size;
    expect(hostIds.filter(mapped)).toEqual([]);
  });

  it('cannot write a host path even through a writable mount, as root inside', async () => {
    const run = await runSandboxed(launcher, '/bin/sh', ['-c', 'echo x > /mnt/marker; echo x > /etc/parafork-userns-marker'], {
      ...rootInside,
      mounts: [{ hostPath: scratch, mountPath: '/mnt', readOnly: false }],
    });
    expect(run.stderr).toContain('Permission denied');
    expect(run.stderr).toContain('Read-only file system');
    expect(existsSync(path.join(scratch, 'marker'))).toBe(false);
    expect(existsSync('/etc/parafork-userns-marker')).toBe(false);
  });

  it('cannot load a kernel module', async () => {
    const run = await runSandboxed(launcher, python, ['-c', syscallProbe('libc.syscall(313, -1, b"", 0)')], rootInside);
    expect(run.stdout.trim()).toBe('errno=EPERM'); // the filter; this kernel has no modules at all (ENOSYS even for the host's root)
  });

  it('has none of the host root powers, even with seccomp unconfined', async () => {
    // swapoff checks CAP_SYS_ADMIN in the host's user namespace before it looks at the path.
    const run = await runSandboxed(launcher, python, ['-c', syscallProbe('libc.swapoff(b"/nonexistent-parafork-swap")')], { ...rootInside, seccomp: 'unconfined' });
    expect(run.stdout.trim()).toBe('errno=EPERM');
  });

  it('cannot mount or set the hostname: it owns none of its other namespaces', async () => {
    const mount = await runSandboxed(launcher, python, ['-c', syscallProbe('libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)')], { ...rootInside, seccomp: 'unconfined' });
    expect(mount.stdout.trim()).toBe('errno=EPERM');
    const rename = await runSandboxed(launcher, python, ['-c', syscallProbe('libc.sethostname(b"escaped", 7)')], { ...rootInside, seccomp: 'unconfined' });
    expect(rename.stdout.trim()).toBe('errno=EPERM');
  });

  it('cannot see or signal host processes', async () => {
    const run = await runSandboxed(launcher, '/bin/sh', ['-c', `cat /proc/[0-9]*/cmdline | tr '\\0' ' '; echo; kill -9 ${canary.pid ?? 0}; echo status=$?`], rootInside);
    expect(run.stdout).not.toContain('sleep 301');
    expect(run.stdout).toContain('status=1');
    expect(canary.exitCode).toBeNull();
    expect(canary.signalCode).toBeNull();
  });

  it('refuses ids the namespace does not map', async () => {
    await expect(launcher.spawn({ file: '/bin/true', sandbox: { userNamespace: true, runAsUser: userNamespaceIds.size } })).rejects.toThrow(/runAsUser/);
    const refused = await sandboxForTask({ command: ['/bin/true'], sandbox: { userNamespace: true, runAsUser: 70000 } });
    expect(refused).toMatchObject({ reason: 'InvalidSpec' });
  });

  it('a Task asking for it gets it (no longer SandboxUnavailable)', async () => {
    const sandboxed = await sandboxForTask({ command: ['/bin/true'], sandbox: { userNamespace: true, runAsUser: 0 } });
    expect(sandboxed).toMatchObject({ sandbox: { userNamespace: true, runAsUser: 0 } });
  });
});

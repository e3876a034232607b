// The default sandbox against hostile tasks. Each case asserts the denial and that the host (the
// agent, the test's own canaries, the filesystem) is unaffected. Needs root: the sandbox builds
// namespaces and mounts.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher } from '../../src/index.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python, runSandboxed, syscallProbe } from './sandbox-helpers.js';

const skip = missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root)', runningAsRoot);

describe.skipIf(skip !== undefined)(`the default sandbox refuses hostile tasks${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;
  let scratch: string;
  let canary: ChildProcess;
  let listener: Server;
  let listenerPort = 0;
  let connectionsSeen = 0;
  const hostHostname = hostname();

  beforeAll(async () => {
    launcher = new Launcher();
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-security-'));
    canary = spawn('/bin/sleep', ['300'], { stdio: 'ignore' });
    listener = createServer((socket) => {
      connectionsSeen++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    listenerPort = (listener.address() as { port: number }).port;
  });

  afterAll(async () => {
    canary.kill('SIGKILL');
    await new Promise((resolve) => listener.close(resolve));
    await launcher.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  const probe = (expression: string) => runSandboxed(launcher, python, ['-c', syscallProbe(expression)]);

  describe('filesystem', () => {
    it('refuses a directory as the command at spawn, EACCES from execve, as without the sandbox', async () => {
      await expect(launcher.spawn({ file: '/tmp', sandbox: {} })).rejects.toMatchObject({ code: 'EACCES', syscall: 'execve' });
      await expect(launcher.spawn({ file: '/tmp' })).rejects.toMatchObject({ code: 'EACCES', syscall: 'execve' });
    });

    it('cannot write to the root filesystem', async () => {
      const run = await runSandboxed(launcher, '/bin/sh', ['-c', 'echo x > /etc/parafork-marker; echo $?']);
      expect(run.stderr).toContain('Read-only file system');
      expect(existsSync('/etc/parafork-marker')).toBe(false);
    });

    it('cannot write through a mount given read-only (the default)', async () => {
      // World-writable on the host, so the mount's read-only flag is the only thing in the way.
      chmodSync(scratch, 0o777);
      const mounted = await runSandboxed(launcher, '/bin/sh', ['-c', 'echo x > /mnt/marker'], { mounts: [{ hostPath: scratch, mountPath: '/mnt' }] });
      expect(mounted.stderr).toContain('Read-only file system');
      expect(existsSync(path.join(scratch, 'marker'))).toBe(false);
      const writable = await runSandboxed(launcher, '/bin/sh', ['-c', 'echo x > /mnt/marker'], { mounts: [{ hostPath: scratch, mountPath: '/mnt', readOnly: false }] });
      expect(writable.code).toBe(0);
      expect(readFileSync(path.join(scratch, 'marker'), 'utf8')).toBe('x\n');
      rmSync(path.join(scratch, 'marker'));
    });

    it('fills only its own size-limited /tmp, with ENOSPC', async () => {
      const run = await runSandboxed(launcher, '/bin/sh', ['-c', 'head -c 20000000 /dev/zero > /tmp/fill; echo status=$?; df -k /tmp | tail -1'], { tmpSizeBytes: 4 * 1024 * 1024 });
      expect(run.stderr).toContain('No space left on device');
      expect(run.stdout).toMatch(/^tmpfs\s+4096\s/m);
    });

    it('cannot reach the agent through /proc: no host pids, its own /proc/self/root', async () => {
      const run = await runSandboxed(launcher, '/bin/sh', ['-c', `ls /proc | grep -c '^[0-9]*$'; test -e /proc/${process.pid} && echo agent-visible; readlink /proc/self/root; cat /proc/self/mountinfo | grep -c ' / / ' `]);
      const [pids] = run.stdout.split('\n');
      expect(Number(pids)).toBeLessThan(10);
      expect(run.stdout).not.toContain('agent-visible');
      expect(run.stdout).toContain('\n/\n');
    });

    it('holds only fds 0, 1 and 2, whatever the agent has open', async () => {
      const run = await runSandboxed(launcher, '/bin/ls', ['/proc/self/fd']);
      expect(run.stdout.split('\n').filter(Boolean).map(Number).sort()).toEqual([0, 1, 2, 3]); // 3: ls's own directory
    });

    it('cannot create device nodes or write to its /dev', async () => {
      const run = await runSandboxed(launcher, '/bin/sh', ['-c', 'mknod /tmp/sda b 8 0; echo x > /dev/parafork-marker; echo ok > /dev/null && echo null-ok']);
      expect(run.stderr).toMatch(/Operation not permitted/);
      expect(run.stderr).toMatch(/Permission denied|Read-only/);
      expect(run.stdout).toContain('null-ok');
    });
  });

  describe('processes and identity', () => {
    it('cannot see or signal a host process (the test s canary)', async () => {
      const run = await runSandboxed(launcher, '/bin/sh', ['-c', `kill -9 ${canary.pid ?? 0}; echo status=$?`]);
      expect(run.stdout).toContain('status=1');
      expect(canary.exitCode).toBeNull();
      expect(canary.signalCode).toBeNull();
    });

    it('runs as 65534 with no capabilities at all and no_new_privs', async () => {
      const run = await runSandboxed(launcher, '/bin/sh', ['-c', 'id -u; id -g; id -G; grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):" /proc/self/status']);
      expect(run.stdout).toMatch(/^65534\n65534\n65534\n/);
      for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(run.stdout).toContain(`${set}:\t0000000000000000`);
      expect(run.stdout).toContain('NoNewPrivs:\t1');
      expect(run.stdout).toContain('Seccomp:\t2');
    });

    it('gains nothing from a setuid-root binary', async () => {
      const run = await runSandboxed(launcher, '/usr/bin/mount', ['-t', 'tmpfs', 'none', '/tmp']);
      expect(run.code).not.toBe(0);
      expect(run.stderr).toContain('must be superuser');
    });

    it('cannot ptrace (its own init, here)', async () => {
      const run = await probe('libc.ptrace(16, 1, 0, 0)'); // PTRACE_ATTACH
      expect(run.stdout.trim()).toBe('errno=EPERM');
    });

    it('cannot kill its own init, and its init forwards SIGTERM to it', async () => {
      const run = await runSandboxed(launcher, '/bin/sh', ['-c', 'kill -9 1; echo still-here']);
      expect(run.stdout).toContain('still-here');
      const child = await launcher.spawn({ file: '/bin/sleep', args: ['30'], sandbox: {} });
      child.kill('SIGTERM');
      expect(await child.exited).toMatchObject({ code: 128 + 15 });
    });

    it('a task that ignores SIGTERM is not ended by it, only by SIGKILL', async () => {
      const child = await launcher.spawn({ file: '/bin/sh', args: ['-c', "trap '' TERM; echo ready; while :; do sleep 1; done"], stdout: 'pipe', sandbox: {} });
      // Only once the trap is set: a SIGTERM before it would (rightly) end the shell.
      await new Promise((resolve) => child.stdout?.once('data', resolve));
      child.kill('SIGTERM');
      const early = await Promise.race([child.exited.then(() => 'exited'), new Promise((resolve) => setTimeout(() => resolve('running'), 500))]);
      expect(early).toBe('running');
      child.kill('SIGKILL');
      expect((await child.exited).signal).toBe('SIGKILL');
    });

    it('changes only its own hostname, and not even that without privileges', async () => {
      const run = await runSandboxed(launcher, '/bin/sh', ['-c', 'hostname; hostname evil-name; hostname']);
      expect(run.stdout).toBe('parafork\nparafork\n');
      expect(hostname()).toBe(hostHostname);
    });

    it('cannot raise its open-file limit past RLIMIT_NOFILE, and gets EMFILE', async () => {
      const run = await runSandboxed(launcher, python, ['-c', 'import os\nfds=[]\ntry:\n  while True: fds.append(os.open("/dev/null", os.O_RDONLY))\nexcept OSError as e: print(len(fds), e.strerror)'], { maxOpenFiles: 64 });
      expect(run.stdout).toMatch(/^6\d Too many open files/);
    });

    it('cannot fork past RLIMIT_NPROC (maxProcesses) of its uid, and gets EAGAIN (a bounded probe: 40 forks against 16)', async () => {
      // init and python are 2 of the uid's 16; each fork sleeps a second and exits, never forks.
      const forks = 'import os, time\nn=0\ntry:\n  for _ in range(40):\n    if os.fork() == 0:\n      time.sleep(1); os._exit(0)\n    n += 1\nexcept OSError as e: print(n, e.strerror)\nelse: print(n, "forked-all")';
      const run = await runSandboxed(launcher, python, ['-c', forks], { runAsUser: 2_147_400_001, runAsGroup: 2_147_400_001, maxProcesses: 16 });
      expect(run.stdout).toMatch(/^14 Resource temporarily unavailable/); // 2 + 14 = 16
    });

    it('refuses maxProcesses for runAsUser 0, which the kernel does not hold to RLIMIT_NPROC', async () => {
      await expect(launcher.spawn({ file: '/bin/true', sandbox: { runAsUser: 0, maxProcesses: 16 } })).rejects.toThrow('sandbox.maxProcesses needs a runAsUser other than 0');
    });

    it('refuses ownUid for runAsUser 0, whose keyrings are the node s root s (sandbox-user-keyrings.test.ts)', async () => {
      await expect(launcher.spawn({ file: '/bin/true', sandbox: { runAsUser: 0, ownUid: true } })).rejects.toThrow('sandbox.ownUid needs a runAsUser other than 0');
    });
  });

  // The default seccomp filter's refusals: seccomp-default-policy.test.ts.

  describe('network', () => {
    it('has no network: cannot reach a listener on the host s loopback', async () => {
      const run = await runSandboxed(launcher, python, ['-c', `import socket\ntry:\n  socket.create_connection(("127.0.0.1", ${listenerPort}), timeout=2)\n  print("connected")\nexcept OSError as e: print("refused", e.errno)`]);
      expect(run.stdout).toMatch(/^refused/);
      expect(connectionsSeen).toBe(0);
    });

    it('has only a down lo even with network loopback, and still cannot reach the host', async () => {
      const run = await runSandboxed(launcher, python, ['-c', `import socket\ns=socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); print("own-loopback-ok")\ntry:\n  socket.create_connection(("127.0.0.1", ${listenerPort}), timeout=2); print("connected")\nexcept OSError as e: print("refused", e.errno)`], { network: 'loopback' });
      expect(run.stdout).toContain('own-loopback-ok');
      expect(run.stdout).toContain('refused');
      expect(connectionsSeen).toBe(0);
    });

    it('cannot open raw sockets', async () => {
      const run = await runSandboxed(launcher, python, ['-c', 'import socket\ntry:\n  socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); print("raw")\nexcept OSError as e: print(e.strerror)']);
      expect(run.stdout.trim()).toBe('Operation not permitted');
    });
  });

  it('leaves the host as it was: no marker files, the canary alive', () => {
    writeFileSync(path.join(scratch, 'host-check'), 'ok');
    expect(readFileSync(path.join(scratch, 'host-check'), 'utf8')).toBe('ok');
    expect(existsSync('/etc/parafork-marker')).toBe(false);
    expect(canary.exitCode).toBeNull();
  });
});

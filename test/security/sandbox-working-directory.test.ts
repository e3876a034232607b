// Red team: a Task's working directory (spec.workingDir) was entered while the child was still
// the agent's root, before it dropped to the Task's ids. Root passes every directory's search
// permission, so a Task could start inside a directory its own uid may not enter (a 0700 parent
// that guards an application's files, certificates, another user's tree) and read what lies
// below it by relative paths: the guarding directory was never searched again. The child now
// enters the working directory as the Task's user, so it fails as it would for that user.
//
// The guarded tree is the test's own, under /var/lib/parafork-tests (the host's /tmp and /var/tmp
// are not in a Task's view):
// a 0700 directory of root's, an open directory inside it and a marker file. Needs root.
//
// Red team, later: the child enters the working directory before its exec, while it still holds
// the agent's descriptors (all of them in user-namespace mode, which copies the whole table), and
// /proc/self/fd/N is a link the kernel follows to whatever fd N is. A working directory of
// /proc/self/fd/N, N a directory the agent holds (the network namespace pool's fd of
// /proc/thread-self/net, a lock's directory), started the Task inside the agent's own mount
// namespace, outside its root: `..` from there reached the node's /proc and its whole filesystem,
// unmasked, with the node's writable mounts. The child now checks that the Task's root reaches the
// directory it entered (getcwd(2)) and fails the spawn with ELOOP otherwise.
import { chmodSync, mkdirSync, readdirSync, readlinkSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher, type SandboxOptions } from '../../src/index.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { makeTaskVisibleScratch } from '../helpers/task-visible-scratch.js';

const skip = missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root)', runningAsRoot);

describe.skipIf(skip !== undefined)(`a Task's working directory${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;
  let scratch: string;
  let inner: string;

  beforeAll(() => {
    launcher = new Launcher();
    scratch = makeTaskVisibleScratch('parafork-working-directory-');
    const guard = path.join(scratch, 'guard');
    inner = path.join(guard, 'inner');
    mkdirSync(inner, { recursive: true, mode: 0o755 });
    writeFileSync(path.join(inner, 'marker'), 'guarded-marker-5e1f\n', { mode: 0o644 });
    // Only the guard keeps others out, as a 0700 home or application directory does.
    chmodSync(guard, 0o700);
  });

  afterAll(async () => {
    await launcher.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('cannot be a directory its user may not reach: the spawn fails with EACCES from chdir, nothing read', async () => {
    const spawning = launcher.spawn({ file: '/bin/cat', args: ['marker'], cwd: inner, stdout: 'pipe', sandbox: {} });
    await expect(spawning).rejects.toMatchObject({ code: 'EACCES', syscall: 'chdir' });
  });

  it('is entered as the Task s user where that user may reach it', async () => {
    // As root (runAsUser 0) the guard is root's own directory, so the Task may enter it.
    const rooted = await launcher.spawn({ file: '/bin/cat', args: ['marker'], cwd: inner, stdout: 'pipe', sandbox: { runAsUser: 0, runAsGroup: 0 } });
    let output = '';
    rooted.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    // Its output may come after its exit is reported: wait for the pipe's end too.
    await Promise.all([rooted.exited, new Promise((resolve) => rooted.stdout?.on('close', resolve))]);
    expect(output).toBe('guarded-marker-5e1f\n');
  });

  /** The launcher process's fds that are directories (after a sandboxed spawn: the pools are started). */
  function heldDirectories(): number[] {
    return readdirSync('/proc/self/fd').map(Number).filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).startsWith('/') && statSync(`/proc/self/fd/${fd}`).isDirectory();
      } catch {
        return false;
      }
    });
  }

  it.each([
    ['the default sandbox', {}],
    ['a user namespace', { userNamespace: true }],
  ] as const)('cannot be a directory the agent holds open, reached through /proc/self/fd, in %s', async (_, sandbox: SandboxOptions) => {
    await (await launcher.spawn({ file: '/bin/true', sandbox })).exited;
    const held = heldDirectories();
    // The setup holds: the network namespace pool keeps an fd of its thread's /proc/thread-self/net.
    expect(held.length).toBeGreaterThan(0);
    const entered: string[] = [];
    for (const fd of held) {
      try {
        const child = await launcher.spawn({ file: '/bin/pwd', cwd: `/proc/self/fd/${fd}`, stdout: 'pipe', sandbox });
        let output = '';
        child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
        await Promise.all([child.exited, new Promise((resolve) => child.stdout?.on('close', resolve))]);
        entered.push(`fd ${fd}: started in ${output.trim()}`);
      } catch (error) {
        expect(error, `fd ${fd}`).toMatchObject({ syscall: 'chdir' });
      }
    }
    expect(entered).toEqual([]);
  });

  it.each([
    ['an ordinary link inside the root', '/bin', realpathSync('/bin')],
    ['a path with ..', '/usr/lib/../bin', '/usr/bin'],
  ])('is still entered through %s', async (_, cwd, expected) => {
    const child = await launcher.spawn({ file: '/bin/pwd', args: ['-P'], cwd, stdout: 'pipe', sandbox: {} });
    let output = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    await Promise.all([child.exited, new Promise((resolve) => child.stdout?.on('close', resolve))]);
    expect(output.trim()).toBe(expected);
  });
});

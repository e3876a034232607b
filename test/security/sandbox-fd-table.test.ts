// Red team, a probe that held (kept as a regression test): which descriptors a Task's program
// starts with. A child is cloned sharing the agent's fd table (CLONE_FILES) and its first system
// call copies only the low part of it (close_range CLOSE_RANGE_UNSHARE, native/src/child_fd_slots.h);
// the fds it needs sit in slots of its spawn thread, while the other spawn threads' slots hold
// copies of their own children's pipes, result files and namespaces at the same moment. None of
// that may reach a Task: whatever the agent holds and however many spawns run at once, a Task sees
// 0 (/dev/null), 1 and 2 (its pipes) and, when it asked for one, 3 (its own result file), in every
// mode (default, user namespace, as uid 0, without a filter). Needs root (the sandbox).
import { closeSync, openSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher, type SandboxOptions } from '../../src/index.js';
import type { InternalSpawnOptions } from '../../src/launcher/spawn-options.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python } from './sandbox-helpers.js';

const skip = missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root)', runningAsRoot);

/** Prints each descriptor and what it is, inode numbers left out (every Task's pipes differ). */
const lister = [
  'import os',
  'for name in sorted(os.listdir("/proc/self/fd"), key=int):',
  '    try: print(name, os.readlink("/proc/self/fd/" + name).split("[")[0])',
  '    except FileNotFoundError: pass', // the directory listdir itself had open
].join('\n');

describe.skipIf(skip !== undefined)(`the descriptors a Task starts with${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;
  const agentFds: number[] = [];

  beforeAll(() => {
    launcher = new Launcher();
    // An agent mid-burst holds hundreds of fds (pooled cgroups' files, namespaces, pipes, pidfds).
    for (let count = 0; count < 2000; count++) agentFds.push(openSync('/etc/hostname', 'r'));
  });
  afterAll(async () => {
    for (const fd of agentFds) closeSync(fd);
    await launcher.close();
  });

  async function listing(sandbox: SandboxOptions, resultFile: boolean): Promise<string> {
    // resultFile: the launcher's internal option, the agent's result file.
    const options: InternalSpawnOptions = { file: python, args: ['-c', lister], stdout: 'pipe', stderr: 'pipe', sandbox, resultFile, env: { PATH: '/usr/bin:/bin' } };
    const child = await launcher.spawn(options);
    let output = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    await Promise.all([child.exited, new Promise((resolve) => child.stdout?.on('close', resolve)), new Promise((resolve) => child.stderr?.on('close', resolve))]);
    return output;
  }

  it.each([
    ['the default sandbox', {}],
    ['a user namespace', { userNamespace: true }],
    ['uid 0', { runAsUser: 0, runAsGroup: 0 }],
    ['no seccomp filter', { seccomp: 'unconfined' }],
    ['network loopback', { network: 'loopback' }],
  ] as const)('holds 0, 1, 2 and its own result file only, in %s, 32 spawned at once beside 2,000 fds of the agent', async (_, sandbox: SandboxOptions) => {
    const listings = await Promise.all(Array.from({ length: 32 }, (__, index) => listing(sandbox, index % 2 === 0)));
    listings.forEach((text, index) => {
      const expected = ['0 /dev/null', '1 pipe:', '2 pipe:', ...(index % 2 === 0 ? ['3 /memfd:parafork-result (deleted)'] : [])];
      expect(text.trim().split('\n')).toEqual(expected);
    });
  });
});

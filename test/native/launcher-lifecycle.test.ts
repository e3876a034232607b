// The Launcher over time: kill, close, fd hygiene, cleanup after many spawns, lock modes, clone
// paths, cgroups and coexistence with Node's own child_process.
import { execFileSync, spawn as nodeSpawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher, type LockMode } from '../../src/index.js';
import type { InternalLauncherOptions } from '../../src/launcher/launcher.js';
import { openFds, readAll, zombieChildren } from '../helpers/process-table.js';
import { cgroup2Root, missingRequirement, runningAsRoot } from '../helpers/requirements.js';

let launcher: Launcher;
beforeAll(() => {
  launcher = new Launcher();
});
afterAll(async () => {
  await launcher.close();
});

describe('kill', () => {
  it('ends a running child with SIGTERM by default', async () => {
    const child = await launcher.spawn({ file: '/bin/sleep', args: ['30'] });
    expect(child.kill()).toBe(true);
    expect(await child.exited).toMatchObject({ code: null, signal: 'SIGTERM' });
  });

  it('sends the signal asked for, by name or number', async () => {
    const byName = await launcher.spawn({ file: '/bin/sleep', args: ['30'] });
    const byNumber = await launcher.spawn({ file: '/bin/sleep', args: ['30'] });
    byName.kill('SIGKILL');
    byNumber.kill(2);
    expect((await byName.exited).signal).toBe('SIGKILL');
    expect((await byNumber.exited).signal).toBe('SIGINT');
  });

  it('returns false once the child has been reaped, never reaching a recycled pid', async () => {
    const child = await launcher.spawn({ file: '/bin/true' });
    await child.exited;
    expect(child.kill('SIGKILL')).toBe(false);
  });

  it('throws for a signal that does not exist', async () => {
    const child = await launcher.spawn({ file: '/bin/sleep', args: ['30'] });
    expect(() => child.kill('SIGNOPE' as NodeJS.Signals)).toThrow(RangeError);
    child.kill('SIGKILL');
    await child.exited;
  });

  it('resets signal dispositions: a child of an agent that ignores SIGPIPE and traps SIGINT dies of them', async () => {
    process.on('SIGINT', () => undefined);
    try {
      const child = await launcher.spawn({ file: '/bin/sleep', args: ['30'] });
      child.kill('SIGINT');
      expect((await child.exited).signal).toBe('SIGINT');
      // Node ignores SIGPIPE; `yes` writing into a closed pipe must die of it, not spin on EPIPE.
      const yes = await launcher.spawn({ file: '/usr/bin/yes', stdout: 'pipe' });
      yes.stdout?.destroy();
      expect((await yes.exited).signal).toBe('SIGPIPE');
    } finally {
      process.removeAllListeners('SIGINT');
    }
  });
});

describe('close', () => {
  it('waits for running children, then refuses new spawns', async () => {
    const ownLauncher = new Launcher({ threads: 2 });
    const child = await ownLauncher.spawn({ file: '/bin/sleep', args: ['0.2'] });
    let exited = false;
    void child.exited.then(() => (exited = true));
    await ownLauncher.close();
    expect(exited).toBe(true);
    await expect(ownLauncher.spawn({ file: '/bin/true' })).rejects.toMatchObject({ code: 'ERR_LAUNCHER_CLOSED' });
  });

  it('does not keep an idle process alive, and does keep it alive while a child runs', () => {
    // The script ends its own work; if the launcher held the event loop open, execFileSync would time out.
    const script = `
      import { Launcher } from '${path.resolve('dist/index.js')}';
      const launcher = new Launcher();
      const started = Date.now();
      const child = await launcher.spawn({ file: '/bin/sleep', args: ['0.3'] });
      child.exited.then(() => console.log(Date.now() - started >= 250 ? 'waited' : 'too early'));
    `;
    const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 10_000 });
    expect(output.toString().trim()).toBe('waited');
  });
});

describe('fd hygiene', () => {
  const modes: [LockMode, 'clone3' | 'clone'][] = [
    ['free', 'clone3'],
    ['xor', 'clone3'],
    ['serial', 'clone3'],
    ['free', 'clone'],
  ];
  it.each(modes)('children hold exactly 0, 1 and 2 (lockMode %s, %s) while other spawns make pipes and the agent holds inherited fds', (lockMode, clonePath) => {
    // fds 3 and 4 of the helper are inherited pipes without close-on-exec: only the child's
    // close_range (or its fallback) keeps them out. `ls` itself opens fd 3 to read the directory.
    const output = execFileSync(process.execPath, ['test/helpers/child-fds.mjs', lockMode, clonePath, '200'], {
      stdio: ['ignore', 'pipe', 'inherit', 'pipe', 'pipe'],
      timeout: 30_000,
    });
    expect(JSON.parse(output.toString())).toEqual(['0,1,2,3']);
  });

  it('10,000 spawns leave no zombie and no leaked fd in the parent', async () => {
    const fdsBefore = openFds();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < 10_000) {
        const index = next++;
        const piped = index % 10 === 0;
        const child = await launcher.spawn({ file: '/bin/true', stdout: piped ? 'pipe' : 'ignore' });
        if (piped) await readAll(child.stdout);
        await child.exited;
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
    expect(zombieChildren()).toEqual([]);
    expect(launcher.stats()).toMatchObject({ queued: 0, running: 0, busyThreads: 0 });
    // Streams close their fds asynchronously; give them a moment before comparing. Fds the test
    // runner closed meanwhile don't matter: only ones opened during the run and still open would.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(openFds().filter((fd) => !fdsBefore.includes(fd))).toEqual([]);
  }, 120_000);
});

describe('event delivery under changing load', () => {
  // While requests wait for spawn threads, events gather for a short window before they reach
  // JavaScript (native/src/event_batcher.h). Every switch between gathering and immediate delivery
  // must leave no event behind: a lost one would hang its spawn() or its exit forever.
  it('settles every spawn and exit while load rises and falls, round after round', async () => {
    // Bursts of 100 piped spawns on 4 threads, each followed by a lone spawn: the deliveries that
    // start and end windows interleave with the pipes' own callbacks. (A mutant that dropped the
    // events gathered while a window ended hung here within ~40 rounds, 2 runs in 5.)
    const busy = new Launcher({ threads: 4 });
    try {
      for (let round = 0; round < 120; round++) {
        const burst = Promise.all(
          Array.from({ length: 100 }, async (_, index) => {
            const child = await busy.spawn({ file: index % 3 === 0 ? '/bin/false' : '/bin/true', stdout: 'pipe' });
            const output = await readAll(child.stdout);
            return { output, code: (await child.exited).code };
          }),
        );
        const results = await settledWithin(burst, 10_000, `round ${round}'s burst`);
        expect(results).toEqual(Array.from({ length: 100 }, (_, index) => ({ output: '', code: index % 3 === 0 ? 1 : 0 })));
        const lone = await settledWithin(busy.spawn({ file: '/bin/true' }), 10_000, `round ${round}'s lone spawn`);
        expect((await settledWithin(lone.exited, 10_000, `round ${round}'s lone exit`)).code).toBe(0);
      }
      expect(busy.stats()).toMatchObject({ queued: 0, running: 0 });
    } finally {
      await busy.close();
    }
  }, 120_000);
});

/** Fails with `what` instead of hanging the test until its timeout. */
async function settledWithin<T>(promise: Promise<T>, milliseconds: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${milliseconds} ms`)), milliseconds);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('lock modes and clone paths', () => {
  it.each(['free', 'xor', 'serial'] as const)('lockMode %s runs 300 concurrent spawns with pipes correctly', async (lockMode) => {
    const options: InternalLauncherOptions = { lockMode, threads: 4 };
    const modeLauncher = new Launcher(options);
    try {
      const outputs = await Promise.all(
        Array.from({ length: 300 }, async (_, index) => {
          const child = await modeLauncher.spawn({ file: 'sh', args: ['-c', `echo ${index}; exit ${index % 7}`], stdout: 'pipe' });
          const [text, exit] = await Promise.all([readAll(child.stdout), child.exited]);
          return text === `${index}\n` && exit.code === index % 7;
        }),
      );
      expect(outputs.every(Boolean)).toBe(true);
      expect(modeLauncher.lockMode).toBe(lockMode);
    } finally {
      await modeLauncher.close();
    }
  });

  it('reports what the kernel allows and which path a launcher uses', () => {
    const capabilities = Launcher.capabilities;
    expect(capabilities.pidfd).toBe(true);
    expect(capabilities.defaultClonePath).toBe(capabilities.clone3 ? 'clone3' : 'clone');
    expect(capabilities.defaultLockMode).toBe(capabilities.closeRangeCloexec ? 'free' : 'xor');
    expect(launcher.clonePath).toBe(capabilities.defaultClonePath);
  });

  it('falls back to clone(2) when asked, with the same behaviour', async () => {
    const options: InternalLauncherOptions = { clonePath: 'clone' };
    const cloneLauncher = new Launcher(options);
    try {
      const child = await cloneLauncher.spawn({ file: 'sh', args: ['-c', 'echo via-clone; exit 3'], stdout: 'pipe' });
      expect(await readAll(child.stdout)).toBe('via-clone\n');
      expect(await child.exited).toMatchObject({ code: 3 });
      await expect(cloneLauncher.spawn({ file: '/no/such' })).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await cloneLauncher.close();
    }
  });
});

describe('side by side with child_process', () => {
  it('both keep their own children: every exit is seen by its owner, with its own code', async () => {
    const nodeExits = Array.from(
      { length: 100 },
      () =>
        new Promise<number | null>((resolve, reject) => {
          const child = nodeSpawn('sh', ['-c', 'exit 3'], { stdio: 'ignore' });
          child.on('error', reject);
          child.on('exit', (code) => resolve(code));
        }),
    );
    const launcherExits = Array.from({ length: 500 }, async () => {
      const child = await launcher.spawn({ file: 'sh', args: ['-c', 'exit 5'] });
      return (await child.exited).code;
    });
    expect(new Set(await Promise.all(nodeExits))).toEqual(new Set([3]));
    expect(new Set(await Promise.all(launcherExits))).toEqual(new Set([5]));
    expect(zombieChildren()).toEqual([]);
  });
});

const cgroupRoot = cgroup2Root();
const cgroupSkip = missingRequirement('needs root and a writable cgroup2 hierarchy', runningAsRoot && cgroupRoot !== undefined);

describe.skipIf(cgroupSkip !== undefined)(`cgroup placement ${cgroupSkip ? `(skipped: ${cgroupSkip})` : ''}`, () => {
  it.each(['clone3', 'clone'] as const)('starts the child inside the given cgroup v2 directory (%s)', async (clonePath) => {
    // Our own cgroup2 path, as the agent will use it: children go only beneath it.
    const ownPath = readFileSync('/proc/self/cgroup', 'utf8').match(/^0::(.*)$/m)?.[1] ?? '/';
    const relative = path.posix.join(ownPath, `parafork-test-${process.pid}-${clonePath}`);
    const directory = path.join(cgroupRoot as string, relative);
    mkdirSync(directory);
    const options: InternalLauncherOptions = { clonePath };
    const cgroupLauncher = new Launcher(options);
    try {
      const child = await cgroupLauncher.spawn({ file: '/bin/cat', args: ['/proc/self/cgroup'], stdout: 'pipe', cgroup: directory });
      const membership = await readAll(child.stdout);
      await child.exited;
      expect(membership).toMatch(new RegExp(`^0::${relative}$`, 'm'));
      await expect(cgroupLauncher.spawn({ file: '/bin/true', cgroup: `${directory}-missing` })).rejects.toMatchObject({
        code: 'ENOENT',
        syscall: 'cgroup.procs',
      });
    } finally {
      await cgroupLauncher.close();
      rmdirSync(directory);
    }
  });
});

// The agent's JS thread ahead of its helper threads and its Tasks (src/launcher/thread-priority.ts,
// native/src/thread_priority.h): the calling thread gets the lower nice value; threads and
// processes made from it afterwards start at 0 again (SCHED_FLAG_RESET_ON_FORK), so neither a
// Task nor anything Node forks inherits it; V8's and libuv's workers, which it waits for, are set
// to it by name. A lower nice value needs CAP_SYS_NICE (root here).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';

import { readdirSync, readFileSync } from 'node:fs';

import { eventLoopThreadNice, prioritizeAutogroup, prioritizeEventLoopHelpers, prioritizeEventLoopThread } from '../../src/launcher/thread-priority.js';
import { hasCapability, missingRequirement } from '../helpers/requirements.js';

const capSysNice = 23; // capabilities(7)
const skip = missingRequirement('a lower nice value needs CAP_SYS_NICE', hasCapability(capSysNice));

describe.skipIf(skip !== undefined)(`the JS thread's priority${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const before = os.getPriority(0); // getpriority(2) of the calling thread on Linux
  /** This process's threads by name: their ids. */
  const threadsNamed = (name: string): number[] => readdirSync('/proc/self/task').filter((thread) => readFileSync(`/proc/self/task/${thread}/comm`, 'utf8').trim() === name).map(Number);
  afterEach(() => {
    os.setPriority(0, before); // a higher nice value needs no privilege
    for (const thread of [...threadsNamed('V8Worker'), ...threadsNamed('libuv-worker')]) os.setPriority(thread, before);
  });

  it('runs the calling thread at a lower nice value, and a process it forks afterwards at 0', () => {
    expect(eventLoopThreadNice).toBeLessThan(0);
    expect(prioritizeEventLoopThread()).toBe(true);
    expect(os.getPriority(0)).toBe(eventLoopThreadNice);
    // `sh -c` reads its own stat: what a fork of this thread starts with.
    const forked = execFileSync('sh', ['-c', 'cut -d")" -f2 /proc/$$/stat'], { encoding: 'utf8' }).trim().split(' ');
    expect(Number(forked[16])).toBe(0); // field 19 of stat(5): nice
  });

  it('leaves a thread already at that nice value or lower as it is', () => {
    os.setPriority(0, eventLoopThreadNice - 1);
    expect(prioritizeEventLoopThread()).toBe(false);
    expect(os.getPriority(0)).toBe(eventLoopThreadNice - 1);
  });

  it('runs V8 s and libuv s worker threads, which the JS thread wakes and may wait for, at the same nice value, starting libuv s first', () => {
    expect(prioritizeEventLoopThread()).toBe(true);
    expect(prioritizeEventLoopHelpers()).toBeGreaterThan(0);
    const helpers = [...threadsNamed('V8Worker'), ...threadsNamed('libuv-worker')];
    expect(threadsNamed('libuv-worker').length).toBeGreaterThan(0);
    for (const thread of helpers) expect(os.getPriority(thread)).toBe(eventLoopThreadNice);
    expect(prioritizeEventLoopHelpers()).toBe(0); // already there
  });

  const autogroups = (() => {
    try {
      return readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() === '1';
    } catch {
      return false;
    }
  })();
  // In a session of its own (setsid(1)), so that the test's own session keeps its autogroup.
  it.skipIf(!autogroups)(`gives the session's autogroup the same nice value where the kernel schedules by autogroups, and puts it back${autogroups ? '' : ' (skipped: kernel.sched_autogroup_enabled is not 1 here)'}`, () => {
    const script = `
      import { readFileSync } from 'node:fs';
      import { prioritizeAutogroup } from '${path.resolve('dist/launcher/thread-priority.js')}';
      const read = () => readFileSync('/proc/self/autogroup', 'utf8').trim().split(' nice ');
      const before = read();
      const restore = prioritizeAutogroup();
      const during = read();
      const again = prioritizeAutogroup();
      restore?.();
      console.log(JSON.stringify({ before, during, set: restore !== undefined, again: again !== undefined, after: read() }));`;
    const result = JSON.parse(execFileSync('setsid', ['--wait', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' })) as Record<string, unknown>;
    expect(result).toMatchObject({ set: true, again: false, before: [expect.any(String), '0'], during: [expect.any(String), String(eventLoopThreadNice)], after: [expect.any(String), '0'] });
    // Its own session's autogroup, not this one's (which other test files' runtimes may raise meanwhile).
    const { before: [groupBefore], during: [groupDuring] } = result as { before: string[]; during: string[] };
    expect(groupDuring).toBe(groupBefore);
    expect(groupBefore).not.toBe(readFileSync('/proc/self/autogroup', 'utf8').split(' nice ')[0]);
  });

  it.skipIf(!autogroups)(`leaves the autogroup of a session it does not lead (a shell's, which it would raise with it) as it is${autogroups ? '' : ' (skipped: kernel.sched_autogroup_enabled is not 1 here)'}`, () => {
    // setsid(1) makes the session; sh leads it, and the node it starts is a member only.
    const script = `import { prioritizeAutogroup } from '${path.resolve('dist/launcher/thread-priority.js')}'; console.log(prioritizeAutogroup() === undefined);`;
    const output = execFileSync('setsid', ['--wait', 'sh', '-c', `"$0" --input-type=module -e "$1"; cat /proc/$$/autogroup`, process.execPath, script], { encoding: 'utf8' });
    expect(output).toMatch(/^true\n\/autogroup-\d+ nice 0\n$/);
  });

  it('refuses a nice value outside -20..19 or not whole, changing nothing', () => {
    for (const nice of [-21, 20, 1.5, Number.NaN]) expect(() => prioritizeEventLoopThread(nice)).toThrow(RangeError);
    for (const nice of [-21, 20, 1.5, Number.NaN]) expect(() => prioritizeEventLoopHelpers(nice)).toThrow(RangeError);
    for (const nice of [-21, 20, 1.5, Number.NaN]) expect(() => prioritizeAutogroup(nice)).toThrow(RangeError);
    expect(os.getPriority(0)).toBe(before);
  });
});

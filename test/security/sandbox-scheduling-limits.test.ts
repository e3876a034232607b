// Red team: what a Task inherits of the agent's rlimits. A Task got RLIMIT_CORE, RLIMIT_NOFILE
// (and RLIMIT_FSIZE, RLIMIT_NPROC when asked) of its own; every other limit was the agent's. Two of
// them decide the Task's CPU priority without any capability (sched(7), setpriority(2)):
// RLIMIT_RTPRIO lets an unprivileged process take a real-time policy (SCHED_FIFO, SCHED_RR) up to
// that priority, and RLIMIT_NICE lets it lower its nice value down to 20 minus the limit. An agent
// started where they are raised (a systemd unit with LimitRTPRIO=, limits.conf for root, a runtime's
// ulimits) handed that to every Task: a SCHED_FIFO busy loop per CPU runs ahead of every ordinary
// process of the node (the agent, the kubelet, sshd) but for the kernel's real-time throttling, and
// no cgroup CPU weight holds it. A Task's RLIMIT_RTPRIO and RLIMIT_NICE are now 0, as a login's are.
//
// The test raises both limits of its own process (the launcher's, whose spawn threads make the
// children), as such an agent would have them, and puts them back afterwards. The probe takes
// SCHED_FIFO priority 1 and nice -5 only to say whether it could, and exits at once. Needs root;
// raising a hard limit takes CAP_SYS_RESOURCE, which some machines' root lacks (a VM whose bounding
// set leaves it out): there the launcher keeps its own limits (0 where they are the defaults), the
// test says so in its name, and the Task's side is checked all the same.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher } from '../../src/index.js';
import { hasCapability, missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python, runSandboxed } from './sandbox-helpers.js';

const skip = missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root)', runningAsRoot);
const capSysResource = 24;
const canRaise = hasCapability(capSysResource);

/** This process's soft and hard limit named as /proc/self/limits names it, e.g. "Max realtime priority". */
function ownLimit(name: string): string {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((entry) => entry.startsWith(name));
  const [soft, hard] = (line ?? '').slice(name.length).trim().split(/\s+/);
  return `${soft}:${hard}`;
}

const probe = [
  'import os',
  'limits = {line[:26].strip(): line[26:].split()[:2] for line in open("/proc/self/limits")}',
  'print("rtprio", *limits["Max realtime priority"])',
  'print("nice", *limits["Max nice priority"])',
  'try:',
  '    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))',
  '    print("fifo taken")',
  'except OSError as error:',
  '    print("fifo refused", error.errno)',
  'try:',
  '    os.setpriority(os.PRIO_PROCESS, 0, -5)',
  '    print("nice taken")',
  'except OSError as error:',
  '    print("nice refused", error.errno)',
].join('\n');

describe.skipIf(skip !== undefined)(`a Task started by an agent with raised scheduling limits${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;
  const before = { rtprio: '', nice: '' };

  beforeAll(() => {
    launcher = new Launcher();
    before.rtprio = ownLimit('Max realtime priority');
    before.nice = ownLimit('Max nice priority');
    if (canRaise) execFileSync('prlimit', ['--pid', String(process.pid), '--rtprio=50:50', '--nice=30:30']);
  });

  afterAll(async () => {
    if (canRaise) execFileSync('prlimit', ['--pid', String(process.pid), `--rtprio=${before.rtprio}`, `--nice=${before.nice}`]);
    await launcher.close();
  });

  it(canRaise
    ? 'runs where the launcher really has them raised'
    : 'runs with the launcher s own limits: this root lacks CAP_SYS_RESOURCE, so they cannot be raised (the raised case is not exercised here)', () => {
    expect(ownLimit('Max realtime priority')).toBe(canRaise ? '50:50' : before.rtprio);
    expect(ownLimit('Max nice priority')).toBe(canRaise ? '30:30' : before.nice);
  });

  it('has RLIMIT_RTPRIO and RLIMIT_NICE 0, and can take neither a real-time policy nor a lower nice value', async () => {
    const run = await runSandboxed(launcher, python, ['-c', probe]);
    expect(run.stderr).toBe('');
    // EPERM (1) and EACCES (13): what sched_setscheduler(2) and setpriority(2) answer without the limit.
    expect(run.stdout.trim().split('\n')).toEqual(['rtprio 0 0', 'nice 0 0', 'fifo refused 1', 'nice refused 13']);
  });

  it('holds for a Task running as root (runAsUser 0), which has no CAP_SYS_NICE either', async () => {
    const run = await runSandboxed(launcher, python, ['-c', probe], { runAsUser: 0, runAsGroup: 0 });
    expect(run.stdout.trim().split('\n')).toEqual(['rtprio 0 0', 'nice 0 0', 'fifo refused 1', 'nice refused 13']);
  });
});

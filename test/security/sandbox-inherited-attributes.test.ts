// Red team, session 15: what a Task inherits of the agent's own process attributes that the sandbox
// did not set. A clone copies the scheduling policy, the nice value and the I/O priority of the
// thread that makes it (sched(7), ioprio_set(2)), and its personality (personality(2)), and exec
// keeps them: nothing in the sandbox put them back. An agent started above an ordinary process (a
// systemd unit with Nice=-10 or IOSchedulingClass=realtime, `nice -n -10 parafork run`, an operator
// who reniced the agent to keep it responsive) handed that to every Task: a default Task ran at
// nice -10, about nine times the CPU weight of the node's ordinary processes, and in the real-time
// I/O class, whose requests the I/O schedulers serve before every best-effort one on the node.
// RLIMIT_NICE and RLIMIT_RTPRIO 0 (sandbox-scheduling-limits) keep a Task from taking more; they do
// not take back what it was born with. An agent started with `setarch -R` (ADDR_NO_RANDOMIZE, for
// a debugging session) ran every Task without address space randomization, which the default
// filter refuses a Task to ask for. A sandboxed Task now starts at nice 0 at the least (a positive
// nice is kept), never in a real-time class, CPU or I/O, and with the plain Linux personality.
//
// The agent is the real CLI, started through a small Python wrapper that lowers its own nice value
// to -10, takes the real-time I/O class and ADDR_NO_RANDOMIZE (as `nice -n -10 ionice -c 1 setarch
// -R` would; Python because the agent's image has no util-linux), then execs `parafork run`. Needs
// root with CAP_SYS_NICE (the chart grants it) and a build. The Tasks only report and exit. Where
// this process may not take ADDR_NO_RANDOMIZE (the chart's seccomp profile for the agent allows
// only the personalities Docker's does), neither can an agent there, and the test says so in its name.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { hasCapability, missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python } from './sandbox-helpers.js';
import { cli, tasksOf, writeTask, type CliRun } from './standalone-cli.js';

const capSysNice = 23;
const skip = missingRequirement('the sandbox needs root, and a nice value below 0 and the real-time I/O class need CAP_SYS_NICE', runningAsRoot && hasCapability(capSysNice));
const noRandomize = 0x40000;
/** Whether a process here may set ADDR_NO_RANDOMIZE (personality(2) answers -1 where a seccomp filter refuses it). */
const canDropRandomization = skip === undefined && execFileSync(python, ['-c', `import ctypes; print(ctypes.CDLL(None).personality(ctypes.c_ulong(${noRandomize})))`]).toString().trim() !== '-1';

// ioprio_get(IOPRIO_WHO_PROCESS, 0): class in bits 13-15 (1 real-time, 2 best-effort, 3 idle, 0 none).
const ioprioGet = 'import ctypes; ioprio = ctypes.CDLL(None, use_errno=True).syscall(252, 1, 0)';
// personality(2)'s argument goes as an unsigned long: ctypes passes a Python int as a C int,
// sign-extended to 64 bits (0xffffffff became 0xffffffffffffffff), which a seccomp profile that
// compares the whole argument (the chart's agent profile, as Docker's) refuses, and the agent's Pod
// read every persona as -1.
// What the Task reports, into its result file: its nice value, policy (0 SCHED_OTHER, 1 FIFO,
// 2 RR, 3 BATCH, 5 IDLE, 6 DEADLINE) from /proc/self/stat (fields 19 and 41), its I/O priority
// class and its personality (personality(0xffffffff) asks without changing it; 0x40000 is
// ADDR_NO_RANDOMIZE).
const report = [
  ioprioGet,
  'import os',
  'persona = ctypes.CDLL(None).personality(ctypes.c_ulong(0xffffffff))',
  'stat = open("/proc/self/stat").read().rsplit(")", 1)[1].split()',
  'open(os.environ["PARAFORK_RESULT"], "w").write(f"nice {stat[16]} policy {stat[38]} io-class {ioprio >> 13} persona {persona:#x}")',
].join('\n');
// The wrapper: lower its own nice value, take the real-time I/O class and ADDR_NO_RANDOMIZE, say
// what it then has, exec the agent.
const elevate = [
  ioprioGet.replace('ioprio = ', 'libc = ctypes.CDLL(None, use_errno=True); assert libc.syscall(251, 1, 0, 1 << 13) == 0; ioprio = '),
  'import os, sys',
  'os.setpriority(os.PRIO_PROCESS, 0, -10)',
  `libc.personality(ctypes.c_ulong(${noRandomize}))`,
  'print(f"agent nice {os.getpriority(os.PRIO_PROCESS, 0)} io-class {ioprio >> 13} persona {libc.personality(ctypes.c_ulong(0xffffffff)):#x}", file=sys.stderr, flush=True)',
  'os.execv(sys.argv[1], sys.argv[1:])',
].join('\n');

async function runElevated(args: readonly string[]): Promise<CliRun> {
  const started = performance.now();
  const child = spawn(python, ['-c', elevate, process.execPath, cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const status = await new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  clearTimeout(timer);
  return { status, stdout, stderr, timedOut: false, elapsedMs: performance.now() - started };
}

describe.skipIf(skip !== undefined)(`a Task started by an agent above an ordinary process s priority, without address space randomization${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  let run: CliRun;

  beforeAll(async () => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-inherited-'));
    const command = [python, '-c', report];
    writeTask(scratch, 'default', { command });
    writeTask(scratch, 'user-namespace', { command, sandbox: { userNamespace: true, runAsUser: 0, runAsGroup: 0 } });
    run = await runElevated(['run', '-o', 'json', '-f', scratch]);
  }, 90_000);

  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it(canDropRandomization
    ? 'runs an agent at nice -10, in the real-time I/O class, without address space randomization'
    : 'runs an agent at nice -10, in the real-time I/O class (not without address space randomization: this process may not set ADDR_NO_RANDOMIZE, so no agent here has it to hand on)', () => {
    expect(run.stderr).toContain(`agent nice -10 io-class 1 persona ${canDropRandomization ? '0x40000' : '0x0'}`);
  });

  it('starts a default Task at nice 0, SCHED_OTHER, outside the real-time I/O class, with the plain Linux personality', () => {
    const task = tasksOf(run).get('default');
    expect(task?.status?.phase, run.stderr).toBe('Succeeded');
    expect(task?.status?.result).toBe('nice 0 policy 0 io-class 0 persona 0x0');
  });

  it('does the same for a userNamespace Task (a clone without CLONE_VFORK, root inside)', () => {
    const task = tasksOf(run).get('user-namespace');
    expect(task?.status?.phase, run.stderr).toBe('Succeeded');
    expect(task?.status?.result).toBe('nice 0 policy 0 io-class 0 persona 0x0');
  });
});

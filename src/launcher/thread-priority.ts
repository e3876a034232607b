// The agent's JavaScript thread ahead of the agent's own helper threads and of its Tasks when it
// wakes: it starts and ends every Task, needs little CPU but needs it at once (issue 15's bar:
// event-loop p99 delay under 10 ms while 1,000 Tasks write). native/src/thread_priority.h says how
// and what it leaves alone; docs/benchmarks.md ("Task logs") what it measured.
// Agent-internal: src/index.ts does not export it (a library user's threads are theirs to rank).
import { readdirSync, readFileSync, stat, writeFileSync } from 'node:fs';
import os from 'node:os';

import { loadNativeBinding } from '../native/binding.js';

/**
 * The nice value the agent's JS thread runs at: a weight ~9x that of a thread at 0 (9,548 against
 * 1,024: sched(7)), among the threads of its own group only (process, autogroup session or cgroup).
 * Measured at 0, -10, -15 and -20 in a 1,000-Task burst on a loaded machine (docs/benchmarks.md,
 * "Task logs"): the lower the value, the lower the event loop's p99 (33-73, 13-21, 6-14, 5-10 ms)
 * but the higher the agent's peak RSS (132-138, 135-143, 143-152, 140-148 MB; the bar is 150).
 */
export const eventLoopThreadNice = -10;

/** Throws a RangeError for anything but a nice value (sched(7): a whole number, -20..19). */
function checkNice(nice: number): void {
  if (!Number.isInteger(nice) || nice < -20 || nice > 19) {
    throw new RangeError(`a nice value is a whole number from -20 to 19, got ${String(nice)}`);
  }
}

/**
 * Runs the calling thread (the JS thread) at `nice`, the threads and processes made from it
 * afterwards at nice 0 again. true once set; false when left as it was: not permitted (no
 * CAP_SYS_NICE), a real-time or idle policy an operator chose, or already at `nice` or lower.
 */
export function prioritizeEventLoopThread(nice: number = eventLoopThreadNice): boolean {
  checkNice(nice);
  return loadNativeBinding().prioritizeCallingThread(nice);
}

/**
 * The threads the JS thread wakes and then may wait for: V8's platform workers (GC and compile
 * jobs) and libuv's thread pool (async fs). Each wake is a pthread_cond_signal (uv_cond_signal in
 * both), and glibc's before 2.41 waits there until the waiters it signalled earlier have woken,
 * so the JS thread at `eventLoopThreadNice` slept until a helper at 0 got a CPU behind the Tasks:
 * 20-800 ms per 1,000-Task burst, young-generation GCs "taking" 150-700 ms (docs/benchmarks.md,
 * "The event loop in the burst's first second").
 */
const eventLoopHelperThreads: ReadonlySet<string> = new Set(['V8Worker', 'libuv-worker']);

/**
 * Runs the JS thread's helper threads (eventLoopHelperThreads) at `nice` too, once the JS thread
 * is: they need little CPU (~0.3 s in a 1,000-Task burst) but the JS thread waits for them. Starts
 * libuv's thread pool first (an fs.stat makes its threads at once; later ones would start at 0, as
 * the JS thread's nice is reset on fork). Returns how many threads it set; a thread already at
 * `nice` or lower, or one it may not lower (no CAP_SYS_NICE), is left as it is.
 */
export function prioritizeEventLoopHelpers(nice: number = eventLoopThreadNice): number {
  checkNice(nice);
  stat('/', () => undefined);
  let set = 0;
  for (const thread of readdirSync('/proc/self/task')) {
    try {
      if (!eventLoopHelperThreads.has(readFileSync(`/proc/self/task/${thread}/comm`, 'utf8').trim())) continue;
      // setpriority(2) with PRIO_PROCESS takes a thread id on Linux: that thread alone.
      if (os.getPriority(Number(thread)) <= nice) continue;
      os.setPriority(Number(thread), nice);
      set += 1;
    } catch {
      // ended meanwhile, or not permitted
    }
  }
  return set;
}

/** What /proc/self/autogroup says: the session's autogroup and its nice value. */
interface Autogroup {
  readonly name: string;
  readonly nice: number;
}

/** The session id of this process (proc_pid_stat(5): the 6th field, the 4th after the command's closing parenthesis). */
function sessionOfThisProcess(): number | undefined {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
  } catch {
    return undefined;
  }
}

function readAutogroup(): Autogroup | undefined {
  try {
    // "/autogroup-4066660 nice -10" (proc(5), /proc/pid/autogroup).
    const match = /^(\S+) nice (-?\d+)$/.exec(readFileSync('/proc/self/autogroup', 'utf8').trim());
    return match === null ? undefined : { name: match[1] ?? '', nice: Number(match[2]) };
  } catch {
    return undefined; // a kernel without CONFIG_SCHED_AUTOGROUP
  }
}

/**
 * Gives the agent's session autogroup `nice` as well, where the kernel schedules by autogroups
 * (kernel.sched_autogroup_enabled, the default of most distributions) and the agent runs in the
 * root cpu cgroup (a host's shell or a service without a cpu cgroup of its own; in a container the
 * autogroup does not count, and this changes nothing). There the kernel weighs the agent's whole
 * session as one entity against its Tasks' group cgroup (one entity too), at 1,024 each whatever
 * the JS thread's nice, which weighs only among the session's own threads: the JS thread, woken,
 * waited for the Tasks' group's turn on both CPUs (bench:logs on this machine, as it runs: loop
 * p99 8-14 ms with the session at 0, 3-8 ms at -10; docs/benchmarks.md, "The agent's session").
 * sched(7), "The autogroup feature": an autogroup's nice is that of the whole session, so it is
 * set only where the agent leads its session (a service manager's service, `setsid`, a detached
 * child): a `parafork run` typed in a shell shares the shell's session, which it would raise with
 * it, and one killed with SIGKILL would leave it raised. The returned function puts it back when
 * the agent stops, if no one changed it meanwhile. Returns undefined where nothing was changed: no
 * autogroups, not the session's leader, already at `nice` or lower, or not permitted (lowering
 * takes CAP_SYS_NICE).
 */
export function prioritizeAutogroup(nice: number = eventLoopThreadNice): (() => void) | undefined {
  checkNice(nice);
  try {
    if (readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() !== '1') return undefined;
  } catch {
    return undefined;
  }
  if (sessionOfThisProcess() !== process.pid) return undefined;
  const before = readAutogroup();
  if (before === undefined || before.nice <= nice) return undefined;
  try {
    writeFileSync('/proc/self/autogroup', String(nice));
  } catch {
    return undefined; // EPERM without CAP_SYS_NICE; EAGAIN when written in the last 100 ms
  }
  return () => {
    const now = readAutogroup();
    if (now?.name !== before.name || now.nice !== nice) return;
    try {
      writeFileSync('/proc/self/autogroup', String(before.nice));
    } catch {
      // left at `nice`: the session ends with it
    }
  };
}

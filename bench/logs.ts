// npm run bench:logs — what keeping Tasks' output costs the agent (issue 15's bar): a burst of N
// sandboxed Tasks (default 1,000, --tasks) each writing --mebibytes of text lines (default 1) as
// fast as it can, run by the agent's own runtime (src/runtime/task-runtime.ts: reconciler, work
// queue, native launcher, sandbox, log pump) over an in-memory store, as `parafork run` and
// `agent --manifests` run it, once with the Tasks' output kept in capped logs and once discarded
// (stdout /dev/null, stderr a pipe for its tail: what Tasks had before issue 15), the two taking
// turns for --rounds rounds (the order flipped each round) so that load from elsewhere on a shared
// machine falls on both alike.
//
// Each turn is a fresh process (this file again, with --turn MODE): the agent there starts empty,
// so its RSS peak is its own mode's, and its CPU (every thread, process.cpuUsage) and the event
// loop's delay (monitorEventLoopDelay, the thread that runs the reconciler) cover the burst alone:
// from the runtime's start to the last Task's end. Nothing else runs on the turn's JS thread: its
// peak RSS is the kernel's high-water mark (VmHWM), read once at the end, and its threads' times
// are read from this process, not by the turn itself (synchronous reads of /proc on the thread
// whose delay is measured, every 20 and 200 ms, added to it: docs/benchmarks.md). Not through a cluster (bench:e2e does that): the
// apiserver and etcd, on the same cores, would set the pace and hide the output path's cost.
//
// Reports per mode the medians of: Tasks/s, agent CPU ms per MiB the Tasks wrote, agent peak RSS,
// event-loop p99 during the burst; for logs also the bytes on disk and files. The bars (issue 15):
// Tasks/s with logs ≥ 0.8× without, agent RSS ≤ 150 MB, event-loop p99 < 10 ms.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import pino from 'pino';

import type { Task } from '../dist/api/task.js';
import { parseAgentConfig } from '../dist/config/agent-config.js';
import { runTasks } from '../dist/standalone/run-tasks.js';
import { parseTimestamp } from '../dist/tasks/time-format.js';
import { median } from './statistics.ts';

const { values: flags } = parseArgs({
  options: {
    tasks: { type: 'string', default: '1000' },
    mebibytes: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
    /**
     * A checkout of another commit, built, with this file copied into its bench/: its logs turns
     * ("logs@baseline") take turns with this build's, for a before/after in one run.
     */
    baseline: { type: 'string' },
    /**
     * Node's (and V8's) flags for each turn's process, e.g. '--optimize-for-size' (default none).
     * The turns run the runtime (runTasks), not the agent's entry point, so the V8 flags
     * src/agent/agent.ts sets at start do not apply to them unless given here.
     */
    'node-options': { type: 'string', default: '' },
    /** Flags of the agent's (src/config/agent-config.ts), e.g. '--max-concurrent 100'. */
    'agent-args': { type: 'string', default: '' },
    /**
     * Where each turn's --state-dir is made (default /run/parafork, the agent's default's parent).
     * The filesystem decides much of what a log costs (ext4 allocates blocks and inodes, tmpfs
     * only pages; an ext4 without a journal also skips recently freed inodes): point it at the
     * disk a node's logs would be on (the chart's /var/lib/parafork) to measure that one.
     */
    'state-root': { type: 'string', default: '/run/parafork' },
    /** Internal: run one turn in this process and print its result as JSON. */
    turn: { type: 'string' },
    'state-dir': { type: 'string' },
  },
});
const tasks = Number(flags.tasks);
const mebibytes = Number(flags.mebibytes);
const rounds = Number(flags.rounds);
const agentArgs = flags['agent-args'].split(' ').filter(Boolean);
const turnNodeOptions = flags['node-options'].split(' ').filter(Boolean);

type Mode = 'logs' | 'discard' | 'logs@baseline';
const modes: readonly Mode[] = flags.baseline === undefined ? ['logs', 'discard'] : ['logs', 'discard', 'logs@baseline'];

interface Turn {
  readonly mode: Mode;
  readonly succeeded: number;
  /** From the runtime's start to the last Task's end (its phase; a Task does not wait for its log). */
  readonly seconds: number;
  /** To the runtime's shutdown, which reads what the pipes still hold into the logs and closes them. */
  readonly drainedSeconds: number;
  readonly cpuSeconds: number;
  /** CPU of the Tasks' processes (every descendant reaped during the turn: /proc's cutime and cstime). */
  readonly taskCpuSeconds: number;
  /** The turn's process, from its start: VmHWM. */
  readonly peakRssMb: number;
  readonly loopP99Ms: number;
  readonly loopMaxMs: number;
  readonly logFiles: number;
  readonly logBytes: number;
  /** Per thread name of the agent: seconds on a CPU, and seconds runnable but waiting for one. */
  readonly threads: Record<string, { cpuSeconds: number; waitSeconds: number }>;
}

/** What a turn prints when its burst starts. */
const burstStarts = 'burst starts';

if (flags.turn !== undefined) {
  const result = await runTurn(flags.turn as Mode, flags['state-dir'] ?? '');
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
} else {
  await compare();
}

async function runTurn(mode: Mode, stateDirectory: string): Promise<Turn> {
  const config = parseAgentConfig(['--state-dir', stateDirectory, ...agentArgs]);
  // A line of text as a program prints it (56 bytes with its newline), over and over.
  const script = `yes 'a line of task output, as a program might print it..' | head -c ${mebibytes * 2 ** 20}`;
  const burst: Task[] = Array.from({ length: tasks }, (_, index) => ({
    apiVersion: 'parafork.dev/v1alpha1',
    kind: 'Task',
    metadata: { name: `writer-${index}`, namespace: 'default' },
    spec: { command: ['sh', '-c', script] },
  }));
  // The parent starts reading this process's threads' times here (compare()).
  process.stdout.write(`${burstStarts}\n`);
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const cpuBefore = process.cpuUsage();
  const taskCpuBefore = reapedChildrenCpuSeconds();
  const started = performance.now();
  let tasksEnded: number | undefined;
  const finished = await runTasks(burst, {
    settings: {
      ...config,
      // Shared with every parafork of the machine, so no two give a Task the same uid.
      taskLogDirectory: mode === 'logs' ? path.join(stateDirectory, 'logs', config.nodeName) : undefined,
    },
    logger: pino({ level: 'warn' }, pino.destination(2)),
    onProgress: (progress) => {
      // Five times a second: the end is known to 200 ms (used only where a Task has no completionTime).
      if (progress.succeeded + progress.failed === progress.total) tasksEnded ??= (performance.now() - started) / 1000;
    },
  });
  const drainedSeconds = (performance.now() - started) / 1000;
  // The end is the last Task's completionTime (to the microsecond), not the progress tick that saw
  // it: ticks come five times a second, so a ~3 s turn's rate came in ~6% steps and the median
  // ratio of the two modes jumped between 0.78x and 0.88x with the same code (docs/benchmarks.md).
  const completions = finished.map((task) => task.status?.completionTime).filter((time) => time !== undefined);
  const lastCompletion = completions.length === finished.length ? Math.max(...completions.map(parseTimestamp)) : undefined;
  const seconds = lastCompletion === undefined ? (tasksEnded ?? drainedSeconds) : (lastCompletion - (performance.timeOrigin + started)) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  loop.disable();
  const logFiles = mode === 'logs' ? filesUnder(path.join(stateDirectory, 'logs')) : [];
  return {
    mode,
    succeeded: finished.filter((task) => task.status?.phase === 'Succeeded').length,
    seconds,
    drainedSeconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    taskCpuSeconds: reapedChildrenCpuSeconds() - taskCpuBefore,
    peakRssMb: highWaterRssBytes() / 2 ** 20,
    loopP99Ms: loop.percentile(99) / 1e6,
    loopMaxMs: loop.max / 1e6,
    logFiles: logFiles.length,
    logBytes: logFiles.reduce((sum, file) => sum + statSync(file).size, 0),
    threads: {}, // filled in by the parent
  };
}

/** This process's peak resident set since it started (VmHWM in /proc/self/status), in bytes. */
function highWaterRssBytes(): number {
  const kibibytes = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  if (kibibytes === undefined) throw new Error('no VmHWM in /proc/self/status');
  return Number(kibibytes) * 1024;
}

/** getrusage(RUSAGE_CHILDREN)'s CPU, which Node does not give: fields 16 and 17 of /proc/self/stat, in clock ticks. */
function reapedChildrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // The fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticksPerSecond = 100; // USER_HZ, the same on every Linux architecture parafork supports
  return (Number(fields[13]) + Number(fields[14])) / ticksPerSecond;
}

interface ThreadTime {
  readonly name: string;
  readonly cpuNs: number;
  readonly waitNs: number;
}

/** Every thread of process `pid`: its name and /proc's schedstat (time on a CPU, time runnable on a run queue). */
function threadTimes(pid: number): Map<string, ThreadTime> {
  const times = new Map<string, ThreadTime>();
  let threads: string[];
  try {
    threads = readdirSync(`/proc/${pid}/task`);
  } catch {
    return times; // it has ended
  }
  for (const thread of threads) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${thread}/comm`, 'utf8').trim();
      const [cpuNs = 0, waitNs = 0] = readFileSync(`/proc/${pid}/task/${thread}/schedstat`, 'utf8').split(' ').map(Number);
      times.set(thread, { name, cpuNs, waitNs });
    } catch {
      // ended between the listing and the read
    }
  }
  return times;
}

function byThreadName(before: Map<string, ThreadTime>, after: Map<string, ThreadTime>): Turn['threads'] {
  const threads: Record<string, { cpuSeconds: number; waitSeconds: number }> = {};
  for (const [id, time] of after) {
    const start = before.get(id);
    const entry = (threads[time.name] ??= { cpuSeconds: 0, waitSeconds: 0 });
    entry.cpuSeconds += (time.cpuNs - (start?.cpuNs ?? 0)) / 1e9;
    entry.waitSeconds += (time.waitNs - (start?.waitNs ?? 0)) / 1e9;
  }
  return threads;
}

function filesUnder(directory: string): string[] {
  return readdirSync(directory, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name));
}

/**
 * Runs one turn in a process of its own and, from this one, reads its threads' times from its
 * burst's start, five times a second: threads end with the runtime, and their last reading stands
 * for them.
 */
async function runTurnProcess(script: string, args: readonly string[]): Promise<Turn> {
  // A session of its own, as a service manager starts an agent (systemd: one per service), so
  // that the agent may raise its session's autogroup (src/launcher/thread-priority.ts) and the
  // bench's own session is left as it is.
  const child = spawn(process.execPath, [...turnNodeOptions, script, ...args], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  const pid = child.pid ?? 0;
  let output = '';
  let before: Map<string, ThreadTime> | undefined;
  let last = new Map<string, ThreadTime>();
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    output += text;
    if (before === undefined && output.includes(`${burstStarts}\n`)) last = before = threadTimes(pid);
  });
  const reader = setInterval(() => {
    if (before !== undefined) last = new Map([...last, ...threadTimes(pid)]);
  }, 200);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearInterval(reader);
  if (code !== 0) throw new Error(`the turn (${args.join(' ')}) exited ${String(code ?? signal)}`);
  const turn = JSON.parse(output.trim().split('\n').at(-1) ?? '') as Turn;
  return { ...turn, threads: byThreadName(before ?? new Map<string, ThreadTime>(), last) };
}

async function compare(): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  const stateRoot = flags['state-root'];
  mkdirSync(stateRoot, { recursive: true });
  const turns: Turn[] = [];
  const loads: number[] = [];
  const machine = `${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, kernel ${os.release()}, ${stateRoot} on ${filesystemOf(stateRoot)}`;
  console.log(`${tasks} sandboxed Tasks x ${mebibytes} MiB, ${rounds} rounds; ${machine}${flags.baseline === undefined ? '' : `; baseline ${flags.baseline}`}${turnNodeOptions.length === 0 ? '' : `; turns' Node flags ${turnNodeOptions.join(' ')}`}`);
  // Each turn's logs are emptied after it and removed only at the end: removed at once, their
  // 2,000 inodes (a directory and a file per Task) would make the next turn's on an ext4 without a
  // journal skip each of them at every allocation for 30 s (ext4's recently_deleted: quadratic,
  // ~1.2 s of the pump's CPU in a 1,000-Task turn), a cost of this bench, not of a turn.
  const emptied: string[] = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? modes : [...modes].reverse();
    for (const mode of order) {
      const stateDirectory = mkdtempSync(path.join(stateRoot, 'bench-logs-'));
      loads.push(os.loadavg()[0] ?? 0);
      try {
        const script = mode === 'logs@baseline' ? path.join(flags.baseline ?? '', 'bench', 'logs.ts') : self;
        const turnArgs = ['--turn', mode === 'logs@baseline' ? 'logs' : mode, '--state-dir', stateDirectory, '--tasks', String(tasks), '--mebibytes', String(mebibytes), '--agent-args', agentArgs.join(' ')];
        const turn = { ...(await runTurnProcess(script, turnArgs)), mode };
        turns.push(turn);
        console.log(`round ${round + 1} ${mode.padEnd(13)} ${(tasks / turn.seconds).toFixed(1).padStart(7)} Tasks/s (all ended ${turn.seconds.toFixed(1)} s, logs closed ${turn.drainedSeconds.toFixed(1)} s)  ${turn.succeeded}/${tasks} succeeded  agent CPU ${turn.cpuSeconds.toFixed(2)} s, Tasks' ${turn.taskCpuSeconds.toFixed(2)} s  RSS ${turn.peakRssMb.toFixed(0)} MB  loop p99 ${turn.loopP99Ms.toFixed(2)} ms (max ${turn.loopMaxMs.toFixed(1)})  load ${loads.at(-1)?.toFixed(1)}`);
      } finally {
        for (const file of filesUnder(stateDirectory)) truncateSync(file);
        emptied.push(stateDirectory);
      }
    }
  }
  for (const directory of emptied) rmSync(directory, { recursive: true, force: true });
  loads.push(os.loadavg()[0] ?? 0);

  const byMode = (mode: Mode): Turn[] => turns.filter((turn) => turn.mode === mode);
  const rate = (mode: Mode): number => median(byMode(mode).map((turn) => tasks / turn.seconds));
  const totalMib = tasks * mebibytes;
  console.log(`\nmedians over ${rounds} rounds; load average (1 min) ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}`);
  // What the burst costs the node's CPUs (agent and Tasks): where the CPUs are the limit (a node
  // the burst has to itself), Tasks/s goes as its inverse.
  const nodeCpu = (mode: Mode): number => median(byMode(mode).map((turn) => turn.cpuSeconds + turn.taskCpuSeconds));
  console.log('output         Tasks/s  vs discard  agent+Tasks CPU s  vs discard  agent CPU ms/MiB  agent peak RSS MB  loop p99 ms  log files  log MiB on disk');
  for (const mode of modes) {
    const entries = byMode(mode);
    const row = [
      mode.padEnd(13),
      rate(mode).toFixed(1).padStart(8),
      `${(rate(mode) / rate('discard')).toFixed(2)}x`.padStart(11),
      nodeCpu(mode).toFixed(2).padStart(17),
      `${(nodeCpu('discard') / nodeCpu(mode)).toFixed(2)}x`.padStart(10),
      median(entries.map((turn) => (turn.cpuSeconds * 1000) / totalMib)).toFixed(2).padStart(16),
      median(entries.map((turn) => turn.peakRssMb)).toFixed(0).padStart(18),
      median(entries.map((turn) => turn.loopP99Ms)).toFixed(2).padStart(12),
      median(entries.map((turn) => turn.logFiles)).toFixed(0).padStart(10),
      (median(entries.map((turn) => turn.logBytes)) / 2 ** 20).toFixed(0).padStart(16),
    ];
    console.log(row.join(' '));
  }
  const resultsDirectory = path.join(path.dirname(self), 'results');
  mkdirSync(resultsDirectory, { recursive: true });
  const file = path.join(resultsDirectory, `logs-${new Date().toISOString().replaceAll(':', '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ tasks, mebibytes, rounds, agentArgs, nodeOptions: turnNodeOptions, baseline: flags.baseline, machine, loads, turns }, null, 2)}\n`);
  console.log(`results: ${file}`);
}

/** The filesystem type of `directory` and, for ext4, whether it has a journal (see --state-root). */
function filesystemOf(directory: string): string {
  const ask = (command: string, args: string[]): string | undefined => {
    try {
      return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return undefined;
    }
  };
  const type = ask('findmnt', ['-no', 'FSTYPE', '-T', directory]) ?? 'unknown';
  if (!type.startsWith('ext')) return type;
  const source = ask('findmnt', ['-no', 'SOURCE', '-T', directory]);
  const features = source === undefined ? undefined : ask('dumpe2fs', ['-h', source]);
  return features === undefined ? type : `${type} (${features.includes('has_journal') ? 'with' : 'without'} a journal)`;
}

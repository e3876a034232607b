// npm run bench:array-logs — what per-index logs cost a Task array (issue 17 with issue 15): one
// standalone array (the runtime `parafork run -f` builds, sandboxed, default limits) of --indexes
// sandboxed /bin/true (or --command), run alternately with its output captured into per-index logs
// and with its output discarded (no log store: stdout to /dev/null, stderr's tail from a pipe),
// --rounds times each. Prints indexes/s of each run, the median ratio, the agent-process CPU per
// index, and the files left behind. Needs root (sandbox, cgroups). Not a test.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { pino } from 'pino';

import type { Task } from '../dist/api/task.js';
import { defaultTaskIds, parseTaskLimitPolicy, taskIdRange } from '../dist/config/agent-config.js';
import { runTasks } from '../dist/standalone/run-tasks.js';

const { values: flags } = parseArgs({
  options: {
    indexes: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '2' },
    command: { type: 'string', default: '/bin/true' },
    // off: both runs unsandboxed (--task-sandbox off), to see the logs' own cost without the sandbox's.
    sandbox: { type: 'string', default: 'on' },
    'only-logs': { type: 'boolean', default: false },
    'keep-logs': { type: 'boolean', default: false },
  },
});
const indexes = Number(flags.indexes);
const rounds = Number(flags.rounds);

function arrayTask(name: string): Task {
  return {
    apiVersion: 'parafork.dev/v1alpha1',
    kind: 'Task',
    metadata: { name, namespace: 'default', uid: `${name}-${process.pid}` },
    spec: { command: flags.command.includes(' ') ? ['/bin/sh', '-c', flags.command] : [flags.command], completions: indexes },
  };
}

/** Files and bytes under `directory`. */
function usage(directory: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const entry of readdirSync(directory, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    files++;
    bytes += statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return { files, bytes };
}

async function runOnce(withLogs: boolean, round: number): Promise<{ rate: number; cpuMsPerIndex: number; files: number; bytes: number }> {
  const logDirectory = mkdtempSync(path.join(os.tmpdir(), 'parafork-array-logs-'));
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const [task] = await runTasks([arrayTask(`bench-${withLogs ? 'logs' : 'discard'}-${round}`)], {
    settings: {
      nodeName: os.hostname(),
      maxConcurrent: 1000,
      workers: 16,
      terminationGraceSeconds: 10,
      shutdownGraceSeconds: 30,
      cgroupParent: undefined,
      taskIds: taskIdRange('task-ids', defaultTaskIds),
      sandboxStagingDirectory: '/run/parafork/root',
      seccompProfileDirectory: '/var/lib/kubelet/seccomp',
      launcher: 'native',
      taskSandbox: flags.sandbox !== 'off',
      taskLimits: parseTaskLimitPolicy({}),
      sandboxMaskedPaths: [],
      sandboxPolicy: { level: 'restricted', allowedHostPaths: [] },
      taskLogMaxBytes: 10 * 2 ** 20,
      logsMaxBytesTotal: 2 * 2 ** 30,
      ...(withLogs ? { taskLogDirectory: logDirectory } : {}),
    },
    logger: pino({ level: 'warn' }),
  });
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  if (task?.status?.phase !== 'Succeeded') throw new Error(`the array ended ${task?.status?.phase}: ${task?.status?.message}`);
  const left = usage(logDirectory);
  if (flags['keep-logs']) console.log(`logs kept in ${logDirectory}`);
  else rmSync(logDirectory, { recursive: true, force: true });
  return { rate: indexes / seconds, cpuMsPerIndex: (cpu.user + cpu.system) / 1000 / indexes, ...left };
}

const results: { logs: boolean; rate: number; cpuMsPerIndex: number; files: number; bytes: number }[] = [];
console.log(`${indexes} indexes of ${flags.command}, ${rounds} rounds, load ${os.loadavg().map((value) => value.toFixed(1)).join(' ')}, ${os.cpus().length} CPUs`);
for (let round = 0; round < rounds; round++) {
  // Alternate which goes first, so a drift in the machine's load falls on both.
  for (const withLogs of flags['only-logs'] ? [true] : round % 2 === 0 ? [false, true] : [true, false]) {
    const result = await runOnce(withLogs, round);
    results.push({ logs: withLogs, ...result });
    console.log(`round ${round + 1} ${withLogs ? 'logs     ' : 'discarded'}: ${result.rate.toFixed(0)} indexes/s, ${result.cpuMsPerIndex.toFixed(3)} ms agent CPU per index, ${result.files} log files (${result.bytes} bytes) left, load ${os.loadavg()[0]?.toFixed(1)}`);
  }
}
const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
};
const logsRate = median(results.filter((result) => result.logs).map((result) => result.rate));
const discardedRate = median(results.filter((result) => !result.logs).map((result) => result.rate));
console.log(`median: logs ${logsRate.toFixed(0)} indexes/s, discarded ${discardedRate.toFixed(0)} indexes/s, ratio ${(logsRate / discardedRate).toFixed(2)}`);

// npm run bench:sandbox — what each sandbox feature costs per spawn of /bin/true, at concurrency 1
// (latency, p50/p99 from the caller's side and the native clone-to-exec time) and 50 (spawns/s),
// all in one run so the rows compare. Rows build up the default sandbox step by step: namespaces
// and identity alone (a bench-only option skips the filesystem), + the filesystem, + seccomp,
// + a per-task cgroup (made, reused and given up as the Task reconciler does, for a Task without
// resource limits), then network "none" (the full default: what a Task with default settings
// gets; its own network namespace, leased from the pool of native/src/network_namespace_pool.h),
// the same with memory, pids and cpu limits, and a network namespace made per task (CLONE_NEWNET,
// lo brought up): close to what network "none" would cost without the pool. The last two rows are
// a Task's whole output path on top of its default sandbox: as Tasks had it before issue 15 (stdout
// to /dev/null, stderr a pipe JavaScript reads for its tail) and to a log the native pump writes.
// --rows a,b,... runs only the rows whose names start with those (plain always). Needs root.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { parseArgs } from 'node:util';

import { Launcher, type SandboxOptions } from '../dist/index.js';
import { benchmarkWithoutFilesystem, type InternalSandboxOptions } from '../dist/launcher/sandbox-options.js';
import { placeControllers, readCgroupLayout } from '../dist/sandbox/cgroup-layout.js';
import { CgroupManager, type CgroupLimits } from '../dist/sandbox/cgroup-manager.js';
import { percentile } from './statistics.ts';

const { values: flags } = parseArgs({ options: { spawns: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '5' }, rows: { type: 'string' } } });
const spawns = Number(flags.spawns);
// The rows take turns, `rounds` times, each with spawns / rounds: on a shared machine, load from
// elsewhere then falls on every row alike instead of on whichever ran when it came.
const rounds = Number(flags.rounds);
const spawnsPerTurn = Math.max(1, Math.round(spawns / rounds));

interface Row {
  readonly name: string;
  readonly sandbox?: InternalSandboxOptions;
  /** A per-task cgroup as the reconciler makes it: for a Task without limits, or with all three. */
  readonly cgroup?: 'no limits' | 'limits' | 'agent defaults';
  /** A Task's output path: before issue 15 (stderr piped to JavaScript), or to a native log. */
  readonly output?: 'stderr pipe' | 'log';
}

const taskLimits: CgroupLimits = { memoryBytes: 256 * 2 ** 20, pids: 64, cpuMillicores: 1000 };
// What a Task that sets no resources.limits gets from the agent (--default-memory 1Gi,
// --default-pids 1024; no CPU default): on a cgroup v1 host each limit in a cgroup is one more
// hierarchy to join. Where pids is on v1 the agent gives a Task with a uid of its own the pids
// default as RLIMIT_NPROC instead (placeDefaultPidsLimit), as the row's sandbox does here.
const layout = readCgroupLayout();
const pidsOnCgroupV1 = placeControllers(layout).pids === 'v1';
const agentDefaultPids = 1024;
const agentDefaultLimits: CgroupLimits = { memoryBytes: 2 ** 30, ...(pidsOnCgroupV1 ? {} : { pids: agentDefaultPids }) };
/** A uid of the row's own (outside --task-ids' default range), as the agent leases one: RLIMIT_NPROC counts per uid. */
const agentDefaultSandbox: SandboxOptions = pidsOnCgroupV1 ? { runAsUser: 2_147_400_000, runAsGroup: 2_147_400_000, maxProcesses: agentDefaultPids } : {};
const fullDefault = 'full default (+network none)';
const allRows: Row[] = [
  { name: 'plain' },
  { name: '+namespaces, identity', sandbox: { network: 'host', seccomp: 'unconfined', [benchmarkWithoutFilesystem]: true } },
  { name: '+mounts', sandbox: { network: 'host', seccomp: 'unconfined' } },
  { name: '+seccomp', sandbox: { network: 'host' } },
  { name: '+cgroup (per task)', sandbox: { network: 'host' }, cgroup: 'no limits' },
  { name: fullDefault, sandbox: {}, cgroup: 'no limits' },
  { name: 'full default + memory/pids/cpu', sandbox: {}, cgroup: 'limits' },
  { name: 'Task default (agent limits)', sandbox: agentDefaultSandbox, cgroup: 'agent defaults' },
  { name: 'per-task netns (loopback)', sandbox: { network: 'loopback' }, cgroup: 'no limits' },
  { name: 'Task default, stderr pipe (old)', sandbox: agentDefaultSandbox, cgroup: 'agent defaults', output: 'stderr pipe' },
  { name: 'Task default, output to log', sandbox: agentDefaultSandbox, cgroup: 'agent defaults', output: 'log' },
];
const rows = allRows.filter((row, index) => index === 0 || flags.rows === undefined || flags.rows.split(',').some((prefix) => row.name.startsWith(prefix)));
const logDirectory = mkdtempSync(path.join(os.tmpdir(), 'parafork-bench-sandbox-logs-'));
let logSerial = 0;

const launcher = new Launcher();
const cgroups = new CgroupManager({ layout, group: `parafork-bench-${process.pid}` });
let cgroupSerial = 0;

async function spawnOnce(row: Row): Promise<{ callerMs: number; nativeMs: number }> {
  const cgroup = row.cgroup ? cgroups.create(`spawn-${cgroupSerial++}`, row.cgroup === 'limits' ? taskLimits : row.cgroup === 'agent defaults' ? agentDefaultLimits : {}) : undefined;
  const started = performance.now();
  const log = row.output === 'log' ? { log: path.join(logDirectory, `task-${logSerial++ % 1000}`, '1.log') } : undefined;
  const child = await launcher.spawn({
    file: '/bin/true',
    ...(row.sandbox ? { sandbox: row.sandbox } : {}),
    ...cgroup?.spawnOptions,
    ...(row.output === 'stderr pipe' ? { stdout: 'ignore', stderr: 'pipe' } : {}),
    ...(log ? { stdout: log, stderr: log } : {}),
  });
  const callerMs = performance.now() - started;
  // As the reconciler waits for the output after the exit: before issue 15 for the stderr
  // stream's end; with a log, only after a failed exit (for status.stderrTail), and /bin/true exits 0.
  const outputDone = child.stderr ? finished(child.stderr.resume()) : undefined;
  await child.exited;
  await outputDone;
  // What the Task reconciler does after an exit: OOM count, kill what is left, give the cgroup up.
  cgroup?.oomKills();
  cgroup?.killAll();
  cgroup?.remove();
  return { callerMs, nativeMs: child.timings.spawnNs / 1e6 };
}

interface Cell {
  callerMs: number[];
  nativeMs: number[];
  spawns: number;
  elapsedMs: number;
  /** Spawns/s of each round's turn, for the per-round ratios. */
  roundRates: number[];
}

async function measure(row: Row, concurrency: number, count: number, into: Cell): Promise<void> {
  let issued = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (issued++ < count) {
        const sample = await spawnOnce(row);
        into.callerMs.push(sample.callerMs);
        into.nativeMs.push(sample.nativeMs);
      }
    }),
  );
  const elapsedMs = performance.now() - started;
  into.elapsedMs += elapsedMs;
  into.spawns += count;
  into.roundRates.push((count / elapsedMs) * 1000);
}

const newCell = (): Cell => ({ callerMs: [], nativeMs: [], spawns: 0, elapsedMs: 0, roundRates: [] });
const perSecond = (cell: Cell): number => (cell.spawns / cell.elapsedMs) * 1000;
/** The median over rounds of this cell's rate over its paired plain turn's rate. */
function ratioToPlain(cell: Cell, plain: Cell): number {
  const ratios = cell.roundRates.map((rate, round) => rate / (plain.roundRates[round] ?? rate)).sort((a, b) => a - b);
  return percentile(ratios, 0.5);
}

const load = (): string => os.loadavg().map((value) => value.toFixed(2)).join(' ');
console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown'}, ${os.availableParallelism()} CPUs, Linux ${os.release()}, Node ${process.version}; ${spawns} spawns per cell in ${rounds} rounds`);
console.log(`load average before: ${load()}`);
console.log(['feature'.padEnd(32), 'c=1 p50'.padStart(9), 'c=1 p99'.padStart(9), 'native p50'.padStart(11), 'c=50 spawns/s'.padStart(14), 'vs plain'.padStart(9)].join(' '));
console.log('(vs plain: the median over rounds of the row\'s c=50 rate over that of a plain turn run just before it)');
// Each row's c=50 turn follows a turn of plain's, which it is compared with: the load a shared
// machine puts on the pair changes less in one second than across a whole round.
const results = rows.map((row) => ({ row, name: row.name, single: newCell(), parallel: newCell(), pairedPlain: newCell() }));
const plainRow = results[0];
for (const result of results) await measure(result.row, 1, 50, newCell()); // warm-up: lazy sandbox resources, page cache, idle cgroups
for (let round = 0; round < rounds; round++) {
  for (const result of results) {
    await measure(result.row, 1, spawnsPerTurn, result.single);
    if (result !== plainRow && plainRow) await measure(plainRow.row, 50, spawnsPerTurn, result.pairedPlain);
    await measure(result.row, 50, spawnsPerTurn, result.parallel);
  }
}
for (const { name, single, parallel, pairedPlain } of results) {
  single.callerMs.sort((a, b) => a - b);
  single.nativeMs.sort((a, b) => a - b);
  console.log(
    [
      name.padEnd(32),
      percentile(single.callerMs, 0.5).toFixed(3).padStart(9),
      percentile(single.callerMs, 0.99).toFixed(3).padStart(9),
      percentile(single.nativeMs, 0.5).toFixed(3).padStart(11),
      perSecond(parallel).toFixed(0).padStart(14),
      `${(pairedPlain.spawns === 0 ? 1 : ratioToPlain(parallel, pairedPlain)).toFixed(2)}x`.padStart(9),
    ].join(' '),
  );
}
console.log(`load average after: ${load()}`);
const full = results.find((result) => result.name === fullDefault);
if (full) {
  const p50 = percentile(full.single.callerMs, 0.5);
  console.log(`\nchecks (issue 12; full default: every sandbox default and a per-task cgroup, without limits):\n  ${p50 <= 0.75 ? 'PASS' : 'FAIL'}  full default sandbox p50 at concurrency 1 <= 0.75 ms: ${p50.toFixed(3)} ms`);
  const ratio = ratioToPlain(full.parallel, full.pairedPlain);
  console.log(`  ${ratio >= 0.5 ? 'PASS' : 'FAIL'}  full default keeps >= 0.5x the plain spawn rate at concurrency 50: ${ratio.toFixed(2)}x`);
}
await launcher.close();
cgroups.removeGroup();
rmSync(logDirectory, { recursive: true, force: true });

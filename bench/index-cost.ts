// What an index's sandbox costs beyond the plain one, part by part (issue 17's rate bar): the
// Launcher at concurrency 50 in this process, sandboxed /bin/true, for sandboxes that add one part
// of bench/array.ts's 'index sandbox' at a time (its cgroup, its memory limit, the group's pids
// budget, its own uid, its log), in interleaved rounds. Prints per spawn the CPU of this process and of its
// reaped children (sandbox init, /bin/true, the child's setup between clone and exec): on a busy
// machine the rate is the cores over their sum. Each round takes the kinds in turn, in the other
// order every second round. `--only PREFIX` runs the kinds whose name starts so; under `perf
// record -a -e cpu-clock -g` that shows where one kind's CPU goes (a fixed period system-wide:
// per-task sampling undercounts processes this short-lived). `--busy N`: N Tasks spin in the
// group's cpu cgroup while each kind with a cgroup runs. Needs root (sandbox, cgroups). Not a test; results are recorded by hand in docs/benchmarks.md.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { Launcher, type SandboxOptions } from '../dist/index.js';
import { placeControllers, readCgroupLayout } from '../dist/sandbox/cgroup-layout.js';
import { CgroupManager, type CgroupLimits } from '../dist/sandbox/cgroup-manager.js';
import { formatTable, loadAverage, log, machineLine, sampleProcess, threadCpuSeconds } from './cluster-harness.ts';

const { values: flags } = parseArgs({
  options: {
    spawns: { type: 'string', default: '3000' },
    rounds: { type: 'string', default: '3' },
    only: { type: 'string' },
    'in-flight': { type: 'string', default: '50' },
    // Tasks that spin (a shell loop) in the group's cpu cgroup while each kind with a cgroup is
    // measured: what a spawn meets on a node whose Tasks are busy.
    busy: { type: 'string', default: '0' },
  },
});

const layout = readCgroupLayout();
/** Where the logs of the kind with logs would go (none is made: /bin/true writes nothing). */
const logDirectory = mkdtempSync(path.join(tmpdir(), 'parafork-index-cost-logs-'));
process.on('exit', () => rmSync(logDirectory, { recursive: true, force: true }));
const pidsOnCgroupV1 = placeControllers(layout).pids === 'v1';
const ownUid = 2_147_400_000;
const agentDefaultPids = 1024;
let nextUid = 0;

interface Kind {
  readonly name: string;
  /** Undefined: no cgroup of its own. */
  readonly limits?: CgroupLimits;
  readonly sandbox: SandboxOptions;
  /** A manager with the agent's default budget on the group's processes (every task joins its v1 pids cgroup). */
  readonly budget?: boolean;
  /** The memory peak kept for the task (CgroupManager.create's default): a reused v1 cgroup's is reset at each spawn. An index's is not. */
  readonly memoryPeak?: boolean;
  /** A uid of its own for every spawn, least recently used first, as the agent leases one to each index (task-identities.ts). */
  readonly uidPerSpawn?: boolean;
  /** stdout and stderr to a log of its own made at the first byte, as an index's (the agent keeps Task logs by default). */
  readonly log?: boolean;
}

const uidSandbox: SandboxOptions = pidsOnCgroupV1 ? { runAsUser: ownUid, runAsGroup: ownUid, maxProcesses: agentDefaultPids } : {};
const memoryLimit: CgroupLimits = { memoryBytes: 2 ** 30, ...(pidsOnCgroupV1 ? {} : { pids: agentDefaultPids }) };
const kinds: readonly Kind[] = [
  { name: 'plain', sandbox: {} },
  { name: 'own uid', sandbox: uidSandbox },
  { name: 'cgroup (no limits)', limits: {}, sandbox: {} },
  { name: 'cgroup + memory', limits: memoryLimit, sandbox: {}, memoryPeak: false },
  { name: 'index (array.ts)', limits: memoryLimit, sandbox: uidSandbox, memoryPeak: true },
  { name: 'own uid per spawn', sandbox: uidSandbox, uidPerSpawn: true },
  { name: 'index as the agent (uid per spawn, no peak, pids budget)', limits: memoryLimit, sandbox: uidSandbox, budget: true, memoryPeak: false, uidPerSpawn: true },
  // What an agent with no cost of its own beyond the Launcher's loop would reach: the bound on an
  // array's rate that its sandbox and log set (issue 17's bar is against 'plain').
  { name: 'index as the agent, with its log', limits: memoryLimit, sandbox: uidSandbox, budget: true, memoryPeak: false, uidPerSpawn: true, log: true },
];

interface Sample {
  readonly spawnsPerSecond: number;
  readonly selfMs: number;
  readonly childrenMs: number;
  /** The spawn threads' CPU (parafork-sandbx: the clone and what prepares it; the child's own setup counts as the child's). */
  readonly spawnThreadsMs: number;
}

async function measure(kind: Kind, count: number, inFlight: number): Promise<Sample> {
  const launcher = new Launcher();
  const cgroups = kind.limits === undefined ? undefined : new CgroupManager({ layout, group: `parafork-bench-index-cost-${process.pid}`, ...(kind.budget ? { tasksPidsMax: 2 ** 21 } : {}) });
  const busy: { readonly cgroup: ReturnType<CgroupManager['create']>; readonly exited: Promise<unknown> }[] = [];
  try {
    for (let index = 0; index < (cgroups === undefined ? 0 : busyTasks); index++) {
      const cgroup = (cgroups as CgroupManager).create(`busy-${index}`, {});
      const child = await launcher.spawn({ file: '/bin/sh', args: ['-c', 'while :; do :; done'], sandbox: {}, ...cgroup.spawnOptions });
      busy.push({ cgroup, exited: child.exited });
    }
    // Warm-up: the pool of cgroups and namespaces as an array's turnover keeps it.
    const run = async (total: number): Promise<void> => {
      let issued = 0;
      let serial = 0;
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (issued++ < total) {
            const cgroup = cgroups?.create(`s-${serial++}`, kind.limits ?? {}, { memoryPeak: kind.memoryPeak ?? false });
            const uid = ownUid + (nextUid++ % 65_536);
            const sandbox = kind.uidPerSpawn ? { ...kind.sandbox, runAsUser: uid, runAsGroup: uid } : kind.sandbox;
            const output = kind.log ? { log: path.join(logDirectory, `${serial}.log`), createWhenWritten: true } : undefined;
            const child = await launcher.spawn({ file: '/bin/true', sandbox, ...cgroup?.spawnOptions, ...(output === undefined ? {} : { stdout: output, stderr: output }) });
            await child.exited;
            cgroup?.oomKills();
            cgroup?.killAll();
            cgroup?.remove();
          }
        }),
      );
    };
    await run(Math.min(500, count));
    const cpuBefore = process.cpuUsage();
    const childrenBefore = sampleProcess(process.pid).childrenCpuSeconds;
    const spawnThreadsBefore = threadCpuSeconds('self').get('parafork-sandbx') ?? 0;
    const started = performance.now();
    await run(count);
    const elapsedMs = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    const childrenSeconds = sampleProcess(process.pid).childrenCpuSeconds - childrenBefore;
    const spawnThreadsSeconds = (threadCpuSeconds('self').get('parafork-sandbx') ?? 0) - spawnThreadsBefore;
    return { spawnsPerSecond: (count / elapsedMs) * 1000, selfMs: (cpu.user + cpu.system) / 1000 / count, childrenMs: (childrenSeconds * 1000) / count, spawnThreadsMs: (spawnThreadsSeconds * 1000) / count };
  } finally {
    for (const { cgroup } of busy) cgroup.killAll();
    await Promise.all(busy.map(({ exited }) => exited));
    for (const { cgroup } of busy) await cgroup.removeAsync();
    await launcher.close();
    cgroups?.removeGroup();
  }
}

const count = Number(flags.spawns);
const rounds = Number(flags.rounds);
const inFlight = Number(flags['in-flight']);
const busyTasks = Number(flags.busy);
const chosen = flags.only === undefined ? kinds : kinds.filter((kind) => kind.name.startsWith(flags.only ?? ''));
if (chosen.length === 0) throw new Error(`--only ${flags.only}: no such kind (${kinds.map((kind) => kind.name).join(', ')})`);
log(machineLine());
const samples = new Map<string, Sample[]>(chosen.map((kind) => [kind.name, []]));
for (let round = 0; round < rounds; round++) {
  // In the other order every second round: a kind's teardown (its group's cgroups, namespaces and,
  // with --busy, its spinning Tasks) runs on into the start of the next kind's measurement.
  for (const kind of round % 2 === 0 ? chosen : [...chosen].reverse()) {
    const sample = await measure(kind, count, inFlight);
    samples.get(kind.name)?.push(sample);
    log(`round ${round + 1} ${kind.name}: ${sample.spawnsPerSecond.toFixed(0)}/s, self ${sample.selfMs.toFixed(3)} (spawn threads ${sample.spawnThreadsMs.toFixed(3)}) + children ${sample.childrenMs.toFixed(3)} ms/spawn; load ${loadAverage()}`);
  }
}
const mean = (values: readonly number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;
const plain = samples.get('plain');
const rows = [...samples].map(([name, list]) => {
  const self = mean(list.map((sample) => sample.selfMs));
  const children = mean(list.map((sample) => sample.childrenMs));
  const rate = mean(list.map((sample) => sample.spawnsPerSecond));
  const spawnThreads = mean(list.map((sample) => sample.spawnThreadsMs));
  const plainSum = plain === undefined ? undefined : mean(plain.map((sample) => sample.selfMs + sample.childrenMs));
  return [name, rate.toFixed(0), self.toFixed(3), spawnThreads.toFixed(3), children.toFixed(3), (self + children).toFixed(3), plainSum === undefined ? '-' : `${(self + children - plainSum >= 0 ? '+' : '')}${(self + children - plainSum).toFixed(3)}`];
});
console.log(formatTable(['sandbox', 'spawns/s', 'self ms/spawn', 'of which spawn threads', 'children ms/spawn', 'sum', 'vs plain'], rows));

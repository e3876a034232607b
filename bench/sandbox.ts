// npm run bench:sandbox — what each sandbox feature costs per spawn of /bin/true, at concurrency 1
// (latency, p50/p99 from the caller's side and the native clone-to-exec time) and 50 (spawns/s),
// all in one run so the rows compare. Rows build up the default sandbox step by step; the
// sandbox cannot switch namespaces on without its filesystem, so those share one row. Needs root.
import os from 'node:os';
import { parseArgs } from 'node:util';

import { Launcher, type SandboxOptions } from '../dist/index.js';
import { readCgroupLayout } from '../dist/sandbox/cgroup-layout.js';
import { CgroupManager } from '../dist/sandbox/cgroup-manager.js';
import { percentile } from './statistics.ts';

const { values: flags } = parseArgs({ options: { spawns: { type: 'string', default: '1000' } } });
const spawns = Number(flags.spawns);

interface Row {
  readonly name: string;
  readonly sandbox?: SandboxOptions;
  readonly cgroup?: boolean;
}

const rows: Row[] = [
  { name: 'plain' },
  { name: '+namespaces, mounts, identity', sandbox: { network: 'host', seccomp: 'unconfined' } },
  { name: '+seccomp', sandbox: { network: 'host' } },
  { name: 'full default (+network none)', sandbox: {} },
  { name: 'full default +cgroup', sandbox: {}, cgroup: true },
  { name: 'per-task netns (loopback)', sandbox: { network: 'loopback' } },
];

const launcher = new Launcher();
const cgroups = new CgroupManager({ layout: readCgroupLayout(), group: `parafork-bench-${process.pid}` });
let cgroupSerial = 0;

async function spawnOnce(row: Row): Promise<{ callerMs: number; nativeMs: number }> {
  const cgroup = row.cgroup ? cgroups.create(`spawn-${cgroupSerial++}`, { memoryBytes: 256 * 2 ** 20, pids: 64, cpuMillicores: 1000 }) : undefined;
  const started = performance.now();
  const child = await launcher.spawn({
    file: '/bin/true',
    ...(row.sandbox ? { sandbox: row.sandbox } : {}),
    ...(cgroup?.v2Directory !== undefined ? { cgroup: cgroup.v2Directory } : {}),
    ...(cgroup ? { cgroupsV1: cgroup.v1Directories } : {}),
  });
  const callerMs = performance.now() - started;
  await child.exited;
  cgroup?.remove();
  return { callerMs, nativeMs: child.timings.spawnNs / 1e6 };
}

async function measure(row: Row, concurrency: number): Promise<{ callerMs: number[]; nativeMs: number[]; perSecond: number }> {
  const callerMs: number[] = [];
  const nativeMs: number[] = [];
  let issued = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (issued++ < spawns) {
        const sample = await spawnOnce(row);
        callerMs.push(sample.callerMs);
        nativeMs.push(sample.nativeMs);
      }
    }),
  );
  return { callerMs: callerMs.sort((a, b) => a - b), nativeMs: nativeMs.sort((a, b) => a - b), perSecond: (spawns / (performance.now() - started)) * 1000 };
}

console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown'}, ${os.availableParallelism()} CPUs, Linux ${os.release()}, Node ${process.version}; ${spawns} spawns per cell`);
console.log(['feature'.padEnd(32), 'c=1 p50'.padStart(9), 'c=1 p99'.padStart(9), 'native p50'.padStart(11), 'c=50 spawns/s'.padStart(14), 'vs plain'.padStart(9)].join(' '));
let plainRate = 0;
const results = [];
for (const row of rows) {
  await measure(row, 1); // warm-up: lazy sandbox resources, page cache
  const single = await measure(row, 1);
  const parallel = await measure(row, 50);
  if (row.name === 'plain') plainRate = parallel.perSecond;
  results.push({ name: row.name, single, parallel });
  console.log(
    [
      row.name.padEnd(32),
      percentile(single.callerMs, 0.5).toFixed(3).padStart(9),
      percentile(single.callerMs, 0.99).toFixed(3).padStart(9),
      percentile(single.nativeMs, 0.5).toFixed(3).padStart(11),
      parallel.perSecond.toFixed(0).padStart(14),
      `${(parallel.perSecond / plainRate).toFixed(2)}x`.padStart(9),
    ].join(' '),
  );
}
const full = results.find((result) => result.name === 'full default (+network none)');
if (full) {
  const p50 = percentile(full.single.callerMs, 0.5);
  console.log(`\nchecks:\n  ${p50 <= 0.75 ? 'PASS' : 'FAIL'}  full default sandbox p50 at concurrency 1 <= 0.75 ms: ${p50.toFixed(3)} ms`);
  const ratio = full.parallel.perSecond / plainRate;
  console.log(`  ${ratio >= 0.4 ? 'PASS' : 'FAIL'}  full default keeps >= 0.4x the plain spawn rate at concurrency 50: ${ratio.toFixed(2)}x`);
}
await launcher.close();
cgroups.removeGroup();

// npm run bench:logs — what keeping a child's output costs, per output path, in one run: N children
// (default 1,000, --tasks) each writing --mebibytes of text lines (default 1) as fast as they can, at
// concurrency --concurrency (default 50), with stdout+stderr going to
//   discard  /dev/null (what Tasks had before issue 15; the baseline)
//   file     a file the child writes straight into (no cap, no stream tags, no timestamps)
//   log      a pipe the native log pump reads into a capped CRI-format log (native/src/log_pump.h)
// For each: children/s, agent (this process, every thread) CPU per MiB written, peak RSS, and the
// JS event loop's p99 delay while they write. Rows take turns in --rounds rounds so that load from
// elsewhere on a shared machine falls on all of them alike. Unsandboxed: the output path costs the
// same inside a sandbox, and the sandbox's own cost is bench:sandbox's.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { Launcher, type OutputOption } from '../dist/index.js';
import { median } from './statistics.ts';

const { values: flags } = parseArgs({
  options: {
    tasks: { type: 'string', default: '1000' },
    mebibytes: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
  },
});
const tasks = Number(flags.tasks);
const bytesEach = Number(flags.mebibytes) * 2 ** 20;
const concurrency = Number(flags.concurrency);
const rounds = Number(flags.rounds);
const tasksPerTurn = Math.max(1, Math.round(tasks / rounds));

type Mode = 'discard' | 'file' | 'log';
const modes: Mode[] = ['discard', 'file', 'log'];

interface Turn {
  readonly seconds: number;
  readonly cpuSeconds: number;
  readonly loopP99Ms: number;
}

const launcher = new Launcher();
const scratch = mkdtempSync(path.join(os.tmpdir(), 'parafork-bench-logs-'));
// A line of text as a program prints it (56 bytes with its newline), over and over.
const script = `yes 'a line of task output, as a program might print it..' | head -c ${bytesEach}`;
let serial = 0;

function outputFor(mode: Mode): OutputOption {
  serial++;
  if (mode === 'discard') return 'ignore';
  if (mode === 'file') return { file: path.join(scratch, `file-${serial % 100}.out`) };
  return { log: path.join(scratch, `task-${serial % 100}`, '1.log') };
}

async function turn(mode: Mode, count: number): Promise<Turn> {
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let next = 0;
  async function worker(): Promise<void> {
    while (next < count) {
      next++;
      const output = outputFor(mode);
      const child = await launcher.spawn({ file: 'sh', args: ['-c', script], stdout: output, stderr: output });
      const exit = await child.exited;
      await child.log;
      if (exit.code !== 0) throw new Error(`a writer exited ${String(exit.code ?? exit.signal)}`);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  loop.disable();
  return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, loopP99Ms: loop.percentile(99) / 1e6 };
}

const turns = new Map<Mode, Turn[]>(modes.map((mode) => [mode, []]));
let peakRssMb = 0;
const rssSampler = setInterval(() => {
  peakRssMb = Math.max(peakRssMb, process.memoryUsage.rss() / 2 ** 20);
}, 50);
await turn('log', Math.min(50, tasksPerTurn)); // warm-up
for (let round = 0; round < rounds; round++) {
  for (const mode of modes) turns.get(mode)?.push(await turn(mode, tasksPerTurn));
}
clearInterval(rssSampler);
await launcher.close();
rmSync(scratch, { recursive: true, force: true });

const baselineRate = median((turns.get('discard') ?? []).map((entry) => tasksPerTurn / entry.seconds));
console.log(`${tasks} children x ${bytesEach / 2 ** 20} MiB at c=${concurrency}, ${rounds} rounds; ${os.cpus().length} CPUs, load ${os.loadavg().map((value) => value.toFixed(2)).join(' ')}`);
console.log('mode     children/s  vs discard  agent CPU ms/MiB  loop p99 ms');
for (const mode of modes) {
  const entries = turns.get(mode) ?? [];
  const rate = median(entries.map((entry) => tasksPerTurn / entry.seconds));
  const cpuPerMib = median(entries.map((entry) => (entry.cpuSeconds * 1000) / ((tasksPerTurn * bytesEach) / 2 ** 20)));
  const loopP99 = median(entries.map((entry) => entry.loopP99Ms));
  console.log(`${mode.padEnd(8)} ${rate.toFixed(1).padStart(10)}  ${(rate / baselineRate).toFixed(2).padStart(9)}x  ${cpuPerMib.toFixed(3).padStart(16)}  ${loopP99.toFixed(2).padStart(11)}`);
}
console.log(`peak RSS of this process (all modes): ${peakRssMb.toFixed(0)} MB`);

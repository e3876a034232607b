// `parafork run`'s live output (issue 15): the CPU the run's own process spends (every thread:
// JS, spawn threads, the log pump; not the Tasks') on 1,000 Tasks with their output printed
// (stdout to /dev/null, as a pipe into a file would be) and with --quiet, alternating in one run.
//
//   node bench/run-output.ts [--rounds 3]     (needs root and a build: npm run build)
//
// Three kinds of Task: /bin/true (nothing to print: only the look at each log), ten lines
// each, and 1,000 Tasks running at once for two seconds writing a line every 0.2 s (a thousand
// logs growing at once: the most the polls have to look at).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' } } });
const rounds = Number(values.rounds);
const scratch = mkdtempSync(path.join(tmpdir(), 'parafork-bench-run-output-'));
const cli = path.resolve('dist/cli/main.js');

const workloads: Record<string, string> = {
  'true x1000 (prints nothing)': '[/bin/true]',
  'ten lines x1000': `[sh, -c, 'for i in 1 2 3 4 5 6 7 8 9 10; do echo "line $i of a short Task"; done']`,
  'a line per 0.2 s for 2 s x1000, all at once': `[sh, -c, 'for i in 1 2 3 4 5 6 7 8 9 10; do echo "tick $i"; sleep 0.2; done']`,
};

/** The run's own CPU (process.cpuUsage at exit: all its threads) and wall time, from a preload. */
const probe = path.join(scratch, 'cpu-probe.mjs');
writeFileSync(
  probe,
  `import { writeFileSync } from 'node:fs';
process.on('exit', () => {
  const cpu = process.cpuUsage();
  writeFileSync(process.env.CPU_PROBE_OUT, JSON.stringify({ cpuMs: (cpu.user + cpu.system) / 1000, wallMs: performance.now(), maxRssKb: process.resourceUsage().maxRSS }));
});
`,
);

function manifest(name: string, command: string): string {
  const file = path.join(scratch, `${name.replace(/\W+/g, '-')}.yaml`);
  const items = Array.from({ length: 1000 }, (_, index) => `  - {apiVersion: parafork.dev/v1alpha1, kind: Task, metadata: {name: t-${String(index).padStart(4, '0')}}, spec: {command: ${command}}}`);
  writeFileSync(file, `apiVersion: v1\nkind: List\nitems:\n${items.join('\n')}\n`);
  return file;
}

interface Sample {
  readonly cpuMs: number;
  readonly wallMs: number;
  readonly maxRssKb: number;
  readonly printedBytes: number;
}

function run(file: string, quiet: boolean): Sample {
  const out = path.join(scratch, 'cpu.json');
  const printed = path.join(scratch, 'stdout.txt');
  const result = spawnSync('sh', ['-c', `exec "${process.execPath}" --import "${probe}" "${cli}" run -f "${file}" ${quiet ? '-q' : ''} > "${printed}" 2>/dev/null`], { env: { ...process.env, CPU_PROBE_OUT: out }, stdio: 'inherit', timeout: 600_000 });
  if (result.status !== 0) throw new Error(`parafork run exited ${result.status}`);
  const sample = JSON.parse(readFileSync(out, 'utf8')) as Omit<Sample, 'printedBytes'>;
  return { ...sample, printedBytes: readFileSync(printed).length };
}

const median = (numbers: readonly number[]): number => [...numbers].sort((a, b) => a - b)[Math.floor(numbers.length / 2)] ?? Number.NaN;

console.log(`${cpus().length} CPUs, load average ${loadavg().map((load) => load.toFixed(1)).join(' ')} at start, ${rounds} rounds, printed and quiet alternating`);
console.log('| Tasks | printed: run CPU, wall | --quiet: run CPU, wall | CPU printed / quiet | bytes printed |');
console.log('| --- | --- | --- | --- | --- |');
try {
  for (const [name, command] of Object.entries(workloads)) {
    const file = manifest(name, command);
    const printed: Sample[] = [];
    const quiet: Sample[] = [];
    for (let round = 0; round < rounds; round++) {
      printed.push(run(file, false));
      quiet.push(run(file, true));
    }
    const cpuPrinted = median(printed.map((sample) => sample.cpuMs));
    const cpuQuiet = median(quiet.map((sample) => sample.cpuMs));
    const wall = (samples: Sample[]): string => `${(median(samples.map((sample) => sample.wallMs)) / 1000).toFixed(1)} s`;
    console.log(`| ${name} | ${(cpuPrinted / 1000).toFixed(2)} s, ${wall(printed)} | ${(cpuQuiet / 1000).toFixed(2)} s, ${wall(quiet)} | ${(cpuPrinted / cpuQuiet).toFixed(2)}x | ${median(printed.map((sample) => sample.printedBytes))} |`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
console.log(`load average ${loadavg().map((load) => load.toFixed(1)).join(' ')} at the end`);

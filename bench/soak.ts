// npm run bench:soak — many short Tasks (default 50,000; --tasks for a short run) through one
// agent on a real local apiserver, at a steady --outstanding Tasks in flight. Each Task has
// ttlSecondsAfterFinished 0, so the agent deletes it once finished and its caches stay the size
// of what is in flight: what grows is a leak. The agent's RSS and open fds are sampled every
// second; the report gives, after a warm-up (the first --warmup share of the Tasks), the mean of
// the first and the last tenth of the samples, their drift, and a least-squares slope per 10,000
// Tasks.
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { apiRequestsByVerb, formatTable, loadAverage, log, defaultAgentNodeOptions, machineLine, ProcessSampler, startBenchAgent, startCluster, taskCollection, watchTasks } from './cluster-harness.ts';

const { values: flags } = parseArgs({
  options: {
    tasks: { type: 'string', default: '50000' },
    outstanding: { type: 'string', default: '200' },
    warmup: { type: 'string', default: '0.2' },
    'agent-args': { type: 'string', default: '' },
    'node-options': { type: 'string', default: defaultAgentNodeOptions },
  },
});
const taskCount = Number(flags.tasks);
const outstanding = Number(flags.outstanding);
const warmupShare = Number(flags.warmup);

const now = (): number => performance.timeOrigin + performance.now();

interface Sample {
  readonly atMs: number;
  readonly finished: number;
  readonly rssBytes: number;
  readonly fds: number;
}

function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
}

/** Least-squares slope of y over x. */
function slope(points: readonly (readonly [number, number])[]): number {
  const meanX = mean(points.map(([x]) => x));
  const meanY = mean(points.map(([, y]) => y));
  const covariance = points.reduce((sum, [x, y]) => sum + (x - meanX) * (y - meanY), 0);
  const variance = points.reduce((sum, [x]) => sum + (x - meanX) ** 2, 0);
  return variance === 0 ? 0 : covariance / variance;
}

async function main(): Promise<void> {
  if (!(taskCount >= 100) || !(outstanding >= 1) || !(warmupShare >= 0 && warmupShare < 1)) throw new Error('--tasks >= 100, --outstanding >= 1, 0 <= --warmup < 1');
  log(`${machineLine()}; load ${loadAverage()}`);
  const cluster = startCluster();
  try {
    const nodeName = 'soak';
    const namespace = await cluster.createNamespace('soak');
    const agent = await startBenchAgent(cluster.kubeconfigPath, nodeName, flags['agent-args'].split(' ').filter(Boolean), flags['node-options'].split(' ').filter(Boolean));
    const loadBefore = loadAverage();
    let finished = 0;
    let failed = 0;
    const done = new Set<string>();
    let waiters: (() => void)[] = [];
    const wakeAll = (): void => {
      const woken = waiters;
      waiters = [];
      for (const resolve of woken) resolve();
    };
    const nextFinish = (): Promise<void> => new Promise<void>((resolve) => waiters.push(resolve));
    const watchAbort = new AbortController();
    const watching = watchTasks(cluster.client, namespace, (event) => {
      const phase = event.object.status?.phase;
      const name = event.object.metadata.name ?? '';
      if ((phase === 'Succeeded' || phase === 'Failed') && !done.has(name)) {
        done.add(name);
        finished++;
        if (phase === 'Failed') failed++;
        wakeAll();
      }
      // Names are never reused, so a deleted Task's entry can go once it counted.
      if (event.type === 'DELETED') done.delete(name);
    }, watchAbort.signal);
    await new Promise((resolve) => setTimeout(resolve, 300));

    const samples: Sample[] = [];
    const sampler = new ProcessSampler(agent.pid, 1000);
    const recorder = setInterval(() => {
      const last = sampler.samples.at(-1);
      if (last) samples.push({ atMs: last.atMs, finished, rssBytes: last.rssBytes, fds: last.fds });
    }, 1000);
    const progress = setInterval(() => log(`${finished}/${taskCount} finished; agent RSS ${((sampler.samples.at(-1)?.rssBytes ?? 0) / 2 ** 20).toFixed(0)} MB, ${sampler.samples.at(-1)?.fds ?? 0} fds; load ${loadAverage()}`), 30_000);
    const startedAt = now();
    let created = 0;
    await Promise.all(
      Array.from({ length: Math.min(outstanding, 50) }, async () => {
        while (created < taskCount) {
          if (created - finished >= outstanding) {
            await nextFinish();
            continue;
          }
          const name = `soak-${created++}`;
          await cluster.client.request({ method: 'POST', path: taskCollection(namespace), body: { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name, namespace }, spec: { nodeName, command: ['true'], ttlSecondsAfterFinished: 0 } } });
        }
      }),
    );
    while (finished < taskCount) await nextFinish();
    const seconds = (now() - startedAt) / 1000;
    clearInterval(recorder);
    clearInterval(progress);
    sampler.stop();
    const requests = await apiRequestsByVerb(agent.port);
    watchAbort.abort();
    await watching;
    await agent.stop();
    const loadAfter = loadAverage();

    const measured = samples.filter((sample) => sample.finished >= warmupShare * taskCount);
    const tenth = Math.max(1, Math.floor(measured.length / 10));
    const first = measured.slice(0, tenth);
    const last = measured.slice(-tenth);
    const rows: string[][] = [];
    for (const [what, pick, unit, scale] of [
      ['RSS', (sample: Sample) => sample.rssBytes, 'MB', 2 ** 20],
      ['fds', (sample: Sample) => sample.fds, '', 1],
    ] as const) {
      const firstMean = mean(first.map(pick)) / scale;
      const lastMean = mean(last.map(pick)) / scale;
      const perTenThousand = slope(measured.map((sample) => [sample.finished, pick(sample) / scale] as const)) * 10_000;
      rows.push([what, `${firstMean.toFixed(1)} ${unit}`, `${lastMean.toFixed(1)} ${unit}`, `${(((lastMean - firstMean) / firstMean) * 100).toFixed(1)}%`, `${perTenThousand.toFixed(2)} ${unit}`, `${(Math.min(...measured.map(pick)) / scale).toFixed(1)} / ${(Math.max(...measured.map(pick)) / scale).toFixed(1)}`]);
    }
    const requestsPerTask = [...requests].map(([verb, count]) => `${verb} ${(count / taskCount).toFixed(2)}`).join(', ');
    console.log(`\n${machineLine()}\n${taskCount} Tasks of \`true\` (ttlSecondsAfterFinished 0), ${outstanding} in flight: ${seconds.toFixed(0)} s, ${(taskCount / seconds).toFixed(1)} Tasks/s, ${failed} failed; agent API requests/Task: ${requestsPerTask}; load ${loadBefore} -> ${loadAfter}\nAfter the first ${(warmupShare * 100).toFixed(0)}% of the Tasks (${measured.length} samples, 1 s apart):\n`);
    console.log(formatTable(['agent', 'first tenth mean', 'last tenth mean', 'drift', 'slope per 10,000 Tasks', 'min / max'], rows));
    const resultsDirectory = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
    mkdirSync(resultsDirectory, { recursive: true });
    writeFileSync(path.join(resultsDirectory, `soak-${new Date().toISOString().replaceAll(':', '-')}.json`), JSON.stringify({ machine: machineLine(), taskCount, outstanding, seconds, failed, samples }, null, 2));
  } finally {
    cluster.down();
  }
}

await main();

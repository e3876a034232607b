// One spawn-benchmark run of one Node engine, in its own process: N concurrent loops of
// { spawn /bin/true; wait for its exit } until a count or a time limit, after a warm-up. Prints one
// JSON line in the same shape as the C and Go baselines (bench/baselines/README.md), plus the event
// loop's delay over the measured phase. Started by bench/spawn.ts.
import { spawn as nodeSpawn } from 'node:child_process';
import { parseArgs } from 'node:util';

import { Launcher, type LockMode } from '../dist/index.js';
import type { InternalLauncherOptions } from '../dist/launcher/launcher.js';
import { percentile, summarize } from './statistics.ts';

const { values } = parseArgs({
  options: {
    engine: { type: 'string' },
    concurrency: { type: 'string', default: '50' },
    total: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '2' },
    'heap-mb': { type: 'string', default: '0' },
    'heap-kind': { type: 'string', default: 'objects' },
    threads: { type: 'string' },
    file: { type: 'string', default: '/bin/true' },
  },
});
const engine = values.engine ?? '';
const concurrency = Number(values.concurrency);
const total = Number(values.total);
const secondsLimit = Number(values.seconds);
const heapMb = Number(values['heap-mb']);
const heapKind = values['heap-kind'];
const file = values.file;

/** Spawns one child; resolves with the spawn latency in ns and a promise of its exit. */
type SpawnOnce = () => Promise<{ latencyNs: number; exited: Promise<unknown> }>;

let launcher: Launcher | undefined;
let spawnOnce: SpawnOnce;
if (engine.startsWith('parafork-')) {
  const lockMode = engine.slice('parafork-'.length) as LockMode;
  const options: InternalLauncherOptions = { lockMode, ...(values.threads ? { threads: Number(values.threads) } : {}) };
  launcher = new Launcher(options);
  const started = launcher;
  spawnOnce = async () => {
    const begin = process.hrtime.bigint();
    const child = await started.spawn({ file });
    return { latencyNs: Number(process.hrtime.bigint() - begin), exited: child.exited };
  };
} else if (engine === 'child_process') {
  spawnOnce = () =>
    new Promise((resolve, reject) => {
      const begin = process.hrtime.bigint();
      const child = nodeSpawn(file, [], { stdio: 'ignore' });
      const exited = new Promise((settle) => child.once('exit', settle));
      child.once('error', reject);
      // 'spawn' fires once libuv's uv_spawn has returned, i.e. after the exec.
      child.once('spawn', () => resolve({ latencyNs: Number(process.hrtime.bigint() - begin), exited }));
    });
} else {
  console.error(`spawn-worker: unknown engine ${JSON.stringify(engine)}`);
  process.exit(2);
}

// The memory the agent would hold, in one of two kinds that fork(2) treats very differently:
// - objects: small live objects on V8's heap, as an agent's caches and informers are, grown until
//   the resident set reaches the target. V8 marks its heap MADV_DONTFORK (VmFlags "dc" in
//   /proc/self/smaps), so fork copies none of its page tables and child_process slows down only
//   with the number of mappings (~4x at 1 GiB here).
// - buffers: Buffers (ArrayBuffer backing stores, malloc'd outside V8's heap, every page touched),
//   as streams, byte caches and native modules hold, and as the C and Go baselines' ballast is.
//   fork copies every one of their page tables, which is what makes child_process slow in a big
//   process (~30x slower at 1 GiB here).
const heap: unknown[] = [];
if (heapKind === 'objects') {
  for (let chunk = 0; process.memoryUsage().rss < heapMb * 2 ** 20; chunk++) {
    const objects = new Array<unknown>(10_000);
    for (let index = 0; index < objects.length; index++) {
      objects[index] = { id: chunk * 10_000 + index, name: `task-${index}`, ready: (index & 1) === 0 };
    }
    heap.push(objects);
  }
} else if (heapKind === 'buffers') {
  for (let allocated = 0; allocated < heapMb; allocated += 64) heap.push(Buffer.alloc(Math.min(64, heapMb - allocated) * 2 ** 20, 1));
} else {
  console.error(`spawn-worker: unknown heap kind ${JSON.stringify(heapKind)} (objects or buffers)`);
  process.exit(2);
}

async function runPhase(count: number, deadline: number, latencies: number[] | undefined): Promise<{ done: number; errors: number }> {
  let issued = 0;
  let done = 0;
  let errors = 0;
  const loop = async (): Promise<void> => {
    while (issued < count && performance.now() < deadline) {
      issued++;
      try {
        const { latencyNs, exited } = await spawnOnce();
        latencies?.push(latencyNs);
        await exited;
        done++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return { done, errors };
}

/**
 * Event-loop delay, engine-neutral: a 1 ms timer chain that records how late each tick fires.
 * (perf_hooks' monitorEventLoopDelay recorded nothing while child_process was spawning.)
 */
function sampleEventLoopDelay(): () => number[] {
  const lateness: number[] = [];
  let expected = performance.now() + 1;
  let timer = setTimeout(function tick() {
    const now = performance.now();
    lateness.push(Math.max(0, now - expected));
    expected = now + 1;
    timer = setTimeout(tick, 1);
  }, 1);
  return () => {
    clearTimeout(timer);
    // A tick that is still waiting counts too: a loop that never ran timers was late all along.
    lateness.push(Math.max(0, performance.now() - expected));
    return lateness.sort((a, b) => a - b);
  };
}

// Warm-up: 200 spawns or 1 s, whichever comes first (child_process manages ~25/s at 1 GiB of Buffers).
await runPhase(Math.min(200, Math.ceil(total / 10)), performance.now() + 1_000, undefined);

const latencies: number[] = [];
const stopSampling = sampleEventLoopDelay();
const begin = performance.now();
const { done, errors } = await runPhase(total, begin + secondsLimit * 1000, latencies);
const wallMs = performance.now() - begin;
const loopDelays = stopSampling();
await launcher?.close();

console.log(
  JSON.stringify({
    engine,
    concurrency,
    heapMb,
    heapKind: heapMb === 0 ? 'none' : heapKind,
    total: done,
    wallNs: Math.round(wallMs * 1e6),
    spawnsPerSecond: (done / wallMs) * 1000,
    latencyNs: summarize(latencies),
    eventLoopDelayMs: { p50: percentile(loopDelays, 0.5), p99: percentile(loopDelays, 0.99), max: loopDelays.at(-1) ?? 0, samples: loopDelays.length, over5ms: loopDelays.filter((delay) => delay > 5).length },
    rssMb: Math.round(process.memoryUsage().rss / 2 ** 20),
    errors,
    heapParts: heap.length,
  }),
);

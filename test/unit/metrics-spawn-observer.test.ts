// The Launcher's observer hooks with real spawns: each spawn, failure and exit reaches the spawn
// metrics once, carrying the timings the native side measured (the same numbers the caller gets).
import { afterEach, describe, expect, it } from 'vitest';

import { Launcher, type LauncherObserver } from '../../src/launcher/launcher.js';
import type { ExitResult, SpawnTimings } from '../../src/launcher/spawned-process.js';
import { MetricsRegistry } from '../../src/metrics/registry.js';

const launchers: Launcher[] = [];

afterEach(async () => {
  await Promise.all(launchers.splice(0).map((launcher) => launcher.close()));
});

function launcherWith(observer: LauncherObserver): Launcher {
  const launcher = new Launcher({ observer });
  launchers.push(launcher);
  return launcher;
}

describe('LauncherObserver', () => {
  it('is told of a spawn with the same natively measured timings the child carries', async () => {
    const seen: SpawnTimings[] = [];
    const launcher = launcherWith({ spawned: (timings) => seen.push(timings) });
    const child = await launcher.spawn({ file: '/bin/true' });
    expect(seen).toEqual([child.timings]);
    expect(child.timings.spawnNs).toBeGreaterThan(0);
  });

  it('is told of a failed spawn with its errno name', async () => {
    const failures: string[] = [];
    const launcher = launcherWith({ spawnFailed: (code) => failures.push(code) });
    await expect(launcher.spawn({ file: '/no/such/program' })).rejects.toMatchObject({ code: 'ENOENT' });
    expect(failures).toEqual(['ENOENT']);
  });

  it('is told of an exit with the result the caller gets', async () => {
    const exits: ExitResult[] = [];
    const launcher = launcherWith({ exited: (result) => exits.push(result) });
    const child = await launcher.spawn({ file: 'sh', args: ['-c', 'exit 7'], env: { PATH: '/usr/bin:/bin' } });
    const exit = await child.exited;
    expect(exits).toEqual([exit]);
    expect(exit.code).toBe(7);
  });

  it('a hook that throws does not keep the spawn from settling', async () => {
    const launcher = launcherWith({
      spawned: () => {
        throw new Error('a broken observer');
      },
    });
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown): void => {
      uncaught.push(error);
    };
    process.on('uncaughtException', onUncaught);
    try {
      const children = await Promise.all([launcher.spawn({ file: '/bin/true' }), launcher.spawn({ file: '/bin/true' })]);
      await Promise.all(children.map((child) => child.exited));
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('uncaughtException', onUncaught);
    }
    expect(uncaught.map((error) => (error as Error).message)).toEqual(['a broken observer', 'a broken observer']);
  });
});

describe('spawn metrics fed by a real Launcher', () => {
  it('count every spawn, failure and exit of 200 children at concurrency 20', async () => {
    const metrics = new MetricsRegistry({ processMetrics: false });
    const launcher = launcherWith(metrics.spawn);
    metrics.trackLauncher(launcher);
    const spawnSeconds: number[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (next < 200) {
          next++;
          const child = await launcher.spawn({ file: '/bin/true' });
          spawnSeconds.push(child.timings.spawnNs / 1e9);
          await child.exited;
        }
      }),
    );
    await launcher.spawn({ file: '/no/such/program' }).catch(() => undefined);
    const { body } = await metrics.scrape();
    expect(body).toContain('parafork_spawn_duration_seconds_count 200\n');
    expect(body).toContain('parafork_process_duration_seconds_count 200\n');
    expect(body).toContain('parafork_spawn_queue_seconds_count 201\n');
    expect(body).toContain('parafork_spawn_errors_total{code="ENOENT"} 1\n');
    const sum = Number(/^parafork_spawn_duration_seconds_sum (\S+)$/m.exec(body)?.[1]);
    expect(sum).toBeCloseTo(spawnSeconds.reduce((total, seconds) => total + seconds, 0), 9);
    expect(body).toContain(`parafork_launcher_info{lock_mode="${launcher.lockMode}",clone_path="${launcher.clonePath}",threads="${launcher.threads}"} 1\n`);
  });
});

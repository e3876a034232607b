// Issue 12, finding 10: a manifest is input from whoever can write the folder or hand the operator
// a file, and must not be able to stall or exhaust the agent. A 650-byte YAML "billion laughs"
// (aliases of aliases) made `parafork run -o json` run for minutes at 600 MB+ and stalled
// `agent --manifests` (/healthz silent 25 s): the parser shares an aliased value, but everything
// after it (schema check, copies, JSON output) walked it expanded, 9^9 strings.
//
// Now a manifest file is refused, naming the file, when it is larger than the per-file cap, is not
// a regular file (a FIFO would block the read forever), nests deeper than a manifest needs, or
// expands through aliases to more than a bounded multiple of its own size. `parafork run` exits
// 2; `agent --manifests` logs it once and stays responsive. Every run here is killed after 15 s.
// Needs root (parafork sandboxes the Tasks it runs).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { waitFor } from '../helpers/wait-for.js';
import { parafork, startManifestAgent, type ManifestAgent } from './standalone-cli.js';

const skip = missingRequirement('parafork sandboxes the Tasks it runs, which needs root', runningAsRoot);

const timeBoundMs = 15_000;

/** Nine levels of nine aliases under metadata (an open object the schema does not walk): 9^9 strings expanded. */
function billionLaughs(name: string): string {
  const levels = ['    l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
  for (let level = 1; level <= 8; level++) levels.push(`    l${level}: &l${level} [${Array(9).fill(`*l${level - 1}`).join(', ')}]`);
  return ['apiVersion: parafork.dev/v1alpha1', 'kind: Task', 'metadata:', `  name: ${name}`, '  laughs:', ...levels, 'spec: {command: [/bin/true]}', ''].join('\n');
}

const task = (name: string): string => `apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: ${name}}\nspec: {command: [/bin/true]}\n`;

describe.skipIf(skip !== undefined)(`parafork run with a hostile manifest${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-manifest-bombs-'));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  async function expectRefused(file: string, why: RegExp, target = file): Promise<void> {
    const run = await parafork(['run', '-o', 'json', '-f', target], timeBoundMs);
    expect(run.timedOut, `still running after ${timeBoundMs} ms`).toBe(false);
    expect(run.status, run.stderr).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain(file);
    expect(run.stderr).toMatch(why);
  }

  it('refuses a billion-laughs alias bomb (650 bytes) at once, exit 2, naming the file', async () => {
    const file = path.join(scratch, 'laughs.yaml');
    writeFileSync(file, billionLaughs('laughs'));
    await expectRefused(file, /alias/);
  });

  it('refuses an alias that contains itself', async () => {
    const file = path.join(scratch, 'cycle.yaml');
    writeFileSync(file, 'apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata:\n  name: cycle\n  loop: &loop [*loop]\nspec: {command: [/bin/true]}\n');
    await expectRefused(file, /contains itself|alias/);
  });

  it('refuses a manifest nested deeper than any Task needs (JSON has no aliases, but depth too is work)', async () => {
    const file = path.join(scratch, 'deep.json');
    const depth = 200_000;
    writeFileSync(file, `{"apiVersion": "parafork.dev/v1alpha1", "kind": "Task", "metadata": {"name": "deep", "deep": ${'['.repeat(depth)}${']'.repeat(depth)}}, "spec": {"command": ["/bin/true"]}}`);
    await expectRefused(file, /nest/);
  });

  it('refuses a file larger than the per-file cap without reading it whole', async () => {
    const file = path.join(scratch, 'large.yaml');
    writeFileSync(file, `${task('large')}# ${'x'.repeat(9 * 2 ** 20)}\n`);
    await expectRefused(file, /larger than|MiB/);
  });

  it('refuses a FIFO named like a manifest instead of waiting on it forever', async () => {
    const folder = mkdtempSync(path.join(scratch, 'fifo-'));
    writeFileSync(path.join(folder, 'a.yaml'), task('fine'));
    const fifo = path.join(folder, 'b.yaml');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    await expectRefused(fifo, /not a regular file/, folder);
  });
});

describe.skipIf(skip !== undefined)(`agent --manifests with a hostile manifest${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let folder: string;
  let agent: ManifestAgent;

  beforeAll(async () => {
    folder = mkdtempSync(path.join(tmpdir(), 'parafork-manifest-bombs-agent-'));
    writeFileSync(path.join(folder, 'first.yaml'), task('first'));
    agent = await startManifestAgent(folder);
  });

  afterAll(async () => {
    await agent.stop();
    rmSync(folder, { recursive: true, force: true });
  });

  it('logs the bomb once, keeps answering /healthz within a second, and goes on running new manifests', async () => {
    // The agent's own longest event-loop delay (prom-client's, reset by each scrape): a round trip
    // timed here also holds the wait of this test's process for the CPU, which alone passed 2 s on
    // a loaded 2-core machine with the agent answering; a stall on the bomb holds up the agent's loop.
    const agentLoopDelayMaxMs = async (): Promise<number> => {
      const metrics = await (await fetch(`${agent.base}/metrics`, { signal: AbortSignal.timeout(timeBoundMs) })).text();
      return Number(/^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(metrics)?.[1] ?? Number.NaN) * 1000;
    };
    await agentLoopDelayMaxMs(); // from here on
    const bomb = path.join(folder, 'laughs.yaml');
    writeFileSync(`${bomb}.part`, billionLaughs('laughs'));
    renameSync(`${bomb}.part`, bomb);
    // Probe /healthz for 6 s after the drop: the agent reads the folder 200 ms after a change.
    let slowest = 0;
    for (const started = performance.now(); performance.now() - started < 6_000; ) {
      const asked = performance.now();
      const response = await fetch(`${agent.base}/healthz`, { signal: AbortSignal.timeout(timeBoundMs) }).catch(() => undefined);
      slowest = Math.max(slowest, performance.now() - asked);
      expect(response?.status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const loopDelay = await agentLoopDelayMaxMs();
    console.log(`manifest-bombs: the agent's event loop held up ${loopDelay.toFixed(0)} ms at most after the bomb; slowest /healthz round trip ${slowest.toFixed(0)} ms`);
    expect(loopDelay, `the agent's event loop was held up ${loopDelay.toFixed(0)} ms at most; the slowest /healthz round trip seen from here took ${slowest.toFixed(0)} ms`).toBeLessThan(1_000);
    const complaints = agent.logs().split('\n').filter((line) => line.includes('invalid manifest') && line.includes(bomb));
    expect(complaints).toHaveLength(1);
    expect(complaints[0]).toMatch(/alias/);

    writeFileSync(path.join(folder, 'second.yaml'), task('second'));
    await waitFor(async () => (await agent.tasks()).get('second')?.status?.phase === 'Succeeded' || undefined, { timeoutMs: 10_000, description: 'the manifest written after the bomb to run' });
  }, 40_000);
});

// Issue 12, finding 9: sandbox.tmpSizeLimit was unbounded: a 16 TiB RAM-backed /tmp was granted on
// a 23 GiB node. The agent caps it (--max-tmp-size) and refuses a larger ask as InvalidSpec naming
// the field and the cap. /tmp is a tmpfs, whose pages the kernel charges to the memory cgroup of
// the process that writes them, so what a Task holds in /tmp counts against its memory limit (its
// own, or the agent's default): a Task cannot park more than that in RAM through /tmp.
//
// The filling probe is bounded: 128 MiB written against a 32 MiB limit. Needs root and the memory
// cgroup controller.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readCgroupLayout } from '../../src/sandbox/cgroup-layout.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { parafork, tasksOf, writeTask } from './standalone-cli.js';

const layout = readCgroupLayout();
const skip = missingRequirement('/tmp limits need root and the memory cgroup controller', runningAsRoot && (layout.v1.has('memory') || (layout.v2?.controllers.has('memory') ?? false)));

/** Writes 128 MiB into /tmp, then says on stderr how much /tmp holds. */
const fillTmp = ['/bin/sh', '-c', 'dd if=/dev/zero of=/tmp/fill bs=1M count=128 2>/dev/null; echo "held $(du -m /tmp/fill | cut -f1) MiB" >&2'];

describe.skipIf(skip !== undefined)(`a Task's /tmp${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-tmp-size-'));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('larger than the agent allows is refused as InvalidSpec naming the field and the cap', async () => {
    const huge = writeTask(scratch, 'huge-tmp', { command: ['/bin/true'], sandbox: { tmpSizeLimit: '16Ti' }, backoffLimit: 3 });
    const capped = writeTask(scratch, 'over-cap', { command: ['/bin/true'], sandbox: { tmpSizeLimit: '65Mi' } });
    const unset = writeTask(scratch, 'tmp-unset', { command: ['/bin/true'] });
    const run = await parafork(['run', '-f', huge, '-f', capped, '-f', unset, '-o', 'json', '--max-tmp-size', '64Mi'], 30_000);
    const tasks = tasksOf(run);
    expect(tasks.get('tmp-unset')?.status).toMatchObject({ phase: 'Succeeded' });
    for (const [name, asked] of [['huge-tmp', '16Ti'], ['over-cap', '65Mi']] as const) {
      const status = tasks.get(name)?.status;
      expect(status, name).toMatchObject({ phase: 'Failed', reason: 'InvalidSpec' });
      expect(status?.message).toContain('spec.sandbox.tmpSizeLimit');
      expect(status?.message).toContain(asked);
      expect(status?.message).toContain('--max-tmp-size 64Mi');
      expect(status?.attempts ?? 0).toBeLessThanOrEqual(1);
    }
  });

  it('is capped by default: 16Ti is refused with no flag given', async () => {
    const huge = writeTask(scratch, 'huge-tmp-default', { command: ['/bin/true'], sandbox: { tmpSizeLimit: '16Ti' } });
    const status = tasksOf(await parafork(['run', '-f', huge, '-o', 'json'], 30_000)).get('huge-tmp-default')?.status;
    expect(status).toMatchObject({ phase: 'Failed', reason: 'InvalidSpec' });
    expect(status?.message).toMatch(/spec\.sandbox\.tmpSizeLimit.*--max-tmp-size/);
  });

  it('cannot hold more than the Task\'s memory limit (tmpfs pages are charged to the writer\'s memory cgroup)', async () => {
    const file = writeTask(scratch, 'fill-own-limit', { command: fillTmp, resources: { limits: { memory: '32Mi' } }, sandbox: { tmpSizeLimit: '256Mi' } });
    const status = tasksOf(await parafork(['run', '-f', file, '-o', 'json'], 30_000)).get('fill-own-limit')?.status;
    expectHeldAtMost(status, 32);
  });

  it('cannot hold more than the agent\'s default memory limit when the Task sets none', async () => {
    const file = writeTask(scratch, 'fill-default-limit', { command: fillTmp, sandbox: { tmpSizeLimit: '256Mi' } });
    const status = tasksOf(await parafork(['run', '-f', file, '-o', 'json', '--default-memory', '32Mi'], 30_000)).get('fill-default-limit')?.status;
    expectHeldAtMost(status, 32);
  });
});

/** The Task was OOM-killed, or said it held at most `mebibytes` in /tmp. */
function expectHeldAtMost(status: { reason?: string; stderrTail?: string } | undefined, mebibytes: number): void {
  if (status?.reason === 'OOMKilled') return;
  const held = /held (\d+) MiB/.exec(status?.stderrTail ?? '')?.[1];
  expect(held, `status: ${JSON.stringify(status)}`).toBeDefined();
  expect(Number(held)).toBeLessThanOrEqual(mebibytes);
}

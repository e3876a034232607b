// Launcher.spawn with stdout/stderr `{ log }`: the native log pump keeps a child's output in a
// capped log of chunks tagged by stream and time (native/src/log_pump.h) without the JS thread touching a byte of it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InvalidSpawnOptionError, Launcher } from '../../src/index.js';

let launcher: Launcher;
let scratch: string;

beforeAll(() => {
  launcher = new Launcher();
  scratch = mkdtempSync(path.join(tmpdir(), 'parafork-logs-'));
});

afterAll(async () => {
  await launcher.close();
  rmSync(scratch, { recursive: true, force: true });
});

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

const header = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr|parafork) (\d+)\n/;

/** A log file as [stream, payload] chunks: its format line, then each header and its `length` bytes. */
function chunksOf(file: string): [string, string][] {
  const bytes = readFileSync(file);
  expect(bytes.subarray(0, 15).toString()).toBe('parafork-log 2\n');
  const chunks: [string, string][] = [];
  for (let at = 15; at < bytes.length; ) {
    const match = header.exec(bytes.toString('latin1', at, at + 80));
    if (!match) throw new Error(`no chunk header at ${at}`);
    const start = at + match[0].length;
    at = start + Number(match[2]);
    chunks.push([match[1] ?? '', bytes.toString('utf8', start, at)]);
  }
  return chunks;
}

describe('a child whose output goes to a log', () => {
  it('keeps stdout and stderr in order in one log, each line tagged with its stream', async () => {
    const log = path.join(scratch, 'ordered', '1.log');
    const child = await launcher.spawn({ file: 'sh', args: ['-c', 'echo one; sleep 0.05; echo two >&2; sleep 0.05; echo three'], stdout: { log }, stderr: { log } });
    expect(child.stdout).toBeNull();
    expect(child.stderr).toBeNull();
    expect(await child.exited).toMatchObject({ code: 0 });
    const totals = await child.log;
    expect(totals).toMatchObject({ bytes: 14, droppedBytes: 0, complete: true, writeError: undefined });
    expect(chunksOf(log)).toEqual([['stdout', 'one\n'], ['stderr', 'two\n'], ['stdout', 'three\n'], ['parafork', 'end 14\n']]);
  });

  it('lets a child write 1 GiB as fast as it can to its end, with at most the cap on disk', async () => {
    const log = path.join(scratch, 'gibibyte', '1.log');
    const maxBytes = 1024 * 1024;
    const child = await launcher.spawn({ file: 'sh', args: ['-c', 'head -c 1073741824 /dev/zero | tr "\\000" x'], stdout: { log, maxBytes }, stderr: { log, maxBytes } });
    let largest = 0;
    const watcher = setInterval(() => {
      largest = Math.max(largest, sizeOf(log) + sizeOf(`${log}.1`));
    }, 5);
    const exit = await child.exited;
    const totals = await child.log;
    clearInterval(watcher);
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(totals?.bytes).toBe(1024 ** 3);
    expect(totals?.diskBytes).toBeLessThanOrEqual(maxBytes);
    expect(sizeOf(log) + sizeOf(`${log}.1`)).toBeLessThanOrEqual(maxBytes);
    expect(largest).toBeLessThanOrEqual(maxBytes);
    expect(launcher.logStats().droppedBytes).toBeGreaterThanOrEqual(1024 ** 3 - maxBytes);
  }, 120_000);

  it('keeps the event loop alive until the log is complete, after the child has exited', () => {
    // Nothing else holds the loop: the log's end, delivered after the exit, must still arrive.
    const script = `import { Launcher } from './dist/index.js';
      const launcher = new Launcher();
      const log = ${JSON.stringify(path.join(scratch, 'alive', '1.log'))};
      const child = await launcher.spawn({ file: 'sh', args: ['-c', 'echo last words'], stdout: { log }, stderr: { log } });
      await child.exited;
      const totals = await child.log;
      console.log(totals.bytes);
      await launcher.close();`;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(result.stderr).not.toContain('unsettled top-level await');
    expect(result.stdout).toBe('11\n');
  });

  it('made when written leaves no file (nor its directory) for a child that writes nothing, and is complete all the same', async () => {
    const log = path.join(scratch, 'silent', '1.log');
    const output = { log, createWhenWritten: true };
    const child = await launcher.spawn({ file: '/bin/true', stdout: output, stderr: output });
    expect(await child.exited).toMatchObject({ code: 0 });
    expect(await child.log).toMatchObject({ bytes: 0, diskBytes: 0, complete: true });
    expect(existsSync(path.dirname(log))).toBe(false);
  });

  it('made when written is made at the first byte and ends as any log', async () => {
    const log = path.join(scratch, 'late', '1.log');
    const output = { log, createWhenWritten: true };
    const child = await launcher.spawn({ file: 'sh', args: ['-c', 'sleep 0.05; echo late >&2'], stdout: output, stderr: output });
    expect(await child.exited).toMatchObject({ code: 0 });
    expect(await child.log).toMatchObject({ bytes: 5, complete: true });
    expect(chunksOf(log)).toEqual([['stderr', 'late\n'], ['parafork', 'end 5\n']]);
  });

  it('refuses stdout and stderr logs that differ in createWhenWritten', async () => {
    const log = path.join(scratch, 'd.log');
    await expect(launcher.spawn({ file: '/bin/true', stdout: { log, createWhenWritten: true }, stderr: { log } })).rejects.toThrow(/same log \(and maxBytes, createWhenWritten\)/);
  });

  it('refuses stdout and stderr logs that name two different files', async () => {
    await expect(launcher.spawn({ file: '/bin/true', stdout: { log: path.join(scratch, 'a.log') }, stderr: { log: path.join(scratch, 'b.log') } })).rejects.toThrow(InvalidSpawnOptionError);
  });

  it('refuses a cap too small for one record', async () => {
    await expect(launcher.spawn({ file: '/bin/true', stdout: { log: path.join(scratch, 'c.log'), maxBytes: 1000 } })).rejects.toThrow(/maxBytes must be a whole number of at least 65536/);
  });
});

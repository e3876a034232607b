// The launcher's internal `resultFile` option (src/launcher/result-file.ts): the child finds a memory
// file at fd 3 (/dev/fd/3) to leave a small result in, and the caller reads its first bytes once
// the child has exited, through an fd of its own that nothing the child does can redirect.
import { readdirSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InvalidSpawnOptionError, Launcher } from '../../src/index.js';
import type { InternalSpawnOptions } from '../../src/launcher/spawn-options.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';

let launcher: Launcher;

beforeAll(() => {
  launcher = new Launcher();
});

afterAll(async () => {
  await launcher.close();
});

/** Spawns `sh -c script` with a result file; resolves to the exit and the file's first `limit` bytes. */
async function runWithResult(script: string, limit = 4096, extra: Partial<InternalSpawnOptions> = {}) {
  const options: InternalSpawnOptions = { file: '/bin/sh', args: ['-c', script], env: { PATH: '/usr/bin:/bin' }, resultFile: true, ...extra };
  const child = await launcher.spawn(options);
  const exit = await child.exited;
  const content = await (child.resultFile?.read(limit) ?? Promise.reject(new Error('no result file')));
  return { exit, text: content.bytes.toString('utf8'), truncated: content.truncated, child };
}

function memfdsOpen(): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('/memfd:parafork-result');
    } catch {
      return false;
    }
  }).length;
}

describe('a result file', () => {
  it('is fd 3 of the child, which a shell redirection to /dev/fd/3 writes, and reads back after the exit', async () => {
    const { exit, text, truncated } = await runWithResult('echo "rows=42" > /dev/fd/3');
    expect(exit.code).toBe(0);
    expect(text).toBe('rows=42\n');
    expect(truncated).toBe(false);
  });

  it('reads empty when the child wrote nothing, and is null without the option', async () => {
    expect((await runWithResult('true')).text).toBe('');
    const plain = await launcher.spawn({ file: '/bin/true' });
    expect(plain.resultFile).toBeNull();
    await plain.exited;
  });

  it('reads at most the limit, and says when there was more', async () => {
    const { text, truncated } = await runWithResult('head -c 10000 /dev/zero | tr "\\0" x > /dev/fd/3', 4096);
    expect(text).toBe('x'.repeat(4096));
    expect(truncated).toBe(true);
  });

  it('says a file grown past the limit by ftruncate is truncated, though the child wrote little', async () => {
    const { text, truncated } = await runWithResult('printf ab > /dev/fd/3; truncate -s 1G /dev/fd/3', 16);
    expect(text.startsWith('ab')).toBe(true);
    expect(truncated).toBe(true);
  });

  it('keeps what the child wrote though it then closed fd 3 or pointed it elsewhere', async () => {
    const { text } = await runWithResult('echo kept > /dev/fd/3; exec 3>&-; exec 3>/dev/null; echo lost >&3');
    expect(text).toBe('kept\n');
  });

  it('is closed once read, and a second read gives nothing', async () => {
    const before = memfdsOpen();
    const { child } = await runWithResult('echo once > /dev/fd/3');
    expect(memfdsOpen()).toBe(before);
    await expect(child.resultFile?.read(4096)).resolves.toMatchObject({ truncated: false, bytes: Buffer.alloc(0) });
  });

  it('is refused unless a boolean', async () => {
    const options = { file: '/bin/true', resultFile: 'yes' } as unknown as InternalSpawnOptions;
    await expect(launcher.spawn(options)).rejects.toThrow(InvalidSpawnOptionError);
  });
});

const noRoot = missingRequirement('the sandbox needs root', runningAsRoot);

describe.skipIf(noRoot !== undefined)(`a sandboxed child's result file${noRoot ? ` (skipped: ${noRoot})` : ''}`, () => {
  it('reaches the task through parafork-init, and reads back after the sandbox is gone', async () => {
    const { exit, text } = await runWithResult('echo "from the sandbox" > /dev/fd/3', 4096, { sandbox: {} });
    expect(exit.code).toBe(0);
    expect(text).toBe('from the sandbox\n');
  });
});

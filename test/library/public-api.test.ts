// The package as a library user has it: everything here is imported from 'parafork' only, which
// Node, vitest and TypeScript resolve through package.json "exports" (a package's reference to
// itself) to the built dist/index.js and dist/index.d.ts: the files `npm pack` ships. So this
// checks the entry point, the runtime exports and the published types, without a reinstall or a
// native rebuild per run (`npm run build` first, as scripts/test.sh does). Installing a packed
// tarball into another project is tested by the README's library example (examples/).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import * as parafork from 'parafork';
import {
  InvalidSpawnOptionError,
  Launcher,
  LauncherClosedError,
  SeccompFilter,
  SpawnError,
  SpawnedProcess,
  defaultMaskedPaths,
  readOnlyProcPaths,
  type LauncherOptions,
  type SandboxOptions,
  type SpawnOptions,
  type SpawnStep,
} from 'parafork';

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let launcher: Launcher;

beforeAll(() => {
  launcher = new Launcher({ threads: 2 });
});

afterAll(async () => {
  await launcher.close();
});

describe("the package's entry point", () => {
  it('is the built dist/index.js, through package.json "exports"', () => {
    expect(import.meta.resolve('parafork')).toBe(pathToFileURL(path.join(packageRoot, 'dist', 'index.js')).href);
  });

  it('exports these values and nothing else', () => {
    expect(Object.keys(parafork).sort()).toEqual([
      'InvalidSpawnOptionError',
      'Launcher',
      'LauncherClosedError',
      'SeccompFilter',
      'SpawnError',
      'SpawnedProcess',
      'defaultLogMaxBytes',
      'defaultMaskedPaths',
      'minimumLogMaxBytes',
      'readOnlyProcPaths',
    ]);
  });

  it('has every export, value or type, documented in docs/library.md', () => {
    const declarations = readFileSync(path.join(packageRoot, 'dist', 'index.d.ts'), 'utf8');
    const exported = [...declarations.matchAll(/export (?:type )?\{([^}]*)\}/g)].flatMap((match) => (match[1] ?? '').split(',').map((name) => name.trim()).filter(Boolean));
    expect(exported.length).toBeGreaterThan(20);
    const reference = readFileSync(path.join(packageRoot, 'docs', 'library.md'), 'utf8');
    expect(exported.filter((name) => !reference.includes(`\`${name}\``))).toEqual([]);
  });
});

describe('Launcher', () => {
  it('spawns a program, pipes its output and reports its exit', async () => {
    const child = await launcher.spawn({ file: 'sh', args: ['-c', 'echo hello; exit 3'], env: { PATH: '/usr/bin:/bin' }, stdout: 'pipe' });
    expect(child).toBeInstanceOf(SpawnedProcess);
    expect(child.pid).toBeGreaterThan(1);
    let output = '';
    for await (const chunk of child.stdout ?? []) output += String(chunk);
    expect(output).toBe('hello\n');
    expect(await child.exited).toMatchObject({ code: 3, signal: null });
  });

  it('kills through the pidfd, and says when the child was already reaped', async () => {
    const child = await launcher.spawn({ file: 'sleep', args: ['30'] });
    expect(child.kill('SIGTERM')).toBe(true);
    expect(await child.exited).toMatchObject({ code: null, signal: 'SIGTERM' });
    expect(child.kill()).toBe(false);
  });

  it('rejects a failed spawn with a SpawnError that names its step, the failed call first in its message', async () => {
    const error: unknown = await launcher.spawn({ file: '/no/such/program' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SpawnError);
    const step: SpawnStep = (error as SpawnError).step;
    expect(step).toBe('exec');
    expect(error).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'execve', path: '/no/such/program', spawnargs: [], message: 'execve: /no/such/program: no such file or directory (ENOENT)' });
  });

  it('refuses an invalid option with an InvalidSpawnOptionError before starting anything', async () => {
    await expect(launcher.spawn({ file: 'true', args: ['a\0b'] })).rejects.toBeInstanceOf(InvalidSpawnOptionError);
    await expect(launcher.spawn({ file: 'true', sandbox: { network: 'internet' } as unknown as SandboxOptions })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });

  it('says what this kernel allows and which defaults it picks', () => {
    const capabilities = Launcher.capabilities;
    expect(capabilities).toMatchObject({ pidfd: true, defaultClonePath: capabilities.clone3 ? 'clone3' : 'clone' });
    expect(launcher.stats()).toMatchObject({ threads: 2, running: 0 });
  });

  it('refuses spawns once closed, with a LauncherClosedError', async () => {
    const closing = new Launcher({ threads: 1 });
    await closing.close();
    await expect(closing.spawn({ file: 'true' })).rejects.toBeInstanceOf(LauncherClosedError);
  });
});

describe('the options a library user sets', () => {
  it('leave out what only the agent and the benchmarks set (checked by the type checker, npm run lint)', () => {
    // @ts-expect-error cgroupsV1 is the agent's (InternalSpawnOptions), not a library option
    const cgroupsV1: SpawnOptions = { file: 'true', cgroupsV1: [] };
    // @ts-expect-error cgroupSetup is the agent's
    const cgroupSetup: SpawnOptions = { file: 'true', cgroupSetup: { files: [] } };
    // @ts-expect-error lockMode is a benchmark switch (InternalLauncherOptions)
    const lockMode: LauncherOptions = { lockMode: 'xor' };
    // @ts-expect-error clonePath is a benchmark switch
    const clonePath: LauncherOptions = { clonePath: 'clone' };
    expect([cgroupsV1, cgroupSetup, lockMode, clonePath]).toHaveLength(4);
  });

  it('come with the sandbox defaults a user extends', () => {
    expect(defaultMaskedPaths).toContain('/etc/shadow');
    expect(readOnlyProcPaths).toContain('/proc/sys');
    expect(Object.isFrozen(defaultMaskedPaths)).toBe(true);
  });

  it('take a compiled seccomp filter', () => {
    const filter = SeccompFilter.compile({ defaultAction: { action: 'SCMP_ACT_ALLOW' }, rules: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', args: [] }] });
    expect(filter.instructionCount).toBeGreaterThan(0);
  });
});

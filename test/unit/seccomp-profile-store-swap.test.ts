// A Localhost profile is checked (owner, mode, size, a regular file) and then read: what is read
// must be the file that was checked. The store used to stat the path and then read the path
// again, so a file put in its place between the two (a rename over it) was compiled unchecked.
// Here the file is swapped right after the store has looked at its metadata, as a racing writer
// would, through a wrapper of node:fs/promises (module-wide, hence a file of its own).
import { chmodSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { SeccompFilter, type SeccompFilterSpec } from '../../src/launcher/seccomp-filter.js';
import { SeccompProfileStore } from '../../src/sandbox/seccomp-profile-store.js';

/** Called once the store has the metadata of a file it is loading (by path or by its open handle). */
const afterMetadata = vi.hoisted(() => ({ hook: undefined as ((file: string) => void) | undefined }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:fs/promises')>();
  const stat = (async (file: string, ...rest: unknown[]) => {
    const status = await (original.stat as (...args: unknown[]) => Promise<unknown>)(file, ...rest);
    afterMetadata.hook?.(file);
    return status;
  }) as typeof original.stat;
  const open = (async (file: string, ...rest: unknown[]) => {
    const handle = await (original.open as (...args: unknown[]) => Promise<FileHandle>)(file, ...rest);
    const handleStat = handle.stat.bind(handle);
    handle.stat = (async (...args: unknown[]) => {
      const status = await (handleStat as (...a: unknown[]) => Promise<unknown>)(...args);
      afterMetadata.hook?.(file);
      return status;
    }) as typeof handle.stat;
    return handle;
  }) as typeof original.open;
  return { ...original, stat, open, default: { ...original, stat, open } };
});

describe('SeccompProfileStore and a profile swapped while it is loaded', () => {
  let directory: string;
  const compiled: SeccompFilterSpec[] = [];
  const checked = JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['uname'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }] });
  // Anyone may rewrite this one: the store refuses it when it is the file it checks.
  const swappedIn = JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] });

  beforeEach(() => {
    directory = mkdtempSync(path.join(tmpdir(), 'parafork-seccomp-swap-'));
    compiled.length = 0;
  });
  afterEach(() => {
    afterMetadata.hook = undefined;
    rmSync(directory, { recursive: true, force: true });
  });

  // The swap after the store's first look at the file, and after its second (a store that looks
  // only once never swaps there, and then has nothing to compile but the checked file).
  it.each([1, 2])('never compiles a world-writable file renamed over the profile after its look number %i', async (swapAfterLook) => {
    const profile = path.join(directory, 'profile.json');
    writeFileSync(profile, checked, { mode: 0o644 });
    const loose = path.join(directory, 'loose.json');
    writeFileSync(loose, swappedIn);
    chmodSync(loose, 0o666);
    let looks = 0;
    let swapped = false;
    afterMetadata.hook = (file) => {
      if (file !== profile || ++looks !== swapAfterLook) return;
      swapped = true;
      renameSync(loose, profile);
    };
    const store = new SeccompProfileStore({
      directory,
      compile: (spec) => {
        compiled.push(spec);
        return SeccompFilter.compile(spec);
      },
    });
    const outcome = await store.load('profile.json').then(() => 'loaded', (error: unknown) => error);
    if (swapAfterLook === 1) expect(swapped).toBe(true);
    expect(compiled.map((spec) => JSON.stringify(spec)).join('\n')).not.toContain('getpid');
    if (outcome === 'loaded') {
      expect(compiled).toHaveLength(1);
      expect(JSON.stringify(compiled[0])).toContain('uname');
    } else {
      // The file it then opened was the world-writable one, and the checks refused it.
      expect(outcome).toMatchObject({ reason: 'SandboxUnavailable', message: expect.stringContaining('writable by its owner only') as unknown });
    }
  });
});

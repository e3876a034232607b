// The native spawn request's seccompProgramAttachPoint (native/src/engine.cc): the child attaches a
// custom profile while it still holds CAP_SYS_ADMIN only on the compile's word, so native code
// checks the field again, as the style guide asks of every field TypeScript fills: a value other
// than the three names, or one without a program (or a program without one), never reaches a spawn.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SeccompFilter } from '../../src/launcher/seccomp-filter.js';
import { toNativeRequest } from '../../src/launcher/spawn-options.js';
import { loadNativeBinding, nativeHelperPath, type NativeSpawnEngine, type NativeSpawnRequest } from '../../src/native/binding.js';

describe('sandbox.seccompProgramAttachPoint in a native spawn request', () => {
  let staging: string;
  let engine: NativeSpawnEngine;
  const filter = SeccompFilter.compile({ defaultAction: { action: 'SCMP_ACT_ALLOW' }, rules: [] });

  beforeAll(() => {
    staging = mkdtempSync(path.join(tmpdir(), 'parafork-attach-point-'));
    engine = new (loadNativeBinding().SpawnEngine)({
      threads: 1,
      lockMode: 'xor',
      clonePath: 'clone',
      initPath: nativeHelperPath('parafork-init'),
      stagingDirectory: staging,
      onEvents: () => undefined,
    });
  });
  afterAll(() => {
    engine.close();
    rmSync(staging, { recursive: true, force: true });
  });

  /** A sandboxed request for `filter` as TypeScript builds it, with the sandbox's fields changed. */
  function request(change: Record<string, unknown>): NativeSpawnRequest {
    const built = toNativeRequest({ file: '/bin/true', args: [], sandbox: { seccomp: filter } });
    expect(built.sandbox?.seccompProgramAttachPoint).toBe('privileged');
    return { id: 1, ...built, sandbox: { ...built.sandbox!, ...change } };
  }

  it.each([
    ['an unknown name', { seccompProgramAttachPoint: 'early' }, /must be 'privileged', 'privilegedUnlessEmptyingUserKeyrings' or 'last'/],
    ['a name that is not a string', { seccompProgramAttachPoint: 1 }, /sandbox\.seccompProgramAttachPoint must be a string/],
    ['none with a program', { seccompProgramAttachPoint: null }, /must be given with sandbox\.seccompProgram, and null without it/],
    ['one without a program', { seccompProgram: null }, /must be given with sandbox\.seccompProgram, and null without it/],
  ])('refuses %s before anything is spawned', (_case, change, message) => {
    expect(() => engine.spawn(request(change))).toThrow(message);
  });
});

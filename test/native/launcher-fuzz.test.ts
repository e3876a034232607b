// Property test (fast-check): Launcher.spawn for real with random and adversarial options (see
// test/helpers/task-spec-arbitraries.ts), plain and sandboxed. Every spawn either runs its
// program, which exits as it should, or is refused: InvalidSpawnOptionError before native code
// sees it, or a SpawnError with code, errno and syscall from the native side. Nothing else is
// thrown, no child is left unreaped, and the engine stays usable.
//
// PARAFORK_FUZZ_SCALE multiplies the number of spawns (default 1: 200 plain, 100 sandboxed).
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher } from '../../src/launcher/launcher.js';
import { InvalidSpawnOptionError, SpawnError } from '../../src/launcher/spawn-error.js';
import { adversarialSpawnOptions, adversarialString } from '../helpers/task-spec-arbitraries.js';
import { zombieChildren } from '../helpers/process-table.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';

const scale = Number(process.env.PARAFORK_FUZZ_SCALE ?? 1);
const plainRuns = Math.round(200 * scale);
const sandboxedRuns = Math.round(100 * scale);

let launcher: Launcher;
let scratch: string;

beforeAll(() => {
  launcher = new Launcher();
  scratch = mkdtempSync(path.join(tmpdir(), 'parafork-launcher-fuzz-'));
  chmodSync(scratch, 0o777);
});

afterAll(async () => {
  await launcher.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** Programs that are harmless whatever their arguments, or missing, or not programs. */
const program = fc.oneof({ weight: 4, arbitrary: fc.constantFrom('/bin/true', 'true') }, { weight: 1, arbitrary: fc.constantFrom('/no/such/program', '', '/tmp', 'no-such-program-on-path', '/bin/true\0x') });

/** Options a real caller would pass, with adversarial values here and there. */
function plausibleOptions(sandboxed: boolean): fc.Arbitrary<unknown> {
  const sandbox = fc.record(
    {
      network: fc.constantFrom('none', 'loopback', 'host'),
      readOnlyRootFilesystem: fc.boolean(),
      tmpSizeBytes: fc.constantFrom(0, 4096, 64 * 1024 * 1024, 2 ** 40),
      mounts: fc.constantFrom([], [{ hostPath: '/tmp', mountPath: '/mnt' }], [{ hostPath: '/tmp', mountPath: '/mnt', readOnly: false }], [{ hostPath: '/nonexistent/host', mountPath: '/mnt' }], [{ hostPath: '/tmp', mountPath: '/nonexistent/inside' }]),
      runAsUser: fc.constantFrom(0, 1, 1000, 65534, 4294967294),
      runAsGroup: fc.constantFrom(0, 1, 1000, 65534, 4294967294),
      hostname: fc.constantFrom('parafork', 'a', 'task-1.example'),
      seccomp: fc.constantFrom('default', 'unconfined'),
      maxOpenFiles: fc.constantFrom(0, 3, 16, 1024, 1048576),
      maxFileSizeBytes: fc.constantFrom(0, 1, 4096),
    },
    { requiredKeys: [] },
  );
  return fc.record(
    {
      args: fc.array(adversarialString, { maxLength: 3 }),
      env: fc.dictionary(fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,6}$/), adversarialString, { maxKeys: 3 }),
      cwd: fc.constantFrom('/', '/tmp', '/nonexistent/dir', '/dev/null'),
      stdout: fc.constantFrom('ignore', 'pipe', { file: 'out' }, { file: 'out', append: true }),
      stderr: fc.constantFrom('ignore', 'pipe', { file: 'out', append: true }),
      ...(sandboxed ? { sandbox } : {}),
    },
    { requiredKeys: sandboxed ? ['sandbox'] : [] },
  );
}

function spawnOptions(sandboxed: boolean): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 3, arbitrary: plausibleOptions(sandboxed) }, { weight: 1, arbitrary: adversarialSpawnOptions });
}

/**
 * The options, with everything that touches the host pointed somewhere harmless:
 * output files and mounts go to the scratch dir (or nowhere), cgroups to paths that do not exist.
 */
function harmless(options: unknown, file: string, sandboxed: boolean): unknown {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) return options;
  const given = options as Record<string, unknown>;
  const output = (value: unknown): unknown => (typeof value === 'object' && value !== null && !Array.isArray(value) ? { ...value, file: path.join(scratch, 'out') } : value);
  const result: Record<string, unknown> = { ...given, file, stdout: output(given.stdout), stderr: output(given.stderr) };
  if (given.cgroup !== undefined) result.cgroup = '/nonexistent/cgroup';
  if (given.cgroupsV1 !== undefined) result.cgroupsV1 = Array.isArray(given.cgroupsV1) ? given.cgroupsV1.map(() => '/nonexistent/cgroup') : given.cgroupsV1;
  if (!sandboxed) {
    delete result.sandbox;
  } else if (typeof given.sandbox === 'object' && given.sandbox !== null && !Array.isArray(given.sandbox)) {
    const sandbox = { ...(given.sandbox as Record<string, unknown>) };
    // The host's root, read-only or not, as the agent's default; or a root that cannot work.
    if (sandbox.rootfs !== undefined) sandbox.rootfs = typeof sandbox.rootfs === 'string' && sandbox.rootfs.length % 2 === 0 ? '/' : '/nonexistent/root';
    if (Array.isArray(sandbox.mounts)) {
      sandbox.mounts = sandbox.mounts.map((mount: unknown, index) => (typeof mount === 'object' && mount !== null ? { ...mount, hostPath: index % 2 === 0 ? scratch : '/nonexistent/host' } : mount));
    }
    result.sandbox = sandbox;
  }
  return result;
}

async function spawnOnce(options: unknown, sandboxed: boolean): Promise<string> {
  let child;
  try {
    child = await launcher.spawn(options as Parameters<Launcher['spawn']>[0]);
  } catch (error) {
    if (error instanceof InvalidSpawnOptionError) {
      expect(error.code).toMatch(/^ERR_INVALID_ARG_(TYPE|VALUE)$/);
      expect(error.message).toMatch(/^parafork: \S/);
      return 'refused before native code';
    }
    expect(error).toBeInstanceOf(SpawnError);
    const failure = error as SpawnError;
    expect(failure.code).toMatch(/^E[A-Z0-9]+$/);
    expect(failure.errno).toBeLessThan(0);
    expect(failure.syscall.length).toBeGreaterThan(0);
    expect(failure.message).toContain(failure.code);
    return `${failure.code} in ${failure.syscall}`;
  }
  // Drain pipes so the child never blocks on a full one (true writes nothing, but still).
  child.stdout?.resume();
  child.stderr?.resume();
  const exit = await child.exited;
  if (!sandboxed) {
    expect(exit).toMatchObject({ code: 0, signal: null });
    return 'exited 0';
  }
  // In a sandbox the command is looked up inside and exec'd by its init, which reports what then
  // goes wrong as shells do: 126 (found, not executable: a directory passes the X_OK lookup),
  // 127 (the loader failed: no fds left under maxOpenFiles 0), 128 + N (signal N: SIGXFSZ when
  // the loader's complaint meets maxFileSizeBytes). What matters: a well-formed ending.
  expect(exit.signal === null ? Number.isInteger(exit.code) && exit.code! >= 0 && exit.code! <= 255 : typeof exit.signal === 'string').toBe(true);
  return `exited ${exit.code ?? exit.signal}`;
}

/** Runs `runs` generated spawns, plain or sandboxed; returns how many ended each way (and logs it). */
async function fuzzSpawns(sandboxed: boolean, runs: number): Promise<Map<string, number>> {
  const outcomes = new Map<string, number>();
  await fc.assert(
    fc.asyncProperty(spawnOptions(sandboxed), program, async (options, file) => {
      const outcome = await spawnOnce(harmless(options, file, sandboxed), sandboxed);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }),
    { numRuns: runs },
  );
  console.log(`launcher fuzz (${sandboxed ? 'sandboxed' : 'plain'}): ${JSON.stringify(Object.fromEntries(outcomes))}`);
  return outcomes;
}

describe('Launcher.spawn with adversarial options', () => {
  it(`runs or refuses each of ${plainRuns} plain spawns with a reason, and leaves no zombie`, async () => {
    const outcomes = await fuzzSpawns(false, plainRuns);
    expect(outcomes.get('exited 0') ?? 0).toBeGreaterThan(0);
    expect(zombieChildren()).toEqual([]);
    expect(launcher.stats().running).toBe(0);
  }, 60_000);

  const noSandbox = missingRequirement('sandboxed spawns need root', runningAsRoot);
  it.skipIf(noSandbox !== undefined)(`runs or refuses each of ${sandboxedRuns} sandboxed spawns with a reason${noSandbox ? ` (skipped: ${noSandbox})` : ''}`, async () => {
    await fuzzSpawns(true, sandboxedRuns);
    expect(zombieChildren()).toEqual([]);
    expect(launcher.stats().running).toBe(0);
  }, 60_000);
});

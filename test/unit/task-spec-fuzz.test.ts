// Property tests (fast-check): random and adversarial Task specs go the way a Task goes before it
// becomes a process: manifest validation against the CRD's schema (src/standalone/manifest-loader.ts),
// the sandbox conversion (src/sandbox/task-sandbox.ts) and the launcher's option checks
// (src/launcher/spawn-options.ts, sandbox-options.ts). At every step a spec is either accepted or
// refused with an error a program can switch on and a message that names the problem; nothing
// throws anything else. What the sandbox conversion accepts, the launcher accepts too. test/native/launcher-fuzz.test.ts spawns a subset for real.
//
// PARAFORK_FUZZ_SCALE multiplies the number of runs (default 1: 6,000 + 4,000 specs here).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { taskKind, type Task } from '../../src/api/task.js';
import { InvalidSpawnOptionError } from '../../src/launcher/spawn-error.js';
import { toNativeRequest } from '../../src/launcher/spawn-options.js';
import { sandboxForTask } from '../../src/sandbox/task-sandbox.js';
import { loadTaskFile, ManifestError } from '../../src/standalone/manifest-loader.js';
import { adversarialSpawnOptions, adversarialString, taskDocument, spawnOptionsFor } from '../helpers/task-spec-arbitraries.js';

const scale = Number(process.env.PARAFORK_FUZZ_SCALE ?? 1);
const pipelineRuns = Math.round(6_000 * scale);
const spawnOptionRuns = Math.round(4_000 * scale);

let scratch: string;

beforeAll(() => {
  scratch = mkdtempSync(path.join(tmpdir(), 'parafork-fuzz-'));
});

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

/**
 * A refusal's message must say what is wrong, and stay a line a person can read: values are shown
 * in part; a field is named in full, so the caller's own long key (an env name) may lengthen it.
 */
function expectReadable(message: string, longestName = 0): void {
  expect(message.trim().length).toBeGreaterThan(10);
  expect(message.length).toBeLessThan(2_000 + longestName);
}

/** The longest object key anywhere in `value`. */
function longestKey(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  return Math.max(0, ...Object.entries(value).map(([key, child]) => Math.max(key.length, longestKey(child))));
}

function expectSpawnOptionRefusal(error: unknown, options: unknown): void {
  expect(error).toBeInstanceOf(InvalidSpawnOptionError);
  const refusal = error as InvalidSpawnOptionError;
  expect(['ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE']).toContain(refusal.code);
  // "parafork: sandbox.mounts[0].hostPath must be an absolute path": the option, then the rule.
  expect(refusal.message).toMatch(/^parafork: \S.* (must|takes|has)\b/s);
  expectReadable(refusal.message, longestKey(options));
}

describe('a Task spec on its way to a process', () => {
  it(`is accepted or refused with a reason at each step (${pipelineRuns} random and adversarial manifests)`, async () => {
    const outcomes = new Map<string, number>();
    const count = (outcome: string): void => void outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    const file = path.join(scratch, 'task.json');
    await fc.assert(
      fc.asyncProperty(taskDocument, async (document) => {
        writeFileSync(file, JSON.stringify(document));
        let task: Task;
        try {
          const loaded = loadTaskFile(file);
          // A JSON null is an empty document: no Task, and nothing wrong.
          expect(loaded).toHaveLength(document === null ? 0 : 1);
          if (document === null) return;
          task = loaded[0]!.task;
        } catch (error) {
          expect(error).toBeInstanceOf(ManifestError);
          const message = (error as ManifestError).message;
          // "FILE#1 (Task x): spec.command: must NOT have fewer than 1 items": where, then what.
          expect(message.startsWith(`${file}#1`)).toBe(true);
          expectReadable(message.slice(file.length));
          count('refused by validation');
          return;
        }

        // Privileged: the policy's refusals are the sandbox policy's own tests (sandbox-policy.test.ts);
        // here every loosening field goes on to the launcher.
        const sandboxed = await sandboxForTask(task.spec, undefined, undefined, undefined, { level: 'privileged', allowedHostPaths: [] });
        if ('reason' in sandboxed) {
          expect(['InvalidSpec', 'SandboxUnavailable']).toContain(sandboxed.reason);
          expectReadable(sandboxed.message);
          count(`refused by the sandbox conversion: ${sandboxed.reason}`);
          return;
        }
        // What the agent's checks accept, the launcher accepts: a spec is never found invalid
        // by a spawn (which would end as SpawnFailed and be retried), only before it.
        toNativeRequest(spawnOptionsFor(task, sandboxed));
        count('accepted by the launcher');
      }),
      { numRuns: pipelineRuns },
    );
    console.log(`task-spec fuzz: ${JSON.stringify(Object.fromEntries(outcomes))}`);
    // The generator reaches every step, or the property proves little about the later ones.
    expect(outcomes.get('refused by validation') ?? 0).toBeGreaterThan(pipelineRuns / 10);
    expect(outcomes.get('accepted by the launcher') ?? 0).toBeGreaterThan(pipelineRuns / 10);
  }, 120_000);

  it(`manifest files that are not JSON or YAML Tasks at all are refused with the file named (${Math.round(pipelineRuns / 6)} texts)`, () => {
    const file = path.join(scratch, 'task.yaml');
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), adversarialString, fc.jsonValue().map((value) => JSON.stringify(value))), (text) => {
        writeFileSync(file, text);
        try {
          for (const entry of loadTaskFile(file)) expect(entry.task.kind).toBe(taskKind);
        } catch (error) {
          expect(error).toBeInstanceOf(ManifestError);
          expect((error as Error).message.startsWith(file)).toBe(true);
          expectReadable((error as Error).message.slice(file.length));
        }
      }),
      { numRuns: Math.round(pipelineRuns / 6) },
    );
  });
});

describe('Launcher spawn options from any caller', () => {
  it(`are checked into a native request or refused with ERR_INVALID_ARG_* (${spawnOptionRuns} option objects)`, () => {
    fc.assert(
      fc.property(adversarialSpawnOptions, (options) => {
        try {
          const request = toNativeRequest(options);
          // What passes is what native code can take: strings without NUL, whole numbers.
          for (const text of [request.file, request.cwd, ...request.argv, ...(request.env ?? [])]) expect(text.includes('\0')).toBe(false);
          if (request.sandbox !== null) {
            expect(Number.isSafeInteger(request.sandbox.uid) && Number.isSafeInteger(request.sandbox.gid)).toBe(true);
            expect(Number.isSafeInteger(request.sandbox.network)).toBe(true);
          }
        } catch (error) {
          expectSpawnOptionRefusal(error, options);
        }
      }),
      { numRuns: spawnOptionRuns },
    );
  });
});

// Red team probe: what a Task writes ends up in its status (stderrTail, result, an array's failure
// records), which the agent must always be able to write back: a status the apiserver refuses
// would leave the Task Running for good and retry the write for ever. Hostile output: NUL bytes,
// invalid UTF-8, escape sequences, and 4-byte characters placed across every cut (4096 code
// points for stderrTail, 4096 bytes for the result).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { applyTask, createTestNamespace, waitForTaskPhase, type TestNamespace } from '../helpers/cluster.js';

const suffix = randomBytes(3).toString('hex');
const nodeName = `hostile-output-${suffix}`;
let namespace: TestNamespace;
let stateDirectory: string;
let agent: AgentProcess;

// printf's octal escapes: NUL, a lone continuation byte, a truncated 3-byte sequence, ESC [ 2 J,
// then a 4-byte emoji repeated so that one straddles any cut.
const hostile = String.raw`\000\200\342\202\033[2J`;
const emojis = String.raw`\360\237\230\200`;
const script = (redirect: string): string => `i=0; while [ $i -lt 1500 ]; do printf '${hostile}${emojis}' ${redirect}; i=$((i+1)); done`;

beforeAll(async () => {
  namespace = await createTestNamespace('hostile-output');
  stateDirectory = mkdtempSync(path.join(tmpdir(), 'parafork-hostile-output-'));
  agent = await startAgent(nodeName, ['--state-dir', stateDirectory]);
});

afterAll(async () => {
  await agent?.stop();
  await namespace?.cleanup();
  rmSync(stateDirectory, { recursive: true, force: true });
});

describe('hostile output in a Task\'s status', () => {
  it('a failed Task\'s stderr tail is written back, at most 4096 code points', async () => {
    await applyTask(namespace.name, 'stderr', nodeName, { command: ['sh', '-c', `${script('>&2')}; exit 1`], backoffLimit: 0 });
    const task = await waitForTaskPhase(namespace.name, 'stderr', ['Failed'], 30_000);
    expect(task.status?.reason).toBe('Error');
    const tail = task.status?.stderrTail ?? '';
    expect(tail.length).toBeGreaterThan(0);
    expect(Array.from(tail).length).toBeLessThanOrEqual(4096);
  });

  it('a result with NUL and invalid UTF-8 is written back, at most 4096 bytes', async () => {
    await applyTask(namespace.name, 'result', nodeName, { command: ['sh', '-c', script('>>"$PARAFORK_RESULT"')], resultPolicy: 'File' });
    const task = await waitForTaskPhase(namespace.name, 'result', ['Succeeded'], 30_000);
    expect(task.status?.resultTruncated).toBe(true);
    expect(Buffer.byteLength(task.status?.result ?? '')).toBeLessThanOrEqual(4096 * 3);
    expect(task.status?.result).not.toContain('\0');
  });

  it('an array whose indexes fail with it records their failures', async () => {
    await applyTask(namespace.name, 'array', nodeName, { command: ['sh', '-c', `${script('>&2')}; exit 1`], completions: 3, backoffLimitPerIndex: 0 });
    const task = await waitForTaskPhase(namespace.name, 'array', ['Failed'], 30_000);
    expect(task.status?.failedIndexes).toBe('0-2');
    expect(task.status?.failures?.length).toBeGreaterThan(0);
  });
});

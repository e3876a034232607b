// Red team: the agent's /logs asks the apiserver who a reader is (TokenReview) and whether they
// may read (SubjectAccessReview) before it serves anything. Anyone who reaches the agent's port
// (any Pod of the cluster, without a NetworkPolicy; a reader with the log-proxy Role through the
// apiserver) can make it ask: each request with a token it has not seen is one more review. Those
// reviews must not wait in the same rate limit as the agent's own writes (status, finalizers,
// claims): a stream of made-up tokens would otherwise hold back every Task of the node. Hostile
// input: 128 log readers at once, each with a fresh random token, for as long as the Task runs,
// against an agent whose API rate limit is 5 requests a second.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { applyTask, createTestNamespace, waitForTaskPhase, type TestNamespace } from '../helpers/cluster.js';

const suffix = randomBytes(3).toString('hex');
const nodeName = `log-flood-${suffix}`;
let namespace: TestNamespace;
let stateDirectory: string;
let agent: AgentProcess;

function portOf(running: AgentProcess): number {
  return Number(/"port":(\d+)[^\n]*"msg":"agent ready"/.exec(running.logs())?.[1]);
}

beforeAll(async () => {
  namespace = await createTestNamespace('log-flood');
  stateDirectory = mkdtempSync(path.join(tmpdir(), 'parafork-log-flood-'));
  agent = await startAgent(nodeName, ['--state-dir', stateDirectory, '--api-qps', '5', '--api-burst', '5']);
});

afterAll(async () => {
  await agent?.stop();
  await namespace?.cleanup();
  rmSync(stateDirectory, { recursive: true, force: true });
});

describe('log readers with made-up tokens', () => {
  it('do not hold back the status writes of the node\'s Tasks', async () => {
    const flooding = new AbortController();
    let answered = 0;
    const reader = async (): Promise<void> => {
      while (!flooding.signal.aborted) {
        try {
          const response = await fetch(`http://127.0.0.1:${portOf(agent)}/logs/${namespace.name}/anything`, { headers: { 'X-Parafork-Token': `Bearer ${randomBytes(16).toString('hex')}` }, signal: flooding.signal });
          await response.text();
          answered++;
        } catch {
          // aborted at the end
        }
      }
    };
    const readers = Array.from({ length: 128 }, () => reader());
    try {
      await new Promise((resolve) => setTimeout(resolve, 2000)); // the flood is under way
      const started = Date.now();
      await applyTask(namespace.name, 'quick', nodeName, { command: ['true'] });
      await waitForTaskPhase(namespace.name, 'quick', ['Succeeded'], 20_000);
      // Its writes (finalizer, Running, Succeeded, finalizer again) take well under the 20 s.
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      flooding.abort();
      await Promise.all(readers);
    }
    expect(answered).toBeGreaterThan(0);
  }, 60_000);
});

// Task logs against the real apiserver: a Task's stdout and stderr come back from the agent's /logs
// in order, to a user the apiserver says may get the Task's tasks/log (the chart's log-reader
// ClusterRole bound in the namespace) and to nobody else (403; 401 without a token); they survive
// an agent restart and go when the Task is deleted or collected after ttlSecondsAfterFinished.
// `kubectl parafork logs` reads them through the apiserver's pod proxy, from an agent "Pod" whose
// status names this machine's address (no kubelet here: the Pod object stands for the agent).
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { taskApiVersion, taskKind } from '../../src/api/task.js';
import { maxLogStreams } from '../../src/logs/log-endpoint.js';
import { startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { applyTask, createTestNamespace, getTask, kubectl, waitFor, waitForTaskPhase, type TestNamespace } from '../helpers/cluster.js';
import { renderChart, repositoryRoot } from '../helpers/helm.js';
import { standInAgentPod, tokenKubeconfig } from '../helpers/log-access.js';

const suffix = randomBytes(3).toString('hex');
const nodeName = `logs-node-${suffix}`;
let namespace: TestNamespace;
let stateDirectory: string;
let agent: AgentProcess;
let readerRole: string;
let tokens: { reader: string; stranger: string };
const agentArguments = (): string[] => ['--state-dir', stateDirectory, '--listen-address', '0.0.0.0'];

function portOf(running: AgentProcess): number {
  return Number(/"port":(\d+)[^\n]*"msg":"agent ready"/.exec(running.logs())?.[1]);
}

async function readLog(name: string, token: string | undefined, query = ''): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${portOf(agent)}/logs/${namespace.name}/${name}${query}`, { headers: token === undefined ? {} : { 'X-Parafork-Token': `Bearer ${token}` } });
  return { status: response.status, body: await response.text() };
}

function logDirectoryOf(uid: string, name: string): string {
  return path.join(stateDirectory, 'logs', nodeName, `${namespace.name}_${name}_${uid}`);
}

beforeAll(async () => {
  namespace = await createTestNamespace('logs');
  stateDirectory = mkdtempSync(path.join(tmpdir(), 'parafork-logs-state-'));
  const manifests = await renderChart({ release: `logs-${suffix}`, namespace: namespace.name, showOnly: ['templates/log-reader-clusterrole.yaml', 'templates/log-proxy-role.yaml'] });
  await kubectl(['apply', '-f', '-'], { input: manifests });
  readerRole = `logs-${suffix}-parafork-log-reader`;
  for (const account of ['reader', 'stranger']) await kubectl(['create', 'serviceaccount', account, '--namespace', namespace.name]);
  await kubectl(['create', 'rolebinding', 'reader-logs', `--clusterrole=${readerRole}`, `--serviceaccount=${namespace.name}:reader`, '--namespace', namespace.name]);
  // The test namespace stands for the agents' namespace too: both readers may reach the agent.
  await kubectl(['create', 'rolebinding', 'log-proxy', `--role=logs-${suffix}-parafork-log-proxy`, `--serviceaccount=${namespace.name}:reader`, `--serviceaccount=${namespace.name}:stranger`, '--namespace', namespace.name]);
  tokens = {
    reader: (await kubectl(['create', 'token', 'reader', '--namespace', namespace.name, '--duration=1h'])).trim(),
    stranger: (await kubectl(['create', 'token', 'stranger', '--namespace', namespace.name, '--duration=1h'])).trim(),
  };
  agent = await startAgent(nodeName, agentArguments());
});

afterAll(async () => {
  await agent?.stop();
  await namespace?.cleanup();
  if (readerRole) await kubectl(['delete', 'clusterrole', readerRole, '--ignore-not-found', '--wait=false']);
  rmSync(stateDirectory, { recursive: true, force: true });
});

describe('a Task\'s output', () => {
  it('comes back in order with each stream, to a user bound to the log-reader ClusterRole', async () => {
    await applyTask(namespace.name, 'talker', nodeName, { command: ['sh', '-c', 'echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three; exit 3'] });
    const task = await waitForTaskPhase(namespace.name, 'talker', ['Failed']);
    expect(task.status?.stderrTail).toBe('two\n');
    expect(task.status?.usage?.userCpuMicroseconds).toBeGreaterThanOrEqual(0);
    expect(task.status?.usage?.systemCpuMicroseconds).toBeGreaterThanOrEqual(0);
    expect(await readLog('talker', tokens.reader)).toEqual({ status: 200, body: 'one\ntwo\nthree\n' });
    expect((await readLog('talker', tokens.reader, '?stream=stderr')).body).toBe('two\n');
    expect((await readLog('talker', tokens.reader, '?timestamps=true&tail=1')).body).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z three\n$/);
  });

  it('is refused (403) to a user without the role, and (401) to one without a token', async () => {
    expect((await readLog('talker', tokens.stranger)).status).toBe(403);
    expect((await readLog('talker', undefined)).status).toBe(401);
    expect((await readLog('talker', 'not-a-token')).status).toBe(401);
  });

  it('is still served to an allowed reader while more than maxLogStreams readers with made-up tokens wait for their reviews', async () => {
    // Red team: a log response's place was taken before the reviews, so made-up tokens (each one
    // more TokenReview in a client of 10 a second) held all 512 for as long as they waited, and an
    // allowed reader got 429. Places are now for allowed readers; reviews on their way are bounded
    // apart (maxPendingLogReviews), past which a new token is answered 429 at once. The flood: 600
    // readers, each asking again with a fresh token as soon as it is answered (10 ms after a 429).
    expect((await readLog('talker', tokens.reader)).status).toBe(200); // its decision is kept for 10 s
    const flooding = new AbortController();
    const statuses: number[] = [];
    const floodReader = async (): Promise<void> => {
      while (!flooding.signal.aborted) {
        try {
          const response = await fetch(`http://127.0.0.1:${portOf(agent)}/logs/${namespace.name}/talker`, { headers: { 'X-Parafork-Token': `Bearer ${randomBytes(16).toString('hex')}` }, signal: flooding.signal });
          await response.text();
          statuses.push(response.status);
          if (response.status === 429) await new Promise((resolve) => setTimeout(resolve, 10));
        } catch {
          // aborted at the end
        }
      }
    };
    const flood = Array.from({ length: maxLogStreams + 88 }, () => floodReader());
    try {
      await waitFor((observed) => (observed(statuses.length), statuses.length >= 200 ? true : undefined), { description: 'the flood to be under way', timeoutMs: 8_000 });
      for (let read = 0; read < 3; read++) expect(await readLog('talker', tokens.reader)).toEqual({ status: 200, body: 'one\ntwo\nthree\n' });
    } finally {
      flooding.abort();
      await Promise.all(flood);
    }
    expect(statuses).not.toContain(200);
  });

  it('survives an agent restart', async () => {
    await agent.stop();
    agent = await startAgent(nodeName, agentArguments());
    expect(await readLog('talker', tokens.reader)).toEqual({ status: 200, body: 'one\ntwo\nthree\n' });
  });

  it('reads through the apiserver with kubectl parafork logs, for a reader with the roles only', async () => {
    await standInAgentPod(namespace.name, nodeName, portOf(agent));
    const plugin = (token: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } =>
      spawnSync(process.execPath, [path.join(repositoryRoot, 'dist/cli/kubectl-plugin.js'), 'logs', 'talker', '-n', namespace.name, '--agent-namespace', namespace.name, '--kubeconfig', tokenKubeconfig(token, stateDirectory), ...args], { encoding: 'utf8', timeout: 30_000 });
    expect(plugin(tokens.reader)).toMatchObject({ status: 0, stdout: 'one\ntwo\nthree\n' });
    expect(plugin(tokens.reader, '--stream', 'stderr')).toMatchObject({ status: 0, stdout: 'two\n' });
    const refused = plugin(tokens.stranger);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/forbidden/);
  });

  it('tells a reader whose kubeconfig has a client certificate to read with a token, and reads with one from --token-file', () => {
    // The run's admin kubeconfig authenticates with a client certificate (scripts/dev-cluster.sh).
    const plugin = (...args: string[]): { status: number | null; stdout: string; stderr: string } =>
      spawnSync(process.execPath, [path.join(repositoryRoot, 'dist/cli/kubectl-plugin.js'), 'logs', 'talker', '-n', namespace.name, '--agent-namespace', namespace.name, '--kubeconfig', inject('kubeconfigPath'), ...args], { encoding: 'utf8', timeout: 30_000 });
    const refused = plugin();
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^kubectl parafork: your kubeconfig user authenticates with a client certificate, and reading a Task's log needs a bearer token/);
    expect(refused.stderr).toContain('--token-file <(kubectl create token log-reader -n NS)');
    const tokenFile = (token: string): string => {
      const file = path.join(stateDirectory, `token-${randomBytes(3).toString('hex')}`);
      writeFileSync(file, `${token}\n`, { mode: 0o600 });
      return file;
    };
    // The token is who reads: the reader's gets the log, the stranger's is refused.
    expect(plugin('--token-file', tokenFile(tokens.reader))).toMatchObject({ status: 0, stdout: 'one\ntwo\nthree\n' });
    const stranger = plugin('--token-file', tokenFile(tokens.stranger));
    expect(stranger.status).toBe(1);
    expect(stranger.stderr).toMatch(/forbidden/);
  });

  it('goes when the Task is deleted', async () => {
    const uid = (await getTask(namespace.name, 'talker')).metadata.uid ?? '';
    expect(existsSync(logDirectoryOf(uid, 'talker'))).toBe(true);
    await kubectl(['delete', 'tasks.parafork.dev', 'talker', '--namespace', namespace.name]);
    await waitFor(() => !existsSync(logDirectoryOf(uid, 'talker')) || undefined, { description: 'the deleted Task\'s logs to go', timeoutMs: 10_000 });
    expect((await readLog('talker', tokens.reader)).status).toBe(404);
  });

  it('goes when the Task is collected after ttlSecondsAfterFinished', async () => {
    // The uid comes from the create itself: a Task collected a second after it ends can be gone
    // before a poll for its phase sees it (a CI run at load 46 missed it so). It lingers two
    // seconds after its output, so that its log is seen to exist before it is seen to go.
    const manifest = { apiVersion: taskApiVersion, kind: taskKind, metadata: { name: 'brief', namespace: namespace.name }, spec: { nodeName, command: ['sh', '-c', 'echo bye; sleep 2'], ttlSecondsAfterFinished: 1 } };
    const uid = (await kubectl(['create', '-f', '-', '--output', 'jsonpath={.metadata.uid}'], { input: JSON.stringify(manifest) })).trim();
    expect(uid).not.toBe('');
    await waitFor(() => existsSync(logDirectoryOf(uid, 'brief')) || undefined, { description: 'the Task\'s logs to be written', timeoutMs: 20_000 });
    await waitFor(() => !existsSync(logDirectoryOf(uid, 'brief')) || undefined, { description: 'the collected Task\'s logs to go', timeoutMs: 20_000 });
    await expect(getTask(namespace.name, 'brief')).rejects.toThrow(/NotFound/);
  });

  it('of Tasks deleted while the agent was away is swept when it starts', async () => {
    await applyTask(namespace.name, 'orphan', nodeName, { command: ['sh', '-c', 'echo left behind'] });
    const uid = (await waitForTaskPhase(namespace.name, 'orphan', ['Succeeded'])).metadata.uid ?? '';
    await agent.stop();
    await kubectl(['delete', 'tasks.parafork.dev', 'orphan', '--namespace', namespace.name]);
    expect(existsSync(logDirectoryOf(uid, 'orphan'))).toBe(true);
    agent = await startAgent(nodeName, agentArguments());
    expect(existsSync(logDirectoryOf(uid, 'orphan'))).toBe(false);
    expect(readdirSync(path.join(stateDirectory, 'logs', nodeName))).toEqual([]);
  });
});

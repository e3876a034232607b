// Logs per index of a Task array (issues 17 and 15) against the real apiserver and agent: each
// index's stdout and stderr come back by its index, in order and with their streams, from the
// agent's GET /logs (to a reader bound to the log-reader ClusterRole), from `parafork logs --index`
// on the node and from `kubectl parafork logs --index` through the apiserver's pod proxy; a
// retried index keeps its earlier attempt (--attempt); an index that printed nothing has no log
// file; they survive an agent restart and go with the Task. Sandboxed: needs root, as the agent.
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { applyTask, createTestNamespace, getTask, kubectl, waitFor, waitForTaskPhase, type TestNamespace } from '../helpers/cluster.js';
import { renderChart, repositoryRoot } from '../helpers/helm.js';
import { standInAgentPod, tokenKubeconfig } from '../helpers/log-access.js';

const suffix = randomBytes(3).toString('hex');
const nodeName = `index-logs-node-${suffix}`;
let namespace: TestNamespace;
let stateDirectory: string;
let scratch: string;
let agent: AgentProcess;
let readerRole: string;
let readerToken: string;
const agentArguments = (): string[] => ['--state-dir', stateDirectory, '--listen-address', '0.0.0.0'];

function portOf(running: AgentProcess): number {
  return Number(/"port":(\d+)[^\n]*"msg":"agent ready"/.exec(running.logs())?.[1]);
}

async function readLog(name: string, query: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${portOf(agent)}/logs/${namespace.name}/${name}${query}`, { headers: { 'X-Parafork-Token': `Bearer ${readerToken}` } });
  return { status: response.status, body: await response.text() };
}

/** `parafork logs` on the node, reading the agent's --state-dir. */
function paraforkLogs(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [path.join(repositoryRoot, 'dist/cli/main.js'), 'logs', ...args, '-n', namespace.name, '--state-dir', stateDirectory], { encoding: 'utf8', timeout: 30_000 });
}

function taskLogDirectory(uid: string, name: string): string {
  return path.join(stateDirectory, 'logs', nodeName, `${namespace.name}_${name}_${uid}`);
}

beforeAll(async () => {
  namespace = await createTestNamespace('index-logs');
  stateDirectory = mkdtempSync(path.join(tmpdir(), 'parafork-index-logs-state-'));
  scratch = mkdtempSync(path.join(tmpdir(), 'parafork-index-logs-'));
  chmodSync(scratch, 0o777); // the sandboxed indexes run as uids of their own
  const manifests = await renderChart({ release: `index-logs-${suffix}`, namespace: namespace.name, showOnly: ['templates/log-reader-clusterrole.yaml', 'templates/log-proxy-role.yaml'] });
  await kubectl(['apply', '-f', '-'], { input: manifests });
  readerRole = `index-logs-${suffix}-parafork-log-reader`;
  await kubectl(['create', 'serviceaccount', 'reader', '--namespace', namespace.name]);
  await kubectl(['create', 'rolebinding', 'reader-logs', `--clusterrole=${readerRole}`, `--serviceaccount=${namespace.name}:reader`, '--namespace', namespace.name]);
  await kubectl(['create', 'rolebinding', 'log-proxy', `--role=index-logs-${suffix}-parafork-log-proxy`, `--serviceaccount=${namespace.name}:reader`, '--namespace', namespace.name]);
  readerToken = (await kubectl(['create', 'token', 'reader', '--namespace', namespace.name, '--duration=1h'])).trim();
  agent = await startAgent(nodeName, agentArguments());
});

afterAll(async () => {
  await agent?.stop();
  await namespace?.cleanup();
  if (readerRole) await kubectl(['delete', 'clusterrole', readerRole, '--ignore-not-found', '--wait=false']);
  rmSync(stateDirectory, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

describe('the logs of a Task array\'s indexes', () => {
  // Index 9 prints nothing; index 7 fails its first attempt (a marker in /mnt says it was tried).
  const script = [
    '[ "$PARAFORK_TASK_INDEX" = 9 ] && exit 0',
    'echo "out $PARAFORK_TASK_INDEX"; sleep 0.1; echo "err $PARAFORK_TASK_INDEX" >&2; sleep 0.1',
    'if [ "$PARAFORK_TASK_INDEX" = 7 ] && [ ! -e /mnt/tried ]; then touch /mnt/tried; echo "first try" >&2; exit 3; fi',
    'echo done',
  ].join('\n');
  let uid = '';

  beforeAll(async () => {
    const folder = path.join(scratch, 'talkers');
    mkdirSync(folder, { mode: 0o777 });
    chmodSync(folder, 0o777);
    await applyTask(namespace.name, 'talkers', nodeName, {
      command: ['sh', '-c', script],
      completions: 12,
      backoffLimitPerIndex: 1,
      backoff: { initialSeconds: 1, maxSeconds: 1 },
      sandbox: { mounts: [{ hostPath: folder, mountPath: '/mnt', readOnly: false }] },
    });
    const task = await waitForTaskPhase(namespace.name, 'talkers', ['Succeeded', 'Failed'], 30_000);
    expect(task.status?.phase).toBe('Succeeded');
    uid = task.metadata.uid ?? '';
  });

  it('come back by index, in order and with their streams, from the agent\'s /logs', async () => {
    expect(await readLog('talkers', '?index=3')).toEqual({ status: 200, body: 'out 3\nerr 3\ndone\n' });
    expect((await readLog('talkers', '?index=3&stream=stderr')).body).toBe('err 3\n');
    expect((await readLog('talkers', '?index=11&timestamps=true&tail=1')).body).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z done\n$/);
    expect((await readLog('talkers', '?index=x')).status).toBe(400);
  });

  it('keep a retried index\'s earlier attempt, read with --attempt', async () => {
    expect((await readLog('talkers', '?index=7')).body).toBe('out 7\nerr 7\ndone\n');
    expect((await readLog('talkers', '?index=7&attempt=1')).body).toBe('out 7\nerr 7\nfirst try\n');
    expect(paraforkLogs('talkers', '--index', '7', '--attempt', '1', '--stream', 'stderr')).toMatchObject({ status: 0, stdout: 'err 7\nfirst try\n' });
    expect(paraforkLogs('talkers', '--index', '7')).toMatchObject({ status: 0, stdout: 'out 7\nerr 7\ndone\n' });
  });

  it('leave no file for an index that printed nothing, and say so', async () => {
    const shard = path.join(taskLogDirectory(uid, 'talkers'), 'indexes', '0');
    expect(readdirSync(shard).sort()).toEqual(['0.1.log', '1.1.log', '10.1.log', '11.1.log', '2.1.log', '3.1.log', '4.1.log', '5.1.log', '6.1.log', '7.1.log', '7.2.log', '8.1.log']);
    const missing = await readLog('talkers', '?index=9');
    expect(missing.status).toBe(404);
    // The agent recorded the index's ending beside the logs (src/logs/ended-index-records.ts): said as such.
    expect(missing.body).toMatch(/^index 9 of Task \S+\/talkers succeeded and no log of it is kept: it printed nothing/);
    // -f does not wait for an index that has already ended.
    expect(paraforkLogs('talkers', '--index', '9', '-f')).toMatchObject({ status: 1, stderr: expect.stringMatching(/index 9 of Task \S+\/talkers succeeded and no log of it is kept/) as string });
    const whole = paraforkLogs('talkers');
    expect(whole.status).toBe(1);
    expect(whole.stderr).toMatch(/is an array: each index has its own log \(--index N\)/);
  });

  it('survive an agent restart', async () => {
    await agent.stop();
    agent = await startAgent(nodeName, agentArguments());
    expect(await readLog('talkers', '?index=3')).toEqual({ status: 200, body: 'out 3\nerr 3\ndone\n' });
  });

  it('read through the apiserver with kubectl parafork logs --index', async () => {
    await standInAgentPod(namespace.name, nodeName, portOf(agent));
    const plugin = spawnSync(process.execPath, [path.join(repositoryRoot, 'dist/cli/kubectl-plugin.js'), 'logs', 'talkers', '--index', '7', '--attempt', '1', '-n', namespace.name, '--agent-namespace', namespace.name, '--kubeconfig', tokenKubeconfig(readerToken, stateDirectory)], { encoding: 'utf8', timeout: 30_000 });
    expect(plugin).toMatchObject({ status: 0, stdout: 'out 7\nerr 7\nfirst try\n' });
  });

  it('go when the Task is deleted', async () => {
    expect((await getTask(namespace.name, 'talkers')).metadata.uid).toBe(uid);
    expect(existsSync(taskLogDirectory(uid, 'talkers'))).toBe(true);
    await kubectl(['delete', 'tasks.parafork.dev', 'talkers', '--namespace', namespace.name]);
    await waitFor(() => !existsSync(taskLogDirectory(uid, 'talkers')) || undefined, { description: 'the deleted array\'s index logs to go', timeoutMs: 10_000 });
    expect((await readLog('talkers', '?index=3')).status).toBe(404);
  });
});

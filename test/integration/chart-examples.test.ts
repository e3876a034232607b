// The manifests in examples/, which the chart's NOTES.txt and the README send users to: every one
// is accepted by the real apiserver (`kubectl apply --dry-run=server`), each says what it shows in
// a comment header, and those an agent can run today end as their header says.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { load } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import type { Task } from '../../src/api/task.js';
import { startAgentCommand, type RunningAgentCommand } from '../helpers/agent-command.js';
import { createTestNamespace, getTask, kubectl, waitFor, type TestNamespace } from '../helpers/cluster.js';
import { repositoryRoot } from '../helpers/helm.js';

const examplesDir = path.join(repositoryRoot, 'examples');
const exampleFiles = readdirSync(examplesDir)
  .filter((file) => file.endsWith('.yaml'))
  .sort();

interface Manifest {
  readonly kind: string;
  readonly metadata?: { readonly name?: string };
  readonly spec?: { readonly nodeName?: string };
  readonly items?: readonly Manifest[];
}

function readExample(file: string): Manifest {
  return load(readFileSync(path.join(examplesDir, file), 'utf8')) as Manifest;
}

let namespace: TestNamespace;
let agent: RunningAgentCommand | undefined;

beforeAll(async () => {
  namespace = await createTestNamespace('examples');
});

afterAll(async () => {
  await agent?.stop();
  await namespace.cleanup();
});

describe('examples/', () => {
  it('has the examples the README and the chart point to', () => {
    expect(exampleFiles).toEqual(['array.yaml', 'burst-1000.yaml', 'deadline.yaml', 'failing.yaml', 'hello.yaml', 'limits-memory.yaml', 'limits-pids.yaml', 'node-bound.yaml']);
  });

  it.each(exampleFiles)('%s opens with a comment header that names it and says what it shows', (file) => {
    const lines = readFileSync(path.join(examplesDir, file), 'utf8').split('\n');
    expect(lines[0]).toMatch(new RegExp(`^# ${file.replace('.yaml', '')}: \\S`));
    const header = lines.slice(0, lines.findIndex((line) => !line.startsWith('#')));
    expect(header.length, 'header lines').toBeGreaterThanOrEqual(3);
    expect(header.join('\n')).toContain(`kubectl apply -f examples/${file}`);
  });

  it('burst-1000.yaml is one List of 1,000 tiny Tasks with distinct names', () => {
    const list = readExample('burst-1000.yaml');
    expect(list.kind).toBe('List');
    const names = new Set(list.items?.map((item) => item.metadata?.name));
    expect(list.items).toHaveLength(1000);
    expect(names.size).toBe(1000);
    expect(new Set(list.items?.map((item) => item.kind))).toEqual(new Set(['Task']));
  });

  it('are all accepted by the apiserver: kubectl apply --dry-run=server', async () => {
    const output = await kubectl(['apply', '--dry-run=server', '--validate=strict', '--namespace', namespace.name, '-f', examplesDir]);
    const lines = output.trim().split('\n');
    expect(lines).toHaveLength(exampleFiles.length - 1 + 1000);
    for (const line of lines) expect(line).toMatch(/^task\.parafork\.dev\/\S+ created \(server dry run\)$/);
  }, 120_000);
});

describe('node-bound.yaml while no agent runs on its node', () => {
  it('waits Pending (WaitingForAgent, the CRD\'s default status): another node\'s agent runs an unbound Task beside it and leaves it alone', async () => {
    const elsewhere = await startAgentCommand({
      file: process.execPath,
      args: [path.join(repositoryRoot, 'dist/cli/main.js'), 'agent', '--kubeconfig', inject('kubeconfigPath'), '--listen-address', '127.0.0.1', '--port', '0'],
      env: { PATH: process.env.PATH, NODE_NAME: 'not-the-node-it-names' },
    });
    const waiting = await createTestNamespace('examples-node-bound');
    try {
      await kubectl(['apply', '--namespace', waiting.name, '-f', path.join(examplesDir, 'node-bound.yaml'), '-f', path.join(examplesDir, 'hello.yaml')]);
      await waitFor(async () => ((await getTask(waiting.name, 'hello')).status?.phase === 'Succeeded' ? true : undefined), { description: 'hello to succeed on the other agent', timeoutMs: 30_000 });
      const task = await getTask(waiting.name, 'node-bound');
      // The CRD's default status, as the header says; no agent wrote it (no attempts, no node).
      expect(task.status).toMatchObject({ phase: 'Pending', reason: 'WaitingForAgent' });
      expect(task.status?.attempts ?? 0).toBe(0);
      expect(task.spec.nodeName).toBe(readExample('node-bound.yaml').spec?.nodeName);
    } finally {
      await elsewhere.stop();
      await waiting.cleanup();
    }
  }, 90_000);
});

describe('examples/ on an agent', () => {
  async function applyExample(file: string): Promise<void> {
    await kubectl(['apply', '--namespace', namespace.name, '-f', path.join(examplesDir, file)]);
  }

  function waitForFinish(name: string, timeoutMs = 30_000): Promise<Task> {
    return waitFor(
      async (observed) => {
        const task = await getTask(namespace.name, name);
        observed(task.status);
        return task.status?.phase === 'Succeeded' || task.status?.phase === 'Failed' ? task : undefined;
      },
      { description: `Task ${name} to finish`, timeoutMs },
    );
  }

  beforeAll(async () => {
    // The node node-bound.yaml names: this agent stands in for that node's agent, and claims the
    // unbound examples as any agent would.
    const boundTo = readExample('node-bound.yaml').spec?.nodeName ?? '';
    agent = await startAgentCommand({
      file: process.execPath,
      args: [path.join(repositoryRoot, 'dist/cli/main.js'), 'agent', '--kubeconfig', inject('kubeconfigPath'), '--listen-address', '127.0.0.1', '--port', '0', '--termination-grace-seconds', '2'],
      env: { PATH: process.env.PATH, NODE_NAME: boundTo },
    });
  });

  it('hello.yaml succeeds', async () => {
    await applyExample('hello.yaml');
    expect((await waitForFinish('hello')).status).toMatchObject({ phase: 'Succeeded', exitCode: 0, reason: 'Completed' });
  });

  it('failing.yaml fails with exit code 3 and its stderr after three attempts', async () => {
    await applyExample('failing.yaml');
    const task = await waitForFinish('failing', 45_000);
    expect(task.status).toMatchObject({ phase: 'Failed', exitCode: 3, attempts: 3, reason: 'BackoffLimitExceeded' });
    expect(task.status?.stderrTail).toContain('cannot open /data/input.csv');
  });

  it('deadline.yaml is killed when its deadline passes', async () => {
    await applyExample('deadline.yaml');
    expect((await waitForFinish('deadline')).status).toMatchObject({ phase: 'Failed', reason: 'DeadlineExceeded', signal: 'SIGTERM' });
  });

  it('array.yaml runs its 1,000 indexes to Complete', async () => {
    await applyExample('array.yaml');
    const task = await waitForFinish('array', 120_000);
    expect(task.status).toMatchObject({ phase: 'Succeeded', reason: 'Completed', progress: '1000/1000', completedIndexes: '0-999' });
  }, 150_000);

  it('node-bound.yaml runs on the node it names', async () => {
    await applyExample('node-bound.yaml');
    const task = await waitForFinish('node-bound');
    expect(task.status).toMatchObject({ phase: 'Succeeded', nodeName: readExample('node-bound.yaml').spec?.nodeName });
  });

  // The limits examples also run for real, with an agent enforcing them: agent-lifecycle.test.ts.
});

// Helpers for integration tests: kubectl against the control plane that
// test/integration/global-setup.ts started for this run, throwaway namespaces, polling, and Tasks
// read back as the typed objects the agent sees. Only usable in the `integration` vitest project,
// whose global setup provides the values these read with `inject`.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';

import { taskApiVersion, taskKind, type Task } from '../../src/api/task.js';

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A kubectl call that hangs this long is a broken test or apiserver, not a slow one. */
const kubectlTimeoutMs = 60_000;

export interface KubectlResult {
  /** kubectl's exit status; null when it was killed (see `signal`). */
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface KubectlOptions {
  /** Written to kubectl's stdin, e.g. a manifest for `apply --filename -`. */
  readonly input?: string;
  /** Another identity's kubeconfig (a ServiceAccount token, say); default: the run's admin. */
  readonly kubeconfig?: string;
}

/** A kubectl call that did not exit 0; the message carries its stderr. */
export class KubectlError extends Error {
  readonly args: readonly string[];
  readonly result: KubectlResult;

  constructor(args: readonly string[], result: KubectlResult) {
    const how = result.signal === null ? `exited with status ${result.status}` : `was killed by ${result.signal}`;
    super(`kubectl ${args.join(' ')} ${how}: ${result.stderr.trim()}`);
    this.name = 'KubectlError';
    this.args = args;
    this.result = result;
  }
}

/** Runs kubectl against this run's cluster and returns what it did, whatever its exit status. */
export function kubectlResult(args: readonly string[], options: KubectlOptions = {}): Promise<KubectlResult> {
  const fullArgs = ['--kubeconfig', options.kubeconfig ?? inject('kubeconfigPath'), '--cache-dir', inject('kubectlCacheDir'), ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(inject('kubectlPath'), fullArgs, {
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: kubectlTimeoutMs,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
    // kubectl may exit (e.g. on a usage error) before reading its input: that is its result,
    // not a test failure of its own.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** Runs kubectl against this run's cluster and returns its stdout; throws KubectlError unless it exits 0. */
export async function kubectl(args: readonly string[], options: KubectlOptions = {}): Promise<string> {
  const result = await kubectlResult(args, options);
  if (result.status !== 0) throw new KubectlError(args, result);
  return result.stdout;
}

export interface TestNamespace {
  readonly name: string;
  /** Deletes the namespace's Tasks and the namespace; never waits for finalizers. */
  readonly cleanup: () => Promise<void>;
}

/**
 * Creates a namespace no other test uses: `prefix` plus a random suffix. The dev cluster has no
 * namespace controller, so a deleted namespace stays Terminating with whatever it held; cleanup
 * therefore deletes the Tasks first, keeping cluster-wide listings of later tests small.
 */
export async function createTestNamespace(prefix: string): Promise<TestNamespace> {
  const suffix = randomBytes(4).toString('hex');
  // A namespace name is a DNS label: lower case alphanumerics and '-', at most 63 characters.
  const stem = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63 - suffix.length - 1);
  const name = stem === '' ? `test-${suffix}` : `${stem}-${suffix}`;
  await kubectl(['create', 'namespace', name]);
  return {
    name,
    cleanup: async () => {
      await kubectl(['delete', 'tasks.parafork.dev', '--all', '--namespace', name, '--wait=false']);
      await kubectl(['delete', 'namespace', name, '--ignore-not-found', '--wait=false']);
    },
  };
}

import { crdEstablished } from './crd-established.js';
import { waitFor } from './wait-for.js';

export { waitFor, type Probe, type WaitForOptions } from './wait-for.js';

/** The Task as the apiserver stores it (defaults filled in); throws KubectlError if there is none. */
export async function getTask(namespace: string, name: string): Promise<Task> {
  // The full resource name: `task` alone would be ambiguous on a cluster that also has Tekton.
  const json = await kubectl(['get', 'tasks.parafork.dev', name, '--namespace', namespace, '--output', 'json']);
  const parsed: unknown = JSON.parse(json);
  if (!isTask(parsed)) throw new Error(`kubectl returned something other than a ${taskApiVersion} Task: ${json}`);
  return parsed;
}

function isTask(value: unknown): value is Task {
  if (typeof value !== 'object' || value === null) return false;
  const object = value as Record<string, unknown>;
  return (
    object.apiVersion === taskApiVersion &&
    object.kind === taskKind &&
    typeof object.metadata === 'object' &&
    typeof object.spec === 'object' &&
    object.spec !== null
  );
}

/** Stops this run's kube-apiserver and starts it again on the same port (etcd and its data stay). */
export function restartApiserver(): void {
  const result = spawnSync('bash', [path.join(repositoryRoot, 'scripts', 'dev-cluster.sh'), 'restart-apiserver'], {
    env: { ...process.env, PARAFORK_CLUSTER_DIR: inject('clusterStateDir') },
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (result.status !== 0) throw new Error(`restart-apiserver failed (${result.status ?? result.signal}): ${result.stderr}`);
}

/** Applies a Task bound to `nodeName` (kubectl apply), with `spec` added to its command etc. */
export async function applyTask(namespace: string, name: string, nodeName: string, spec: Record<string, unknown>): Promise<void> {
  const manifest = { apiVersion: taskApiVersion, kind: taskKind, metadata: { name, namespace }, spec: { nodeName, ...spec } };
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
}

/** Waits until the Task's status.phase is one of `phases`; returns the Task. */
export async function waitForTaskPhase(namespace: string, name: string, phases: readonly string[], timeoutMs = 20_000): Promise<Task> {
  return waitFor(
    async (observed) => {
      const task = await getTask(namespace, name);
      observed(task.status);
      return phases.includes(task.status?.phase ?? '') ? task : undefined;
    },
    { description: `Task ${name} to reach ${phases.join(' or ')}`, timeoutMs },
  );
}

/** Every Task of a namespace, as kubectl lists it. */
export async function listTasks(namespace: string): Promise<Task[]> {
  return (JSON.parse(await kubectl(['get', 'tasks.parafork.dev', '-n', namespace, '-o', 'json'])) as { items: Task[] }).items;
}

/** Waits until `count` Tasks of `namespace` whose names start with `prefix` are Succeeded or Failed; returns them all. */
export async function waitForTerminalTasks(namespace: string, prefix: string, count: number, timeoutMs: number): Promise<Task[]> {
  return waitFor(
    async (observed) => {
      const tasks = (await listTasks(namespace)).filter((task) => task.metadata.name?.startsWith(prefix));
      const terminal = tasks.filter((task) => task.status?.phase === 'Succeeded' || task.status?.phase === 'Failed');
      observed(`${terminal.length} of ${tasks.length} terminal`);
      return terminal.length === count ? tasks : undefined;
    },
    { description: `${count} Tasks named ${prefix}* to reach a terminal phase`, timeoutMs, intervalMs: 1000 },
  );
}

/**
 * Waits until a CustomResourceDefinition is Established. Polled, not `kubectl wait`: that fails at
 * once when it reads the CRD before the apiserver has written any condition (seen on a loaded
 * machine); test/integration/global-setup.ts polls the Task CRD the same way.
 */
export async function waitForCrdEstablished(name: string, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!crdEstablished(await kubectl(['get', `customresourcedefinition/${name}`, '--output', 'json']))) {
    if (performance.now() > deadline) throw new Error(`CustomResourceDefinition ${name} was not Established within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

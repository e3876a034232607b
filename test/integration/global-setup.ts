// Vitest globalSetup of the `integration` project: one private control plane (etcd and
// kube-apiserver on loopback, started by scripts/dev-cluster.sh) for the whole run, with the Task
// CRD installed and Established before any test starts. Tests reach it through `inject` (see
// ProvidedContext below), usually via test/helpers/cluster.ts.
//
// Nothing is skipped: when the tools cannot be built or the control plane does not start, setup
// throws the script's own error and the run fails.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

import { crdEstablished } from '../helpers/crd-established.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin kubeconfig of this run's control plane (client certificate of system:masters). */
    kubeconfigPath: string;
    /** The kubectl built with the control plane, matching the apiserver's version. */
    kubectlPath: string;
    /** https://127.0.0.1:PORT of this run's kube-apiserver. */
    apiserverUrl: string;
    /** PARAFORK_CLUSTER_DIR of this run's control plane, for `scripts/dev-cluster.sh restart-apiserver`. */
    clusterStateDir: string;
    /**
     * kubectl's discovery and HTTP cache for this run. The default, ~/.kube/cache, is keyed by
     * host:port and shared by every cluster on the machine: a port reused from an earlier cluster
     * would show that cluster's resource list.
     */
    kubectlCacheDir: string;
  }
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const devCluster = path.join(repoRoot, 'scripts/dev-cluster.sh');
const buildTools = path.join(repoRoot, 'scripts/build-tools.sh');
const taskCrd = path.join(repoRoot, 'crds/task.yaml');
const taskCrdName = 'tasks.parafork.dev';

/** A cold build of the tools takes about ten minutes; a cached one is instant. */
const buildTimeoutMs = 30 * 60_000;
/** dev-cluster.sh bounds its own waits (180 s for /readyz); this only catches a hung script. */
const clusterScriptTimeoutMs = 5 * 60_000;
const kubectlTimeoutMs = 60_000;
const crdEstablishedTimeoutSeconds = 60;

function log(message: string): void {
  process.stderr.write(`[integration] ${message}\n`);
}

function seconds(sinceMs: number): string {
  return `${((performance.now() - sinceMs) / 1000).toFixed(1)}s`;
}

interface CommandResult {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a command to completion. With `echoStderr` its stderr also goes to ours as it arrives, so
 * a ten-minute cold build shows progress instead of silence.
 */
export function runCommand(
  file: string,
  args: readonly string[],
  options: { readonly env?: NodeJS.ProcessEnv; readonly timeoutMs: number; readonly echoStderr?: boolean },
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: repoRoot,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: options.timeoutMs,
      killSignal: 'SIGTERM',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (options.echoStderr === true) process.stderr.write(chunk);
    });
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

export function describeFailure(what: string, result: CommandResult): string {
  const how = result.signal === null ? `exited with status ${result.status}` : `was killed by ${result.signal}`;
  // The scripts print their error and the failing server's log tail last.
  const stderrTail = result.stderr.trimEnd().split('\n').slice(-60).join('\n');
  return `${what} ${how}:\n${stderrTail}`;
}

/** KEY=VALUE lines, as dev-cluster.sh writes cluster.env. */
export function readEnvFile(file: string): Map<string, string> {
  const entries = new Map<string, string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const separator = line.indexOf('=');
    if (separator > 0) entries.set(line.slice(0, separator), line.slice(separator + 1));
  }
  return entries;
}

function requireEntry(entries: Map<string, string>, key: string, file: string): string {
  const value = entries.get(key);
  if (value === undefined || value === '') throw new Error(`${file} has no ${key}`);
  return value;
}

/** What the `node` project (test/node/global-setup.ts) adds to this setup. */
export interface ClusterSetupOptions {
  /** Prefix of the run's temp dir. */
  readonly runDirPrefix: string;
  /** Arguments of `scripts/dev-cluster.sh up`: `--node` for a kubelet too. */
  readonly upArguments: readonly string[];
  /** Runs after the tools are built and before `up`, e.g. a slow image build. */
  readonly beforeUp?: (runDir: string) => Promise<void>;
  /** Runs once the cluster is up and the Task CRD established; returns what else to provide. */
  readonly afterUp?: (cluster: { stateDir: string; kubeconfigPath: string; kubectlPath: string }) => Promise<void>;
  /** Announces progress in the log lines ([integration] or [node]). */
  readonly log: (message: string) => void;
}

export default function setup(project: TestProject): Promise<() => Promise<void>> {
  return setupCluster(project, { runDirPrefix: 'parafork-integration-', upArguments: [], log });
}

/** Builds the tools and starts a cluster (`up` with options.upArguments), torn down by what it returns. */
export async function setupCluster(project: TestProject, options: ClusterSetupOptions): Promise<() => Promise<void>> {
  const log = options.log;
  // The cluster's state dir is created by `up` inside a private parent, so teardown can tell
  // whether `up` got as far as creating it; the parent also holds kubectl's cache.
  const runDir = mkdtempSync(path.join(tmpdir(), options.runDirPrefix));
  const stateDir = path.join(runDir, 'cluster');
  const kubectlCacheDir = path.join(runDir, 'kubectl-cache');
  const clusterEnv: NodeJS.ProcessEnv = { ...process.env, PARAFORK_CLUSTER_DIR: stateDir };

  let tornDown = false;
  async function teardown(): Promise<void> {
    if (tornDown) return;
    tornDown = true;
    process.off('exit', teardownAtExit);
    // `up` creates the state dir only after the tools are built: without it nothing was started.
    if (existsSync(stateDir)) {
      const started = performance.now();
      const result = await runCommand(devCluster, ['down'], { env: clusterEnv, timeoutMs: clusterScriptTimeoutMs });
      if (result.status !== 0) {
        // Left in place: it holds the logs, and the processes may still be running.
        throw new Error(describeFailure(`scripts/dev-cluster.sh down (PARAFORK_CLUSTER_DIR=${stateDir})`, result));
      }
      log(`control plane stopped in ${seconds(started)}`);
    }
    rmSync(runDir, { recursive: true, force: true });
  }
  // Vitest runs the returned teardown when the run ends, even after failures. This covers a process
  // that exits without it (process.exit() elsewhere): the servers run in their own session and
  // would otherwise outlive the run.
  function teardownAtExit(): void {
    if (tornDown || !existsSync(stateDir)) return;
    tornDown = true;
    spawnSync(devCluster, ['down'], { env: clusterEnv, stdio: 'ignore', timeout: clusterScriptTimeoutMs });
    rmSync(runDir, { recursive: true, force: true });
  }
  process.on('exit', teardownAtExit);

  try {
    let started = performance.now();
    const build = await runCommand(buildTools, [], { timeoutMs: buildTimeoutMs, echoStderr: true });
    if (build.status !== 0) throw new Error(describeFailure('scripts/build-tools.sh', build));
    log(`control-plane tools checked in ${seconds(started)}`);
    await options.beforeUp?.(runDir);

    started = performance.now();
    const up = await runCommand(devCluster, ['up', ...options.upArguments], { env: clusterEnv, timeoutMs: clusterScriptTimeoutMs, echoStderr: true });
    if (up.status !== 0) throw new Error(describeFailure(`scripts/dev-cluster.sh up (PARAFORK_CLUSTER_DIR=${stateDir})`, up));
    const kubeconfigPath = up.stdout.trimEnd().split('\n').at(-1) ?? '';
    if (!existsSync(kubeconfigPath)) {
      throw new Error(`scripts/dev-cluster.sh up printed '${kubeconfigPath}' as its last line, which is not a kubeconfig`);
    }
    const clusterEnvFile = path.join(stateDir, 'cluster.env');
    const entries = readEnvFile(clusterEnvFile);
    const apiserverUrl = requireEntry(entries, 'APISERVER_URL', clusterEnvFile);
    const kubectlPath = path.join(requireEntry(entries, 'PARAFORK_TOOLS_BIN', clusterEnvFile), 'kubectl');
    log(`control plane up in ${seconds(started)}: ${apiserverUrl}`);

    started = performance.now();
    mkdirSync(kubectlCacheDir);
    const kubectl = async (args: readonly string[]): Promise<CommandResult> => {
      const result = await runCommand(
        kubectlPath,
        ['--kubeconfig', kubeconfigPath, '--cache-dir', kubectlCacheDir, ...args],
        { timeoutMs: kubectlTimeoutMs },
      );
      if (result.status !== 0) throw new Error(describeFailure(`kubectl ${args.join(' ')}`, result));
      return result;
    };
    await kubectl(['apply', '--filename', taskCrd]);
    // Polled rather than `kubectl wait --for=condition=Established`: kubectl wait fails at once
    // ("status.conditions accessor error: <nil>") when it reads the CRD before the apiserver has
    // written any condition, which happened on a loaded machine; the get is retried instead.
    const establishedBy = performance.now() + crdEstablishedTimeoutSeconds * 1000;
    while (!crdEstablished((await kubectl(['get', `customresourcedefinition/${taskCrdName}`, '--output', 'json'])).stdout)) {
      if (performance.now() > establishedBy) throw new Error(`the Task CRD was not Established within ${crdEstablishedTimeoutSeconds} s`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    // Established means the apiserver serves the resource; this also proves kubectl's discovery
    // resolves the short name the tests use.
    await kubectl(['get', 'ptask', '--all-namespaces']);
    log(`Task CRD established in ${seconds(started)}`);
    await options.afterUp?.({ stateDir, kubeconfigPath, kubectlPath });

    project.provide('kubeconfigPath', kubeconfigPath);
    project.provide('kubectlPath', kubectlPath);
    project.provide('apiserverUrl', apiserverUrl);
    project.provide('clusterStateDir', stateDir);
    project.provide('kubectlCacheDir', kubectlCacheDir);
  } catch (error) {
    // Vitest registers the teardown only once setup returns it.
    try {
      await teardown();
    } catch (teardownError) {
      log(`cleanup after the failed setup failed too: ${String(teardownError)}`);
    }
    throw error;
  }
  return teardown;
}

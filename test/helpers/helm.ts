// Helm against the chart in charts/parafork, for integration tests: the helm binary built with the
// control plane (scripts/build-tools.sh puts it beside kubectl), run with its config, cache and
// data in a private temp dir so tests never touch the machine's own ~/.config/helm.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { load, loadAll } from 'js-yaml';
import { inject } from 'vitest';

export const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const chartDir = path.join(repositoryRoot, 'charts', 'parafork');

const helmTimeoutMs = 60_000;

export interface HelmResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The helm that scripts/build-tools.sh built into the same bin dir as this run's kubectl. */
export function helmPath(): string {
  return path.join(path.dirname(inject('kubectlPath')), 'helm');
}

/** Runs helm with `args`, whatever its exit status. */
export async function helmResult(args: readonly string[]): Promise<HelmResult> {
  const home = mkdtempSync(path.join(tmpdir(), 'parafork-helm-'));
  try {
    return await new Promise((resolve, reject) => {
      const child = spawn(helmPath(), args, {
        cwd: repositoryRoot,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: home,
          HELM_CONFIG_HOME: path.join(home, 'config'),
          HELM_CACHE_HOME: path.join(home, 'cache'),
          HELM_DATA_HOME: path.join(home, 'data'),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: helmTimeoutMs,
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.on('error', reject);
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/** Runs helm and returns its stdout; throws with its stderr unless it exits 0. */
export async function helm(args: readonly string[]): Promise<string> {
  const result = await helmResult(args);
  if (result.status !== 0) throw new Error(`helm ${args.join(' ')} exited with ${result.status}: ${result.stderr.trim()}`);
  return result.stdout;
}

export interface RenderOptions {
  readonly release: string;
  readonly namespace: string;
  /** Values files, relative to the repository (e.g. charts/parafork/ci/dashboards-values.yaml). */
  readonly valuesFiles?: readonly string[];
  /** --set assignments, e.g. 'agent.port=9999'. */
  readonly set?: readonly string[];
  /** --set-json assignments, e.g. 'agent.extraArgs=["--x"]'. */
  readonly setJson?: readonly string[];
  /** APIs the target cluster is taken to serve, e.g. 'monitoring.coreos.com/v1/ServiceMonitor'. */
  readonly apiVersions?: readonly string[];
  /** Only these templates, e.g. 'templates/clusterrole.yaml'. */
  readonly showOnly?: readonly string[];
}

/** `helm template` of the chart: the manifests as text, ready for `kubectl apply -f -`. */
export function renderChart(options: RenderOptions): Promise<string> {
  const args = ['template', options.release, chartDir, '--namespace', options.namespace];
  for (const file of options.valuesFiles ?? []) args.push('--values', path.join(repositoryRoot, file));
  for (const assignment of options.set ?? []) args.push('--set', assignment);
  for (const assignment of options.setJson ?? []) args.push('--set-json', assignment);
  for (const api of options.apiVersions ?? []) args.push('--api-versions', api);
  for (const template of options.showOnly ?? []) args.push('--show-only', template);
  return helm(args);
}

/**
 * --set-json assignments that leave out of the agent container's capabilities those this machine's
 * root cannot grant (not in its bounding set, /proc/self/status CapBnd): runc refuses to start a
 * container asking for one ("unable to apply caps"). Here that is CAP_SYS_RESOURCE (24), which
 * root on this VM lacks (so the dev node also sets containerd's restrict_oom_score_adj); a real
 * node grants it and the chart asks for it. Empty when the machine grants all of them.
 */
export function capabilitiesThisMachineGrants(): string[] {
  const values = load(readFileSync(path.join(chartDir, 'values.yaml'), 'utf8')) as { securityContext: { capabilities: { add: string[] } } };
  const asked = values.securityContext.capabilities.add;
  const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((entry) => entry.startsWith('CapBnd:'));
  const bounding = BigInt(`0x${line?.slice('CapBnd:'.length).trim() ?? '0'}`);
  const numbers: Record<string, number> = { KILL: 5, SETGID: 6, SETUID: 7, SETPCAP: 8, NET_ADMIN: 12, SYS_CHROOT: 18, SYS_ADMIN: 21, SYS_NICE: 23, SYS_RESOURCE: 24, MKNOD: 27 };
  const granted = asked.filter((name) => numbers[name] === undefined || ((bounding >> BigInt(numbers[name])) & 1n) === 1n);
  return granted.length === asked.length ? [] : [`securityContext.capabilities.add=${JSON.stringify(granted)}`];
}

/** A Kubernetes object as rendered: enough structure for tests to find and inspect it. */
export interface RenderedObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> };
  readonly [field: string]: unknown;
}

/** The objects in rendered manifests (empty documents dropped). */
export function parseManifests(manifests: string): RenderedObject[] {
  return loadAll(manifests).filter((document): document is RenderedObject => typeof document === 'object' && document !== null);
}

/** The one object of `kind` in `objects`; throws if there is none or more than one. */
export function onlyObject(objects: readonly RenderedObject[], kind: string): RenderedObject {
  const found = objects.filter((object) => object.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}: ${objects.map((object) => `${object.kind}/${object.metadata.name}`).join(', ')}`);
  return found[0]!;
}

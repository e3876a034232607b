// The agent's configuration: command-line flags, with environment variables where Kubernetes
// provides them (NODE_NAME from the Downward API, KUBECONFIG), checked once and frozen.
import os from 'node:os';
import { parseArgs } from 'node:util';

export interface AgentConfig {
  readonly nodeName: string;
  /** A kubeconfig file; undefined: in-cluster, then $KUBECONFIG, then ~/.kube/config. */
  readonly kubeconfig: string | undefined;
  readonly maxConcurrent: number;
  readonly workers: number;
  readonly apiQps: number;
  readonly apiBurst: number;
  /** SIGTERM -> SIGKILL for a task being stopped (deadline, cancel, delete). */
  readonly terminationGraceSeconds: number;
  /** On the agent's own SIGTERM: how long running tasks may go on before they are killed. */
  readonly shutdownGraceSeconds: number;
  readonly listenAddress: string;
  readonly port: number;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  /** Task cgroups go here, relative to the agent's own cgroup in each hierarchy. */
  readonly cgroupParent: string;
  /** An empty directory sandboxed tasks' roots are mounted on, each in its own mount namespace. */
  readonly sandboxStagingDirectory: string;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export const agentFlags = {
  'node-name': { type: 'string', description: 'the node this agent runs on (default: $NODE_NAME, then the hostname)' },
  kubeconfig: { type: 'string', description: 'kubeconfig file (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)' },
  'max-concurrent': { type: 'string', default: '1000', description: 'most Tasks running at once on this node; claims stop at this' },
  workers: { type: 'string', default: '16', description: 'Tasks reconciled at once' },
  'api-qps': { type: 'string', default: '100', description: 'requests per second to the apiserver, sustained' },
  'api-burst': { type: 'string', default: '200', description: 'requests to the apiserver in a burst' },
  'termination-grace-seconds': { type: 'string', default: '10', description: 'SIGTERM to SIGKILL when a task is stopped' },
  'shutdown-grace-seconds': { type: 'string', default: '30', description: 'on SIGTERM, how long running tasks may finish before they are killed' },
  'listen-address': { type: 'string', default: '0.0.0.0', description: 'address for /healthz, /readyz (and /metrics)' },
  port: { type: 'string', default: '9464', description: 'port for /healthz, /readyz (and /metrics)' },
  'log-level': { type: 'string', default: 'info', description: 'fatal, error, warn, info, debug or trace' },
  'cgroup-parent': { type: 'string', default: 'parafork', description: "task cgroups' group, relative to the agent's own cgroup" },
  'sandbox-staging-dir': { type: 'string', default: '/run/parafork/root', description: 'empty directory task roots are mounted on (in their own mount namespaces)' },
} as const;

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

function wholeNumber(flag: string, text: string, minimum: number, maximum: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < minimum || value > maximum) {
    throw new ConfigError(`--${flag} must be a whole number from ${minimum} to ${maximum}, got ${JSON.stringify(text)}`);
  }
  return value;
}

function cgroupParent(text: string): string {
  if (text.length === 0 || text.startsWith('/') || text.split('/').includes('..')) {
    throw new ConfigError(`--cgroup-parent must be a relative path without '..', got ${JSON.stringify(text)}`);
  }
  return text;
}

function absolutePath(flag: string, text: string): string {
  if (!text.startsWith('/')) throw new ConfigError(`--${flag} must be an absolute path, got ${JSON.stringify(text)}`);
  return text;
}

// Kubernetes node names are DNS subdomains (RFC 1123).
const nodeNamePattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function parseAgentConfig(argv: readonly string[], environment: NodeJS.ProcessEnv = process.env): AgentConfig {
  let values: Record<string, string | undefined>;
  try {
    const parsed = parseArgs({
      args: [...argv],
      options: Object.fromEntries(Object.entries(agentFlags).map(([name, flag]) => [name, { type: flag.type, ...('default' in flag ? { default: flag.default } : {}) }])),
      strict: true,
      allowPositionals: false,
    });
    values = parsed.values;
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  const nodeName = values['node-name'] ?? environment.NODE_NAME ?? os.hostname().toLowerCase();
  if (nodeName.length > 253 || !nodeNamePattern.test(nodeName)) {
    throw new ConfigError(`--node-name must be a Kubernetes node name (lowercase RFC 1123 subdomain), got ${JSON.stringify(nodeName)}`);
  }
  const logLevel = values['log-level'] ?? 'info';
  if (!(logLevels as readonly string[]).includes(logLevel)) {
    throw new ConfigError(`--log-level must be one of ${logLevels.join(', ')}, got ${JSON.stringify(logLevel)}`);
  }
  const apiQps = Number(values['api-qps']);
  if (!(apiQps > 0 && apiQps <= 100_000)) throw new ConfigError(`--api-qps must be a number above 0, got ${JSON.stringify(values['api-qps'])}`);
  return Object.freeze({
    nodeName,
    kubeconfig: values.kubeconfig,
    maxConcurrent: wholeNumber('max-concurrent', values['max-concurrent'] ?? '', 1, 1_000_000),
    workers: wholeNumber('workers', values.workers ?? '', 1, 1024),
    apiQps,
    apiBurst: wholeNumber('api-burst', values['api-burst'] ?? '', 1, 1_000_000),
    terminationGraceSeconds: wholeNumber('termination-grace-seconds', values['termination-grace-seconds'] ?? '', 0, 3600),
    shutdownGraceSeconds: wholeNumber('shutdown-grace-seconds', values['shutdown-grace-seconds'] ?? '', 0, 86_400),
    listenAddress: values['listen-address'] ?? '0.0.0.0',
    port: wholeNumber('port', values.port ?? '', 0, 65_535),
    logLevel: logLevel as AgentConfig['logLevel'],
    cgroupParent: cgroupParent(values['cgroup-parent'] ?? 'parafork'),
    sandboxStagingDirectory: absolutePath('sandbox-staging-dir', values['sandbox-staging-dir'] ?? '/run/parafork/root'),
  });
}

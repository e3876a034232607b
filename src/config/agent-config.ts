// The agent's configuration: command-line flags, with environment variables where Kubernetes
// provides them (NODE_NAME from the Downward API, KUBECONFIG), checked once and frozen.
import { statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { formatBytes, formatMillicores, parseQuantity, wholeUnits } from '../sandbox/quantity.js';
import { cpuMillicores, defaultLimitFlags, halfOfNodeMemory, halfOfProcessTable, maxTmpBytes, memoryBytes, pidsLimit, type TaskLimitPolicy } from '../sandbox/task-limits.js';
import { InvalidTaskSpec } from '../sandbox/task-spec-checks.js';
import { checkMaskedPaths, defaultMaskedPaths } from '../launcher/sandbox-options.js';
import { allowedHostPathProblem, defaultSandboxPolicyLevel, neverAllowedHostPaths, resolveHostPath, sandboxPolicyLevels, type SandboxPolicy, type SandboxPolicyLevel } from '../sandbox/sandbox-policy.js';

export interface AgentConfig {
  readonly nodeName: string;
  /** A kubeconfig file; undefined: $KUBECONFIG, then ~/.kube/config, then in-cluster (src/k8s/kube-config.ts). */
  readonly kubeconfig: string | undefined;
  readonly maxConcurrent: number;
  readonly workers: number;
  readonly apiQps: number;
  readonly apiBurst: number;
  /** SIGTERM -> SIGKILL for a task being stopped (deadline, cancel, delete). */
  readonly terminationGraceSeconds: number;
  /** On the agent's own SIGTERM: how long running tasks may go on before they are killed. */
  readonly shutdownGraceSeconds: number;
  /** The lease on a range of an array shared by several agents (docs/arrays.md): unrenewed this long, it may be taken over. */
  readonly arrayLeaseSeconds: number;
  readonly listenAddress: string;
  readonly port: number;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  /**
   * Task cgroups go here, relative to the agent's own cgroup in each hierarchy; the agent owns the
   * group alone (src/sandbox/cgroup-groups.ts). Undefined (--manifests without --cgroup-parent):
   * a group of its own per run.
   */
  readonly cgroupParent: string | undefined;
  /** The host ids Tasks get by default, one of their own each (src/sandbox/task-identities.ts). */
  readonly taskIds: { readonly first: number; readonly last: number };
  /** An empty directory sandboxed tasks' roots are mounted on, each in its own mount namespace. */
  readonly sandboxStagingDirectory: string;
  /** Where sandbox.seccomp type Localhost profiles are read from (Docker/OCI JSON), as the kubelet's --seccomp-profile-root. */
  readonly seccompProfileDirectory: string;
  /** Node-local state that must outlive an agent restart: the launch journal (src/tasks/launch-journal.ts), Task logs (<state-dir>/logs). */
  readonly stateDirectory: string;
  /** The most bytes of log each attempt keeps (--task-log-max-bytes); spec.logs.maxBytes may lower it. */
  readonly taskLogMaxBytes: number;
  /** The most bytes of ended index logs one Task array keeps (--array-log-max-bytes; src/logs/array-log-budget.ts). */
  readonly arrayLogMaxBytes: number;
  /** The most bytes of Task logs on the node (--logs-max-bytes-total): the oldest finished Tasks' go first, then running Tasks' earlier attempts. */
  readonly logsMaxBytesTotal: number;
  /** What starts Task processes: the native engine, or Node's child_process (a benchmark baseline; it cannot sandbox). */
  readonly launcher: 'native' | 'child_process';
  /** False: Tasks run as plain processes with the agent's privileges (benchmarks only). */
  readonly taskSandbox: boolean;
  /** The Events' own rate limit, apart from status writes (the kubelet's --event-qps/--event-burst). */
  readonly eventQps: number;
  readonly eventBurst: number;
  /** A watch that sends nothing for this long is taken for dead (a half-open connection) and resumed. */
  readonly watchSilenceSeconds: number;
  /** A folder of Task manifests to run instead of a cluster's Tasks (absolute), or undefined. */
  readonly manifestDirectory: string | undefined;
  /** Default limits for Tasks that set none, and the /tmp cap (taskLimitFlags). */
  readonly taskLimits: TaskLimitPolicy;
  /** Paths masked in every Task's root and /proc: --sandbox-masked-paths and the agent's own (agentMaskedPaths). */
  readonly sandboxMaskedPaths: readonly string[];
  /**
   * The level of Tasks whose namespace has no parafork.dev/sandbox-policy label (all Tasks with
   * --manifests), and the host paths restricted and baseline Tasks may use (--sandbox-policy,
   * --allowed-host-paths; src/sandbox/sandbox-policy.ts).
   */
  readonly sandboxPolicy: SandboxPolicy;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * 0x70000000-0x7FFDFFFF: above systemd's container ranges and below its "foreign" range and the
 * 31-bit boundary (https://systemd.io/UIDS-GIDS/), where no distribution makes accounts.
 */
export const defaultTaskIds = '1879048192-2147352575';

/** This machine's node name when no flag gives one: $NODE_NAME (the Downward API's), then the hostname, lowercased. */
export function thisNodeName(environment: NodeJS.ProcessEnv): string {
  return environment.NODE_NAME ?? os.hostname().toLowerCase();
}

/** FIRST-LAST, at least one block of 65536 ids, never root or (uid_t) -1. */
export function taskIdRange(flag: string, text: string): { first: number; last: number } {
  const match = /^(\d+)-(\d+)$/.exec(text);
  const first = Number(match?.[1]);
  const last = Number(match?.[2]);
  if (!match || !(first >= 1) || !(last <= 4294967294) || last - first + 1 < 65536) {
    throw new ConfigError(`--${flag} must be FIRST-LAST, host ids from 1 to 4294967294 spanning at least 65536, got ${JSON.stringify(text)}`);
  }
  return { first, last };
}

/**
 * Limits every Task gets, shared by `agent` and `run` (see src/sandbox/task-limits.ts for why
 * these defaults). Each default applies to a Task that leaves that limit unset; none turns it off.
 */
export const taskLimitFlags = {
  'default-memory': { type: 'string', default: defaultLimitFlags.memory, description: 'memory limit (a quantity, /tmp included) of Tasks that set no resources.limits.memory; none: no default' },
  'default-pids': { type: 'string', default: defaultLimitFlags.pids, description: 'most processes and threads of Tasks that set no resources.limits.pids (RLIMIT_NPROC of the Task\'s own uid where pids is on cgroup v1); none: no default' },
  'default-cpu': { type: 'string', default: defaultLimitFlags.cpu, description: 'CPU limit (a quantity: 500m, 2) of Tasks that set no resources.limits.cpu; default none: the scheduler shares CPU fairly and a per-Task cap does not protect a node from many Tasks' },
  'tasks-pids-max': { type: 'string', description: "most processes and threads of all Tasks together (pids.max of the instance's cgroup group, on cgroup v1 and v2): a fork bomb across many Tasks stops there and the node keeps the rest of its process table; max or 0: no budget (default: half of the smaller of kernel.pid_max and kernel.threads-max; in a pid namespace of its own, where the node's pid_max cannot be read, the kernel's default pid_max stands in for it)" },
  'max-tmp-size': { type: 'string', description: "largest sandbox.tmpSizeLimit a Task may ask for, a larger one fails as InvalidSpec; at least 64Mi, the default /tmp (default: half the node's memory, tmpfs's own default)" },
} as const;

/** Who may loosen the sandbox (src/sandbox/sandbox-policy.ts), shared by `agent` and `run`. */
export const sandboxPolicyFlags = {
  'sandbox-policy': { type: 'string', default: defaultSandboxPolicyLevel, description: `sandbox policy level of Tasks whose namespace has no parafork.dev/sandbox-policy label (all Tasks of a manifest folder or of \`run\`): ${sandboxPolicyLevels.join(', ')} (docs/security.md)` },
  'allowed-host-paths': { type: 'string', default: '', description: 'host directories, comma-separated, inside which restricted and baseline Tasks may name a rootfs or mounts[].hostPath (links resolved at each check); never /, /proc, /sys, /dev, /run, /var/run, the agent\'s own directories or kubeconfigs, or a masked path (default: none)' },
} as const;

export const agentFlags = {
  'node-name': { type: 'string', description: 'the node this agent runs on (default: $NODE_NAME, then the hostname)' },
  kubeconfig: { type: 'string', description: 'kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster); a user with an exec or auth-provider plugin is run through @kubernetes/client-node (more memory)' },
  manifests: { type: 'string', description: 'run the Task manifests of this folder, following its changes, instead of a cluster\'s Tasks (no kubeconfig needed)' },
  'max-concurrent': { type: 'string', default: '1000', description: 'most Tasks running at once on this node; claims stop at this' },
  workers: { type: 'string', default: '64', description: 'Tasks reconciled at once (most of a reconcile is waiting for the apiserver)' },
  'api-qps': { type: 'string', default: '200', description: 'requests per second to the apiserver, sustained (Events apart); a short Task costs one' },
  'api-burst': { type: 'string', default: '400', description: 'requests to the apiserver in a burst' },
  'termination-grace-seconds': { type: 'string', default: '10', description: 'SIGTERM to SIGKILL when a task is stopped' },
  'shutdown-grace-seconds': { type: 'string', default: '30', description: 'on SIGTERM, how long running tasks may finish before they are killed' },
  'array-lease-seconds': { type: 'string', default: '30', description: 'arrays shared by several agents (indexPlacement AcrossNodes): a range whose agent has not renewed it for this long is taken over by another; the agent renews every third of it and stops its indexes after five sixths without a renew. Use one value on every node' },
  'listen-address': { type: 'string', default: '0.0.0.0', description: 'address for /healthz, /readyz (and /metrics)' },
  port: { type: 'string', default: '9464', description: 'port for /healthz, /readyz (and /metrics)' },
  'log-level': { type: 'string', default: 'info', description: 'fatal, error, warn, info, debug or trace' },
  'cgroup-parent': { type: 'string', description: "task cgroups' group, relative to the agent's own cgroup, owned by this agent alone: a second agent on it, or on a group inside it or holding it, is refused (default parafork; with --manifests, a group of its own per run)" },
  'task-ids': { type: 'string', default: defaultTaskIds, description: 'host uids/gids that Tasks without runAsUser/runAsGroup get, one of their own each, FIRST-LAST: shared out in blocks of 65536 between the parafork instances of the machine through lock files in /run/parafork/ids (whatever --state-dir); a range that overlaps a running instance\'s with blocks out of step (first ids not a multiple of 65536 apart) is refused' },
  'sandbox-staging-dir': { type: 'string', default: '/run/parafork/root', description: 'empty directory task roots are mounted on (in their own mount namespaces)' },
  'seccomp-profile-dir': { type: 'string', default: '/var/lib/kubelet/seccomp', description: 'seccomp profiles (Docker JSON) that Tasks name by sandbox.seccomp.localhostProfile, relative to it' },
  'state-dir': { type: 'string', default: '/run/parafork', description: 'node-local state that must outlive an agent restart (the launches not yet recorded, Task logs in <state-dir>/logs/<node-name>); in a pod, an emptyDir or hostPath' },
  'logs-max-bytes-total': { type: 'string', default: '2Gi', description: 'most bytes of Task logs on the node; past it the logs of the finished Tasks written longest ago are removed first, then the earlier attempts of running Tasks (never the newest), checked every 30 s (a quantity)' },
  'array-log-max-bytes': { type: 'string', default: '256Mi', description: 'most bytes of index logs one Task array keeps on the node; past it the logs of succeeded indexes go first (oldest first), then those of failed ones (newest first); an index that succeeds printing nothing keeps no log (a quantity, at least 64Ki)' },
  'task-log-max-bytes': { type: 'string', default: '10Mi', description: 'most bytes of stdout and stderr each Task attempt keeps on the node (the newest; a quantity, at least 64Ki); a Task\'s spec.logs.maxBytes may ask for less' },
  launcher: { type: 'string', default: 'native', description: "native, or child_process (Node's, a benchmark baseline: it cannot sandbox, so it needs --task-sandbox off)" },
  'task-sandbox': { type: 'string', default: 'on', description: "off runs Tasks as plain processes with the agent's own privileges, no cgroups: for benchmarks only" },
  'event-qps': { type: 'string', default: '10', description: 'Events per second to the apiserver, sustained, apart from status writes (Events are best effort: beyond this they queue, and the oldest Normal ones are dropped)' },
  'event-burst': { type: 'string', default: '25', description: 'Events to the apiserver in a burst' },
  'sandbox-masked-paths': { type: 'string', default: 'default', description: "paths masked (shown empty and read-only) in every Task's root and /proc, comma-separated; 'default' stands for the built-in list (docs/security.md), so 'default,/srv/secrets' adds one; the agent's state, staging and manifest directories and kubeconfig files are always added" },
  'watch-silence-seconds': { type: 'string', default: '90', description: 'a watch that sends nothing for this long is taken for a dead connection and resumed (the apiserver renews watches every 60 s and sends bookmarks, so a live one is never this quiet)' },
  ...taskLimitFlags,
  ...sandboxPolicyFlags,
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

function oneOf<const Choice extends string>(flag: string, text: string, choices: readonly Choice[]): Choice {
  if (!(choices as readonly string[]).includes(text)) throw new ConfigError(`--${flag} must be one of ${choices.join(', ')}, got ${JSON.stringify(text)}`);
  return text as Choice;
}

function absolutePath(flag: string, text: string): string {
  if (!text.startsWith('/')) throw new ConfigError(`--${flag} must be an absolute path, got ${JSON.stringify(text)}`);
  return text;
}

function manifestDirectory(text: string, kubeconfig: string | undefined): string {
  if (kubeconfig !== undefined) throw new ConfigError('--manifests and --kubeconfig cannot be used together: the agent runs either a folder\'s Tasks or a cluster\'s');
  const directory = path.resolve(text);
  let isDirectory = false;
  try {
    isDirectory = statSync(directory).isDirectory();
  } catch {
    throw new ConfigError(`--manifests ${JSON.stringify(text)}: no such directory`);
  }
  if (!isDirectory) throw new ConfigError(`--manifests ${JSON.stringify(text)} is not a directory (give the folder the manifests are in)`);
  return directory;
}

/** The kernel's largest pid_max (PID_MAX_LIMIT on 64-bit, proc(5)): a larger budget could never bind. */
const maxPidMax = 4_194_304;

/** A byte count given as a quantity (10Mi, 1G, 65536), at least `minimum`. */
function byteQuantity(flag: string, text: string, minimum: number): number {
  let bytes: bigint | undefined;
  try {
    bytes = wholeUnits(parseQuantity(text));
  } catch {
    bytes = undefined;
  }
  if (bytes === undefined || bytes < BigInt(minimum) || bytes > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ConfigError(`--${flag} must be a whole number of bytes (a quantity: 10Mi) of at least ${formatBytes(minimum)}, got ${JSON.stringify(text)}`);
  }
  return Number(bytes);
}

/** A flag's value through one of task-limits.ts' checks, its refusal a ConfigError naming the flag. */
function limitFlag<Value>(flag: keyof typeof taskLimitFlags, text: string, parse: (text: string, field: string) => Value, hint = ''): Value {
  try {
    return parse(text, `--${flag}`);
  } catch (error) {
    if (error instanceof InvalidTaskSpec) throw new ConfigError(`${error.message}${hint}`);
    throw error;
  }
}

/** The policy of taskLimitFlags' values (parseArgs output, defaults filled in); throws ConfigError naming the flag. */
export function parseTaskLimitPolicy(values: Readonly<Record<string, unknown>>): TaskLimitPolicy {
  const textOf = (flag: keyof typeof taskLimitFlags): string | undefined => {
    const given = values[flag];
    return typeof given === 'string' ? given : (taskLimitFlags[flag] as { readonly default?: string }).default;
  };
  const orNone = <Value>(flag: keyof typeof taskLimitFlags, parse: (text: string, field: string) => Value): Value | undefined => {
    const text = textOf(flag) ?? 'none';
    return text === 'none' || text === '0' ? undefined : limitFlag(flag, text, parse, ' (none turns the default off)');
  };
  const memory = orNone('default-memory', memoryBytes);
  const pids = orNone('default-pids', (text, field) => pidsLimit(/^\d+$/.test(text) ? Number(text) : text, field));
  const cpu = orNone('default-cpu', cpuMillicores);
  const maxTmp = textOf('max-tmp-size');
  const tasksPids = textOf('tasks-pids-max');
  return Object.freeze({
    defaults: Object.freeze({ ...(memory !== undefined ? { memoryBytes: memory } : {}), ...(pids !== undefined ? { pids } : {}), ...(cpu !== undefined ? { cpuMillicores: cpu } : {}) }),
    maxTmpBytes: maxTmp === undefined ? halfOfNodeMemory() : limitFlag('max-tmp-size', maxTmp, maxTmpBytes),
    tasksPidsMax: tasksPids === undefined ? halfOfProcessTable() : tasksPids === 'max' || tasksPids === '0' ? undefined : wholeNumber('tasks-pids-max', tasksPids, 1, maxPidMax),
  });
}

/** One line for the log: the policy as flags would say it. */
export function describeTaskLimitPolicy(policy: TaskLimitPolicy): Record<string, string> {
  const { memoryBytes: memory, pids, cpuMillicores: cpu } = policy.defaults;
  return { defaultMemory: memory === undefined ? 'none' : formatBytes(memory), defaultPids: pids === undefined ? 'none' : String(pids), defaultCpu: cpu === undefined ? 'none' : formatMillicores(cpu), maxTmpSize: formatBytes(policy.maxTmpBytes), tasksPidsMax: policy.tasksPidsMax === undefined ? 'max' : String(policy.tasksPidsMax) };
}

/** What the agent keeps that no Task may read, whatever --sandbox-masked-paths says. */
export interface AgentOwnPaths {
  readonly stateDirectory?: string | undefined;
  readonly stagingDirectory: string;
  readonly manifestDirectory?: string | undefined;
  /** --kubeconfig, if given. */
  readonly kubeconfig?: string | undefined;
  /** For $KUBECONFIG (a list of files) and $HOME. */
  readonly environment: NodeJS.ProcessEnv;
}

/** The agent's state, staging and manifest directories, its kubeconfig files and ~/.kube, resolved (never /). */
function agentOwnPaths(own: AgentOwnPaths): string[] {
  const home = own.environment.HOME ?? os.homedir();
  const kubeconfigs = [own.kubeconfig, ...(own.environment.KUBECONFIG ?? '').split(path.delimiter)];
  return [own.stateDirectory, own.stagingDirectory, own.manifestDirectory, ...kubeconfigs, home === '' ? undefined : path.join(home, '.kube')]
    .filter((entry): entry is string => entry !== undefined && entry !== '')
    .map((entry) => path.resolve(entry))
    .filter((entry) => entry !== '/');
}

/**
 * The sandbox policy of sandboxPolicyFlags' values (parseArgs output, defaults filled in): the
 * default level, and the allowed host paths, each refused (ConfigError naming the flag) when it is
 * /, or is, lies inside or holds /proc, /sys, /dev, /run, /var/run or one of the agent's own paths,
 * or lies inside a masked path (`maskedPaths`), as written and with its links resolved. The links
 * are resolved again at every check (src/sandbox/sandbox-policy.ts).
 */
export function parseSandboxPolicy(values: Readonly<Record<string, unknown>>, own: AgentOwnPaths, maskedPaths: readonly string[]): SandboxPolicy {
  const text = (flag: keyof typeof sandboxPolicyFlags): string => {
    const given = values[flag];
    return typeof given === 'string' ? given : sandboxPolicyFlags[flag].default;
  };
  const level: SandboxPolicyLevel = oneOf('sandbox-policy', text('sandbox-policy'), sandboxPolicyLevels);
  const neverAllowed = Object.freeze([...neverAllowedHostPaths, ...agentOwnPaths(own)]);
  const allowed: string[] = [];
  for (const entry of text('allowed-host-paths').split(',').map((part) => part.trim()).filter((part) => part !== '')) {
    for (const seen of [entry, resolveHostPath(entry)]) {
      if (seen === undefined) continue;
      const problem = allowedHostPathProblem(seen, neverAllowed) ?? (maskedPaths.some((masked) => seen === masked || seen.startsWith(`${masked}/`)) ? `must not be or lie inside a masked path (--sandbox-masked-paths), got ${JSON.stringify(seen)}` : undefined);
      if (problem !== undefined) throw new ConfigError(`--allowed-host-paths entry ${JSON.stringify(entry)}${seen === entry ? '' : ` (a link to ${JSON.stringify(seen)})`} ${problem}`);
    }
    allowed.push(path.resolve(entry));
  }
  return Object.freeze({ level, allowedHostPaths: Object.freeze([...new Set(allowed)]), neverAllowedHostPaths: neverAllowed });
}

/**
 * The masked paths of `listed` (--sandbox-masked-paths: comma-separated, 'default' for
 * defaultMaskedPaths) with the agent's own added: its state, staging and manifest directories, its
 * kubeconfig files and ~/.kube. (A kubeconfig's folder may be /etc: the files are masked, not it.)
 * An own path under /tmp or /dev is left out: a Task has its own /tmp and /dev, which never show it.
 */
export function agentMaskedPaths(listed: string, own: AgentOwnPaths): readonly string[] {
  const given = listed.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  const paths = given.flatMap((entry) => (entry === 'default' ? defaultMaskedPaths : [entry]));
  const ownPaths = agentOwnPaths(own).filter((entry) => !['/tmp', '/dev'].some((fresh) => entry === fresh || entry.startsWith(`${fresh}/`)));
  const all = [...new Set([...paths, ...ownPaths])];
  try {
    checkMaskedPaths(all, '--sandbox-masked-paths');
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  return Object.freeze(all);
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
  const nodeName = values['node-name'] ?? thisNodeName(environment);
  if (nodeName.length > 253 || !nodeNamePattern.test(nodeName)) {
    throw new ConfigError(`--node-name must be a Kubernetes node name (lowercase RFC 1123 subdomain), got ${JSON.stringify(nodeName)}`);
  }
  const logLevel = values['log-level'] ?? 'info';
  if (!(logLevels as readonly string[]).includes(logLevel)) {
    throw new ConfigError(`--log-level must be one of ${logLevels.join(', ')}, got ${JSON.stringify(logLevel)}`);
  }
  const apiQps = Number(values['api-qps']);
  if (!(apiQps > 0 && apiQps <= 100_000)) throw new ConfigError(`--api-qps must be a number above 0, got ${JSON.stringify(values['api-qps'])}`);
  const stagingDirectory = absolutePath('sandbox-staging-dir', values['sandbox-staging-dir'] ?? '/run/parafork/root');
  const taskIds = taskIdRange('task-ids', values['task-ids'] ?? defaultTaskIds);
  const stateDirectory = absolutePath('state-dir', values['state-dir'] ?? '/run/parafork');
  const manifests = values.manifests === undefined ? undefined : manifestDirectory(values.manifests, values.kubeconfig);
  const own: AgentOwnPaths = { stateDirectory, stagingDirectory, manifestDirectory: manifests, kubeconfig: values.kubeconfig, environment };
  const sandboxMaskedPaths = agentMaskedPaths(values['sandbox-masked-paths'] ?? 'default', own);
  return Object.freeze({
    nodeName,
    kubeconfig: values.kubeconfig,
    maxConcurrent: wholeNumber('max-concurrent', values['max-concurrent'] ?? '', 1, 1_000_000),
    workers: wholeNumber('workers', values.workers ?? '', 1, 1024),
    apiQps,
    apiBurst: wholeNumber('api-burst', values['api-burst'] ?? '', 1, 1_000_000),
    terminationGraceSeconds: wholeNumber('termination-grace-seconds', values['termination-grace-seconds'] ?? '', 0, 3600),
    shutdownGraceSeconds: wholeNumber('shutdown-grace-seconds', values['shutdown-grace-seconds'] ?? '', 0, 86_400),
    arrayLeaseSeconds: wholeNumber('array-lease-seconds', values['array-lease-seconds'] ?? '', 3, 3600),
    listenAddress: values['listen-address'] ?? '0.0.0.0',
    port: wholeNumber('port', values.port ?? '', 0, 65_535),
    logLevel: logLevel as AgentConfig['logLevel'],
    cgroupParent: values['cgroup-parent'] !== undefined ? cgroupParent(values['cgroup-parent']) : values.manifests === undefined ? 'parafork' : undefined,
    taskIds,
    sandboxStagingDirectory: stagingDirectory,
    seccompProfileDirectory: absolutePath('seccomp-profile-dir', values['seccomp-profile-dir'] ?? '/var/lib/kubelet/seccomp'),
    stateDirectory,
    taskLogMaxBytes: byteQuantity('task-log-max-bytes', values['task-log-max-bytes'] ?? '10Mi', 64 * 1024),
    arrayLogMaxBytes: byteQuantity('array-log-max-bytes', values['array-log-max-bytes'] ?? '256Mi', 64 * 1024),
    logsMaxBytesTotal: byteQuantity('logs-max-bytes-total', values['logs-max-bytes-total'] ?? '2Gi', 64 * 1024),
    launcher: oneOf('launcher', values.launcher ?? 'native', ['native', 'child_process'] as const),
    taskSandbox: oneOf('task-sandbox', values['task-sandbox'] ?? 'on', ['on', 'off'] as const) === 'on',
    eventQps: wholeNumber('event-qps', values['event-qps'] ?? '', 1, 100_000),
    eventBurst: wholeNumber('event-burst', values['event-burst'] ?? '', 1, 1_000_000),
    watchSilenceSeconds: wholeNumber('watch-silence-seconds', values['watch-silence-seconds'] ?? '', 1, 86_400),
    manifestDirectory: manifests,
    taskLimits: parseTaskLimitPolicy(values),
    sandboxMaskedPaths,
    // The ids it leases are no spec's to name below privileged (sandbox-policy.ts).
    sandboxPolicy: { ...parseSandboxPolicy(values, own, sandboxMaskedPaths), taskIds },
  });
}

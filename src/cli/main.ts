#!/usr/bin/env node
// The `parafork` command.
import { readdirSync, readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';

import { parseArgs } from 'node:util';

import { pino } from 'pino';

import type { Task } from '../api/task.js';

import { startAgent } from '../agent/agent.js';
import { createLogger, terminalSafeJsonLines } from '../agent/logger.js';
import { startManifestAgent } from '../agent/manifest-agent.js';
import { agentFlags, agentMaskedPaths, ConfigError, defaultTaskIds, parseAgentConfig, parseSandboxPolicy, parseTaskLimitPolicy, sandboxPolicyFlags, taskIdRange, taskLimitFlags, thisNodeName } from '../config/agent-config.js';
import { UnreadableLogFormatError } from '../logs/log-format.js';
import { showTaskLog, TaskLogNotFoundError } from '../logs/show-task-log.js';
import { cleanEndedInstances, instanceLogDirectories, OwnedLogDirectory, trimEndedInstances } from '../logs/instance-log-directory.js';
import { sweepTaskLogDirectory, TaskLogStore, type TaskLogOwner } from '../logs/task-log-store.js';
import { describeFileSystemError, isExplainedFileSystemError, unreadableLogDirectories } from './file-system-errors.js';
import { logFlagsUsage, parseLogFlags } from './log-flags.js';
import { loadTaskManifests, ManifestError } from '../standalone/manifest-loader.js';
import { LiveTaskOutput, taskLabels, taskOutputSources } from '../standalone/live-task-output.js';
import { withLogFiles } from '../standalone/run-log-files.js';
import { runTasks } from '../standalone/run-tasks.js';
import { wrapWords } from '../standalone/wrap-words.js';
import type { RunProgress } from '../standalone/run-tasks.js';
import { formatTasks, isOutputFormat, progressLine, summaryLine, tableRowLimit } from '../standalone/task-report.js';

const usage = `Usage: parafork <command> [flags]

Commands:
  run        run the Tasks of manifest files or folders on this machine, no cluster needed
  logs       print what a Task wrote to stdout and stderr (on the node that ran it)
  agent      watch the Tasks bound to this node (and unbound ones it may claim) and run them;
             with --manifests DIR, keep running a folder's Tasks instead, no cluster needed
  version    print the version
  help       print this help, or a command's: parafork help agent

Run 'parafork <command> --help' for a command's flags.`;

/** Help lines are wrapped to this many columns, as a terminal of 100 shows them. */
const helpWidth = 100;

/**
 * A flag per entry, its description wrapped beneath itself; the default added unless it is empty
 * or the description already says it (no "(default: none) (default )").
 */
function flagLines(flags: Readonly<Record<string, { readonly description: string; readonly default?: string }>>, indent: string, width: number): string[] {
  return Object.entries(flags).flatMap(([name, flag]) => {
    const saysDefault = flag.default === undefined || flag.default === '' || flag.description.includes('(default');
    const text = `${flag.description}${saysDefault ? '' : ` (default ${flag.default ?? ''})`}`;
    const head = `${indent}--${name.padEnd(width)} `;
    const [first = '', ...rest] = wrapWords(text, Math.max(40, helpWidth - head.length));
    return [`${head}${first}`, ...rest.map((line) => `${' '.repeat(head.length)}${line}`)];
  });
}

function agentUsage(): string {
  const lines = flagLines(agentFlags, '  ', 27);
  return [
    'Usage: parafork agent [flags]',
    '',
    'Runs the node agent against the cluster in the kubeconfig (or in-cluster). With --manifests DIR',
    'it needs no cluster: it runs the Task manifests in DIR, follows the folder as files are added,',
    'changed or removed (as the kubelet does with static pods), and shows the Tasks at /tasks.',
    '',
    'Flags:',
    ...lines,
  ].join('\n');
}

function version(): string {
  const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return packageJson.version;
}

const runUsage = `Usage: parafork run -f FILE|DIR [-f ...] [flags]

Runs the Tasks in the manifests (the YAML you would kubectl apply) on this machine, sandboxed as
the agent runs them. While they run it prints what each Task writes, every line after the Task's
name as docker compose does ("hello | ..." for stdout, "hello ! ..." for stderr, "array[17] | ..."
for index 17 of an array, only indexes that write; coloured on a terminal unless NO_COLOR is set)
under a progress line; then a table of how each Task ended (past
${tableRowLimit} Tasks a summary: counts by phase and reason, the failed and the slowest Tasks)
and a line of totals. The output stays readable after the run: parafork logs TASK, or the files
-o json names in each Task's parafork.dev/log-files annotation. Exits 1 when a Task failed, 2 when
the manifests or flags are invalid. Ctrl-C stops the running Tasks (SIGTERM, SIGKILL 10 s later),
prints the report and exits 130. Needs root (the sandbox).

Flags:
  -f, --filename PATH          a manifest file or a folder of them (.yaml, .yml, .json); repeatable
  -o, --output FORMAT          table (default), wide (a row for every Task however many), or
                               json or yaml: the Tasks with their status and log files, and
                               none of their output printed
      --wide                   the same as -o wide
      --max-concurrent N       most Tasks running at once (default 1000)
      --workers N              Tasks reconciled at once (default 16)
      --log-level LEVEL        fatal, error, warn (default), info, debug or trace
      --seccomp-profile-dir D  seccomp profiles (Docker JSON) for sandbox.seccomp type Localhost
                               (default /var/lib/kubelet/seccomp)
${flagLines(taskLimitFlags, '      ', 22).join('\n')}
      --sandbox-masked-paths L paths masked in every Task, comma-separated; 'default' stands for
                               the built-in list (default: default); kubeconfigs always added
${flagLines(sandboxPolicyFlags, '      ', 22).join('\n')}
  -q, --quiet                  do not print the Tasks' output (it stays readable: parafork logs)`;

/**
 * Where `parafork run`s keep their Tasks' logs: apart from the agents', which sweep Tasks they do
 * not know; each run in a directory of its own in it (src/logs/instance-log-directory.ts), so that
 * runs at once with Tasks of the same names never touch each other's.
 */
const runLogRoot = '/run/parafork/run-logs';

/** Each attempt's log in a run, and all of a run's logs together, as the agent's defaults (--task-log-max-bytes, --logs-max-bytes-total). */
const runTaskLogMaxBytes = 10 * 2 ** 20;
const runLogsMaxBytesTotal = 2 * 2 ** 30;
/** How often a run's start sizes the ended runs' logs to keep them within runLogsMaxBytesTotal: sizing stats every file. */
const endedRunsTrimIntervalMs = 5 * 60_000;

/**
 * The Tasks' output printed as they run, each line after its Task's name (docker compose's way):
 * coloured on a terminal unless NO_COLOR is set, and the progress line cleared before it.
 */
function liveOutput(tasks: readonly Task[], logs: TaskLogStore, terminal: boolean): LiveTaskOutput {
  const label = taskLabels(tasks);
  const stdoutIsTerminal = process.stdout.isTTY;
  const noColor = process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '';
  return new LiveTaskOutput({
    sources: (task, fromAttempt) => taskOutputSources(task, fromAttempt, label(task), (owner, attempt) => logs.attemptPath(owner, attempt)),
    arrayLogs: (task) => ({ directory: logs.taskDirectory({ namespace: task.metadata.namespace ?? 'default', name: task.metadata.name ?? '', uid: task.metadata.uid ?? '' }), label: label(task) }),
    write: (text) => process.stdout.write(text),
    colors: stdoutIsTerminal && !noColor,
    // An array's indexes as `name[index]`, its last index the widest.
    labelWidth: Math.max(0, ...tasks.map((task) => label(task).length + (task.spec.completions === undefined ? 0 : String(Math.max(0, task.spec.completions - 1)).length + 2))),
    ...(terminal && stdoutIsTerminal ? { beforeWrite: () => process.stderr.write('\r\x1b[K') } : {}),
  });
}

const logsUsage = `Usage: parafork logs TASK [flags]

Prints what a Task wrote to stdout and stderr, in order, from the logs on this node: the agents'
under --state-dir and those of 'parafork run', the newest Task of that name. Needs root.

Flags:
${logFlagsUsage}
      --state-dir DIR     the agent's --state-dir (default /run/parafork)`;

/** The Task log directories of the agents sharing a --state-dir: <state-dir>/logs/<node name>. */
function agentLogDirectories(stateDirectory: string): string[] {
  const root = path.join(stateDirectory, 'logs');
  try {
    return readdirSync(root, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => path.join(root, entry.name));
  } catch {
    return [];
  }
}

async function runLogsCommand(argv: string[]): Promise<number> {
  const { flags, name, values } = parseLogFlags(argv, { 'state-dir': { type: 'string', default: '/run/parafork' } });
  const stateDirectory = path.resolve(String(values['state-dir']));
  const interrupted = new AbortController();
  process.once('SIGINT', () => interrupted.abort());
  try {
    await showTaskLog(
      {
        // The runs' own directories, and the folder itself, where runs before them kept their logs.
        directories: [...agentLogDirectories(stateDirectory), ...instanceLogDirectories(runLogRoot, 'run'), runLogRoot],
        searched: `${path.join(stateDirectory, 'logs')} and ${runLogRoot}`,
        name,
        ...flags,
        signal: interrupted.signal,
      },
      (text) => process.stdout.write(text),
    );
  } catch (error) {
    if (!(error instanceof TaskLogNotFoundError || error instanceof UnreadableLogFormatError)) throw error;
    // Not found may only mean not readable: the logs are root's.
    const unreadable = error instanceof TaskLogNotFoundError ? unreadableLogDirectories([stateDirectory, runLogRoot], process.geteuid?.() ?? 0) : undefined;
    console.error(`parafork: ${error.message}${unreadable === undefined ? '' : `; ${unreadable}`}`);
    return 1;
  }
  return 0;
}

async function runStandaloneCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      filename: { type: 'string', short: 'f', multiple: true },
      output: { type: 'string', short: 'o', default: 'table' },
      wide: { type: 'boolean', default: false },
      'max-concurrent': { type: 'string', default: '1000' },
      workers: { type: 'string', default: '16' },
      'log-level': { type: 'string', default: 'warn' },
      'seccomp-profile-dir': { type: 'string', default: '/var/lib/kubelet/seccomp' },
      ...taskLimitFlags,
      'sandbox-masked-paths': { type: 'string', default: 'default' },
      ...sandboxPolicyFlags,
      quiet: { type: 'boolean', short: 'q', default: false },
    },
    strict: true,
    allowPositionals: true,
  });
  const files = values.filename ?? [];
  // `parafork run tasks.yaml`, as `kubectl apply tasks.yaml` is mistyped: the command that works.
  if (positionals.length > 0) throw new ConfigError(`run takes its manifests after -f: parafork run ${positionals.map((file) => `-f ${file}`).join(' ')}`);
  if (files.length === 0) throw new ConfigError('run needs at least one -f FILE|DIR');
  if (!isOutputFormat(values.output)) throw new ConfigError(`-o must be table, wide, json or yaml, got ${JSON.stringify(values.output)}`);
  if (values.wide && values.output !== 'table' && values.output !== 'wide') throw new ConfigError(`--wide goes with a table, not -o ${values.output}`);
  const output = values.wide ? 'wide' : values.output;
  const maxConcurrent = Number(values['max-concurrent']);
  const workers = Number(values.workers);
  if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) throw new ConfigError(`--max-concurrent must be a whole number from 1, got ${JSON.stringify(values['max-concurrent'])}`);
  if (!Number.isInteger(workers) || workers < 1 || workers > 1024) throw new ConfigError(`--workers must be a whole number from 1 to 1024, got ${JSON.stringify(values.workers)}`);
  const taskLimits = parseTaskLimitPolicy(values);
  const sandboxStagingDirectory = '/run/parafork/root';
  const own = { stagingDirectory: sandboxStagingDirectory, environment: process.env };
  const sandboxMaskedPaths = agentMaskedPaths(values['sandbox-masked-paths'], own);
  // No namespaces: every Task runs at --sandbox-policy (default restricted), as `agent --manifests` does.
  // Ids of the task id range are the run's to lease: no spec names one below privileged.
  const taskIds = taskIdRange('task-ids', defaultTaskIds);
  const sandboxPolicy = { ...parseSandboxPolicy(values, own, sandboxMaskedPaths), taskIds };
  const loaded = loadTaskManifests(files);
  // A run keeps its Tasks' logs until a later run of Tasks of the same names starts after it has
  // ended (a run still going keeps its own, whatever another does), or the ended runs' logs
  // together pass the cap and its are the oldest.
  const runLogs = OwnedLogDirectory.claim(runLogRoot, 'run');
  const logs = new TaskLogStore({ directory: runLogs.path, maxBytesPerAttempt: runTaskLogMaxBytes });
  const names = new Set(loaded.map(({ task }) => `${task.metadata.namespace ?? 'default'}/${task.metadata.name ?? ''}`));
  const ofOtherName = (owner: TaskLogOwner): boolean => !names.has(`${owner.namespace}/${owner.name}`);
  await cleanEndedInstances(runLogRoot, 'run', (directory) => sweepTaskLogDirectory(directory, ofOtherName));
  // Those runs before per-run directories kept straight in the folder, beside the runs' directories.
  await sweepTaskLogDirectory(runLogRoot, ofOtherName, { keepOthers: true });
  await trimEndedInstances(runLogRoot, 'run', runLogsMaxBytesTotal, endedRunsTrimIntervalMs);
  const logger = pino({ level: values['log-level'], base: { mode: 'standalone' } }, terminalSafeJsonLines(pino.destination(2)));
  const terminal = process.stderr.isTTY;
  // Each Task's output as it runs, before a table (JSON and YAML are for programs: the logs' paths are in them).
  const printOutput = !values.quiet && (output === 'table' || output === 'wide');
  const live = printOutput ? liveOutput(loaded.map((entry) => entry.task), logs, terminal) : undefined;
  let lastLine = 0;
  let last: RunProgress | undefined;
  const interruption = interruptible(terminal);
  const tasks = await runTasks(
    loaded.map((entry) => entry.task),
    {
      settings: {
        nodeName: thisNodeName(process.env),
        maxConcurrent,
        workers,
        // As the agent stops a Task: SIGTERM, then SIGKILL after its default grace.
        terminationGraceSeconds: Number(agentFlags['termination-grace-seconds'].default),
        shutdownGraceSeconds: Number(agentFlags['shutdown-grace-seconds'].default),
        // A cgroup group of this run's own; task ids shared out with every parafork of the machine.
        cgroupParent: undefined,
        taskIds,
        sandboxStagingDirectory,
        seccompProfileDirectory: path.resolve(values['seccomp-profile-dir']),
        launcher: 'native',
        taskSandbox: true,
        taskLimits,
        sandboxMaskedPaths,
        sandboxPolicy,
        taskLogDirectory: runLogs.path,
        taskLogMaxBytes: runTaskLogMaxBytes,
        logsMaxBytesTotal: runLogsMaxBytesTotal,
      },
      logger,
      signal: interruption.signal,
      onProgress: (progress) => {
        last = progress;
        live?.update(progress.tasks);
        // A terminal gets one line rewritten in place; a log gets a line a second.
        if (terminal) process.stderr.write(`\r\x1b[K${progressLine(progress)}`);
        else if (progress.elapsedMs - lastLine >= 1000 || progress.succeeded + progress.failed + progress.held === progress.total) {
          lastLine = progress.elapsedMs;
          process.stderr.write(`${progressLine(progress)}\n`);
        }
      },
    },
  );
  if (terminal) process.stderr.write('\r\x1b[K'); // the totals below replace the progress line
  live?.finish(); // what the Tasks wrote since the last progress tick, and lines left without a newline
  if (printOutput && tasks.length > tableRowLimit) process.stderr.write(`The Tasks' output is kept in ${runLogs.path}: parafork logs TASK prints one.\n`);
  process.stdout.write(formatTasks(output === 'json' || output === 'yaml' ? withLogFiles(tasks, (owner) => logs.taskDirectory(owner)) : tasks, output));
  if (last) process.stderr.write(`${summaryLine({ ...last, tasks })}\n`); // last, after the table
  runLogs.release(); // the logs stay, for parafork logs, until a later run's sweep
  interruption.dispose();
  // As a shell reports a command a signal ended: 128 + the signal's number (130 for Ctrl-C).
  if (interruption.by !== undefined) return 128 + osConstants.signals[interruption.by];
  return tasks.some((task) => task.status?.phase === 'Failed') ? 1 : 0;
}

/** Signals that stop a run: Ctrl-C (SIGINT), SIGTERM (as `timeout` and service managers send), SIGHUP (the terminal closed). */
const interruptingSignals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

interface Interruption {
  readonly signal: AbortSignal;
  /** The first signal received; undefined while none came. */
  readonly by: (typeof interruptingSignals)[number] | undefined;
  dispose(): void;
}

/**
 * A run's Ctrl-C: the Tasks run in sessions of their own, so the terminal's SIGINT reaches only
 * parafork, and parafork dying of it left them running with no one to stop or record them. The
 * first signal stops the run instead (runTasks: running Tasks get SIGTERM, then SIGKILL after the
 * termination grace) and the report follows; later ones only say what it waits for.
 */
function interruptible(terminal: boolean): Interruption {
  const controller = new AbortController();
  let by: Interruption['by'];
  const graceSeconds = Number(agentFlags['termination-grace-seconds'].default);
  const onSignal = (signal: (typeof interruptingSignals)[number]): void => {
    const clear = terminal ? '\r\x1b[K' : '';
    if (by === undefined) {
      by = signal;
      process.stderr.write(`${clear}parafork: ${signal}: stopping the running Tasks (SIGTERM, SIGKILL ${graceSeconds} s later); none starts any more. The report follows.\n`);
      controller.abort();
    } else {
      process.stderr.write(`${clear}parafork: ${signal}: still stopping the running Tasks: any left get SIGKILL within ${graceSeconds} s of the first signal\n`);
    }
  };
  for (const signal of interruptingSignals) process.on(signal, onSignal);
  return {
    signal: controller.signal,
    get by() {
      return by;
    },
    dispose: () => {
      for (const signal of interruptingSignals) process.off(signal, onSignal);
    },
  };
}

async function runAgentCommand(argv: string[]): Promise<number> {
  const config = parseAgentConfig(argv);
  const logger = createLogger(config);
  const agent = config.manifestDirectory === undefined ? await startAgent(config, logger) : await startManifestAgent(config, config.manifestDirectory, logger);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      logger.info({ signal }, 'signal received');
      void agent.stop();
    });
  }
  await agent.stopped;
  return 0;
}

/** A flag the command does not know, or one missing its value: the error says where the flags are listed. */
async function withFlagHelp(command: string, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    // parseArgs' own error, or (the agent's flags) the ConfigError carrying its message.
    const flagError = code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || (error instanceof ConfigError && /^(Unknown option '|Option '.*' argument missing)/.test(error.message));
    if (flagError) {
      // Node's own text, up to its advice on positionals starting with '-' (none of ours do).
      const [message] = (error as Error).message.split('. To specify a positional argument');
      throw new ConfigError(`${message ?? ''}; 'parafork ${command} --help' lists the flags`);
    }
    throw error;
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  switch (command) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(rest[0] === 'agent' ? agentUsage() : rest[0] === 'run' ? runUsage : rest[0] === 'logs' ? logsUsage : usage);
      return 0;
    case 'version':
    case '--version':
      console.log(version());
      return 0;
    case 'run':
      if (wantsHelp) {
        console.log(runUsage);
        return 0;
      }
      return withFlagHelp('run', () => runStandaloneCommand(rest));
    case 'logs':
      if (wantsHelp) {
        console.log(logsUsage);
        return 0;
      }
      return withFlagHelp('logs', () => runLogsCommand(rest));
    case 'agent':
      if (wantsHelp) {
        console.log(agentUsage());
        return 0;
      }
      return withFlagHelp('agent', () => runAgentCommand(rest));
    default:
      console.error(`parafork: unknown command ${JSON.stringify(command)}; run 'parafork help'`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const code = (error as { code?: unknown }).code;
    if (error instanceof ConfigError || error instanceof ManifestError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
      // A line per problem (a ManifestError names every bad file), each as the command's own.
      console.error((error as Error).message.split('\n').map((line) => `parafork: ${line}`).join('\n'));
      process.exitCode = 2;
    } else if (code === 'ERR_PARAFORK_CGROUP_GROUP_IN_USE' || code === 'ERR_PARAFORK_STATE_IN_USE' || code === 'ERR_PARAFORK_TASK_IDS_IN_USE') {
      // Another parafork owns the cgroup group, or the node's state, or task ids this one's range
      // would lease too: the message names it and says what to do.
      console.error(`parafork: ${(error as Error).message}`);
      process.exitCode = 1;
    } else if (code === 'EADDRINUSE') {
      // Another agent of this machine (or another program) listens there: no stack, what to do.
      const { address, port } = error as { address?: string; port?: number };
      console.error(`parafork: ${address ?? ''}:${port ?? ''} is in use, by another agent on this machine or another program: give this one another --port (0: any free port)`);
      process.exitCode = 1;
    } else if (isExplainedFileSystemError(error)) {
      // Not root, or a directory parafork needs is read-only or full: where, and what to do.
      console.error(`parafork: ${describeFileSystemError(error, process.geteuid?.() ?? 0)}`);
      process.exitCode = 1;
    } else if (code === 'ERR_PARAFORK_UNSUPPORTED_RUNTIME') {
      // The wrong platform or Node.js: the message says what is needed; a stack would bury it.
      console.error((error as Error).message);
      process.exitCode = 1;
    } else {
      console.error(`parafork: ${(error as Error).stack ?? String(error)}`);
      process.exitCode = 1;
    }
  },
);

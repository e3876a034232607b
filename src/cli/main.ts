#!/usr/bin/env node
// The `parafork` command.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { parseArgs } from 'node:util';

import { pino } from 'pino';

import { startAgent } from '../agent/agent.js';
import { createLogger } from '../agent/logger.js';
import { startManifestAgent } from '../agent/manifest-agent.js';
import { agentFlags, agentMaskedPaths, ConfigError, defaultTaskIds, parseAgentConfig, parseSandboxPolicy, parseTaskLimitPolicy, sandboxPolicyFlags, taskIdRange, taskLimitFlags, thisNodeName } from '../config/agent-config.js';
import { loadTaskManifests, ManifestError } from '../standalone/manifest-loader.js';
import { runTasks } from '../standalone/run-tasks.js';
import type { RunProgress } from '../standalone/run-tasks.js';
import { formatTasks, isOutputFormat, progressLine, summaryLine, tableRowLimit } from '../standalone/task-report.js';

const usage = `Usage: parafork <command> [flags]

Commands:
  run        run the Tasks of manifest files or folders on this machine, no cluster needed
  agent      watch the Tasks bound to this node (and unbound ones it may claim) and run them;
             with --manifests DIR, keep running a folder's Tasks instead, no cluster needed
  version    print the version
  help       print this help, or a command's: parafork help agent

Run 'parafork <command> --help' for a command's flags.`;

function flagLines(flags: Readonly<Record<string, { readonly description: string; readonly default?: string }>>, indent: string, width: number): string[] {
  return Object.entries(flags).map(([name, flag]) => `${indent}--${name.padEnd(width)} ${flag.description}${flag.default !== undefined ? ` (default ${flag.default})` : ''}`);
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
the agent runs them, shows their progress, and ends with a table of how each one ended (past
${tableRowLimit} Tasks a summary: counts by phase and reason, the failed and the slowest Tasks) and a
line of totals. Exits 1 when a Task failed, 2 when the manifests or flags are invalid. Needs root
(the sandbox).

Flags:
  -f, --filename PATH          a manifest file or a folder of them (.yaml, .yml, .json); repeatable
  -o, --output FORMAT          table (default), wide (a row for every Task however many), or
                               json or yaml: the Tasks with their status
      --wide                   the same as -o wide
      --max-concurrent N       most Tasks running at once (default 1000)
      --workers N              Tasks reconciled at once (default 16)
      --log-level LEVEL        fatal, error, warn (default), info, debug or trace
      --seccomp-profile-dir D  seccomp profiles (Docker JSON) for sandbox.seccomp type Localhost
                               (default /var/lib/kubelet/seccomp)
${flagLines(taskLimitFlags, '      ', 22).join('\n')}
      --sandbox-masked-paths L paths masked in every Task, comma-separated; 'default' stands for
                               the built-in list (default: default); kubeconfigs always added
${flagLines(sandboxPolicyFlags, '      ', 22).join('\n')}`;

async function runStandaloneCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
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
    },
    strict: true,
    allowPositionals: false,
  });
  const files = values.filename ?? [];
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
  const sandboxPolicy = parseSandboxPolicy(values, own, sandboxMaskedPaths);
  const loaded = loadTaskManifests(files);
  const logger = pino({ level: values['log-level'], base: { mode: 'standalone' } }, pino.destination(2));
  const terminal = process.stderr.isTTY;
  let lastLine = 0;
  let last: RunProgress | undefined;
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
        // A cgroup group of this run's own; task ids shared out with the agent's (its default --state-dir).
        cgroupParent: undefined,
        taskIds: taskIdRange('task-ids', defaultTaskIds),
        taskIdLockDirectory: '/run/parafork/ids',
        sandboxStagingDirectory,
        seccompProfileDirectory: path.resolve(values['seccomp-profile-dir']),
        launcher: 'native',
        taskSandbox: true,
        taskLimits,
        sandboxMaskedPaths,
        sandboxPolicy,
      },
      logger,
      onProgress: (progress) => {
        last = progress;
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
  process.stdout.write(formatTasks(tasks, output));
  if (last) process.stderr.write(`${summaryLine({ ...last, tasks })}\n`); // last, after the table
  return tasks.some((task) => task.status?.phase === 'Failed') ? 1 : 0;
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

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  switch (command) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(rest[0] === 'agent' ? agentUsage() : rest[0] === 'run' ? runUsage : usage);
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
      return runStandaloneCommand(rest);
    case 'agent':
      if (wantsHelp) {
        console.log(agentUsage());
        return 0;
      }
      return runAgentCommand(rest);
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
      console.error(`parafork: ${(error as Error).message}`);
      process.exitCode = 2;
    } else if (code === 'ERR_PARAFORK_CGROUP_GROUP_IN_USE') {
      // Another parafork owns the cgroup group: the message names it and says what to do.
      console.error(`parafork: ${(error as Error).message}`);
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

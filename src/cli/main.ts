#!/usr/bin/env node
// The `parafork` command.
import { readFileSync } from 'node:fs';

import { startAgent, createLogger } from '../agent/agent.js';
import { agentFlags, ConfigError, parseAgentConfig } from '../config/agent-config.js';

const usage = `Usage: parafork <command> [flags]

Commands:
  agent      watch the Tasks bound to this node (and unbound ones it may claim) and run them
  version    print the version
  help       print this help, or a command's: parafork help agent

Run 'parafork <command> --help' for a command's flags.`;

function agentUsage(): string {
  const lines = Object.entries(agentFlags).map(([name, flag]) => {
    const fallback = 'default' in flag ? ` (default ${flag.default})` : '';
    return `  --${name.padEnd(27)} ${flag.description}${fallback}`;
  });
  return `Usage: parafork agent [flags]\n\nRuns the node agent against the cluster in the kubeconfig (or in-cluster).\n\nFlags:\n${lines.join('\n')}`;
}

function version(): string {
  const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return packageJson.version;
}

async function runAgentCommand(argv: string[]): Promise<number> {
  const config = parseAgentConfig(argv);
  const logger = createLogger(config);
  const agent = await startAgent(config, logger);
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
      console.log(rest[0] === 'agent' ? agentUsage() : usage);
      return 0;
    case 'version':
    case '--version':
      console.log(version());
      return 0;
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
    if (error instanceof ConfigError) {
      console.error(`parafork: ${error.message}`);
      process.exitCode = 2;
    } else {
      console.error(`parafork: ${(error as Error).stack ?? String(error)}`);
      process.exitCode = 1;
    }
  },
);

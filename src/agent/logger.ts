// The agent's log: JSON lines (pino's format) for log collectors; on a terminal, one readable line
// per record instead. Task lines carry `task` (namespace/name) and `attempt`.
import { pino, type DestinationStream, type Logger } from 'pino';

import type { AgentConfig } from '../config/agent-config.js';

export function createLogger(config: AgentConfig): Logger {
  const options = { level: config.logLevel, base: { node: config.nodeName } };
  return process.stdout.isTTY ? pino(options, terminalLines(process.stdout)) : pino(options);
}

const levelNames: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const levelColours: Readonly<Record<number, string>> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35' };

/** `12:04:05.123 INFO  task running task=ns/name attempt=1 pid=4242`, the level in colour. */
function terminalLines(output: NodeJS.WritableStream): DestinationStream {
  return {
    write(line: string): void {
      const { level, time, msg, ...fields } = JSON.parse(line) as Record<string, unknown> & { level: number; time: number; msg?: string };
      delete fields.node; // one agent's terminal: its node goes without saying
      const clock = new Date(time).toTimeString().slice(0, 8) + '.' + String(time % 1000).padStart(3, '0');
      const pairs = Object.entries(fields).map(([name, value]) => `${name}=${typeof value === 'string' && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)}`);
      output.write(`${clock} \x1b[${levelColours[level] ?? '0'}m${levelNames[level] ?? String(level)}\x1b[0m ${[msg ?? '', ...pairs].join(' ')}\n`);
    },
  };
}


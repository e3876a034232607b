// The agent's log: JSON lines (pino's format) for log collectors; on a terminal, one readable line
// per record instead. Task lines carry `task` (namespace/name) and `attempt`.
//
// Log lines quote what Task authors wrote (a refused host path, a command that was not found), and
// an operator reads them on a terminal (the agent in the foreground, `kubectl logs`): neither form
// lets a terminal control through. JSON escapes C0 but not DEL and C1 (U+009B is CSI to xterm), and
// the terminal form printed the message as it was (red team, session 15; agent-logger.test.ts).
import { pino, type DestinationStream, type Logger } from 'pino';

import type { AgentConfig } from '../config/agent-config.js';
import { terminalSafeJsonText, terminalSafeText } from '../http/terminal-safe-json.js';

export function createLogger(config: AgentConfig): Logger {
  const options = { level: config.logLevel, base: { node: config.nodeName } };
  // pino's own default destination (stdout, asynchronous), behind the escape.
  return pino(options, process.stdout.isTTY ? terminalLines(process.stdout) : terminalSafeJsonLines(pino.destination({ dest: process.stdout.fd, sync: false })));
}

/** pino's JSON lines with DEL and C1 controls as \u escapes too (C0 ones JSON escapes already). */
export function terminalSafeJsonLines(output: DestinationStream): DestinationStream {
  return {
    write(line: string): void {
      output.write(terminalSafeJsonText(line));
    },
  };
}

const levelNames: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const levelColours: Readonly<Record<number, string>> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35' };

/** `12:04:05.123 INFO  task running task=ns/name attempt=1 pid=4242`, the level in colour; no other terminal control. */
export function terminalLines(output: Pick<NodeJS.WritableStream, 'write'>): DestinationStream {
  return {
    write(line: string): void {
      const { level, time, msg, ...fields } = JSON.parse(line) as Record<string, unknown> & { level: number; time: number; msg?: string };
      delete fields.node; // one agent's terminal: its node goes without saying
      const clock = new Date(time).toTimeString().slice(0, 8) + '.' + String(time % 1000).padStart(3, '0');
      const pairs = Object.entries(fields).map(([name, value]) => `${terminalSafeText(name)}=${typeof value === 'string' && /^[^\s"=]+$/.test(value) ? terminalSafeText(value) : terminalSafeJsonText(JSON.stringify(value))}`);
      output.write(`${clock} \x1b[${levelColours[level] ?? '0'}m${levelNames[level] ?? String(level)}\x1b[0m ${[terminalSafeText(msg ?? ''), ...pairs].join(' ')}\n`);
    },
  };
}


// What the tests check the agent process for (zombie children, open fds) and find Task processes by, read from /proc.
import { readdirSync, readFileSync } from 'node:fs';

/** Children of `parentPid` that have exited but were never reaped. */
export function zombieChildren(parentPid = process.pid): number[] {
  const zombies: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // The command name (field 2) may hold spaces and parentheses: parse after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    const parent = Number(fields[1]);
    if (parent === parentPid && state === 'Z') zombies.push(Number(entry));
  }
  return zombies;
}

/** The pid of a process whose command line is exactly `argv` (a test's marker command), or undefined. */
export function processWithArgv(argv: readonly string[]): number | undefined {
  const wanted = `${argv.join('\0')}\0`;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8') === wanted) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** The fd numbers this process holds open. */
export function openFds(): number[] {
  return readdirSync('/proc/self/fd')
    .map(Number)
    .sort((a, b) => a - b);
}

/** Lines a child wrote to a piped stream, once it has ended. */
export async function readAll(stream: NodeJS.ReadableStream | null): Promise<string> {
  if (stream === null) throw new Error('stream was not piped');
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text;
}

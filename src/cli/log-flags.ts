// The flags `parafork logs` and `kubectl parafork logs` share, as kubectl logs spells them.
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';

import { ConfigError } from '../config/agent-config.js';

export const logFlagsUsage = `  -n, --namespace NS      the Task's namespace (default "default")
  -f, --follow            go on printing as the Task writes, until its attempt ends; with
                          --index, first wait for an index that has not printed yet (it
                          ends, saying so, if the index ends without printing)
      --index N           the log of index N of a Task array (spec.completions); 0-based
      --attempt N         the log of attempt N (1-based; default the latest)
  -p, --previous          the log of the attempt before the latest
      --tail N            only the last N lines
      --timestamps        start each line with the time it was written (RFC 3339; the time
                          the agent read it: lines read together share one)
      --stream S          only stdout or only stderr`;

export interface LogFlags {
  readonly namespace: string;
  readonly follow: boolean;
  readonly index?: number;
  readonly attempt?: number;
  readonly previous: boolean;
  readonly tail?: number;
  readonly timestamps: boolean;
  readonly stream?: 'stdout' | 'stderr';
}

/** Parses TASK and the log flags (and `extra` ones, returned as given); throws ConfigError. */
export function parseLogFlags(argv: readonly string[], extra: ParseArgsOptionsConfig = {}): { name: string; flags: LogFlags; values: Record<string, unknown> } {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      namespace: { type: 'string', short: 'n', default: 'default' },
      follow: { type: 'boolean', short: 'f', default: false },
      index: { type: 'string' },
      attempt: { type: 'string' },
      previous: { type: 'boolean', short: 'p', default: false },
      tail: { type: 'string' },
      timestamps: { type: 'boolean', default: false },
      stream: { type: 'string' },
      ...extra,
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length !== 1) throw new ConfigError('logs takes one Task name: logs TASK [-n NAMESPACE]');
  const wholeNumber = (flag: string, text: unknown, minimum: number): number | undefined => {
    if (text === undefined) return undefined;
    const value = Number(text);
    if (typeof text !== 'string' || !Number.isSafeInteger(value) || value < minimum) throw new ConfigError(`--${flag} must be a whole number from ${minimum}, got ${JSON.stringify(text)}`);
    return value;
  };
  const stream = values.stream;
  if (stream !== undefined && stream !== 'stdout' && stream !== 'stderr') throw new ConfigError(`--stream must be stdout or stderr, got ${JSON.stringify(stream)}`);
  const index = wholeNumber('index', values.index, 0);
  const attempt = wholeNumber('attempt', values.attempt, 1);
  const tail = wholeNumber('tail', values.tail, 0);
  return {
    name: positionals[0] ?? '',
    values,
    flags: {
      namespace: values.namespace,
      follow: values.follow,
      previous: values.previous,
      timestamps: values.timestamps,
      ...(index !== undefined ? { index } : {}),
      ...(attempt !== undefined ? { attempt } : {}),
      ...(tail !== undefined ? { tail } : {}),
      ...(stream !== undefined ? { stream } : {}),
    },
  };
}

/** The flags as the agent's GET /logs query (src/logs/log-endpoint.ts). */
export function logQuery(flags: LogFlags): Record<string, string> {
  return {
    ...(flags.follow ? { follow: 'true' } : {}),
    ...(flags.index !== undefined ? { index: String(flags.index) } : {}),
    ...(flags.attempt !== undefined ? { attempt: String(flags.attempt) } : {}),
    ...(flags.previous ? { previous: 'true' } : {}),
    ...(flags.tail !== undefined ? { tail: String(flags.tail) } : {}),
    ...(flags.timestamps ? { timestamps: 'true' } : {}),
    ...(flags.stream !== undefined ? { stream: flags.stream } : {}),
  };
}

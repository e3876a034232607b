// Signal names and numbers, from the running platform's own table (os.constants.signals).
import { constants } from 'node:os';

const signalNumbers: Readonly<Record<string, number>> = constants.signals;
const signalNames = new Map<number, NodeJS.Signals>(
  Object.entries(constants.signals).map(([name, number]) => [number, name as NodeJS.Signals]),
);

/** The number of a signal given by name ('SIGTERM') or number; throws a RangeError for an unknown one. */
export function signalNumber(signal: NodeJS.Signals | number): number {
  if (typeof signal === 'number') {
    if (Number.isInteger(signal) && signal >= 0 && signal <= 64) return signal;
    throw new RangeError(`parafork: signal must be a whole number from 0 to 64, got ${signal}`);
  }
  const number = signalNumbers[signal];
  if (number === undefined) throw new RangeError(`parafork: unknown signal ${JSON.stringify(signal)}`);
  return number;
}

/** 'SIGKILL' for 9; real-time signals without a name come back as 'SIG<number>'. */
export function signalName(signal: number): string {
  return signalNames.get(signal) ?? `SIG${signal}`;
}

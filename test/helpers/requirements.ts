// Tests that need root or a writable cgroup hierarchy skip elsewhere, with the reason in their
// name; under CI (CI=true) a missing requirement fails instead, so nothing is skipped silently.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';

export const runningAsRoot = process.getuid?.() === 0;

/** Whether this process holds capability number `bit` (capabilities(7)) in its effective set. */
export function hasCapability(bit: number): boolean {
  const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((entry) => entry.startsWith('CapEff:'));
  return line !== undefined && ((BigInt(`0x${line.slice('CapEff:'.length).trim()}`) >> BigInt(bit)) & 1n) === 1n;
}

/** This machine's cgroup2 mount: /sys/fs/cgroup on a v2 host, /sys/fs/cgroup/unified on a hybrid one. */
export function cgroup2Root(): string | undefined {
  for (const candidate of ['/sys/fs/cgroup/unified', '/sys/fs/cgroup']) {
    // Only a cgroup2 hierarchy has cgroup.controllers at its root.
    if (existsSync(`${candidate}/cgroup.controllers`)) {
      try {
        accessSync(candidate, constants.W_OK);
        return candidate;
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** Why a requirement is missing, or undefined when it is met; throws under CI. */
export function missingRequirement(reason: string, met: boolean): string | undefined {
  if (met) return undefined;
  if (process.env.CI === 'true') throw new Error(`CI must run this test, but: ${reason}`);
  return reason;
}

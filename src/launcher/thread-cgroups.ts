// The cgroup v1 directories a Launcher's sandbox spawn threads run in (an agent-only option,
// InternalLauncherOptions.sandboxThreadCgroupsV1). clone(2) places a child in its cloning thread's
// cgroups, so a sandboxed child is born in these instead of joining them by a `tasks` write before
// its exec; cgroup v1 moves single threads, so the agent's other threads (its JavaScript thread
// above all) stay where they are. Checked here and again in native/src/engine.cc.
import path from 'node:path';

import { InvalidSpawnOptionError } from './spawn-error.js';

/** A cgroup v1 directory the sandbox spawn threads run in, and the one they go back to (`home`) before they end. */
export interface SandboxThreadCgroup {
  readonly directory: string;
  readonly home: string;
}

/** At most one per v1 hierarchy: a thread is in one cgroup of each. */
const maxThreadCgroups = 8;

function checkDirectory(value: unknown, name: string): string {
  if (typeof value !== 'string' || !path.isAbsolute(value) || value.includes('\0')) {
    throw new InvalidSpawnOptionError('ERR_INVALID_ARG_VALUE', `${name} must be an absolute path without NUL bytes`);
  }
  return value;
}

/** The option as given, checked; undefined when not given. */
export function checkThreadCgroups(value: unknown): readonly SandboxThreadCgroup[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length > maxThreadCgroups) {
    throw new InvalidSpawnOptionError('ERR_INVALID_ARG_VALUE', `sandboxThreadCgroupsV1 must be an array of at most ${maxThreadCgroups} { directory, home }`);
  }
  const cgroups: SandboxThreadCgroup[] = [];
  for (const entry of value as unknown[]) {
    if (typeof entry !== 'object' || entry === null) throw new InvalidSpawnOptionError('ERR_INVALID_ARG_VALUE', 'sandboxThreadCgroupsV1[] must be objects { directory, home }');
    const { directory, home } = entry as Record<string, unknown>;
    const cgroup = { directory: checkDirectory(directory, 'sandboxThreadCgroupsV1[].directory'), home: checkDirectory(home, 'sandboxThreadCgroupsV1[].home') };
    if (cgroups.some((other) => other.directory === cgroup.directory)) throw new InvalidSpawnOptionError('ERR_INVALID_ARG_VALUE', `sandboxThreadCgroupsV1 names ${cgroup.directory} twice`);
    cgroups.push(Object.freeze(cgroup));
  }
  return Object.freeze(cgroups);
}

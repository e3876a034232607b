// parafork's public library surface, the package's one entry point ("exports": "."): the Launcher
// and what its calls take and give back. Nothing else is public; docs/library.md is its reference,
// and test/library/public-api.test.ts imports it as a user does, from 'parafork'. What only the
// agent and the benchmarks set (Internal*Options in src/launcher) stays out.

/** Starts processes through the native spawn engine: `spawn`, `stats`, `close`, `Launcher.capabilities`. */
export { Launcher } from './launcher/launcher.js';
export type { ClonePath, LauncherCapabilities, LauncherObserver, LauncherOptions, LauncherStats, LockMode, LogStats } from './launcher/launcher.js';
export type { LogOutput, OutputOption, SpawnOptions } from './launcher/spawn-options.js';
export { defaultLogMaxBytes, minimumLogMaxBytes } from './launcher/spawn-options.js';
export type { NetworkMode, SandboxMountOption, SandboxOptions } from './launcher/sandbox-options.js';
export { defaultMaskedPaths, readOnlyProcPaths } from './launcher/sandbox-options.js';
/** One started child: pid, timings, streams, kill, exited. */
export { SpawnedProcess } from './launcher/spawned-process.js';
export type { ExitResult, LogTotals, ResourceUsage, SpawnTimings } from './launcher/spawned-process.js';
/** What spawn rejects with: a failed step (SpawnError), a bad option, a closed launcher. */
export { InvalidSpawnOptionError, LauncherClosedError, SpawnError } from './launcher/spawn-error.js';
export type { SpawnErrorInit, SpawnStep } from './launcher/spawn-error.js';
/** A custom seccomp filter for `sandbox.seccomp`, compiled once. */
export { SeccompFilter } from './launcher/seccomp-filter.js';
export type { SeccompAction, SeccompActionName, SeccompArgumentCondition, SeccompAttachPoint, SeccompFilterRule, SeccompFilterSpec, SeccompOperator } from './launcher/seccomp-filter.js';

// parafork's public library surface. Nothing else is public.
export { Launcher } from './launcher/launcher.js';
export type { ClonePath, LauncherCapabilities, LauncherObserver, LauncherOptions, LauncherStats, LockMode, LogStats } from './launcher/launcher.js';
export type { LogOutput, OutputOption, SpawnOptions } from './launcher/spawn-options.js';
export { defaultLogMaxBytes, minimumLogMaxBytes } from './launcher/spawn-options.js';
export type { NetworkMode, SandboxMountOption, SandboxOptions } from './launcher/sandbox-options.js';
export { defaultMaskedPaths, readOnlyProcPaths } from './launcher/sandbox-options.js';
export { SpawnedProcess } from './launcher/spawned-process.js';
export type { ExitResult, LogTotals, ResourceUsage, SpawnTimings } from './launcher/spawned-process.js';
export { InvalidSpawnOptionError, LauncherClosedError, SpawnError } from './launcher/spawn-error.js';
export { SeccompFilter } from './launcher/seccomp-filter.js';
export type { SeccompAction, SeccompActionName, SeccompArgumentCondition, SeccompFilterRule, SeccompFilterSpec, SeccompOperator } from './launcher/seccomp-filter.js';

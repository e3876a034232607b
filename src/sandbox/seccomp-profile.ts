// A seccomp profile in Docker's JSON format (also the OCI runtime spec's linux.seccomp, which is
// its subset), read and checked into the rules a SeccompFilter compiles. Every problem is reported
// with the JSON path of the field at fault, e.g. `syscalls[3].args[0].op: ...`.
//
// Decisions, where Docker's format leaves a choice to the runtime (see src/sandbox/README.md):
// - The filter is compiled for this machine's architecture only; `architectures` and `archMap`
//   are checked but add nothing: a call from another ABI (i386 or x32 on x86_64) is killed.
// - `includes`/`excludes` are applied as Docker applies them, for a task that holds no capability
//   (the sandbox drops them all): a rule that includes `caps` is left out, `excludes.caps` never
//   excludes; `arches` are Docker's names (amd64, arm64, ...); `minKernel` is compared with this
//   kernel.
// - Names this architecture does not know are skipped, as Docker does (the compiler reports them).
// - `errnoRet` defaults to EPERM, as in Docker, and is allowed only with SCMP_ACT_ERRNO/TRACE.
// - A rule naming one argument twice becomes one rule per condition (ORed), as runc does.
// - `flags`, `listenerPath` and SCMP_ACT_NOTIFY are refused: the sandbox has no listener.
import os from 'node:os';

import {
  maxSeccompErrno,
  maxSeccompTraceData,
  seccompActions,
  seccompOperators,
  type SeccompActionName,
  type SeccompArgumentCondition,
  type SeccompFilterRule,
  type SeccompFilterSpec,
  type SeccompOperator,
} from '../launcher/seccomp-filter.js';

export class SeccompProfileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SeccompProfileError';
  }
}

/** What includes/excludes are matched against. */
export interface SeccompHost {
  /** Docker's (Go's) name for this architecture: amd64, arm64, ... */
  readonly architecture: string;
  /** uname -r */
  readonly kernelRelease: string;
}

const goArchitectures: Readonly<Record<string, string>> = { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };

export function thisHost(): SeccompHost {
  return { architecture: goArchitectures[process.arch] ?? process.arch, kernelRelease: os.release() };
}

/** libseccomp's architecture names, as `architectures` and `archMap` use them. */
const seccompArchitectures = new Set([
  'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_LOONGARCH64',
  'SCMP_ARCH_M68K', 'SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64',
  'SCMP_ARCH_MIPSEL64N32', 'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64', 'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_S390', 'SCMP_ARCH_S390X',
  'SCMP_ARCH_PARISC', 'SCMP_ARCH_PARISC64', 'SCMP_ARCH_RISCV64', 'SCMP_ARCH_SH', 'SCMP_ARCH_SHEB',
]);

const ePerm = 1;
const maxUint64 = (1n << 64n) - 1n;
/** A system call name as libseccomp spells them; anything else is a typo, not an unknown call. */
const syscallNamePattern = /^[a-z_][a-z0-9_]*$/;

type Json = null | boolean | number | bigint | string | Json[] | { [key: string]: Json };

function fail(where: string, problem: string): never {
  throw new SeccompProfileError(where === '' ? problem : `${where}: ${problem}`);
}

function describe(value: Json | undefined): string {
  if (typeof value === 'bigint') return value.toString();
  return value === undefined ? 'undefined' : JSON.stringify(value);
}

function isObject(value: Json | undefined): value is { [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function object(value: Json | undefined, where: string): { [key: string]: Json } {
  if (!isObject(value)) fail(where, `must be an object, got ${describe(value)}`);
  return value;
}

/** An optional array: absent and null read as empty, as Go's encoding/json reads them. */
function list(value: Json | undefined, where: string): Json[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) fail(where, `must be an array, got ${describe(value)}`);
  return value;
}

function text(value: Json | undefined, where: string): string {
  if (typeof value !== 'string') fail(where, `must be a string, got ${describe(value)}`);
  return value;
}

function strings(value: Json | undefined, where: string): string[] {
  return list(value, where).map((entry, index) => text(entry, `${where}[${index}]`));
}

/** A JSON integer, exact to 64 bits (parsed from its source text, not through a double). */
function unsigned(value: Json | undefined, where: string, maximum: bigint): bigint {
  if (typeof value !== 'bigint') fail(where, `must be a whole number from 0 to ${maximum}, got ${describe(value)}`);
  if (value < 0n || value > maximum) fail(where, `must be from 0 to ${maximum}, got ${value}`);
  return value;
}

function action(value: Json | undefined, where: string): SeccompActionName {
  const name = text(value, where);
  if (name === 'SCMP_ACT_NOTIFY') fail(where, 'SCMP_ACT_NOTIFY needs a listener (listenerPath), which the parafork sandbox does not provide');
  if (!(seccompActions as readonly string[]).includes(name)) fail(where, `unknown action ${JSON.stringify(name)}; one of ${seccompActions.join(', ')}`);
  return name as SeccompActionName;
}

/** errnoRet (or defaultErrnoRet) for `name`: EPERM when absent, as Docker does. */
function errnoFor(name: SeccompActionName, value: Json | undefined, where: string): number | undefined {
  const takesNumber = name === 'SCMP_ACT_ERRNO' || name === 'SCMP_ACT_TRACE';
  if (value === undefined || value === null) return takesNumber ? ePerm : undefined;
  if (!takesNumber) fail(where, `is only allowed with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not ${name}`);
  return Number(unsigned(value, where, BigInt(name === 'SCMP_ACT_TRACE' ? maxSeccompTraceData : maxSeccompErrno)));
}

function compareKernelReleases(a: string, b: string): number {
  const parts = (release: string): number[] => release.split(/[.-]/).slice(0, 3).map((part) => Number.parseInt(part, 10) || 0);
  const [left, right] = [parts(a), parts(b)];
  for (let index = 0; index < 3; index++) {
    const difference = (left[index] ?? 0) - (right[index] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

/** Docker's includes/excludes for a task with no capabilities: does the rule apply here? */
function applies(entry: { [key: string]: Json }, where: string, host: SeccompHost): boolean {
  const filter = (key: 'includes' | 'excludes'): { arches: string[]; caps: string[]; minKernel: string | undefined } => {
    const value = entry[key];
    if (value === undefined || value === null) return { arches: [], caps: [], minKernel: undefined };
    const fields = object(value, `${where}.${key}`);
    const minKernel = fields.minKernel === undefined || fields.minKernel === null || fields.minKernel === '' ? undefined : text(fields.minKernel, `${where}.${key}.minKernel`);
    if (minKernel !== undefined && !/^\d+\.\d+(\.\d+)?$/.test(minKernel)) fail(`${where}.${key}.minKernel`, `must be a kernel version like "5.8", got ${JSON.stringify(minKernel)}`);
    return { arches: strings(fields.arches, `${where}.${key}.arches`), caps: strings(fields.caps, `${where}.${key}.caps`), minKernel };
  };
  const includes = filter('includes');
  const excludes = filter('excludes');
  if (excludes.arches.includes(host.architecture)) return false;
  if (excludes.minKernel !== undefined && compareKernelReleases(host.kernelRelease, excludes.minKernel) >= 0) return false;
  if (includes.arches.length > 0 && !includes.arches.includes(host.architecture)) return false;
  if (includes.caps.length > 0) return false; // the task holds no capability
  if (includes.minKernel !== undefined && compareKernelReleases(host.kernelRelease, includes.minKernel) < 0) return false;
  return true;
}

function condition(value: Json, where: string): SeccompArgumentCondition {
  const fields = object(value, where);
  const index = Number(unsigned(fields.index, `${where}.index`, 5n));
  const op = text(fields.op, `${where}.op`);
  if (!(seccompOperators as readonly string[]).includes(op)) fail(`${where}.op`, `unknown operator ${JSON.stringify(op)}; one of ${seccompOperators.join(', ')}`);
  const valueTwo = fields.valueTwo === undefined || fields.valueTwo === null ? 0n : unsigned(fields.valueTwo, `${where}.valueTwo`, maxUint64);
  return { index, op: op as SeccompOperator, value: unsigned(fields.value, `${where}.value`, maxUint64), valueTwo };
}

function rulesOf(value: Json, where: string, host: SeccompHost): SeccompFilterRule[] {
  const entry = object(value, where);
  const hasName = entry.name !== undefined && entry.name !== null && entry.name !== '';
  const hasNames = Array.isArray(entry.names) && entry.names.length > 0;
  if (hasName && hasNames) fail(where, "has both 'name' and 'names'; use one");
  if (!hasName && !hasNames) fail(where, "names no system call ('names' is missing or empty)");
  const names = hasName ? [text(entry.name, `${where}.name`)] : strings(entry.names, `${where}.names`);
  names.forEach((name, index) => {
    if (!syscallNamePattern.test(name)) fail(hasName ? `${where}.name` : `${where}.names[${index}]`, `${JSON.stringify(name)} is not a system call name`);
  });
  const name = action(entry.action, `${where}.action`);
  const errno = errnoFor(name, entry.errnoRet, `${where}.errnoRet`);
  const args = list(entry.args, `${where}.args`).map((arg, index) => condition(arg, `${where}.args[${index}]`));
  // Checked in full first, so that a rule left out here is still a valid one.
  if (!applies(entry, where, host)) return [];
  const base = { names, action: name, ...(errno !== undefined ? { errno } : {}) };
  const indexes = new Set(args.map((arg) => arg.index));
  // One argument compared twice: runc adds each comparison as a rule of its own (they are ORed).
  if (indexes.size < args.length) return args.map((arg) => ({ ...base, args: [arg] }));
  return [{ ...base, args }];
}

function checkArchitectures(profile: { [key: string]: Json }): void {
  const architectures = strings(profile.architectures, 'architectures');
  const archMap = list(profile.archMap, 'archMap');
  if (architectures.length > 0 && archMap.length > 0) fail('', "'architectures' and 'archMap' are both given; use one");
  const check = (name: string, where: string): void => {
    if (!seccompArchitectures.has(name)) fail(where, `unknown architecture ${JSON.stringify(name)}`);
  };
  architectures.forEach((name, index) => check(name, `architectures[${index}]`));
  archMap.forEach((entry, index) => {
    const fields = object(entry, `archMap[${index}]`);
    check(text(fields.architecture, `archMap[${index}].architecture`), `archMap[${index}].architecture`);
    strings(fields.subArchitectures, `archMap[${index}].subArchitectures`).forEach((name, subIndex) => check(name, `archMap[${index}].subArchitectures[${subIndex}]`));
  });
}

/** JSON with every integer kept exact as a bigint (a mask may be 2^64-1), other numbers as numbers. */
function parseJson(source: string): Json {
  const reviver = (_key: string, value: Json, context?: { source?: string }): Json =>
    typeof value === 'number' && context?.source !== undefined && /^-?\d+$/.test(context.source) ? BigInt(context.source) : value;
  try {
    return JSON.parse(source, reviver as (key: string, value: unknown) => unknown) as Json;
  } catch (error) {
    throw new SeccompProfileError(`not valid JSON: ${(error as Error).message}`);
  }
}

/** Reads a Docker/OCI seccomp profile; throws SeccompProfileError naming the field at fault. */
export function parseSeccompProfile(source: string, host: SeccompHost = thisHost()): SeccompFilterSpec {
  const profile = object(parseJson(source), '(the profile)');
  const defaultName = action(profile.defaultAction, 'defaultAction');
  const defaultErrno = errnoFor(defaultName, profile.defaultErrnoRet, 'defaultErrnoRet');
  checkArchitectures(profile);
  if (list(profile.flags, 'flags').length > 0) fail('flags', 'seccomp filter flags are not supported by the parafork sandbox; remove them');
  if (profile.listenerPath !== undefined && profile.listenerPath !== null && profile.listenerPath !== '') {
    fail('listenerPath', 'a seccomp notify listener is not supported by the parafork sandbox');
  }
  const rules = list(profile.syscalls, 'syscalls').flatMap((entry, index) => rulesOf(entry, `syscalls[${index}]`, host));
  return { defaultAction: { action: defaultName, ...(defaultErrno !== undefined ? { errno: defaultErrno } : {}) }, rules };
}

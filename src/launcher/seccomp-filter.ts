// A custom system-call filter, compiled once into a classic BPF program (libseccomp, in native
// code) and handed to every spawn that uses it as prepared bytes: the child only attaches it with
// seccomp(2), after no_new_privs, as it does the default policy. The rules arrive already read
// from a profile (src/sandbox/seccomp-profile.ts); they are checked again here and in C++.
// The compile also judges where the child may attach it (attachPoint): while it still holds
// CAP_SYS_ADMIN, so that a node-wide bpf_jit_limit filled by others does not stop the Task, when
// the program allows every call the child makes after that point; else last, as the Task's user.
import { loadNativeBinding, nativeSeccompAttachPoints, type NativeSeccompAttachPoint, type NativeSeccompProfile } from '../native/binding.js';
import { InvalidSpawnOptionError } from './spawn-error.js';

/** The SCMP_ACT_* actions a filter may take (SCMP_ACT_KILL is SCMP_ACT_KILL_THREAD). */
export const seccompActions = [
  'SCMP_ACT_ALLOW',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_LOG',
  'SCMP_ACT_TRACE',
] as const;
/** What a seccomp rule does with a call it matches: SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, ... (seccomp_rule_add(3)). */
export type SeccompActionName = (typeof seccompActions)[number];

/** The SCMP_CMP_* comparisons of an argument (seccomp_rule_add(3)). */
export const seccompOperators = ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'] as const;
/** How a rule compares a call's argument: SCMP_CMP_EQ, SCMP_CMP_MASKED_EQ, ... */
export type SeccompOperator = (typeof seccompOperators)[number];

/** The largest errno the kernel passes on from SECCOMP_RET_ERRNO (MAX_ERRNO). */
export const maxSeccompErrno = 4095;
/** SECCOMP_RET_TRACE carries 16 bits for the tracer. */
export const maxSeccompTraceData = 0xffff;
const maxUint64 = (1n << 64n) - 1n;

/** An action with its errno (or tracer number). */
export interface SeccompAction {
  readonly action: SeccompActionName;
  /** The errno for SCMP_ACT_ERRNO (default EPERM), the tracer's number for SCMP_ACT_TRACE; else unused. */
  readonly errno?: number;
}

/** A condition on one argument of a call. */
export interface SeccompArgumentCondition {
  /** Which argument: 0 to 5. */
  readonly index: number;
  readonly op: SeccompOperator;
  /** For SCMP_CMP_MASKED_EQ the mask, else the compared value. */
  readonly value: bigint;
  /** For SCMP_CMP_MASKED_EQ the compared value, else unused. */
  readonly valueTwo: bigint;
}

/** The action for calls with these names (and arguments). */
export interface SeccompFilterRule extends SeccompAction {
  /** System call names; one this architecture lacks is left out (SeccompFilter.unknownNames). */
  readonly names: readonly string[];
  /** ANDed; each argument index at most once. */
  readonly args: readonly SeccompArgumentCondition[];
}

/** A whole filter: rules, and what happens to every call none of them matches. */
export interface SeccompFilterSpec {
  /** For a call no rule matches. */
  readonly defaultAction: SeccompAction;
  readonly rules: readonly SeccompFilterRule[];
}

const ePerm = 1;

function invalid(message: string): never {
  throw new InvalidSpawnOptionError('ERR_INVALID_ARG_VALUE', `seccomp filter ${message}`);
}

/** Array.isArray without its narrowing, which would turn typed arrays into `any[]`. */
function isList(value: unknown): boolean {
  return Array.isArray(value);
}

function checkAction(given: SeccompAction, where: string): { action: string; errno: number } {
  if (!(seccompActions as readonly string[]).includes(given.action)) invalid(`${where}.action must be one of ${seccompActions.join(', ')}`);
  const errno = given.errno ?? (given.action === 'SCMP_ACT_ERRNO' || given.action === 'SCMP_ACT_TRACE' ? ePerm : 0);
  const maximum = given.action === 'SCMP_ACT_TRACE' ? maxSeccompTraceData : maxSeccompErrno;
  if (!Number.isInteger(errno) || errno < 0 || errno > maximum) invalid(`${where}.errno must be a whole number from 0 to ${maximum}`);
  return { action: given.action, errno };
}

function checkSpec(spec: SeccompFilterSpec): NativeSeccompProfile {
  const defaultAction = checkAction(spec.defaultAction, 'defaultAction');
  if (!isList(spec.rules)) invalid('rules must be an array');
  const rules = spec.rules.map((rule, ruleIndex) => {
    const where = `rules[${ruleIndex}]`;
    if (!isList(rule.names) || rule.names.length === 0) invalid(`${where}.names must be a non-empty array`);
    for (const name of rule.names) {
      if (typeof name !== 'string' || name.length === 0 || name.includes('\0')) invalid(`${where}.names must hold non-empty strings`);
    }
    if (!isList(rule.args)) invalid(`${where}.args must be an array`);
    const seen = new Set<number>();
    const ruleArgs: readonly SeccompArgumentCondition[] = rule.args;
    const args = ruleArgs.map((arg, argIndex) => {
      const argWhere = `${where}.args[${argIndex}]`;
      if (!Number.isInteger(arg.index) || arg.index < 0 || arg.index > 5) invalid(`${argWhere}.index must be 0 to 5`);
      if (seen.has(arg.index)) invalid(`${argWhere}.index repeats an argument of its rule`);
      seen.add(arg.index);
      if (!(seccompOperators as readonly string[]).includes(arg.op)) invalid(`${argWhere}.op must be one of ${seccompOperators.join(', ')}`);
      for (const key of ['value', 'valueTwo'] as const) {
        const value = arg[key];
        if (typeof value !== 'bigint' || value < 0n || value > maxUint64) invalid(`${argWhere}.${key} must be a bigint from 0 to 2^64-1`);
      }
      return { index: arg.index, op: arg.op, value: arg.value, valueTwo: arg.valueTwo };
    });
    return { names: [...rule.names], ...checkAction(rule, where), args };
  });
  return { defaultAction: defaultAction.action, defaultErrno: defaultAction.errno, rules };
}

/**
 * Where the sandbox's child attaches a filter. 'privileged': before it takes the Task's ids, while
 * it still holds CAP_SYS_ADMIN, which the node's net.core.bpf_jit_limit lets through however full
 * (the filter allows, SCMP_ACT_ALLOW, every call the child makes after that point: setresuid,
 * capset, chdir, execveat...). 'privilegedUnlessEmptyingUserKeyrings': there too, except for a
 * spawn that empties a leased uid's keyrings with keyctl, which the filter does not allow. 'last':
 * as the Task's user, just before the exec, where a full JIT budget fails the spawn (any other
 * answer to one of those calls: an errno, SCMP_ACT_LOG, _TRACE, _KILL, or one that depends on an
 * argument that varies from spawn to spawn). A Task in a user namespace always attaches last.
 */
export type SeccompAttachPoint = NativeSeccompAttachPoint;

/**
 * A custom seccomp filter for SandboxOptions.seccomp, compiled once (SeccompFilter.compile) into
 * a BPF program that every spawn using it attaches as prepared bytes.
 */
export class SeccompFilter {
  /** Names the filter left out because this architecture has no such system call (as Docker does). */
  readonly unknownNames: readonly string[];
  /** Where the child attaches it, judged once at compile time (SeccompAttachPoint). */
  readonly attachPoint: SeccompAttachPoint;
  readonly #program: Uint8Array;

  private constructor(program: Uint8Array, unknownNames: readonly string[], attachPoint: SeccompAttachPoint) {
    if (!(nativeSeccompAttachPoints as readonly string[]).includes(attachPoint)) {
      throw new TypeError(`parafork: the native compile answered an unknown seccomp attach point ${JSON.stringify(attachPoint)}`);
    }
    this.#program = program;
    this.unknownNames = Object.freeze([...unknownNames]);
    this.attachPoint = attachPoint;
  }

  /**
   * Compiles `spec` (synchronously: ~0.2 ms for a few rules, a few ms for a Docker-sized
   * allow-list). Throws InvalidSpawnOptionError for a malformed spec, and an Error with
   * `code`/`errno`/`syscall` ('seccomp') when libseccomp refuses a rule.
   */
  static compile(spec: SeccompFilterSpec): SeccompFilter {
    const compiled = loadNativeBinding().compileSeccompProfile(checkSpec(spec));
    return new SeccompFilter(compiled.program, compiled.unknownNames, compiled.attachPoint);
  }

  /** The program's length; the kernel compiles a filter at every attach, at a cost per instruction. */
  get instructionCount(): number {
    return this.#program.byteLength / 8;
  }

  /** For the launcher: the program as the native spawn request carries it (never changed once compiled). */
  static programOf(filter: SeccompFilter): Uint8Array {
    return filter.#program;
  }
}

// Runs hostile payloads in the default sandbox and reports what happened. Payloads are harmless by
// construction: marker files, a canary process the test started, a listener the test owns, and
// system calls with arguments that could do nothing even if they were allowed.
import { Launcher, type SandboxOptions } from '../../src/index.js';

export interface SandboxedRun {
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Debian's python3 (not a user's pyenv shim, which lives under /root). */
export const python = '/usr/bin/python3';

export async function runSandboxed(launcher: Launcher, file: string, args: readonly string[], sandbox: SandboxOptions = {}): Promise<SandboxedRun> {
  const child = await launcher.spawn({ file, args, stdout: 'pipe', stderr: 'pipe', sandbox, env: { PATH: '/usr/bin:/bin' } });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const ended = Promise.all([
    new Promise((resolve) => child.stdout?.on('close', resolve)),
    new Promise((resolve) => child.stderr?.on('close', resolve)),
  ]);
  const exit = await child.exited;
  await ended;
  return { code: exit.code, signal: exit.signal, stdout, stderr };
}

/** Python that makes one raw system call and prints "errno=<name>" (or "ok" if it succeeded). */
export function syscallProbe(callExpression: string): string {
  return [
    'import ctypes, errno, os',
    'libc = ctypes.CDLL(None, use_errno=True)',
    `result = ${callExpression}`,
    'print("ok" if result >= 0 else "errno=" + errno.errorcode[ctypes.get_errno()])',
  ].join('\n');
}

/**
 * Python lines that define `libc`, `Limit` (a struct rlimit), `limits()` (RLIMIT_CORE as "soft
 * hard", from /proc/self/limits) and `attempt(name, call)`, which prints the call's outcome and the
 * limit after it: what the RLIMIT_CORE tests (sandbox-core-limit, sandbox-crash-handler) build on.
 */
export const coreLimitProbe: readonly string[] = [
  'import ctypes',
  'libc = ctypes.CDLL(None, use_errno=True)',
  'class Limit(ctypes.Structure):',
  '    _fields_ = [("soft", ctypes.c_uint64), ("hard", ctypes.c_uint64)]',
  'def limits():',
  '    line = next(line for line in open("/proc/self/limits") if line.startswith("Max core file size"))',
  '    return " ".join(line.split()[4:6])',
  'def attempt(name, call):',
  '    result = call()',
  '    print(name, "ok" if result == 0 else "errno=" + str(ctypes.get_errno()), limits())',
];

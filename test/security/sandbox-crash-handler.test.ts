// Red team: a crashing Task and the node's crash handler. When `kernel.core_pattern` is a pipe
// (`|/usr/share/apport/apport`, `|systemd-coredump`), the kernel starts that program as root, in the
// node's namespaces and outside the Task's cgroups, for every process that dumps core, and feeds it
// the process's memory. RLIMIT_CORE 0 does not stop it: the kernel ignores the limit for pipes, except
// the value 1, which it keeps for its guard against a crashing handler ("RLIMIT_CORE is set to 1,
// aborting core", fs/coredump.c: coredump_pipe()). For a file pattern, a limit below a page
// (binfmt->min_coredump) writes nothing, so 1 stops both. A Task's limit is now 1 soft and hard; it
// cannot raise the hard limit (no CAP_SYS_RESOURCE), and the default seccomp filter keeps it from
// lowering the soft one to 0 (setrlimit(2) and prlimit64(2) of RLIMIT_CORE change nothing), and so
// does a guard stacked under a Localhost profile or Unconfined (red team, session 11).
//
// Each case points core_pattern at a handler script in a temp dir, which only appends its
// arguments (the crashing process's name and limit) to a marker file there, crashes the Task with
// SIGSEGV, and puts the old pattern back in a finally as soon as the Task has exited (the kernel
// has started the handler by then, if it starts it at all: it waits for the exec). The window is
// the kill and the exit, well under a second. Another process of the machine that crashes in that
// window only adds a line to the marker; the Task sets a name of its own (PR_SET_NAME) and only
// lines with that name count. Needs root and a writable /proc/sys/kernel/core_pattern.
import { accessSync, closeSync, constants, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher, SeccompFilter, type SandboxOptions } from '../../src/index.js';
import { FileLock } from '../../src/launcher/file-lock.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { coreLimitProbe, python } from './sandbox-helpers.js';

const corePatternPath = '/proc/sys/kernel/core_pattern';

function corePatternWritable(): boolean {
  try {
    accessSync(corePatternPath, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

const skip = missingRequirement('the sandbox needs root, and the test writes kernel.core_pattern', runningAsRoot && corePatternWritable());

// The Task names itself, says what its limit is, does what `mode` asks to get its dump back, and
// waits for the test's SIGSEGV (forwarded by parafork-init to its process group).
const payload = [
  ...coreLimitProbe,
  'import os, resource, signal, sys',
  'libc.prctl(15, sys.argv[2].encode(), 0, 0, 0)  # PR_SET_NAME: the comm the handler sees as %e',
  'print("limits", limits())',
  'if sys.argv[1] == "lower":',
  '    attempt("dumpable", lambda: libc.prctl(4, 1, 0, 0, 0))  # PR_SET_DUMPABLE',
  '    attempt("prlimit64 soft 0", lambda: libc.syscall(302, 0, 4, ctypes.byref(Limit(0, 1)), None))',
  '    attempt("setrlimit 0 0", lambda: libc.syscall(160, 4, ctypes.byref(Limit(0, 0))))',
  '    attempt("prlimit64 0 0 with old", lambda: libc.syscall(302, 0, 4, ctypes.byref(Limit(0, 0)), ctypes.byref(Limit())))',
  '    try:',
  '        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))',
  '        print("resource.setrlimit ok", limits())',
  '    except OSError as error:',
  '        print("resource.setrlimit errno=" + str(error.errno), limits())',
  'if sys.argv[1] == "raise":',
  '    attempt("prlimit64 unlimited", lambda: libc.syscall(302, 0, 4, ctypes.byref(Limit(2**64 - 1, 2**64 - 1)), None))',
  'print("ready", flush=True)',
  'signal.pause()',
].join('\n');

interface Crash {
  readonly lines: readonly string[];
  readonly signal: string | null;
  readonly code: number | null;
  readonly handlerRuns: readonly string[];
}

/** Held while this machine's core_pattern is changed, by whichever test run changes it (flock). */
async function corePatternLock(): Promise<FileLock> {
  const lockFile = '/run/parafork/core-pattern-test.lock';
  mkdirSync(dirname(lockFile), { recursive: true, mode: 0o700 });
  closeSync(openSync(lockFile, 'a', 0o600));
  for (let waited = 0; ; waited += 50) {
    const lock = FileLock.tryAcquire(lockFile);
    if (lock !== undefined) return lock;
    if (waited > 60_000) throw new Error(`${lockFile} held for a minute by another test run`);
    await sleep(50);
  }
}

describe.skipIf(skip !== undefined)(`a crashing Task and a pipe in kernel.core_pattern${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;
  let directory: string;
  let marker: string;
  let handler: string;

  beforeAll(() => {
    launcher = new Launcher();
    directory = mkdtempSync(join(tmpdir(), 'parafork-crash-handler-'));
    marker = join(directory, 'marker');
    handler = join(directory, 'handler.sh');
    // Only a marker line: it leaves the dump unread, so the dumping process is done at once.
    writeFileSync(handler, `#!/bin/sh\necho "$1 $2" >> ${marker}\n`, { mode: 0o755 });
  });

  afterAll(async () => {
    await launcher.close();
    rmSync(directory, { recursive: true, force: true });
  });

  async function crash(mode: 'plain' | 'lower' | 'raise', sandbox: SandboxOptions = {}): Promise<Crash> {
    const name = `pf-crash-${Math.random().toString(16).slice(2, 8)}`;
    const child = await launcher.spawn({ file: python, args: ['-c', payload, mode, name], stdout: 'pipe', stderr: 'pipe', sandbox, env: { PATH: '/usr/bin:/bin' } });
    let stdout = '';
    const ready = new Promise<void>((resolve) => {
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
        if (stdout.includes('ready\n')) resolve();
      });
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    await Promise.race([ready, child.exited]);
    expect(stderr).toBe('');
    expect(stdout).toContain('ready\n');

    // Two test runs on one machine would otherwise each put back what the other set.
    const lock = await corePatternLock();
    let previous;
    let exit;
    try {
      previous = readFileSync(corePatternPath, 'utf8').replace(/\n$/, '');
      writeFileSync(corePatternPath, `|${handler} %e %c`);
      try {
        child.kill('SIGSEGV');
        exit = await child.exited;
      } finally {
        writeFileSync(corePatternPath, previous);
      }
      expect(readFileSync(corePatternPath, 'utf8').replace(/\n$/, '')).toBe(previous);
    } finally {
      lock.release();
    }
    // The kernel has exec'd the handler before the Task's exit if it runs it; its line may follow.
    await sleep(1000);
    let markerLines: string[] = [];
    try {
      markerLines = readFileSync(marker, 'utf8').split('\n');
    } catch {
      // no handler ran at all
    }
    return {
      lines: stdout.trim().split('\n'),
      signal: exit.signal,
      code: exit.code,
      handlerRuns: markerLines.filter((line) => line.startsWith(`${name} `)),
    };
  }

  it('does not start the handler when it crashes', async () => {
    const result = await crash('plain');
    expect(result.handlerRuns).toEqual([]);
    expect(result.lines[0]).toBe('limits 1 1');
    // parafork-init reports the Task's death by SIGSEGV as shells do: 128 + 11.
    expect(result.code).toBe(139);
  });

  // Red team, session 11: a Localhost profile that allows setrlimit and prlimit64 (Kubernetes' audit
  // example logs every call and allows it; Docker's default.json allows both), which a `restricted`
  // Task may name, and Unconfined: the Task lowered its limit to 0 and the handler ran as root.
  const filters: ReadonlyArray<readonly [string, () => SandboxOptions]> = [
    ['the default filter', () => ({})],
    ['a profile that allows setrlimit and prlimit64', () => ({ seccomp: SeccompFilter.compile({ defaultAction: { action: 'SCMP_ACT_LOG' }, rules: [] }) })],
    ['no filter (Unconfined)', () => ({ seccomp: 'unconfined' })],
  ];

  it.each(filters)('cannot lower its RLIMIT_CORE to 0 or make itself dumpable to get the handler started, under %s', async (_name, sandbox) => {
    const result = await crash('lower', sandbox());
    expect(result.handlerRuns).toEqual([]);
    expect(result.lines).toEqual([
      'limits 1 1',
      'dumpable ok 1 1',
      // Setting RLIMIT_CORE answers success and changes nothing (ssh-agent and gpg-agent stop when
      // they cannot turn core dumps off); a call that also asks for the old value is refused.
      'prlimit64 soft 0 ok 1 1',
      'setrlimit 0 0 ok 1 1',
      'prlimit64 0 0 with old errno=1 1 1',
      'resource.setrlimit ok 1 1',
      'ready',
    ]);
    expect(result.code).toBe(139);
  });

  it('cannot raise its RLIMIT_CORE', async () => {
    const result = await crash('raise');
    expect(result.lines).toEqual(['limits 1 1', 'prlimit64 unlimited ok 1 1', 'ready']);
    expect(result.handlerRuns).toEqual([]);
  });
});

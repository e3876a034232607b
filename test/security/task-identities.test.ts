// Issue 12, finding 3: shared identity. Every default Task ran as uid 65534, the host's `nobody`,
// so the kernel's per-user limits were shared: one Task held all of its uid's inotify instances
// (fs.inotify.max_user_instances) and the next Task's inotify_init failed with EMFILE. Tasks get
// ids of their own now, from a range the agent owns (as systemd's DynamicUser does); a
// userNamespace Task gets a host range of its own, and its namespace is owned by that range, since
// the kernel charges what a user namespace's processes hold to the namespace's owner too. The
// default filter refuses inotify since session 16 (sandbox-file-watches.test.ts), so the per-user
// count held here is another: queued signals, counted per uid against RLIMIT_SIGPENDING.
//
// Runs the built CLI (`parafork run`) as a user would. Needs root (the sandbox). The Tasks meet
// through a temp folder the test owns, mounted writable at /mnt; the signals they queue (to
// themselves, blocked) go as soon as the other Task has looked (a few milliseconds, 5 s at most).
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';

const cli = path.resolve('dist/cli/main.js');
const skip = missingRequirement('parafork run sandboxes its Tasks, which needs root', runningAsRoot);

interface TaskManifest {
  readonly name: string;
  readonly command: readonly string[];
  readonly sandbox?: Record<string, unknown>;
}

interface ReportedTask {
  metadata: { name: string };
  status: { phase: string; exitCode?: number; stderrTail?: string; hostIdentity?: { uid: number; gid: number } };
}

/** The ids of the host's accounts and groups, as /etc/passwd and /etc/group list them. */
function hostIds(file: string): Set<number> {
  return new Set(readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => Number(line.split(':')[2])));
}

describe.skipIf(skip !== undefined)(`Task identities${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let meeting: string;

  beforeEach(() => {
    meeting = mkdtempSync(path.join(tmpdir(), 'parafork-identities-'));
    chmodSync(meeting, 0o1777); // every Task's uid may write here, none may remove another's files
  });
  afterEach(() => rmSync(meeting, { recursive: true, force: true }));

  /** Runs the Tasks together through `parafork run -o json`, the meeting folder at /mnt in each. */
  function runTogether(tasks: readonly TaskManifest[]): Map<string, ReportedTask['status']> {
    const manifest = path.join(meeting, 'tasks.yaml');
    writeFileSync(manifest, tasks.map((task) => JSON.stringify({
      apiVersion: 'parafork.dev/v1alpha1',
      kind: 'Task',
      metadata: { name: task.name },
      spec: { command: task.command, sandbox: { ...task.sandbox, mounts: [{ hostPath: meeting, mountPath: '/mnt', readOnly: false }] } },
    })).join('\n---\n'));
    // A writable host path and host uids the spec names need the baseline sandbox policy level (issue 14).
    const result = spawnSync(process.execPath, [cli, 'run', '-f', manifest, '-o', 'json', '--sandbox-policy', 'baseline', '--allowed-host-paths', meeting], { encoding: 'utf8', timeout: 60_000 });
    expect(result.stdout, result.stderr).not.toBe('');
    const list = JSON.parse(result.stdout) as { items: ReportedTask[] };
    return new Map(list.items.map((task) => [task.metadata.name, task.status]));
  }

  /** A shell script: write this Task's `id -u` and `id -g` to /mnt/NAME, then wait (5 s at most) for /mnt/OTHER. */
  function meet(name: string, other: string): string[] {
    return ['sh', '-c', `{ id -u; id -g; } >/mnt/${name}.tmp && mv /mnt/${name}.tmp /mnt/${name}; i=0; while [ ! -e /mnt/${other} ] && [ $i -lt 250 ]; do sleep 0.02; i=$((i+1)); done; [ -e /mnt/${other} ]`];
  }

  function idsWritten(name: string): { uid: number; gid: number } {
    const [uid, gid] = readFileSync(path.join(meeting, name), 'utf8').trim().split('\n').map(Number);
    return { uid: uid ?? -1, gid: gid ?? -1 };
  }

  it('gives two default Tasks running at once different uids and gids, none of them 65534 or a host account\'s', () => {
    const statuses = runTogether([{ name: 'left', command: meet('left', 'right') }, { name: 'right', command: meet('right', 'left') }]);
    // Both waited for the other: they ran at the same time.
    expect(statuses.get('left')?.phase, statuses.get('left')?.stderrTail).toBe('Succeeded');
    expect(statuses.get('right')?.phase, statuses.get('right')?.stderrTail).toBe('Succeeded');
    const left = idsWritten('left');
    const right = idsWritten('right');
    expect(new Set([left.uid, right.uid]).size).toBe(2);
    expect(new Set([left.gid, right.gid]).size).toBe(2);
    const accounts = hostIds('/etc/passwd');
    const groups = hostIds('/etc/group');
    for (const ids of [left, right]) {
      expect(ids.uid).not.toBe(65534);
      expect(ids.gid).not.toBe(65534);
      expect(accounts.has(ids.uid)).toBe(false);
      expect(groups.has(ids.gid)).toBe(false);
    }
    // The status says which host ids the attempt ran as.
    expect(statuses.get('left')?.hostIdentity).toEqual(left);
    expect(statuses.get('right')?.hostIdentity).toEqual(right);
  });

  /**
   * Python for two Tasks: "hog" queues real-time signals to itself (blocked) until the kernel
   * refuses one and holds them; "next" then queues one. Each writes what happened to /mnt; hog
   * lets go once next is done.
   */
  const hog = [
    'import ctypes, os, signal, time',
    'libc = ctypes.CDLL(None, use_errno=True)',
    'signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGRTMIN])',
    'held = 0',
    'refusal = "none"',
    '# sigqueue(3), not kill(2): the kernel holds only queued signals (si_code SI_QUEUE) to RLIMIT_SIGPENDING.',
    'while held < 10000000:',
    '    if libc.sigqueue(os.getpid(), signal.SIGRTMIN, ctypes.c_long(0)) < 0: refusal = os.strerror(ctypes.get_errno()); break',
    '    held += 1',
    'open("/mnt/hog.tmp", "w").write(f"{held} {refusal}")',
    'os.rename("/mnt/hog.tmp", "/mnt/hog")',
    'deadline = time.monotonic() + 5',
    'while not os.path.exists("/mnt/next") and time.monotonic() < deadline: time.sleep(0.005)',
  ].join('\n');
  const next = [
    'import ctypes, os, signal, time',
    'libc = ctypes.CDLL(None, use_errno=True)',
    'signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGRTMIN])',
    'deadline = time.monotonic() + 5',
    'while not os.path.exists("/mnt/hog") and time.monotonic() < deadline: time.sleep(0.005)',
    'answer = "ok" if libc.sigqueue(os.getpid(), signal.SIGRTMIN, ctypes.c_long(0)) == 0 else os.strerror(ctypes.get_errno())',
    'open("/mnt/next.tmp", "w").write(answer)',
    'os.rename("/mnt/next.tmp", "/mnt/next")',
  ].join('\n');

  it.each([
    ['a default Task', {}],
    ['a userNamespace Task', { userNamespace: true }],
  ])('lets %s that holds every signal its uid may have queued leave the next Task its own', (_, sandbox) => {
    const statuses = runTogether([
      { name: 'hog', command: ['/usr/bin/python3', '-c', hog], sandbox },
      { name: 'next', command: ['/usr/bin/python3', '-c', next], sandbox },
    ]);
    expect(statuses.get('hog')?.phase, statuses.get('hog')?.stderrTail).toBe('Succeeded');
    expect(statuses.get('next')?.phase, statuses.get('next')?.stderrTail).toBe('Succeeded');
    const [held, ...refusal] = readFileSync(path.join(meeting, 'hog'), 'utf8').split(' ');
    // The hog reached its uid's limit (EAGAIN from sigqueue(3)), not the end of the loop.
    expect(refusal.join(' ')).toBe('Resource temporarily unavailable');
    expect(Number(held)).toBeGreaterThan(0);
    expect(readFileSync(path.join(meeting, 'next'), 'utf8')).toBe('ok');
  });

  it('gives two userNamespace Tasks running at once different host ids', () => {
    const statuses = runTogether([
      { name: 'left', command: meet('left', 'right'), sandbox: { userNamespace: true } },
      { name: 'right', command: meet('right', 'left'), sandbox: { userNamespace: true } },
    ]);
    expect(statuses.get('left')?.phase, statuses.get('left')?.stderrTail).toBe('Succeeded');
    expect(statuses.get('right')?.phase, statuses.get('right')?.stderrTail).toBe('Succeeded');
    // Inside, both are nobody (65534) as before; outside, the files they wrote have different owners.
    expect(idsWritten('left')).toEqual({ uid: 65534, gid: 65534 });
    const left = statuses.get('left')?.hostIdentity;
    const right = statuses.get('right')?.hostIdentity;
    expect(left?.uid).toBeGreaterThan(65535);
    expect(right?.uid).toBeGreaterThan(65535);
    expect(left?.uid).not.toBe(right?.uid);
    expect(Math.abs((left?.uid ?? 0) - (right?.uid ?? 0))).toBeGreaterThanOrEqual(65536); // whole ranges apart
  });

  it('honours an explicit runAsUser and runAsGroup as given', () => {
    const statuses = runTogether([
      { name: 'left', command: meet('left', 'left'), sandbox: { runAsUser: 1000, runAsGroup: 1001 } },
      { name: 'right', command: meet('right', 'right'), sandbox: { runAsUser: 1000 } },
    ]);
    expect(statuses.get('left')?.phase, statuses.get('left')?.stderrTail).toBe('Succeeded');
    expect(idsWritten('left')).toEqual({ uid: 1000, gid: 1001 });
    expect(statuses.get('left')?.hostIdentity).toEqual({ uid: 1000, gid: 1001 });
    // Only the user given: the group is one of the agent's own.
    const right = idsWritten('right');
    expect(right.uid).toBe(1000);
    expect(right.gid).not.toBe(65534);
    expect(hostIds('/etc/group').has(right.gid)).toBe(false);
  });
});

// Red team: the keyrings the kernel keeps per host uid. Besides a process's session keyring (given
// each such Task empty: sandbox-keyring.test.ts) every uid has a user keyring (@u), a user session
// keyring (@us) and a persistent keyring (KEYCTL_GET_PERSISTENT; Kerberos' KEYRING:persistent
// credential cache, the default of Fedora's and RHEL's krb5.conf, lives there). None is namespaced
// per process: they belong to the uid in the node's user namespace and outlive every process of it
// (@u and @us for as long as the machine runs, the persistent one three days past its last use).
// Host ids are leased to Tasks and reused, least recently used first, so a Task whose filter lets
// keyctl(2) through (a Localhost profile that allows it, or Unconfined) found the keys an earlier
// Task of another author had left there under the same uid, and read them. A Task with a uid of
// its own now starts with those keyrings emptied.
//
// Two `agent --manifests` one after the other, as two users of the node would, each with the same
// --task-ids range of the test's own (so both lease its first id, as a busy node's LRU eventually
// does): the first one's Task adds marker keys, the second one's looks for them. The second clears what it
// found, and the test gives back what a Task took away: the kernel keeps the (empty) keyrings of the
// first two ids of its range for as long as it runs, as it does for any uid that ever used them. Needs root (the sandbox) and a build (dist/).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python } from './sandbox-helpers.js';
import { waitFor } from '../helpers/wait-for.js';
import { startManifestAgent, writeTask } from './standalone-cli.js';

// keyctl(2) and add_key(2), by architecture.
const keyctlNumber = arch() === 'arm64' ? 219 : 250;
const addKeyNumber = arch() === 'arm64' ? 217 : 248;

/** Whether this process may call keyctl(2): a container's seccomp profile refuses it to everything in it, Tasks included. */
function keyctlAllowed(): boolean {
  const probe = spawnSync(python, ['-c', `import ctypes, sys; sys.exit(0 if ctypes.CDLL(None).syscall(${keyctlNumber}, 0, ctypes.c_long(-3), 0) >= 0 else 1)`], { timeout: 10_000 });
  return probe.status === 0;
}

const skip =
  missingRequirement('the sandbox needs root', runningAsRoot) ??
  (arch() === 'x64' || arch() === 'arm64' ? undefined : 'the system call numbers are written for x86_64 and arm64') ??
  missingRequirement("keyctl is refused to this process (a container's seccomp profile), and so to every Task it starts: none reaches a keyring", keyctlAllowed());
// A range no default (0x70000000-) instance hands out, one block: both runs lease its first id.
const taskIds = `${0x6ab0_0000.toString()}-${0x6ab0_ffff.toString()}`;
const marker = `parafork-user-keyring-marker-${process.pid}`;

/** Python: the key calls the scripts share. -4 is KEY_SPEC_USER_KEYRING, -5 the user session keyring, -3 the session keyring. */
const keyCalls = [
  'import ctypes, errno, os',
  'libc = ctypes.CDLL(None, use_errno=True)',
  `def keyctl(*args): return libc.syscall(${keyctlNumber}, *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])`,
  // KEYCTL_GET_PERSISTENT of our own uid, linked into our session keyring (so we possess it).
  'def persistent(): return keyctl(22, -1, -3)',
  'rings = {"user": -4, "user-session": -5}',
];

/** Adds a marker key to each of the uid's keyrings; the result lists what it could add. */
const planter = [
  ...keyCalls,
  'rings["persistent"] = persistent()',
  'added = []',
  'for name, ring in rings.items():',
  '    payload = b"secret-of-the-first-task"',
  `    if libc.syscall(${addKeyNumber}, b"user", ("${marker}-" + name).encode(), payload, len(payload), ctypes.c_long(ring)) >= 0: added.append(name)`,
  'open(os.environ["PARAFORK_RESULT"], "w").write("added " + ",".join(added))',
].join('\n');

/**
 * Adds a marker to the user keyring, then takes write permission on it away from everyone, the
 * uid included (it keeps view, read, search and setattr): no later holder of the uid can empty it.
 */
const locker = [
  ...keyCalls,
  'payload = b"secret-of-the-first-task"',
  `added = libc.syscall(${addKeyNumber}, b"user", b"${marker}-locked", payload, len(payload), ctypes.c_long(-4)) >= 0`,
  // KEYCTL_SETPERM: possessor and user may view (0x01), read (0x02), search (0x08) and setattr (0x20), not write (0x04).
  'locked = keyctl(5, -4, 0x2b2b0000) >= 0',
  'open(os.environ["PARAFORK_RESULT"], "w").write(f"added {added} locked {locked}")',
].join('\n');

/** Looks for the markers; the result lists what it found. Then empties the keyrings (the test's clean-up). */
const finder = [
  ...keyCalls,
  'rings["persistent"] = persistent()',
  'found = [name for name, ring in rings.items() if ring >= -5 and keyctl(10, ring, b"user", ("' + marker + '-" + name).encode(), 0) >= 0]',
  'for ring in rings.values(): keyctl(7, ring)', // KEYCTL_CLEAR
  'open(os.environ["PARAFORK_RESULT"], "w").write("found " + ",".join(found))',
].join('\n');

describe.skipIf(skip !== undefined)(`a Task and the keyrings of the host uid it is leased${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-user-keyrings-'));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  async function runAlone(name: string, script: string, phase: 'Succeeded' | 'Failed' = 'Succeeded', backoffLimit = 0): Promise<{ uid: number | undefined; result: string | undefined; message: string | undefined; attempts: number | undefined }> {
    const folder = mkdtempSync(path.join(scratch, `${name}-`));
    writeTask(folder, name, { command: [python, '-c', script], backoffLimit, sandbox: { seccomp: { type: 'Unconfined' } } });
    const agent = await startManifestAgent(folder, ['--sandbox-policy', 'privileged', '--task-ids', taskIds]);
    try {
      const status = await waitFor(async () => {
        const task = (await agent.tasks()).get(name);
        return task?.status?.phase === 'Succeeded' || task?.status?.phase === 'Failed' ? task.status : undefined;
      }, { timeoutMs: 30_000, description: `Task ${name} to end` });
      expect(status.phase, JSON.stringify(status)).toBe(phase);
      return { uid: status.hostIdentity?.uid, result: status.result, message: status.message, attempts: status.attempts };
    } finally {
      await agent.stop();
    }
  }

  /** The test's own clean-up of a uid's user keyring: as that uid (the key's owner), write permission back, then emptied. */
  function unlockUserKeyring(uid: number): void {
    const script = [...keyCalls, `os.setresgid(${uid}, ${uid}, ${uid}); os.setresuid(${uid}, ${uid}, ${uid})`, 'keyctl(5, -4, 0x3f3f0000)', 'keyctl(7, -4)'].join('\n');
    const run = spawnSync(python, ['-c', script], { encoding: 'utf8', timeout: 10_000 });
    expect(run.status, run.stderr).toBe(0);
  }

  it('finds none of the keys an earlier Task left under the same host uid', async () => {
    const first = await runAlone('plants-keys', planter);
    // The setup works: the first Task could add a key to each of its uid's keyrings.
    expect(first.result).toBe('added user,user-session,persistent');
    const second = await runAlone('looks-for-keys', finder);
    // The case this is about: the second Task was leased the same host uid.
    expect(second.uid).toBe(first.uid);
    expect(second.result).toBe('found ');
  });

  // A Task that cannot empty the keyrings it would read (the earlier holder took write permission
  // away, which the uid, owning them, may do and no one can undo but that uid) is not started: it
  // would read what was left, or use a credential planted there.
  it('does not start when an earlier Task left the uid s keyrings so that they cannot be emptied', async () => {
    const first = await runAlone('locks-keys', locker);
    expect(first.result).toBe('added True locked True');
    try {
      const second = await runAlone('looks-in-locked-keys', finder, 'Failed');
      expect(second.uid).toBe(first.uid);
      expect(second.result).toBeUndefined();
      expect(second.message, second.message).toMatch(/keyrings of the host uid .* could not be emptied/);
      // Its uid is never leased again: a Task that may retry does so as another uid, and finds nothing.
      const retried = await runAlone('retries-past-locked-keys', finder, 'Succeeded', 1);
      expect(retried.attempts).toBe(2);
      expect(retried.uid).not.toBe(first.uid);
      expect(retried.result).toBe('found ');
    } finally {
      if (first.uid !== undefined) unlockUserKeyring(first.uid);
    }
  });
});

// The kernel's keyrings against a Task: they are not namespaced, and a process keeps its session
// keyring across fork, exec and setuid, with the possessor's rights on every key in it. The agent's
// (a login's, for `parafork run` from an operator's shell under pam_keyinit; a service manager's)
// may hold Kerberos tickets (a KEYRING credential cache), CIFS credentials (cifscreds), fscrypt and
// ecryptfs keys. The default seccomp filter refuses keyctl(2), add_key(2) and request_key(2); a
// Task whose filter allows them (a Localhost profile that does, or Unconfined) read a key of the
// agent's session keyring as any uid, and every such Task shared that one keyring with the others
// (red team). Each sandboxed Task whose filter is not the default now starts in a session keyring
// of its own, empty, as runc gives each container one (KEYCTL_JOIN_SESSION_KEYRING).
//
// The launcher runs in a process of its own, started in a fresh session keyring that holds the
// test's marker key (gone with it); nothing of the node's keyrings is read. Needs root (the
// sandbox) and a build (dist/).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python } from './sandbox-helpers.js';

const skip = missingRequirement('the sandbox needs root', runningAsRoot) ?? (arch() === 'x64' || arch() === 'arm64' ? undefined : 'the system call numbers are written for x86_64 and arm64');

// keyctl(2) and add_key(2), by architecture.
const keyctlNumber = arch() === 'arm64' ? 219 : 250;
const addKeyNumber = arch() === 'arm64' ? 217 : 248;
const marker = `parafork-keyring-marker-${process.pid}`;
const secret = `keyring-secret-${process.pid}-${Date.now()}`;

/** Searches the session keyring for the marker and prints "found <payload>" or "none <errno>". */
const searchScript = [
  'import ctypes, errno',
  'libc = ctypes.CDLL(None, use_errno=True)',
  `key = libc.syscall(${keyctlNumber}, 10, ctypes.c_long(-3), b"user", ${JSON.stringify(marker)}.encode(), 0)`, // KEYCTL_SEARCH in KEY_SPEC_SESSION_KEYRING
  'if key < 0:',
  '    print("none", errno.errorcode[ctypes.get_errno()])',
  'else:',
  '    buffer = ctypes.create_string_buffer(256)',
  `    length = libc.syscall(${keyctlNumber}, 11, key, buffer, 256)`, // KEYCTL_READ
  '    print("found", buffer.raw[:max(length, 0)].decode())',
].join('\n');

/** The launcher's process: spawns the search in the sandbox (seccomp off, so keyctl reaches the kernel) and without one. */
function launcherScript(): string {
  const index = path.resolve('dist/index.js');
  return `
import { Launcher } from ${JSON.stringify(index)};
const launcher = new Launcher();
const run = async (sandbox) => {
  const child = await launcher.spawn({ file: ${JSON.stringify(python)}, args: ['-c', ${JSON.stringify(searchScript)}], stdout: 'pipe', stderr: 'pipe', ...(sandbox ? { sandbox } : {}), env: { PATH: '/usr/bin:/bin' } });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk) => (output += chunk));
  await Promise.all([child.exited, new Promise((resolve) => child.stdout.on('close', resolve)), new Promise((resolve) => child.stderr.on('close', resolve))]);
  return output.trim();
};
const report = { unsandboxed: await run(undefined), defaultFilter: await run({}), sandboxed: await run({ seccomp: 'unconfined' }), sandboxedAsRoot: await run({ seccomp: 'unconfined', runAsUser: 0, runAsGroup: 0 }), userNamespace: await run({ seccomp: 'unconfined', userNamespace: true, runAsUser: 0, runAsGroup: 0 }) };
await launcher.close();
console.log(JSON.stringify(report));
`;
}

/** Joins a new session keyring, adds the marker key to it, and runs the launcher's script in it. */
function wrapperScript(script: string): string {
  return [
    'import ctypes, os, sys',
    'libc = ctypes.CDLL(None, use_errno=True)',
    `if libc.syscall(${keyctlNumber}, 1, None) < 0: sys.exit("KEYCTL_JOIN_SESSION_KEYRING failed")`,
    `payload = ${JSON.stringify(secret)}.encode()`,
    `if libc.syscall(${addKeyNumber}, b"user", ${JSON.stringify(marker)}.encode(), payload, len(payload), ctypes.c_long(-3)) < 0: sys.exit("add_key failed")`,
    `os.execv(${JSON.stringify(process.execPath)}, [${JSON.stringify(process.execPath)}, ${JSON.stringify(script)}])`,
  ].join('\n');
}

describe.skipIf(skip !== undefined)(`a Task and the agent's session keyring${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-keyring-'));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('gives a sandboxed Task a session keyring of its own, without the agent s keys, whatever its filter and uid', () => {
    const script = path.join(scratch, 'launch.mjs');
    writeFileSync(script, launcherScript());
    const run = spawnSync(python, ['-c', wrapperScript(script)], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, string>;
    // The setup works: a child without a sandbox shares the launcher's session keyring.
    expect(report.unsandboxed).toBe(`found ${secret}`);
    // The default filter refuses keyctl(2): the agent's keyring is out of reach as it is.
    expect(report.defaultFilter).toBe('none EPERM');
    expect(report.sandboxed).toBe('none ENOKEY');
    expect(report.sandboxedAsRoot).toBe('none ENOKEY');
    expect(report.userNamespace).toBe('none ENOKEY');
  });
});

// Red team, session 12: the node's world-writable directories in the root a default Task shares.
// The agent's root is bound read-only into every default Task, so a Task cannot write there; but it
// saw what others had left in the node's /var/tmp (sticky, 1777 on every distribution, and
// /var/crash on Ubuntu, where apport keeps crash reports): files other users made readable, unix
// sockets that node services and other Tasks' helpers bound there (a read-only mount refuses
// writes to files, not connections to sockets), and files to hold flock(2) on, keeping a node
// writer waiting. Round 11 left it open. systemd's PrivateTmp= gives a service its own /var/tmp
// with its /tmp, and no container runtime shows a container the host's; both are now in the
// default masked paths, shown empty and read-only, as /run is.
//
// The files here are the test's own: a folder in the node's /var/tmp with a marker (0644) and a
// unix socket (0777) whose server answers with a marker and counts connections; and for
// /var/crash, which this machine does not have, a root of the Task's own (sandbox.rootfs) built in
// a temp directory with the node's /usr bound in, to which the default masks apply as to the
// agent's. Needs root (the sandbox).
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher } from '../../src/index.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python, runSandboxed } from './sandbox-helpers.js';

const skip = missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root)', runningAsRoot);

const marker = `parafork-world-writable-marker-${process.pid}`;

/** Python: what the Task finds in `folder`: its listing, the marker file, a connection to the socket, a flock. */
const probe = [
  'import fcntl, os, socket, sys',
  'folder = sys.argv[1]',
  'def attempt(name, action):',
  '    try:',
  '        print(name, action())',
  '    except OSError as error:',
  '        print(name, type(error).__name__)',
  'attempt("listing", lambda: sorted(os.listdir(os.path.dirname(folder))))',
  'attempt("file", lambda: open(os.path.join(folder, "marker")).read().strip())',
  'def talk():',
  '    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
  '    client.settimeout(5)',
  '    client.connect(os.path.join(folder, "socket"))',
  '    return client.recv(200).decode().strip()',
  'attempt("socket", talk)',
  'def lock():',
  '    fd = os.open(os.path.join(folder, "marker"), os.O_RDONLY)',
  '    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)',
  '    return "held"',
  'attempt("flock", lock)',
].join('\n');

describe.skipIf(skip !== undefined)(`the node's world-writable directories${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;
  let folder: string;
  let server: Server;
  let connections = 0;
  let scratch: string;

  beforeAll(async () => {
    launcher = new Launcher();
    folder = mkdtempSync('/var/tmp/parafork-world-writable-');
    chmodSync(folder, 0o755);
    writeFileSync(path.join(folder, 'marker'), `${marker} file\n`, { mode: 0o644 });
    server = createServer((connection) => {
      connections += 1;
      connection.end(`${marker} socket\n`);
    });
    const socketPath = path.join(folder, 'socket');
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    chmodSync(socketPath, 0o777);
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-world-writable-root-'));
  });

  afterAll(async () => {
    await launcher.close();
    await new Promise((resolve) => server.close(resolve));
    rmSync(folder, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  });

  it("the node's /var/tmp: a default Task sees it empty, so reads, connects to and locks nothing there", async () => {
    const run = await runSandboxed(launcher, python, ['-c', probe, folder]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('listing []');
    expect(run.stdout).toMatch(/^file FileNotFoundError$/m);
    expect(run.stdout).toMatch(/^socket FileNotFoundError$/m);
    expect(run.stdout).toMatch(/^flock FileNotFoundError$/m);
    expect(run.stdout).not.toContain(marker);
    expect(connections).toBe(0);
    // Without the masks the Task reaches the socket: the probe works, only the Task's view lacks it.
    // Where /var/tmp is a mount of its own (an emptyDir in the agent's Pod), a Task's root does not
    // carry it anyway, and there is nothing to compare.
    if (statSync('/var/tmp').dev === statSync('/').dev) {
      const unmasked = await runSandboxed(launcher, python, ['-c', probe, folder], { maskedPaths: [] });
      expect(unmasked.stdout).toContain(`socket ${marker} socket`);
      expect(connections).toBe(1);
    }
  });

  it("/var/crash and /var/tmp in a root of the Task's own are masked too", async () => {
    const root = path.join(scratch, 'root');
    for (const directory of ['usr', 'proc', 'dev', 'tmp']) mkdirSync(path.join(root, directory), { recursive: true });
    for (const link of ['bin', 'lib', 'lib64', 'sbin']) symlinkSync(`usr/${link}`, path.join(root, link));
    const files = ['/var/crash/_usr_bin_app.1000.crash', '/var/tmp/app.sock.lock'];
    for (const file of files) {
      mkdirSync(path.join(root, path.dirname(file)), { recursive: true, mode: 0o1777 });
      chmodSync(path.join(root, path.dirname(file)), 0o1777);
      writeFileSync(path.join(root, file), `${marker} ${file}\n`, { mode: 0o644 });
    }
    const script = `for folder in /var/crash /var/tmp; do echo "$folder: $(ls -A $folder)"; done; for file in ${files.join(' ')}; do cat "$file" 2>/dev/null; done; echo done`;
    const run = await runSandboxed(launcher, '/bin/sh', ['-c', script], { rootfs: root, mounts: [{ hostPath: '/usr', mountPath: '/usr' }] });
    expect(run.stdout.trim().split('\n').at(-1)).toBe('done');
    expect(run.stdout).not.toContain(marker);
    expect(run.stdout).toMatch(/^\/var\/crash: $/m);
    expect(run.stdout).toMatch(/^\/var\/tmp: $/m);
  });
});

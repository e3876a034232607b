// Red team, session 12: a manifest's name may lead anywhere. `parafork run -f` and `agent
// --manifests` refused a file that is not regular, but found out only after opening it, as root
// (O_NONBLOCK, so a FIFO did not block). Opening is not harmless for every file: opening
// /dev/watchdog starts the node's watchdog, which reboots the node unless it is fed or closed with
// its magic character; a tape device rewinds on close, a serial port raises its modem lines, a
// FIFO's open wakes or releases whoever waits at the other end. Whoever writes a manifest folder
// (or hands the operator a file) could link `x.yaml` to any of them. The agent now looks at what
// the name leads to through an O_PATH descriptor, which opens nothing, and opens only a regular file.
//
// Harmless here: the test's own FIFO, watched with inotify for IN_OPEN (which an O_PATH descriptor
// does not raise, since Linux 5.13?). Needs root (parafork sandboxes the Tasks it runs).
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python } from './sandbox-helpers.js';
import { parafork } from './standalone-cli.js';

const skip = missingRequirement('parafork sandboxes the Tasks it runs, which needs root', runningAsRoot);

/** Python: watch argv[1] for IN_OPEN; print "ready"; at a line on stdin print "opens N" and exit. */
const watcher = [
  'import ctypes, os, struct, sys',
  'libc = ctypes.CDLL(None, use_errno=True)',
  'fd = libc.inotify_init1(os.O_NONBLOCK)',
  'assert fd >= 0',
  'assert libc.inotify_add_watch(fd, sys.argv[1].encode(), 0x20) >= 0',
  'print("ready", flush=True)',
  'sys.stdin.readline()',
  'opens = 0',
  'try:',
  '    data = os.read(fd, 65536)',
  '    while data:',
  '        wd, mask, cookie, length = struct.unpack_from("iIII", data)',
  '        opens += 1 if mask & 0x20 else 0',
  '        data = data[16 + length:]',
  'except BlockingIOError:',
  '    pass',
  'print("opens", opens, flush=True)',
].join('\n');

async function startWatcher(file: string): Promise<{ process: ChildProcessWithoutNullStreams; opens: () => Promise<number> }> {
  const child = spawn(python, ['-c', watcher, file]);
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', () => output.includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`watcher exited (${code})`)));
  });
  return {
    process: child,
    opens: async () => {
      child.stdin.end('done\n');
      await new Promise((resolve) => child.once('exit', resolve));
      const match = /opens (\d+)/.exec(output);
      if (!match) throw new Error(`watcher said ${JSON.stringify(output)}`);
      return Number(match[1]);
    },
  };
}

describe.skipIf(skip !== undefined)(`a manifest that names a device or FIFO${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  let fifo: string;

  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-manifest-devices-'));
    fifo = path.join(scratch, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('is refused without being opened: a link in a folder, and the name given to -f', async () => {
    const folder = mkdtempSync(path.join(scratch, 'folder-'));
    writeFileSync(path.join(folder, 'a.yaml'), 'apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: fine}\nspec: {command: [/bin/true]}\n');
    symlinkSync(fifo, path.join(folder, 'b.yaml'));
    for (const target of [folder, fifo]) {
      const watch = await startWatcher(fifo);
      const run = await parafork(['run', '-o', 'json', '-f', target], 15_000);
      const opens = await watch.opens();
      expect(run.timedOut).toBe(false);
      expect(run.status, run.stderr).toBe(2);
      expect(run.stderr).toMatch(/is not a regular file/);
      expect(opens, `${target}: opened`).toBe(0);
    }
  });
});

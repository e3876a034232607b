// Red team, a probe that held (kept as a regression test): System V IPC objects and POSIX message
// queues are named by keys and names any process may guess, and live as long as their IPC
// namespace. Each Task has an IPC namespace of its own, so a neighbour running at the same time
// finds neither, and neither does the node (/proc/sysvipc, read here by the test itself); /dev/shm
// (POSIX shared memory) is not in a Task's /dev at all. The objects go with the Task's namespace.
// The same for /tmp: each Task's is a tmpfs of its own, though default Tasks join one shared
// filesystem template (its mounts are private, so a Task's mounts never reach the others).
// Needs root (the sandbox).
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher, type SpawnedProcess } from '../../src/index.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python, runSandboxed } from './sandbox-helpers.js';

const skip = missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root)', runningAsRoot);

const key = 0x5eed_f00d;
const queue = '/parafork-ipc-probe';

/** Python: make a shared memory segment, a message queue and a semaphore set under `key`, and a POSIX queue; print "made"; wait for stdin to close. */
const maker = [
  'import ctypes, os, sys',
  'libc = ctypes.CDLL(None, use_errno=True)',
  `assert libc.shmget(${key}, 4096, 0o1666) >= 0`,
  `assert libc.msgget(${key}, 0o1666) >= 0`,
  `assert libc.semget(${key}, 1, 0o1666) >= 0`,
  `assert libc.mq_open(b"${queue}", os.O_CREAT | os.O_RDWR, 0o666, None) >= 0`,
  'print("made", flush=True)',
  'import time; time.sleep(5)',
].join('\n');

/** Python: look the same objects up; print what each lookup answered. */
const finder = [
  'import ctypes, errno, os',
  'libc = ctypes.CDLL(None, use_errno=True)',
  'def answer(result): return "found" if result >= 0 else errno.errorcode[ctypes.get_errno()]',
  `print("shm", answer(libc.shmget(${key}, 0, 0)))`,
  `print("msg", answer(libc.msgget(${key}, 0)))`,
  `print("sem", answer(libc.semget(${key}, 0, 0)))`,
  `print("mq", answer(libc.mq_open(b"${queue}", os.O_RDONLY, 0, None)))`,
  'print("dev/shm", os.path.exists("/dev/shm"))',
].join('\n');

describe.skipIf(skip !== undefined)(`IPC objects and /tmp files of a running Task${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;

  beforeAll(() => {
    launcher = new Launcher();
  });
  afterAll(async () => {
    await launcher.close();
  });

  /** Starts `program` sandboxed and resolves once it printed "made". */
  async function startOwner(program: string): Promise<SpawnedProcess> {
    const owner = await launcher.spawn({ file: python, args: ['-c', program], stdout: 'pipe', stderr: 'pipe', sandbox: {}, env: { PATH: '/usr/bin:/bin' } });
    let made = '';
    let ownerErrors = '';
    owner.stderr?.setEncoding('utf8').on('data', (chunk: string) => (ownerErrors += chunk));
    await new Promise<void>((resolve, reject) => {
      owner.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        made += chunk;
        if (made.includes('made')) resolve();
      });
      void owner.exited.then(() => reject(new Error(`the owner ended before making its objects: ${ownerErrors}`)));
    });
    return owner;
  }

  it('are found by neither a neighbour nor the node, and /dev/shm is not there', async () => {
    const owner = await startOwner(maker);
    try {
      const neighbour = await runSandboxed(launcher, python, ['-c', finder]);
      expect(neighbour.stdout.trim().split('\n')).toEqual(['shm ENOENT', 'msg ENOENT', 'sem ENOENT', 'mq ENOENT', 'dev/shm False']);
      const keyColumn = (file: string): string[] => readFileSync(file, 'utf8').split('\n').slice(1).map((line) => line.trim().split(/\s+/)[0] ?? '');
      for (const file of ['/proc/sysvipc/shm', '/proc/sysvipc/msg', '/proc/sysvipc/sem']) expect(keyColumn(file)).not.toContain(String(key));
    } finally {
      owner.kill('SIGKILL');
      await owner.exited;
    }
  });

  it('include no file of a neighbour s /tmp, which is a tmpfs of its own', async () => {
    const owner = await startOwner('open("/tmp/parafork-neighbour-marker", "w").write("x" * 65536)\nprint("made", flush=True)\nimport time; time.sleep(5)');
    try {
      const neighbour = await runSandboxed(launcher, '/bin/sh', ['-c', 'ls -A /tmp | wc -l; df -k /tmp | tail -1 | tr -s " " | cut -d" " -f3']);
      // Nothing in it, and nothing used: the neighbour's 64 KiB are in the neighbour's tmpfs.
      expect(neighbour.stdout.trim().split('\n')).toEqual(['0', '0']);
    } finally {
      owner.kill('SIGKILL');
      await owner.exited;
    }
  });
});

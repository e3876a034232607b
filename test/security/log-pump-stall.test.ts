// The log pump (native/src/log_pump.h) against a Task that tries to stall it for every other Task.
// The pump is one thread for the whole node: it reads each Task's stdout and stderr pipes when epoll
// says they are readable. A Task running as host uid 0 (`runAsUser: 0`, sandbox policy level
// `privileged`, or any Task of an agent with `--task-sandbox off`) owns the pipes' inodes (the agent
// made them, as root), so it can open its own stdout or stderr again through /proc/self/fd/N for
// reading (proc(5): opening such a link opens the pipe anew, in the mode asked) and take bytes out
// of the pipe between the moment epoll reported them and the pump's read. The pump's read ends were
// blocking: its read(2) then waited for the Task to write again, with every other Task's output
// waiting behind it, their pipes filling until their writes blocked (red team: a neighbour's log
// stayed incomplete for as long as the hostile Task stayed quiet).
//
// Harmless by construction: the hostile Task only writes newlines and reads them back from its own
// pipe; the test ends it. Needs root (the sandbox).
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher } from '../../src/index.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python } from './sandbox-helpers.js';

const skip = missingRequirement('the sandbox needs root', runningAsRoot);

/** How long the hostile Task races the pump before it falls quiet (and stays quiet). */
const raceSeconds = 6;

/**
 * Races the pump: a chunk of newlines on stdout (slower for the pump to take than a byte) and one
 * byte on stderr, both reported to the pump in one round; once the pump has taken the stdout
 * chunk (the pipe holds less), the Task takes the stderr byte back through its own read end, so
 * the pump's read of stderr finds the pipe empty. Whether the pump is stuck there shows on stdout:
 * a newline written there is still waiting a moment later (a pump that is free takes it within its
 * longest rest, 100 ms). Stuck, the Task writes nothing more; else it tries again, for at most
 * `raceSeconds`. Then it says on stdout how many bytes it took back, and stays quiet.
 */
const hostileScript = [
  'import array, fcntl, os, termios, time',
  'stolen_from = os.open("/proc/self/fd/2", os.O_RDONLY | os.O_NONBLOCK)',
  'def waiting(fd):',
  '    count = array.array("i", [0])',
  '    fcntl.ioctl(fd, termios.FIONREAD, count)',
  '    return count[0]',
  'chunk = b"\\n" * 65536',
  'stolen = 0',
  `deadline = time.time() + ${raceSeconds}`,
  'while time.time() < deadline:',
  '    os.write(1, chunk)',
  '    os.write(2, b"e")',
  '    while waiting(1) >= len(chunk) and time.time() < deadline:',
  '        pass',
  '    try:',
  '        stolen += len(os.read(stolen_from, 16))',
  '    except BlockingIOError:',
  '        continue',
  '    os.write(1, b"\\n")',
  '    time.sleep(0.3)',
  '    if waiting(1) > 0:',
  '        break',
  'os.write(1, b"stolen %d\\n" % stolen)',
  'time.sleep(60)',
].join('\n');

describe.skipIf(skip !== undefined)(`the log pump against a Task that drains its own pipes${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;
  let scratch: string;
  beforeAll(() => {
    launcher = new Launcher();
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-pump-stall-'));
  });
  afterAll(async () => {
    await launcher.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('keeps writing a neighbour s log while a uid 0 Task takes back what the pump was told to read', async () => {
    const hostileLog = path.join(scratch, 'hostile', '1.log');
    const hostile = await launcher.spawn({
      file: python,
      args: ['-c', hostileScript],
      stdout: { log: hostileLog },
      stderr: { log: hostileLog },
      sandbox: { runAsUser: 0, runAsGroup: 0 },
      env: { PATH: '/usr/bin:/bin' },
    });
    let hostileEnded = false;
    void hostile.exited.then(() => (hostileEnded = true));
    try {
      // The race, then a moment for a pump that is not stalled to take the last stderr byte.
      await new Promise((resolve) => setTimeout(resolve, raceSeconds * 1000 + 500));
      expect(hostileEnded, 'the hostile Task has ended before its time').toBe(false);
      const neighbourLog = path.join(scratch, 'neighbour', '1.log');
      const started = performance.now();
      const neighbour = await launcher.spawn({ file: 'sh', args: ['-c', 'echo hello from the neighbour'], stdout: { log: neighbourLog }, stderr: { log: neighbourLog }, sandbox: {}, env: { PATH: '/usr/bin:/bin' } });
      expect(await neighbour.exited).toMatchObject({ code: 0 });
      const complete = await Promise.race([neighbour.log, new Promise((resolve) => setTimeout(() => resolve('still open'), 10_000))]);
      const waitedMs = performance.now() - started;
      expect(complete, `the neighbour's log after ${Math.round(waitedMs)} ms`).toMatchObject({ complete: true });
      expect(existsSync(neighbourLog) ? readFileSync(neighbourLog, 'utf8') : '').toMatch(/ stdout 25\nhello from the neighbour\n/);
    } finally {
      hostile.kill('SIGKILL');
      await hostile.exited;
    }
    // The attack ran: the Task did take bytes back from under the pump.
    await hostile.log;
    const stolen = /(?:^|\n)stolen (\d+)\n/.exec(readFileSync(hostileLog, 'utf8'))?.[1];
    expect(Number(stolen), 'bytes the hostile Task took back from its own stderr').toBeGreaterThan(0);
  }, 60_000);
});

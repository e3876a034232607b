// Red team, sessions 13 and 14, left open until session 15: on a host whose memory controller is
// cgroup v1 (this one), the TCP and UDP buffers of a Task with `network: loopback` (the baseline
// level) or `host` were charged to no memory cgroup, only to the node-wide net.ipv4.tcp_mem and
// udp_mem, past which the kernel drops every socket's traffic on the node. A probe queued 48 MB in
// 4 UDP sockets sending to themselves over the Task's own `lo` with 4 MiB charged to its cgroup.
// cgroup v1 charges socket buffers only to a memory cgroup whose memory.kmem.tcp.limit_in_bytes was
// written (UDP included), and only against that limit, a counter apart from memory.limit_in_bytes;
// the agent now writes it, at the Task's memory limit, for every Task whose network is not `none`
// (src/sandbox/cgroup-manager.ts). cgroup v2 charges socket buffers to memory.current (memory.stat
// `sock`) without being asked, so there is nothing to write there and this test does not run.
//
// Harmless: each Task has a 32 MiB memory limit and offers at most about twice that (8 UDP sockets
// of 8 MiB receive buffers; 4 TCP connections of 8 MiB send and receive buffers), all of it freed
// when it exits; no node-wide knob is touched. Needs root (the sandbox) and a v1 memory controller.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { placeControllers, readCgroupLayout } from '../../src/sandbox/cgroup-layout.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { processWithArgv } from '../helpers/process-table.js';
import { waitFor } from '../helpers/wait-for.js';
import { python } from './sandbox-helpers.js';
import { parafork, tasksOf, writeTask } from './standalone-cli.js';

const layout = readCgroupLayout();
const memoryOnV1 = placeControllers(layout).memory === 'v1';
const skip = missingRequirement('the sandbox needs root, and the test a memory cgroup controller', runningAsRoot && (layout.v1.has('memory') || (layout.v2?.controllers.has('memory') ?? false)))
  // Not a missing requirement: on cgroup v2 the kernel charges socket buffers to the Task's cgroup itself.
  ?? (memoryOnV1 ? undefined : 'the memory controller is on cgroup v2 here, which charges socket buffers to memory.current of the Task\'s cgroup without a limit file of their own');

const mebibyte = 2 ** 20;
const memoryLimit = 32 * mebibyte;

/**
 * Python: queue data on sockets of the Task's own `lo` that nobody reads, hold it 2 s, then write
 * its result (status.result): how much was queued. For UDP, what could be read back (datagrams the
 * kernel dropped are not queued); for TCP, what send() took (nothing reads it, so all of it sits in
 * a send or receive queue).
 */
const queueFiller = `
import os, socket, sys, time
mode = sys.argv[1]
payload = bytes(60000)
held = []
queued = 0
if mode == "udp":
    for _ in range(8):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind(("127.0.0.1", 0)); sock.setblocking(False)
        held.append(sock)
        for _ in range(160):
            try: sock.sendto(payload, sock.getsockname())
            except BlockingIOError: break
    time.sleep(2)
    for sock in held:
        while True:
            try: queued += len(sock.recv(65536))
            except BlockingIOError: break
else:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    server.bind(("127.0.0.1", 0)); server.listen(8)
    for _ in range(4):
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        client.connect(server.getsockname()); peer, _ = server.accept(); client.setblocking(False)
        held += [client, peer]
        while True:
            try: queued += client.send(payload)
            except BlockingIOError: break
    time.sleep(2)
open(os.environ["PARAFORK_RESULT"], "w").write("%s queued %d" % (mode, queued))
`;

/** The v1 memory cgroup directory of a process, or undefined when it is in the hierarchy's root (or gone). */
function memoryCgroupOf(pid: number): string | undefined {
  const hierarchy = layout.v1.get('memory');
  try {
    const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((entry) => entry.split(':')[1]?.split(',').includes('memory'));
    const where = line?.split(':')[2];
    return hierarchy === undefined || where === undefined || where === '/' ? undefined : path.join(hierarchy.mountPoint, where);
  } catch {
    return undefined;
  }
}

/** A cgroup file's number, or undefined (gone with the Task's cgroup). */
function readNumber(file: string): number | undefined {
  try {
    return Number(readFileSync(file, 'utf8').trim());
  } catch {
    return undefined;
  }
}

interface Observed {
  readonly phase: string | undefined;
  /** What the Task printed: bytes it had queued. */
  readonly queued: number | undefined;
  /** Its memory cgroup's memory.kmem.tcp.limit_in_bytes and the most it charged there, read while it ran. */
  readonly socketLimit: number | undefined;
  readonly socketPeak: number | undefined;
}

describe.skipIf(skip !== undefined)(`socket buffers of a loopback Task on cgroup v1${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  let marker = 0;

  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-socket-buffers-'));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  /** Runs the filler as a `loopback` Task with a 32 MiB limit through `parafork run`; reads its cgroup while it runs. */
  async function fill(mode: 'udp' | 'tcp'): Promise<Observed> {
    marker++;
    const argv = [python, '-c', queueFiller, mode, `${process.pid}-${marker}`];
    const name = `${mode}-filler-${marker}`;
    const file = writeTask(scratch, name, { command: argv, sandbox: { network: 'loopback' }, resources: { limits: { memory: '32Mi' } } });
    const running = parafork(['run', '-f', file, '-o', 'json', '--sandbox-policy', 'baseline'], 60_000);
    const pid = await waitFor(() => processWithArgv(argv), { timeoutMs: 20_000, intervalMs: 20, description: `the ${mode} filler to run` });
    const directory = await waitFor(() => memoryCgroupOf(pid), { timeoutMs: 5000, intervalMs: 20, description: 'the filler\'s memory cgroup' });
    let socketLimit: number | undefined;
    let socketPeak: number | undefined;
    while (processWithArgv(argv) === pid) {
      socketLimit = readNumber(path.join(directory, 'memory.kmem.tcp.limit_in_bytes')) ?? socketLimit;
      socketPeak = readNumber(path.join(directory, 'memory.kmem.tcp.max_usage_in_bytes')) ?? socketPeak;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const run = await running;
    const status = tasksOf(run).get(name)?.status;
    const queued = new RegExp(`^${mode} queued (\\d+)$`, 'm').exec(status?.result ?? '')?.[1];
    return { phase: status?.phase, queued: queued === undefined ? undefined : Number(queued), socketLimit, socketPeak };
  }

  /**
   * What each filler must show: it ran to the end, queued no more than its memory limit, and was
   * charged for what it queued against a bound equal to that limit. `chargedPast`: what the kernel
   * may charge past the bound anyway (TCP forces one buffer a socket under pressure:
   * sk_forced_mem_schedule).
   */
  function expectBoundedByItsMemoryLimit(observed: Observed, chargedPast = 0): void {
    expect(observed.phase).toBe('Succeeded');
    expect(observed.queued).toBeLessThanOrEqual(memoryLimit);
    expect(observed.socketLimit).toBe(memoryLimit);
    expect(observed.socketPeak).toBeGreaterThan(8 * mebibyte);
    expect(observed.socketPeak).toBeLessThanOrEqual(memoryLimit + chargedPast);
  }

  it('queues no more UDP on its own lo than its memory limit, charged to its memory cgroup\'s socket counter (limit: its memory limit)', async () => {
    // Without the limit file (before session 15): 65.8 MB queued here, nothing charged.
    expectBoundedByItsMemoryLimit(await fill('udp'));
  });

  it('queues no more TCP on its own lo than its memory limit, charged to the same counter', async () => {
    // Before session 15: 42.1 MB queued here, nothing charged.
    expectBoundedByItsMemoryLimit(await fill('tcp'), 4 * mebibyte);
  });
});

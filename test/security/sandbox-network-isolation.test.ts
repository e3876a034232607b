// Tasks with network "none" against each other (issue 12, finding 2). No two running Tasks may share
// a network namespace: abstract unix sockets, netlink ports, bound ports, multicast groups, IPv6
// flow labels and every /proc/net listing are per network namespace, so a shared one is a channel
// between Tasks and a window onto their sockets. A namespace the agent reuses after its Task ended
// must carry nothing of that Task. Needs root: the sandbox builds namespaces and mounts.
import { randomBytes, randomInt } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher, type SandboxOptions, type SpawnedProcess } from '../../src/index.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python, runSandboxed } from './sandbox-helpers.js';

const skip = missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root)', runningAsRoot);

/**
 * The Tasks here hold and probe netlink sockets, which the default filter refuses (their receive
 * queues are charged to no memory cgroup: sandbox-netlink-memory.test.ts). A Task whose filter
 * allows them (a Localhost profile, Unconfined) still has them, and the network namespace is what
 * keeps them apart, so these Tasks run without the default filter (the RLIMIT_CORE guard alone).
 */
const netlinkAllowed: SandboxOptions = { seccomp: 'unconfined' };

/** Every listing of /proc/net a Task can read about its network namespace. */
const procNetFiles = ['unix', 'tcp', 'tcp6', 'udp', 'udp6', 'raw', 'raw6', 'netlink', 'packet', 'igmp', 'igmp6', 'ip6_flowlabel', 'mcfilter', 'mcfilter6'];

/**
 * What a Task holds in its network namespace, as a Python program that prints "ready" once it holds
 * it all: sockets (gone with the Task), and unless `socketsOnly`, a multicast group and an IPv6 flow
 * label that lingers 60 s after its socket.
 */
function neighbourProgram(traces: Traces, { socketsOnly = false } = {}): string {
  return `
import os, select, socket, struct, sys
held = []
unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); unix.bind("\\0${traces.abstractName}"); unix.listen(); held.append(unix)
tcp = socket.socket(); tcp.bind(("0.0.0.0", ${traces.port})); tcp.listen(); held.append(tcp)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("0.0.0.0", ${traces.port})); held.append(udp)
netlink = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 2); netlink.bind((${traces.netlinkPort}, 0)); held.append(netlink)  # NETLINK_USERSOCK
if not ${socketsOnly ? 'True' : 'False'}:
    group = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    group.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack("4s4si", socket.inet_aton("${traces.multicastGroup}"), bytes(4), 1)); held.append(group)
    flow = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)  # IPV6_FLOWLABEL_MGR: get, exclusive, create; linger 60 s
    flow.setsockopt(socket.IPPROTO_IPV6, 32, socket.inet_pton(socket.AF_INET6, "::1") + struct.pack("!I", ${traces.flowLabel}) + struct.pack("=BBHHHI", 0, 1, 1, 0, 60, 0)); held.append(flow)
print("ready", os.readlink("/proc/self/ns/net"), flush=True)
while True:
    readable, _, _ = select.select(held[:4], [], [])
    for sock in readable:
        if sock is unix: sock.accept(); print("reached: unix", flush=True)
        elif sock is tcp: sock.accept(); print("reached: tcp", flush=True)
        else: sock.recv(100); print("reached: " + ("udp" if sock is udp else "netlink"), flush=True)
`;
}

/** Prints its network namespace, every /proc/net listing, and what it could reach of a neighbour's. */
function probeProgram(traces: Traces): string {
  return `
import os, socket, struct
print("namespace", os.readlink("/proc/self/ns/net"))
for name in ${JSON.stringify(procNetFiles)}:
    try: print("--- /proc/net/" + name); print(open("/proc/net/" + name).read())
    except OSError as error: print("unreadable", error.strerror)
def attempt(name, action):
    try: action(); print(name + ": ok")
    except OSError as error: print(name + ": " + (error.strerror or str(error)))
attempt("connect unix", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect("\\0${traces.abstractName}"))
attempt("bind unix", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).bind("\\0${traces.abstractName}"))
attempt("bind tcp", lambda: socket.socket().bind(("0.0.0.0", ${traces.port})))
attempt("send netlink", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 2).sendto(struct.pack("=IHHII", 20, 16, 0, 1, 0) + b"ping", (${traces.netlinkPort}, 0)))
`;
}

/** The unique marks a neighbour Task leaves, and how /proc/net spells them. */
interface Traces {
  readonly abstractName: string;
  readonly port: number;
  readonly netlinkPort: number;
  readonly multicastGroup: string;
  readonly flowLabel: number;
}

function newTraces(): Traces {
  return {
    abstractName: `parafork-isolation-${randomBytes(6).toString('hex')}`,
    port: randomInt(20_000, 60_000),
    netlinkPort: randomInt(100_000, 2_000_000),
    multicastGroup: `239.${randomInt(1, 255)}.${randomInt(1, 255)}.${randomInt(1, 255)}`,
    flowLabel: randomInt(1, 0xfffff),
  };
}

/** /proc/net/igmp prints a group as the hex of its in-memory (network order) bytes read as a host integer. */
function igmpSpelling(group: string): string {
  const bytes = group.split('.').map(Number);
  return Buffer.from(bytes).readUInt32LE(0).toString(16).toUpperCase().padStart(8, '0');
}

function portSpelling(port: number): string {
  return `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
}

/** The sections of a probe's output, by /proc/net file name. */
function listings(stdout: string): Map<string, string> {
  const sections = new Map<string, string>();
  for (const section of stdout.split('--- /proc/net/').slice(1)) {
    const newline = section.indexOf('\n');
    sections.set(section.slice(0, newline), section.slice(newline + 1));
  }
  return sections;
}

function expectNoTraceOf(traces: Traces, probeOutput: string): void {
  const proc = listings(probeOutput);
  expect(proc.get('unix')).not.toContain(traces.abstractName);
  expect(proc.get('tcp')).not.toContain(portSpelling(traces.port));
  expect(proc.get('udp')).not.toContain(portSpelling(traces.port));
  expect(proc.get('netlink')).not.toMatch(new RegExp(`\\s${traces.netlinkPort}\\s`));
  expect(proc.get('igmp')).not.toContain(igmpSpelling(traces.multicastGroup));
  expect(proc.get('ip6_flowlabel')).not.toMatch(new RegExp(`^0*${traces.flowLabel.toString(16)}\\s`, 'im'));
  expect(probeOutput).not.toContain('connect unix: ok');
}

/** A running sandboxed Task whose stdout lines are collected as they come. */
class RunningTask {
  output = '';
  readonly #child: SpawnedProcess;

  private constructor(child: SpawnedProcess) {
    this.#child = child;
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
  }

  static async start(launcher: Launcher, program: string, sandbox: SandboxOptions = {}): Promise<RunningTask> {
    const child = await launcher.spawn({ file: python, args: ['-c', program], stdout: 'pipe', sandbox: { ...netlinkAllowed, ...sandbox }, env: { PATH: '/usr/bin:/bin' } });
    return new RunningTask(child);
  }

  async line(prefix: string): Promise<string> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = this.output.split('\n').find((line) => line.startsWith(prefix));
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`no "${prefix}" line in: ${this.output}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async stop(): Promise<void> {
    this.#child.kill('SIGKILL');
    await this.#child.exited;
  }
}

describe.skipIf(skip !== undefined)(`Tasks with network "none" are isolated from each other${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;

  beforeAll(() => {
    launcher = new Launcher();
  });

  afterAll(async () => {
    await launcher.close();
  });

  describe('while both run', () => {
    const traces = newTraces();
    let neighbour: RunningTask;
    let neighbourNamespace = '';

    beforeAll(async () => {
      neighbour = await RunningTask.start(launcher, neighbourProgram(traces));
      neighbourNamespace = (await neighbour.line('ready')).split(' ')[1] ?? '';
    });

    afterAll(async () => {
      await neighbour.stop();
    });

    const probe = async (sandbox: SandboxOptions = {}): Promise<string> => {
      const run = await runSandboxed(launcher, python, ['-c', probeProgram(traces)], { ...netlinkAllowed, ...sandbox });
      expect(run.stderr).toBe('');
      return run.stdout;
    };

    it('each has a network namespace of its own', async () => {
      const output = await probe();
      expect(output).toMatch(/^namespace net:\[\d+\]$/m);
      expect(output).not.toContain(`namespace ${neighbourNamespace}\n`);
    });

    it('cannot connect to the other s abstract unix socket', async () => {
      const output = await probe();
      expect(output).toContain('connect unix: Connection refused');
      expect(neighbour.output).not.toContain('reached: unix');
    });

    it('can bind the abstract name the other holds: abstract names are not shared', async () => {
      expect(await probe()).toContain('bind unix: ok');
    });

    it('does not see the other s unix socket in /proc/net/unix', async () => {
      expect(listings(await probe()).get('unix')).not.toContain(traces.abstractName);
    });

    it('can bind the TCP port the other listens on, and does not see its listener in /proc/net/tcp', async () => {
      const output = await probe();
      expect(output).toContain('bind tcp: ok');
      expect(listings(output).get('tcp')).not.toContain(portSpelling(traces.port));
    });

    it('cannot send to the other s netlink socket', async () => {
      const output = await probe();
      expect(output).toContain('send netlink: Connection refused');
      expect(neighbour.output).not.toContain('reached: netlink');
    });

    it('sees none of the other s sockets, multicast groups or IPv6 flow labels anywhere in /proc/net', async () => {
      expectNoTraceOf(traces, await probe());
    });

    it('is isolated in userNamespace mode too', async () => {
      const output = await probe({ userNamespace: true });
      expect(output).toContain('connect unix: Connection refused');
      expectNoTraceOf(traces, output);
    });

    it('keeps network loopback and host working: loopback is its own namespace, host is the agent s', async () => {
      const loopback = await probe({ network: 'loopback' });
      expect(loopback).toContain('connect unix: Connection refused');
      const host = await runSandboxed(launcher, '/bin/readlink', ['/proc/self/ns/net'], { network: 'host' });
      expect(host.stdout.trim()).toBe(readlinkSync('/proc/self/ns/net'));
    });
  });

  describe('after a Task has ended', () => {
    /** Runs a Task that leaves `traces` (held, then let go by its exit) and returns its namespace. */
    async function runNeighbourToTheEnd(traces: Traces, options: { socketsOnly?: boolean } = {}): Promise<string> {
      const neighbour = await RunningTask.start(launcher, neighbourProgram(traces, options));
      const namespace = (await neighbour.line('ready')).split(' ')[1] ?? '';
      await neighbour.stop();
      return namespace;
    }

    it('a namespace given back is used again, and shows nothing of its last Task', async () => {
      const traces = newTraces();
      const namespace = await runNeighbourToTheEnd(traces, { socketsOnly: true });
      // It is checked on the pool's thread after its Task is reaped, then leased again. Enough
      // Tasks at once to lease every idle namespace (a few more than the pool keeps ready).
      await new Promise((resolve) => setTimeout(resolve, 300));
      const runs = await Promise.all(Array.from({ length: 24 }, () => runSandboxed(launcher, python, ['-c', probeProgram(traces)], netlinkAllowed)));
      for (const run of runs) {
        expectNoTraceOf(traces, run.stdout);
        expect(run.stdout).toContain('bind unix: ok');
        expect(run.stdout).toContain('bind tcp: ok');
      }
      expect(runs.filter((run) => run.stdout.includes(`namespace ${namespace}\n`))).toHaveLength(1);
    });

    it('what outlives a Task in its namespace (an IPv6 flow label lingers 60 s) never reaches a later Task', async () => {
      const traces = newTraces();
      await runNeighbourToTheEnd(traces);
      for (let attempt = 0; attempt < 10; attempt++) {
        const run = await runSandboxed(launcher, python, ['-c', probeProgram(traces)], netlinkAllowed);
        expect(listings(run.stdout).get('ip6_flowlabel')).not.toMatch(new RegExp(`^0*${traces.flowLabel.toString(16)}\\s`, 'im'));
      }
    });

    it('sockets a Task leaves in flight in a unix socket cycle never reach a later Task', async () => {
      const name = `parafork-cycle-${randomBytes(6).toString('hex')}`;
      // Each socket of a pair sent over the other: after exit only the kernel's unix garbage
      // collector frees them, and the bound name stays until it has.
      const cycle = await runSandboxed(launcher, python, ['-c', `
import array, socket
left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
named = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); named.bind("\\0${name}")
for carrier, cargo in ((left, [right.fileno(), named.fileno()]), (right, [left.fileno()])):
    carrier.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", cargo))])
print("cycle made")
`]);
      expect(cycle.stdout).toContain('cycle made');
      for (let attempt = 0; attempt < 10; attempt++) {
        const run = await runSandboxed(launcher, '/bin/cat', ['/proc/net/unix']);
        expect(run.stdout).not.toContain(name);
      }
    });

    it('a network setting changed by a root Task never reaches a later Task', async () => {
      // Root without capabilities may still write its namespace's net sysctls (procfs checks the
      // uid, sysctl_perm in fs/proc/proc_sysctl.c); whether or not /proc/sys is writable, a later
      // Task must not see it. The value is harmless, and the namespace is the sandbox's own.
      const changed = await runSandboxed(launcher, '/bin/sh', ['-c', 'echo 4242 > /proc/sys/net/unix/max_dgram_qlen; cat /proc/sys/net/unix/max_dgram_qlen'], { runAsUser: 0, runAsGroup: 0 });
      expect(changed.code).not.toBeNull();
      for (let attempt = 0; attempt < 10; attempt++) {
        const run = await runSandboxed(launcher, '/bin/cat', ['/proc/sys/net/unix/max_dgram_qlen']);
        expect(run.stdout.trim()).not.toBe('4242');
      }
    });
  });
});

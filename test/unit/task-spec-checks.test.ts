// The checks a Task spec passes before any launch (src/sandbox/task-spec-checks.ts,
// task-limits.ts, reached through sandboxForTask) and the agent flags that set the default limits
// and /tmp cap (src/config/agent-config.ts). A refusal is InvalidSpec with the field named.
import { mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { TaskSpec } from '../../src/api/task.js';
import { ConfigError, parseAgentConfig } from '../../src/config/agent-config.js';
import { checkMaskedPaths, defaultMaskedPaths } from '../../src/launcher/sandbox-options.js';
import { halfOfProcessTable, limitsForTask, type TaskLimitPolicy } from '../../src/sandbox/task-limits.js';
import type { SandboxPolicy } from '../../src/sandbox/sandbox-policy.js';
import { placeDefaultPidsLimit, sandboxForTask } from '../../src/sandbox/task-sandbox.js';

const noDefaults: TaskLimitPolicy = { defaults: {}, maxTmpBytes: 2 ** 30 };
/** The sandbox policy lets everything through here: its own refusals are test/unit/sandbox-policy.test.ts's. */
const privileged: SandboxPolicy = { level: 'privileged', allowedHostPaths: [] };

async function refusalOf(spec: Partial<TaskSpec>, policy = noDefaults): Promise<string | undefined> {
  const result = await sandboxForTask({ command: ['/bin/true'], ...spec }, undefined, policy, undefined, privileged);
  if (!('reason' in result)) return undefined;
  expect(result.reason).toBe('InvalidSpec');
  return result.message;
}

describe('a spec is refused before launch, naming the field', () => {
  it.each<[string, Partial<TaskSpec>, RegExp]>([
    ['a NUL byte in command', { command: ['/bin/sh\0x'] }, /^spec\.command\[0\] must not contain a NUL byte/],
    ['an empty program', { command: [''] }, /^spec\.command\[0\] must not be empty/],
    ['a NUL byte in an argument', { args: ['ok', '\0'] }, /^spec\.args\[1\] /],
    ['an env name with =', { env: [{ name: 'A=B' }] }, /^spec\.env\[0\]\.name must be a C identifier/],
    ['an env name twice', { env: [{ name: 'A' }, { name: 'A', value: 'x' }] }, /^spec\.env\[1\]\.name "A" is set twice/],
    ['a NUL byte in an env value', { env: [{ name: 'A', value: '\0' }] }, /^spec\.env\[0\]\.value /],
    ['a relative workingDir', { workingDir: 'here' }, /^spec\.workingDir must be an absolute path/],
    ['a relative rootfs', { sandbox: { rootfs: 'root' } }, /^spec\.sandbox\.rootfs must be an absolute path/],
    ['a mount over /', { sandbox: { mounts: [{ hostPath: '/srv', mountPath: '//' }] } }, /^spec\.sandbox\.mounts\[0\]\.mountPath cannot be \//],
    ['a mountPath with ..', { sandbox: { mounts: [{ hostPath: '/srv', mountPath: '/a/../etc' }] } }, /^spec\.sandbox\.mounts\[0\]\.mountPath must not contain '\.\.'/],
    ['a mountPath twice', { sandbox: { mounts: [{ hostPath: '/a', mountPath: '/m' }, { hostPath: '/b', mountPath: '/m' }] } }, /^spec\.sandbox\.mounts\[1\]\.mountPath "\/m" is mounted twice/],
    ['a localhostProfile without Localhost', { sandbox: { seccomp: { type: 'RuntimeDefault', localhostProfile: 'a.json' } } }, /^spec\.sandbox\.seccomp\.localhostProfile is allowed only/],
    ['a runAsUser out of range', { sandbox: { runAsUser: 4294967295 } }, /^spec\.sandbox\.runAsUser must be a whole number/],
    ['memory of 10^23 bytes', { resources: { limits: { memory: '1e23' } } }, /^spec\.resources\.limits\.memory "1e23" is more than the most a cgroup takes here, 8Pi/],
    ['memory of 0.4 bytes', { resources: { limits: { memory: '0.4' } } }, /^spec\.resources\.limits\.memory must be a whole number of bytes/],
    ['memory under 1Mi', { resources: { limits: { memory: '64Ki' } } }, /^spec\.resources\.limits\.memory must be at least 1Mi/],
    ['negative memory', { resources: { limits: { memory: '-1Gi' } } }, /^spec\.resources\.limits\.memory must be a positive quantity/],
    ['memory that is no quantity', { resources: { limits: { memory: '1GB' } } }, /^spec\.resources\.limits\.memory must be a Kubernetes quantity/],
    ['cpu under 1m', { resources: { limits: { cpu: '0.0005' } } }, /^spec\.resources\.limits\.cpu must be at least 1m/],
    ['cpu of 10^30', { resources: { limits: { cpu: '1e30' } } }, /^spec\.resources\.limits\.cpu "1e30" is more than/],
    ['pids 0', { resources: { limits: { pids: 0 } } }, /^spec\.resources\.limits\.pids must be a whole number from 1 to 4194304/],
    ['pids beyond PID_MAX_LIMIT', { resources: { limits: { pids: 4194305 } } }, /^spec\.resources\.limits\.pids /],
    ['a /tmp of a tenth of a byte', { sandbox: { tmpSizeLimit: '100m' } }, /^spec\.sandbox\.tmpSizeLimit must be a whole number of bytes/],
    ['a /tmp over the cap', { sandbox: { tmpSizeLimit: '16Ti' } }, /^spec\.sandbox\.tmpSizeLimit "16Ti" is more than this agent allows \(--max-tmp-size 1Gi\)/],
    // The launcher's rules on host paths (src/launcher/sandbox-options.ts), checked before a launch too.
    ['a masked rootfs', { sandbox: { rootfs: '/etc/hostname' } }, /^spec\.sandbox\.rootfs must not be a masked path or lie inside one: \/etc\/hostname is the masked path/],
    ['a hostPath inside a masked path', { sandbox: { mounts: [{ hostPath: '/var/lib/kubelet/pods', mountPath: '/mnt' }] } }, /^spec\.sandbox\.mounts\[0\]\.hostPath must not be a masked path or lie inside one/],
    ['a mountPath inside a masked path', { sandbox: { mounts: [{ hostPath: '/srv', mountPath: '/run/data' }] } }, /^spec\.sandbox\.mounts\[0\]\.mountPath must not lie inside a masked path/],
    ['a writable mount of the host s root', { sandbox: { mounts: [{ hostPath: '/', mountPath: '/-', readOnly: false }] } }, /^spec\.sandbox\.mounts\[0\]\.readOnly must be true for a host path in or holding the host's \/proc/],
    ['a writable rootfs inside /sys', { sandbox: { rootfs: '/sys/kernel', readOnlyRootFilesystem: false } }, /^spec\.sandbox\.readOnlyRootFilesystem must be true/],
  ])('%s', async (_name, spec, message) => {
    expect(await refusalOf(spec)).toMatch(message);
  });

  it('checks host paths against the masked paths the agent gives its launcher', async () => {
    const spec: TaskSpec = { command: ['/bin/true'], sandbox: { mounts: [{ hostPath: '/srv/secrets/db', mountPath: '/mnt' }] } };
    expect(await sandboxForTask(spec, undefined, noDefaults, undefined, privileged)).not.toHaveProperty('reason');
    const refused = await sandboxForTask(spec, undefined, noDefaults, checkMaskedPaths([...defaultMaskedPaths, '/srv/secrets'], 'sandboxMaskedPaths'), privileged);
    expect(refused).toMatchObject({ reason: 'InvalidSpec' });
    expect((refused as { message: string }).message).toMatch(/^spec\.sandbox\.mounts\[0\]\.hostPath must not be a masked path or lie inside one: \/srv\/secrets\/db is inside the masked path \/srv\/secrets/);
  });

  it('accepts what a careful user writes', async () => {
    expect(await refusalOf({ args: [''], env: [{ name: '_A1' }], workingDir: '/tmp', resources: { limits: { memory: '1Mi', cpu: '1m', pids: 4194304 } }, sandbox: { tmpSizeLimit: '1Gi', mounts: [{ hostPath: '/srv', mountPath: '/srv' }] } })).toBeUndefined();
  });
});

describe('limitsForTask', () => {
  const policy: TaskLimitPolicy = { defaults: { memoryBytes: 2 ** 30, pids: 1024, cpuMillicores: 1000 }, maxTmpBytes: 2 ** 30 };

  it('fills in every limit from the defaults when the spec sets none', () => {
    expect(limitsForTask({ command: ['x'] }, policy)).toEqual({
      limits: { memoryBytes: 2 ** 30, cpuMillicores: 1000, pids: 1024 },
      resources: { limits: { cpu: '1', memory: '1Gi', pids: 1024 }, defaulted: ['cpu', 'memory', 'pids'] },
      defaulted: ['cpu', 'memory', 'pids'],
      tmpSizeBytes: 64 * 2 ** 20,
    });
  });

  it('keeps the spec\'s own limits, even above the defaults, and marks nothing defaulted', () => {
    const limits = limitsForTask({ command: ['x'], resources: { limits: { memory: '8Gi', cpu: '4', pids: 5000 } } }, policy);
    expect(limits.limits).toEqual({ memoryBytes: 8 * 2 ** 30, cpuMillicores: 4000, pids: 5000 });
    expect(limits.resources).toEqual({ limits: { cpu: '4', memory: '8Gi', pids: 5000 } });
  });

  it('applies no limit and shows none when the defaults are off', () => {
    expect(limitsForTask({ command: ['x'] }, noDefaults)).toMatchObject({ limits: {}, resources: undefined, defaulted: [] });
  });
});

function inNodePidNamespace(): boolean {
  try {
    return readlinkSync('/proc/self/ns/pid') === 'pid:[4026531836]';
  } catch {
    return false;
  }
}

describe('the agent flags for limits', () => {
  const config = (...flags: string[]) => parseAgentConfig(['--node-name', 'node', ...flags], {});

  it('turn the memory and pids defaults on, with the documented values, and leave CPU without one', () => {
    expect(config().taskLimits.defaults).toEqual({ memoryBytes: 2 ** 30, pids: 1024 });
  });

  it('cap /tmp at half the node\'s memory unless told', () => {
    const { maxTmpBytes } = config().taskLimits;
    expect(maxTmpBytes).toBeGreaterThan(0);
    expect(maxTmpBytes % 2 ** 20).toBe(0);
    expect(config('--max-tmp-size', '256Mi').taskLimits.maxTmpBytes).toBe(256 * 2 ** 20);
  });

  it('bound all Tasks together at half the node\'s process table unless told, and max or 0 turns the budget off', () => {
    expect(config().taskLimits.tasksPidsMax).toBe(halfOfProcessTable());
    expect(halfOfProcessTable({ pidMax: '/proc/sys/kernel/no-such-file', threadsMax: '/proc/sys/kernel/no-such-file', pidNamespace: '/proc/self/ns/pid' })).toBeUndefined();
    expect(config('--tasks-pids-max', '300').taskLimits.tasksPidsMax).toBe(300);
    expect(config('--tasks-pids-max', 'max').taskLimits.tasksPidsMax).toBeUndefined();
    expect(config('--tasks-pids-max', '0').taskLimits.tasksPidsMax).toBeUndefined();
  });

  describe('the default budget, half of the node\'s process table', () => {
    let folder: string;
    beforeAll(() => {
      folder = mkdtempSync(path.join(tmpdir(), 'parafork-process-table-'));
    });
    afterAll(() => rmSync(folder, { recursive: true, force: true }));

    /** Files as the kernel shows them; `namespace` is what /proc/self/ns/pid would link to. */
    let made = 0;
    const tables = (pidMax: number, threadsMax: number, namespace: string) => {
      const name = String(made++);
      writeFileSync(path.join(folder, `${name}.pid_max`), `${pidMax}\n`);
      writeFileSync(path.join(folder, `${name}.threads-max`), `${threadsMax}\n`);
      const link = path.join(folder, `${name}.ns`);
      symlinkSync(namespace, link);
      return { pidMax: path.join(folder, `${name}.pid_max`), threadsMax: path.join(folder, `${name}.threads-max`), pidNamespace: link };
    };
    const nodeNamespace = 'pid:[4026531836]';
    const podNamespace = 'pid:[4026532412]';

    it('is half of pid_max where that is the smaller', () => {
      expect(halfOfProcessTable(tables(32_768, 192_735, nodeNamespace), 2)).toBe(16_384);
    });

    it('is half of threads-max where systemd raised pid_max above it', () => {
      expect(halfOfProcessTable(tables(4_194_304, 192_735, nodeNamespace), 2)).toBe(96_367);
    });

    it('in a pid namespace of its own, where pid_max reads 4194304 whatever the node\'s, takes the kernel\'s default pid_max instead', () => {
      expect(halfOfProcessTable(tables(4_194_304, 192_735, podNamespace), 2)).toBe(16_384);
      expect(halfOfProcessTable(tables(4_194_304, 192_735, podNamespace), 64)).toBe(32_768);
      // A smaller pid_max (a kernel before 6.14 shows the node's) stands.
      expect(halfOfProcessTable(tables(20_000, 192_735, podNamespace), 2)).toBe(10_000);
    });

    it('reads threads-max alone when pid_max cannot be read, and has no budget when neither can', () => {
      const { threadsMax } = tables(4_194_304, 50_000, nodeNamespace);
      expect(halfOfProcessTable({ pidMax: path.join(folder, 'absent'), threadsMax, pidNamespace: path.join(folder, 'absent') }, 2)).toBe(16_384);
      expect(halfOfProcessTable({ pidMax: path.join(folder, 'absent'), threadsMax, pidNamespace: '/proc/self/ns/pid' }, 2)).toBe(inNodePidNamespace() ? 25_000 : 16_384);
    });
  });

  it('take quantities, and none or 0 turns each default off', () => {
    expect(config('--default-memory', '512Mi', '--default-pids', '64', '--default-cpu', '250m').taskLimits.defaults).toEqual({ memoryBytes: 512 * 2 ** 20, pids: 64, cpuMillicores: 250 });
    expect(config('--default-memory', 'none', '--default-pids', '0', '--default-cpu', 'none').taskLimits.defaults).toEqual({});
  });

  it.each([
    ['--default-memory', '0.5'],
    ['--default-memory', '12 GB'],
    ['--default-pids', '-3'],
    ['--default-pids', '4194305'],
    ['--default-cpu', 'lots'],
    ['--max-tmp-size', 'none'],
    ['--max-tmp-size', '32Mi'],
    ['--tasks-pids-max', 'none'],
    ['--tasks-pids-max', '-1'],
    ['--tasks-pids-max', '4194305'],
  ])('refuse %s %s, naming the flag', (flag, value) => {
    expect(() => config(flag, value)).toThrow(ConfigError);
    expect(() => config(flag, value)).toThrow(flag);
  });
});

describe('the bound on a Task\'s socket buffers (memory.kmem.tcp.limit_in_bytes where memory is on cgroup v1)', () => {
  const withDefaultMemory: TaskLimitPolicy = { defaults: { memoryBytes: 2 ** 30 }, maxTmpBytes: 2 ** 30 };
  async function limitsOf(spec: Partial<TaskSpec>, policy = withDefaultMemory): Promise<unknown> {
    const result = await sandboxForTask({ command: ['/bin/true'], ...spec }, undefined, policy, undefined, privileged);
    if ('reason' in result) throw new Error(result.message);
    return result.limits;
  }

  it('is the memory limit for a Task with a network of its own (loopback) or the node\'s (host), the default one too', async () => {
    expect(await limitsOf({ sandbox: { network: 'loopback' }, resources: { limits: { memory: '64Mi' } } })).toEqual({ memoryBytes: 64 * 2 ** 20, socketBufferBytes: 64 * 2 ** 20 });
    expect(await limitsOf({ sandbox: { network: 'host' } })).toEqual({ memoryBytes: 2 ** 30, socketBufferBytes: 2 ** 30 });
  });

  it('is not set for a Task with network none (the default), whose spawns then carry nothing more', async () => {
    expect(await limitsOf({})).toEqual({ memoryBytes: 2 ** 30 });
    expect(await limitsOf({ sandbox: { network: 'none' } })).toEqual({ memoryBytes: 2 ** 30 });
  });

  it('is not set without a memory limit, as nothing bounds that Task\'s memory either', async () => {
    expect(await limitsOf({ sandbox: { network: 'loopback' } }, noDefaults)).toEqual({});
  });

  it('is not a limit the spec sets: a Task with only the default memory limit still reads as defaulted', async () => {
    const result = await sandboxForTask({ command: ['/bin/true'], sandbox: { network: 'loopback' } }, undefined, withDefaultMemory, undefined, privileged);
    expect('reason' in result ? result : result.specSetsLimits).toBe(false);
  });
});

describe('placeDefaultPidsLimit', () => {
  const limits = { memoryBytes: 2 ** 30, pids: 1024 };
  const leased = { runAsUser: 2_000_000_001, runAsGroup: 2_000_000_001 };

  it('moves a default pids limit to RLIMIT_NPROC for a Task with a uid of its own where pids is on cgroup v1', () => {
    expect(placeDefaultPidsLimit(limits, ['memory', 'pids'], leased, true, 'v1')).toEqual({ limits: { memoryBytes: 2 ** 30 }, sandbox: { ...leased, maxProcesses: 1024 } });
  });

  it('keeps the socket buffers\' bound of a Task with a network when it moves the pids limit', () => {
    expect(placeDefaultPidsLimit({ ...limits, socketBufferBytes: 2 ** 30 }, ['memory', 'pids'], leased, true, 'v1').limits).toEqual({ memoryBytes: 2 ** 30, socketBufferBytes: 2 ** 30 });
  });

  it('keeps pids.max for a limit the spec sets, a uid others may share, root, a userNamespace Task, and cgroup v2', () => {
    const kept = (...args: Parameters<typeof placeDefaultPidsLimit>) => placeDefaultPidsLimit(...args).limits.pids;
    expect(kept(limits, ['memory'], leased, true, 'v1')).toBe(1024);
    expect(kept(limits, ['memory', 'pids'], leased, false, 'v1')).toBe(1024);
    expect(kept(limits, ['memory', 'pids'], { runAsUser: 0 }, true, 'v1')).toBe(1024);
    expect(kept(limits, ['memory', 'pids'], { ...leased, userNamespace: true }, true, 'v1')).toBe(1024);
    expect(kept(limits, ['memory', 'pids'], leased, true, 'v2')).toBe(1024);
    expect(kept(limits, ['memory', 'pids'], leased, true, undefined)).toBe(1024);
  });
});

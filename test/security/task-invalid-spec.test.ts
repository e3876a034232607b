// Issue 12, finding 11: a spec that can never run (a NUL byte in an argument, an environment
// variable name with '=', a memory limit no cgroup takes) is the Task's own error. It ends as
// InvalidSpec with the field named, and is never retried, whatever backoffLimit says: another
// attempt would fail the same way. Before, these came back as SpawnFailed, or as
// SandboxUnavailable blaming the agent's CAP_SYS_ADMIN, and were retried backoffLimit times.
//
// The manifests pass `parafork run`'s schema check (the CRD's types and lengths) but break the
// CRD's CEL rules, which only an apiserver runs, or what the kernel takes: the agent must check
// them itself before a launch. Those naming a path this node lacks fail at the mount, which then
// says so. Needs root (parafork run sandboxes its Tasks).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Task } from '../../src/api/task.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { parafork, tasksOf, writeTask, type CliRun } from './standalone-cli.js';

const skip = missingRequirement('parafork run sandboxes its Tasks, which needs root', runningAsRoot);

/** Retries allowed and quick: the old code's retries finish within the test's time. */
const retried = { backoffLimit: 2, backoff: { initialSeconds: 1, maxSeconds: 1 } };

const cases: readonly { name: string; spec: Record<string, unknown>; field: RegExp }[] = [
  { name: 'nul-in-command', spec: { command: ['/bin/true\u0000--evil'] }, field: /spec\.command\[0\]/ },
  { name: 'nul-in-args', spec: { command: ['/bin/echo'], args: ['ok', 'a\u0000b'] }, field: /spec\.args\[1\]/ },
  { name: 'env-name-with-equals', spec: { command: ['/bin/true'], env: [{ name: 'A=B', value: 'x' }] }, field: /spec\.env\[0\]\.name/ },
  { name: 'env-name-not-identifier', spec: { command: ['/bin/true'], env: [{ name: '1 X', value: 'x' }] }, field: /spec\.env\[0\]\.name/ },
  { name: 'env-name-twice', spec: { command: ['/bin/true'], env: [{ name: 'A', value: '1' }, { name: 'A', value: '2' }] }, field: /spec\.env\[1\]\.name/ },
  { name: 'nul-in-env-value', spec: { command: ['/bin/true'], env: [{ name: 'A', value: 'x\u0000y' }] }, field: /spec\.env\[0\]\.value/ },
  { name: 'nul-in-working-dir', spec: { command: ['/bin/true'], workingDir: '/tmp\u0000/x' }, field: /spec\.workingDir/ },
  { name: 'relative-working-dir', spec: { command: ['/bin/true'], workingDir: 'tmp' }, field: /spec\.workingDir/ },
  { name: 'empty-command', spec: { command: [''] }, field: /spec\.command\[0\]/ },
  { name: 'memory-1e23', spec: { command: ['/bin/true'], resources: { limits: { memory: '1e23' } } }, field: /spec\.resources\.limits\.memory/ },
  { name: 'memory-fraction-of-a-byte', spec: { command: ['/bin/true'], resources: { limits: { memory: '0.4' } } }, field: /spec\.resources\.limits\.memory/ },
  { name: 'memory-not-a-quantity', spec: { command: ['/bin/true'], resources: { limits: { memory: '12 GB' } } }, field: /spec\.resources\.limits\.memory/ },
  { name: 'cpu-below-a-millicore', spec: { command: ['/bin/true'], resources: { limits: { cpu: '0.0001' } } }, field: /spec\.resources\.limits\.cpu/ },
  { name: 'cpu-1e30', spec: { command: ['/bin/true'], resources: { limits: { cpu: '1e30' } } }, field: /spec\.resources\.limits\.cpu/ },
  { name: 'tmp-size-fraction-of-a-byte', spec: { command: ['/bin/true'], sandbox: { tmpSizeLimit: '100m' } }, field: /spec\.sandbox\.tmpSizeLimit/ },
  { name: 'tmp-size-1e30', spec: { command: ['/bin/true'], sandbox: { tmpSizeLimit: '1e30' } }, field: /spec\.sandbox\.tmpSizeLimit/ },
  { name: 'relative-rootfs', spec: { command: ['/bin/true'], sandbox: { rootfs: 'srv/root' } }, field: /spec\.sandbox\.rootfs/ },
  { name: 'nul-in-host-path', spec: { command: ['/bin/true'], sandbox: { mounts: [{ hostPath: '/etc\u0000', mountPath: '/mnt' }] } }, field: /spec\.sandbox\.mounts\[0\]\.hostPath/ },
  { name: 'mount-over-root', spec: { command: ['/bin/true'], sandbox: { mounts: [{ hostPath: '/etc', mountPath: '/' }] } }, field: /spec\.sandbox\.mounts\[0\]\.mountPath/ },
  // Paths missing on this node: the mount fails (ENOENT, ENOTDIR), which is the spec's to fix, not
  // the agent's privileges.
  { name: 'missing-rootfs', spec: { command: ['/bin/true'], sandbox: { rootfs: '/nonexistent/root' } }, field: /spec\.sandbox\.rootfs "\/nonexistent\/root" is not a directory/ },
  { name: 'rootfs-is-a-file', spec: { command: ['/bin/true'], sandbox: { rootfs: '/etc/passwd' } }, field: /spec\.sandbox\.rootfs "\/etc\/passwd" is not a directory/ },
  { name: 'missing-host-path', spec: { command: ['/bin/true'], sandbox: { mounts: [{ hostPath: '/nonexistent/x', mountPath: '/mnt' }] } }, field: /spec\.sandbox\.mounts\[0\]\.hostPath "\/nonexistent\/x" does not exist/ },
  { name: 'missing-mount-point', spec: { command: ['/bin/true'], sandbox: { mounts: [{ hostPath: '/etc', mountPath: '/nonexistent-dir' }] } }, field: /spec\.sandbox\.mounts\[0\]\.mountPath "\/nonexistent-dir" does not exist/ },
  // Host paths the launcher refuses (the masked paths, the host's /proc and /sys writable): the
  // same rules are checked before a launch.
  { name: 'rootfs-is-masked', spec: { command: ['/bin/true'], sandbox: { rootfs: '/etc/hostname' } }, field: /spec\.sandbox\.rootfs must not be a masked path or lie inside one: \/etc\/hostname/ },
  { name: 'host-path-is-masked', spec: { command: ['/bin/true'], sandbox: { mounts: [{ hostPath: '/root', mountPath: '/mnt' }] } }, field: /spec\.sandbox\.mounts\[0\]\.hostPath must not be a masked path/ },
  { name: 'mount-point-in-masked-path', spec: { command: ['/bin/true'], sandbox: { mounts: [{ hostPath: '/etc', mountPath: '/run/etc' }] } }, field: /spec\.sandbox\.mounts\[0\]\.mountPath must not lie inside a masked path/ },
  { name: 'writable-host-root', spec: { command: ['/bin/true'], sandbox: { mounts: [{ hostPath: '/', mountPath: '/mnt', readOnly: false }] } }, field: /spec\.sandbox\.mounts\[0\]\.readOnly must be true for a host path in or holding the host's \/proc/ },
];

describe.skipIf(skip !== undefined)(`a Task spec that can never run${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  let run: CliRun;
  let tasks: Map<string, Task>;

  beforeAll(async () => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-invalid-spec-'));
    for (const { name, spec } of cases) writeTask(scratch, name, { ...spec, ...retried });
    writeTask(scratch, 'valid', { command: ['/bin/true'], ...retried });
    // Privileged: below it, host paths outside --allowed-host-paths are Forbidden (sandbox-policy.test.ts)
    // before the checks and mounts whose messages this file is about.
    run = await parafork(['run', '-f', scratch, '-o', 'json', '--sandbox-policy', 'privileged'], 90_000);
    tasks = tasksOf(run);
  }, 100_000);

  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('fails the run (exit 1) and still runs the valid Task beside them', () => {
    expect(run.status).toBe(1);
    expect(tasks.get('valid')?.status).toMatchObject({ phase: 'Succeeded', reason: 'Completed' });
  });

  it.each(cases)('$name: InvalidSpec naming the field, never retried', ({ name, field }) => {
    const status = tasks.get(name)?.status;
    expect(status, `Task ${name}`).toMatchObject({ phase: 'Failed', reason: 'InvalidSpec' });
    expect(status?.message).toMatch(field);
    // Refused before any process: no attempt ran, none will.
    expect(status?.attempts ?? 0).toBeLessThanOrEqual(1);
    expect(status?.nextRetryTime).toBeUndefined();
    // The Task's own error, not the node's: nothing about capabilities or the sandbox.
    expect(status?.message).not.toMatch(/CAP_SYS_ADMIN|cannot build the sandbox/);
  });
});

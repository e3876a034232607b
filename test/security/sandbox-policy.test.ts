// Issue 14: who may loosen the sandbox. Before it, whoever could write a Task manifest could ask for
// uid 0 with a writable mount of any host path (a setuid-root file planted on the node), the node's
// network, no system call filter, a read-only view of the node's cgroupfs, and so on: every field
// that loosens the sandbox was granted to everyone. Now a Task runs at a sandbox policy level
// (restricted by default, baseline, privileged: docs/security.md), and a Task asking for more than
// its level never starts: phase Failed, reason Forbidden, the message naming the field and the
// level.
//
// These run the built CLI (`parafork run`, `agent --manifests`) as an operator would, with no
// --sandbox-policy: the level is the default one. Each refused Task would leave a marker file on
// the host if it ran (where its spec gives it a way to write one); none may be there. Needs root
// (parafork run sandboxes its Tasks).
import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Task } from '../../src/api/task.js';
import { Launcher, SpawnError } from '../../src/index.js';
import { sandboxForTask } from '../../src/sandbox/task-sandbox.js';
import { runSandboxed } from './sandbox-helpers.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { makeTaskVisibleScratch } from '../helpers/task-visible-scratch.js';
import { waitFor } from '../helpers/wait-for.js';
import { parafork, startManifestAgent, tasksOf, writeTask, type CliRun } from './standalone-cli.js';

const skip = missingRequirement('parafork run sandboxes its Tasks, which needs root', runningAsRoot);

// Not under /tmp: a Task's /tmp is a private tmpfs, so a Task with a writable root could not reach
// a marker folder there; nor /var/tmp, masked. A folder of the root's own, seen through a writable
// root as it is (test/helpers/task-visible-scratch.ts).

/** A shell command that writes `marker` (a path the Task sees) and succeeds. */
const writeMarker = (marker: string): string[] => ['/bin/sh', '-c', `echo started > ${marker}`];

interface PolicyCase {
  readonly name: string;
  /** spec.sandbox of the Task; `scratch` is a world-writable host folder of the test's own. */
  readonly sandbox: (scratch: string) => Record<string, unknown>;
  /** The marker the Task would write if it ran, as the host sees it (undefined: it has nowhere to write). */
  readonly marker?: (scratch: string) => string;
  /** The command, given the marker's path as the Task sees it. */
  readonly command: (scratch: string) => string[];
  readonly field: string;
  readonly needs: 'baseline' | 'privileged';
}

const writableScratch = (scratch: string): Record<string, unknown> => ({ hostPath: scratch, mountPath: '/mnt', readOnly: false });

const cases: readonly PolicyCase[] = [
  // uid 0 with a writable host path: the node's root files, a setuid-root binary planted on the node.
  { name: 'root-user', sandbox: (scratch) => ({ runAsUser: 0, mounts: [writableScratch(scratch)] }), marker: (scratch) => `${scratch}/root-user`, command: () => writeMarker('/mnt/root-user'), field: 'spec.sandbox.runAsUser', needs: 'privileged' },
  { name: 'root-group', sandbox: (scratch) => ({ runAsGroup: 0, mounts: [writableScratch(scratch)] }), marker: (scratch) => `${scratch}/root-group`, command: () => writeMarker('/mnt/root-group'), field: 'spec.sandbox.runAsGroup', needs: 'privileged' },
  // A host account's uid: its files, its per-user kernel limits.
  { name: 'host-user', sandbox: () => ({ runAsUser: 1000 }), command: () => ['/bin/true'], field: 'spec.sandbox.runAsUser', needs: 'baseline' },
  { name: 'host-network', sandbox: () => ({ network: 'host' }), command: () => ['/bin/true'], field: 'spec.sandbox.network', needs: 'privileged' },
  { name: 'loopback-network', sandbox: () => ({ network: 'loopback' }), command: () => ['/bin/true'], field: 'spec.sandbox.network', needs: 'baseline' },
  { name: 'unconfined-seccomp', sandbox: () => ({ seccomp: { type: 'Unconfined' } }), command: () => ['/bin/true'], field: 'spec.sandbox.seccomp.type', needs: 'privileged' },
  // The agent's root (/) writable: the test's folder of the node's root among the rest.
  { name: 'writable-root', sandbox: () => ({ readOnlyRootFilesystem: false }), marker: (scratch) => `${scratch}/writable-root`, command: (scratch) => writeMarker(`${scratch}/writable-root`), field: 'spec.sandbox.readOnlyRootFilesystem', needs: 'privileged' },
  { name: 'host-path', sandbox: (scratch) => ({ mounts: [{ hostPath: scratch, mountPath: '/mnt' }] }), command: () => ['/bin/true'], field: 'spec.sandbox.mounts[0].hostPath', needs: 'privileged' },
  { name: 'writable-host-path', sandbox: (scratch) => ({ mounts: [writableScratch(scratch)] }), marker: (scratch) => `${scratch}/writable-host-path`, command: () => writeMarker('/mnt/writable-host-path'), field: 'spec.sandbox.mounts[0].hostPath', needs: 'privileged' },
  // The node's cgroupfs, even read-only: every Pod's and Task's limits and processes on the node.
  { name: 'cgroupfs', sandbox: () => ({ mounts: [{ hostPath: '/sys/fs/cgroup', mountPath: '/mnt' }] }), command: () => ['/bin/true'], field: 'spec.sandbox.mounts[0].hostPath', needs: 'privileged' },
  { name: 'other-rootfs', sandbox: () => ({ rootfs: '/usr' }), command: () => ['/bin/true'], field: 'spec.sandbox.rootfs', needs: 'privileged' },
];

/** Refused before any process: Failed, Forbidden, the field and the level named, no attempt, no marker. */
function expectForbidden(task: Task | undefined, field: string, level: string, marker: string | undefined): void {
  const status = task?.status;
  expect(status, `Task ${task?.metadata.name}`).toMatchObject({ phase: 'Failed', reason: 'Forbidden' });
  expect(status?.message).toContain(`${field} `);
  expect(status?.message).toContain(`sandbox policy level ${level}`);
  expect(status?.attempts ?? 0).toBe(0);
  expect(status?.startTime).toBeUndefined();
  expect(status?.hostIdentity).toBeUndefined();
  if (marker !== undefined) expect(existsSync(marker), `${marker} exists: the Task ran`).toBe(false);
}

describe.skipIf(skip !== undefined)(`the sandbox policy${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;

  beforeAll(() => {
    scratch = makeTaskVisibleScratch('parafork-policy-');
    chmodSync(scratch, 0o1777); // a Task's own uid could write its marker here
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  describe('parafork run at the default level (restricted)', () => {
    let run: CliRun;
    let tasks: Map<string, Task>;
    let folder: string;

    beforeAll(async () => {
      folder = mkdtempSync(path.join(scratch, 'manifests-'));
      for (const entry of cases) writeTask(folder, entry.name, { command: entry.command(scratch), sandbox: entry.sandbox(scratch), backoffLimit: 2, backoff: { initialSeconds: 1, maxSeconds: 1 } });
      writeTask(folder, 'default-sandbox', { command: ['/bin/true'] });
      writeTask(folder, 'user-namespace-root', { command: ['/bin/true'], sandbox: { userNamespace: true, runAsUser: 0, runAsGroup: 0 } });
      run = await parafork(['run', '-f', folder, '-o', 'json'], 60_000);
      tasks = tasksOf(run);
    }, 70_000);

    it('fails the run (exit 1) and runs what restricted allows: the default sandbox, root inside a user namespace', () => {
      expect(run.status, run.stderr).toBe(1);
      expect(tasks.get('default-sandbox')?.status).toMatchObject({ phase: 'Succeeded' });
      expect(tasks.get('user-namespace-root')?.status).toMatchObject({ phase: 'Succeeded' });
    });

    it.each(cases)('$name: Forbidden naming $field, never started', ({ name, field, needs, marker }) => {
      const task = tasks.get(name);
      expectForbidden(task, field, 'restricted', marker?.(scratch));
      expect(task?.status?.message).toContain(`needs level ${needs}`);
    });
  });

  it('runs each of them with --sandbox-policy privileged', async () => {
    const folder = mkdtempSync(path.join(scratch, 'privileged-'));
    const own = mkdtempSync(path.join(scratch, 'markers-'));
    chmodSync(own, 0o1777);
    const markerCases = cases.filter((entry) => entry.marker !== undefined);
    for (const entry of markerCases) writeTask(folder, entry.name, { command: entry.command(own), sandbox: entry.sandbox(own) });
    const run = await parafork(['run', '-f', folder, '-o', 'json', '--sandbox-policy', 'privileged'], 60_000);
    const tasks = tasksOf(run);
    for (const entry of markerCases) {
      expect(tasks.get(entry.name)?.status, entry.name).toMatchObject({ phase: 'Succeeded' });
      expect(existsSync(entry.marker?.(own) ?? ''), entry.name).toBe(true);
    }
  }, 70_000);

  describe('--allowed-host-paths', () => {
    let allowed: string;
    let beside: string;

    beforeAll(() => {
      allowed = mkdtempSync(path.join(scratch, 'allowed-'));
      beside = mkdtempSync(path.join(scratch, 'beside-'));
      chmodSync(allowed, 0o1777);
      chmodSync(beside, 0o1777);
      mkdirSync(path.join(allowed, 'below'), { mode: 0o1777 });
      chmodSync(path.join(allowed, 'below'), 0o1777);
      symlinkSync(beside, path.join(allowed, 'link-beside'));
      symlinkSync(path.join(allowed, 'below'), path.join(allowed, 'link-below'));
    });

    it('admits a path below an allowed one (writable at baseline) and refuses one beside it, through a symlink or ..', async () => {
      const folder = mkdtempSync(path.join(scratch, 'paths-'));
      const mountOf = (hostPath: string, readOnly = false): Record<string, unknown> => ({ mounts: [{ hostPath, mountPath: '/mnt', readOnly }] });
      writeTask(folder, 'below', { command: writeMarker('/mnt/below-marker'), sandbox: mountOf(path.join(allowed, 'below')) });
      writeTask(folder, 'below-through-link', { command: writeMarker('/mnt/link-marker'), sandbox: mountOf(path.join(allowed, 'link-below')) });
      writeTask(folder, 'beside', { command: writeMarker('/mnt/beside-marker'), sandbox: mountOf(beside) });
      writeTask(folder, 'beside-through-link', { command: writeMarker('/mnt/beside-link-marker'), sandbox: mountOf(path.join(allowed, 'link-beside')) });
      writeTask(folder, 'beside-through-dotdot', { command: writeMarker('/mnt/beside-dotdot-marker'), sandbox: mountOf(`${allowed}/../${path.basename(beside)}`) });
      const run = await parafork(['run', '-f', folder, '-o', 'json', '--sandbox-policy', 'baseline', '--allowed-host-paths', allowed], 60_000);
      const tasks = tasksOf(run);
      expect(tasks.get('below')?.status, run.stderr).toMatchObject({ phase: 'Succeeded' });
      expect(existsSync(path.join(allowed, 'below', 'below-marker'))).toBe(true);
      expect(tasks.get('below-through-link')?.status).toMatchObject({ phase: 'Succeeded' });
      expect(existsSync(path.join(allowed, 'below', 'link-marker'))).toBe(true);
      expectForbidden(tasks.get('beside'), 'spec.sandbox.mounts[0].hostPath', 'baseline', path.join(beside, 'beside-marker'));
      expectForbidden(tasks.get('beside-through-link'), 'spec.sandbox.mounts[0].hostPath', 'baseline', path.join(beside, 'beside-link-marker'));
      expect(tasks.get('beside-through-link')?.status?.message).toContain(`resolves to "${beside}"`);
      expectForbidden(tasks.get('beside-through-dotdot'), 'spec.sandbox.mounts[0].hostPath', 'baseline', path.join(beside, 'beside-dotdot-marker'));
    }, 70_000);

    it('refuses a writable mount below an allowed path at restricted, and admits it read-only', async () => {
      const folder = mkdtempSync(path.join(scratch, 'restricted-paths-'));
      writeTask(folder, 'read-only', { command: ['/bin/true'], sandbox: { mounts: [{ hostPath: allowed, mountPath: '/mnt' }] } });
      writeTask(folder, 'writable', { command: writeMarker('/mnt/restricted-marker'), sandbox: { mounts: [{ hostPath: allowed, mountPath: '/mnt', readOnly: false }] } });
      const run = await parafork(['run', '-f', folder, '-o', 'json', '--allowed-host-paths', allowed], 60_000);
      const tasks = tasksOf(run);
      expect(tasks.get('read-only')?.status, run.stderr).toMatchObject({ phase: 'Succeeded' });
      expectForbidden(tasks.get('writable'), 'spec.sandbox.mounts[0].readOnly', 'restricted', path.join(allowed, 'restricted-marker'));
    }, 70_000);

    it.each([
      ['/', 'the root'],
      ['/proc', 'the kernel'],
      ['/sys/fs/cgroup', 'the kernel'],
      ['/dev', 'devices'],
      ['/var/run', '/run'],
      ['/run/parafork', '/run'],
    ])('refuses to start with %s in the list (%s)', async (entry) => {
      const run = await parafork(['run', '-f', path.resolve('examples/hello.yaml'), '--allowed-host-paths', entry], 30_000);
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/--allowed-host-paths .* must not/);
    });
  });

  it('agent --manifests applies its --sandbox-policy to every Task of the folder (no namespace labels there)', async () => {
    const folder = mkdtempSync(path.join(scratch, 'agent-'));
    writeTask(folder, 'host-network', { command: ['/bin/true'], sandbox: { network: 'host' } });
    writeTask(folder, 'loopback', { command: ['/bin/true'], sandbox: { network: 'loopback' } });
    const agent = await startManifestAgent(folder, ['--sandbox-policy', 'baseline']);
    try {
      const tasks = await waitFor(async () => {
        const now = await agent.tasks();
        return ['host-network', 'loopback'].every((name) => ['Succeeded', 'Failed'].includes(now.get(name)?.status?.phase ?? '')) ? now : undefined;
      }, { timeoutMs: 20_000, description: 'both Tasks to end' });
      expectForbidden(tasks.get('host-network'), 'spec.sandbox.network', 'baseline', undefined);
      expect(tasks.get('loopback')?.status).toMatchObject({ phase: 'Succeeded' });
      // The refusal is also logged, as the cluster agent records it as an Event.
      expect(agent.logs()).toMatch(/"reason":"Forbidden"/);
    } finally {
      await agent.stop();
    }
  }, 40_000);

  // The race between the check and the mount: the agent checks a host path (links resolved), then
  // the spawn thread and the child mount it. Whoever can write inside an allowed directory (a
  // baseline Task with a writable mount of it) could swap a directory there for a link out in
  // between. The path is opened beneath its allowed directory when the spawn is prepared
  // (openat2 RESOLVE_BENEATH), and that open file is what is mounted.
  describe('between the check and the mount', () => {
    let launcher: Launcher;
    let allowed: string;
    let outside: string;

    beforeAll(() => {
      launcher = new Launcher();
      allowed = mkdtempSync(path.join(scratch, 'race-allowed-'));
      outside = mkdtempSync(path.join(scratch, 'race-outside-'));
      chmodSync(outside, 0o1777);
      writeFileSync(path.join(outside, 'secret'), 'outside\n');
    });
    afterAll(() => launcher.close());

    it('refuses a directory swapped for a link out of the allowed path after the check (EXDEV), and never mounts it', async () => {
      const shared = path.join(allowed, 'shared');
      mkdirSync(shared);
      const checked = await sandboxForTask({ command: ['/bin/true'], sandbox: { mounts: [{ hostPath: shared, mountPath: '/mnt', readOnly: false }] } }, undefined, undefined, undefined, { level: 'baseline', allowedHostPaths: [allowed] });
      if ('reason' in checked) throw new Error(checked.message);
      // What a racing Task would do: the checked directory becomes a link to a folder outside.
      renameSync(shared, `${shared}.old`);
      symlinkSync(outside, shared);
      const spawned = launcher.spawn({ file: '/bin/sh', args: ['-c', 'echo planted > /mnt/planted'], env: { PATH: '/usr/bin:/bin' }, sandbox: checked.sandbox, cwd: checked.cwd });
      await expect(spawned).rejects.toBeInstanceOf(SpawnError);
      await expect(spawned).rejects.toMatchObject({ code: 'EXDEV', syscall: 'openat2' });
      expect(existsSync(path.join(outside, 'planted'))).toBe(false);
    });

    // Red team, session 16: the path was opened beneath its allowed directory, but that directory
    // was opened by name, links followed. An allowed directory inside another (`--allowed-host-paths
    // /data,/data/shared`) can be swapped by a baseline Task with a writable mount of the outer one,
    // and a mount checked beneath the inner one then came from wherever the link led: a directory
    // outside every allowed path (or, swapped after the launcher's own resolution at the spawn,
    // the node's /etc without the masks that resolution adds). The same for a path that did not exist yet at the check, which was
    // admitted beneath the allowed directory as named. The allowed directory is now opened as the
    // check resolved it, without following any link (ELOOP: Forbidden).
    it.each([
      { case: 'a path that existed at the check', hostPath: 'sub' },
      { case: 'a path that did not exist yet at the check', hostPath: 'later' },
    ])('refuses an allowed directory swapped for a link out after the check by whoever can write its parent ($case), and never mounts it', async ({ hostPath }) => {
      const outer = mkdtempSync(path.join(scratch, 'race-outer-'));
      const inner = path.join(outer, 'inner');
      mkdirSync(path.join(inner, 'sub'), { recursive: true });
      for (const name of ['sub', 'later']) {
        mkdirSync(path.join(outside, name), { recursive: true });
        chmodSync(path.join(outside, name), 0o1777);
      }
      const checked = await sandboxForTask({ command: ['/bin/true'], sandbox: { mounts: [{ hostPath: path.join(inner, hostPath), mountPath: '/mnt', readOnly: false }] } }, undefined, undefined, undefined, { level: 'baseline', allowedHostPaths: [inner, outer] });
      if ('reason' in checked) throw new Error(checked.message);
      // What a racing Task with a writable mount of the outer directory would do.
      renameSync(inner, `${inner}.old`);
      symlinkSync(outside, inner);
      const spawned = launcher.spawn({ file: '/bin/sh', args: ['-c', 'echo planted > /mnt/planted'], env: { PATH: '/usr/bin:/bin' }, sandbox: checked.sandbox, cwd: checked.cwd });
      await spawned.then((child) => child.exited).catch(() => undefined);
      expect(existsSync(path.join(outside, hostPath, 'planted')), 'the Task wrote outside the allowed paths').toBe(false);
      await expect(spawned).rejects.toMatchObject({ code: 'ELOOP', syscall: 'openat2' });
    });

    it('mounts what the check admitted, a link inside the allowed path included', async () => {
      const real = path.join(allowed, 'real');
      mkdirSync(real);
      writeFileSync(path.join(real, 'file'), 'inside\n');
      symlinkSync('real', path.join(allowed, 'relative-link'));
      const checked = await sandboxForTask({ command: ['/bin/true'], sandbox: { mounts: [{ hostPath: path.join(allowed, 'relative-link'), mountPath: '/mnt' }] } }, undefined, undefined, undefined, { level: 'restricted', allowedHostPaths: [allowed] });
      if ('reason' in checked) throw new Error(checked.message);
      expect(checked.sandbox.mounts?.[0]).toMatchObject({ hostPath: real, beneath: allowed });
      const run = await runSandboxed(launcher, '/bin/cat', ['/mnt/file'], checked.sandbox);
      expect(run.stdout).toBe('inside\n');
    });

    it('opens a launcher mount given `beneath` only inside it: a link out fails with EXDEV, `..` is refused before', async () => {
      symlinkSync(outside, path.join(allowed, 'out'));
      await expect(launcher.spawn({ file: '/bin/true', sandbox: { mounts: [{ hostPath: path.join(allowed, 'out'), mountPath: '/mnt', beneath: allowed }] } })).rejects.toMatchObject({ code: 'EXDEV', syscall: 'openat2' });
      await expect(launcher.spawn({ file: '/bin/true', sandbox: { rootfs: path.join(allowed, 'out'), rootfsBeneath: allowed } })).rejects.toMatchObject({ code: 'EXDEV', syscall: 'openat2' });
      await expect(launcher.spawn({ file: '/bin/true', sandbox: { mounts: [{ hostPath: `${allowed}/../x`, mountPath: '/mnt', beneath: allowed }] } })).rejects.toThrow(/beneath must be a directory/);
      await expect(launcher.spawn({ file: '/bin/true', sandbox: { mounts: [{ hostPath: outside, mountPath: '/mnt', beneath: allowed }] } })).rejects.toThrow(/is not below/);
    });
  });
});

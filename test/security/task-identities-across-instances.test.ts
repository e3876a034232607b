// Red team (issue 12's promise: no Task shares a host uid with another, so none shares the kernel's
// per-user limits with it). Host ids are shared out between the parafork instances of a machine
// through lock files, one per block of 65536 ids. The lock files were looked for in
// `<state-dir>/ids`, so two instances with different state directories (an agent given
// `--state-dir`, beside `parafork run` or a second agent) each took the first block and gave their
// first Tasks the same uid: each could hold all of that uid's inotify instances, processes
// (RLIMIT_NPROC, the pids default on cgroup v1) or pipe pages and leave the other's Task none.
// The lock files now live in one place per machine, whatever the state directory.
//
// Runs two `agent --manifests` as an operator would, each with a state folder of its own (the
// test helper's, in /tmp), one sleeping Task each, and compares the uids their statuses report.
// Needs root (the sandbox) and a build.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { waitFor } from '../helpers/wait-for.js';
import { type ManifestAgent, startManifestAgent, writeTask } from './standalone-cli.js';

const skip = missingRequirement('parafork sandboxes the Tasks it runs, which needs root', runningAsRoot);

describe.skipIf(skip !== undefined)(`two parafork instances with state directories of their own${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  const agents: ManifestAgent[] = [];

  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-identities-instances-'));
  });
  afterAll(async () => {
    await Promise.all(agents.map((agent) => agent.stop()));
    rmSync(scratch, { recursive: true, force: true });
  });

  it('never give their running Tasks the same host uid', async () => {
    const folders = ['first', 'second'].map((name) => mkdtempSync(path.join(scratch, `${name}-folder-`)));
    folders.forEach((folder, index) => writeTask(folder, `sleeper-${index}`, { command: ['/bin/sleep', '20'] }));
    for (const folder of folders) agents.push(await startManifestAgent(folder));
    const uids = await Promise.all(agents.map((agent, index) => waitFor(async () => {
      const task = (await agent.tasks()).get(`sleeper-${index}`);
      return task?.status?.phase === 'Running' ? task.status.hostIdentity?.uid : undefined;
    }, { timeoutMs: 20_000, description: `agent ${index}'s Task to run` })));
    expect(uids[0]).toBeGreaterThan(65535);
    expect(uids[1]).toBeGreaterThan(65535);
    expect(uids[0]).not.toBe(uids[1]);
  });

  // Red team: an instance refused a spec's host id inside its own --task-ids range (those ids are
  // leased to Tasks as their own), but not one inside another instance's range on the same node:
  // a baseline Task of the second instance named the uid the first had leased to its Task, and
  // ran as it beside it (its processes, its files, its per-user limits). Each instance now records
  // its range under /run/parafork/ids for as long as it runs, and every instance refuses those ids.
  it("refuse below privileged a host id in another running instance's --task-ids range", async () => {
    const otherRange = { first: 0x60000000, last: 0x6000ffff };
    const leasingFolder = mkdtempSync(path.join(scratch, 'leasing-folder-'));
    writeTask(leasingFolder, 'leased', { command: ['/bin/sleep', '20'] });
    const leasing = await startManifestAgent(leasingFolder, ['--task-ids', `${otherRange.first}-${otherRange.last}`]);
    agents.push(leasing);
    const leasedUid = await waitFor(async () => {
      const task = (await leasing.tasks()).get('leased');
      return task?.status?.phase === 'Running' ? task.status.hostIdentity?.uid : undefined;
    }, { timeoutMs: 20_000, description: 'the leasing instance\'s Task to run' });
    expect(leasedUid).toBeGreaterThanOrEqual(otherRange.first);
    expect(leasedUid).toBeLessThanOrEqual(otherRange.last);

    const namingFolder = mkdtempSync(path.join(scratch, 'naming-folder-'));
    writeTask(namingFolder, 'names-its-uid', { command: ['/usr/bin/id', '-u'], sandbox: { runAsUser: leasedUid, runAsGroup: leasedUid } });
    const naming = await startManifestAgent(namingFolder, ['--sandbox-policy', 'baseline']);
    agents.push(naming);
    const ended = await waitFor(async () => {
      const task = (await naming.tasks()).get('names-its-uid');
      return task?.status?.phase === 'Succeeded' || task?.status?.phase === 'Failed' ? task : undefined;
    }, { timeoutMs: 20_000, description: 'the naming instance\'s Task to end' });
    expect(ended.status?.phase).toBe('Failed');
    expect(ended.status?.reason).toBe('Forbidden');
    expect(ended.status?.message).toContain(`${otherRange.first}-${otherRange.last}`);
  });

  // Red team, session 16: blocks are shared out through lock files named by each block's first
  // id, so instances whose --task-ids overlap with blocks out of step (a second agent or a test
  // run given a range of its own, a range changed in a DaemonSet update) locked different files
  // for the same ids: the second instance ran its first Task as the uid the first had leased to
  // its second running Task. A range that overlaps a running instance's out of step now refuses
  // to start, naming the other's range.
  it("refuse to start with a --task-ids range that overlaps a running instance's with blocks out of step", async () => {
    const first = 0x62000000;
    const runningFolder = mkdtempSync(path.join(scratch, 'running-folder-'));
    for (const name of ['first-sleeper', 'second-sleeper']) writeTask(runningFolder, name, { command: ['/bin/sleep', '30'] });
    const running = await startManifestAgent(runningFolder, ['--task-ids', `${first}-${first + 65535}`]);
    agents.push(running);
    const leased = await waitFor(async () => {
      const tasks = [...(await running.tasks()).values()];
      const uids = tasks.map((task) => (task.status?.phase === 'Running' ? task.status.hostIdentity?.uid : undefined));
      return uids.length === 2 && uids.every((uid) => uid !== undefined) ? uids : undefined;
    }, { timeoutMs: 20_000, description: 'the first instance\'s two Tasks to run' });
    expect(leased.sort()).toEqual([first, first + 1]);

    const besideFolder = mkdtempSync(path.join(scratch, 'beside-folder-'));
    writeTask(besideFolder, 'beside', { command: ['/bin/sleep', '30'] });
    let refusal = '';
    try {
      const beside = await startManifestAgent(besideFolder, ['--task-ids', `${first + 1}-${first + 65536}`]);
      agents.push(beside);
      const ranAs = await waitFor(async () => {
        const task = (await beside.tasks()).get('beside');
        return task?.status?.phase === 'Running' ? task.status.hostIdentity?.uid : undefined;
      }, { timeoutMs: 20_000, description: 'the second instance\'s Task to run' });
      expect(leased, `the second instance's Task ran as ${ranAs}, leased to the first instance's Task`).not.toContain(ranAs);
    } catch (error) {
      refusal = (error as Error).message;
    }
    expect(refusal).toContain('exited (1) before it was ready');
    expect(refusal).toContain(`--task-ids ${first + 1}-${first + 65536} overlaps ${first}-${first + 65535}, the range of another parafork instance`);
  });
});

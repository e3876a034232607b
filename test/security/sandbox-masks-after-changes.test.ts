// Masked paths against the node changing its own files while the agent runs. Tasks without mounts
// share a filesystem template made once per root and masked-path list (native/src/
// sandbox_resources.h), whose masks are bind mounts on the paths as they were then. The node does
// not hold still: it replaces files by renaming a new one over the old (hostnamectl and passwd
// write /etc/hostname and /etc/shadow so, cloud-init and kubeadm write /etc/hosts and
// /etc/kubernetes), and the kernel then detaches every mount on the old file in every mount
// namespace (mounts on an unlinked or renamed-over dentry go, since Linux 3.18); and it creates
// paths that did not exist yet (kubeadm join, a new host key). Red team: after either, every later
// Task read the node's file through the template, unmasked, until the agent restarted.
//
// The paths here are the test's own (a directory under /var/lib/parafork-tests, the node's files are never
// touched), masked through the launcher's maskedPaths. Needs root (the sandbox).
import { chmodSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { defaultMaskedPaths, Launcher } from '../../src/index.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { makeTaskVisibleScratch } from '../helpers/task-visible-scratch.js';
import { runSandboxed } from './sandbox-helpers.js';

const skip = missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root)', runningAsRoot);

/** What a Task sees at each path: its content, or the error cat gives. */
async function readInTask(launcher: Launcher, maskedPaths: readonly string[], files: readonly string[]): Promise<string> {
  const script = files.map((file) => `printf '%s=' ${file}; cat ${file} 2>&1 | tr -d '\\n'; echo`).join('\n');
  const run = await runSandboxed(launcher, '/bin/sh', ['-c', script], { maskedPaths });
  expect(run.code, run.stderr).toBe(0);
  return run.stdout;
}

describe.skipIf(skip !== undefined)(`masked paths the node changes after the template was made${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;
  let directory: string;
  beforeAll(() => {
    launcher = new Launcher();
    directory = makeTaskVisibleScratch('parafork-mask-changes-');
    chmodSync(directory, 0o755);
  });
  afterAll(async () => {
    await launcher.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it('masks a file the node replaces (renames another over), and one it creates, for Tasks started after', async () => {
    const replaced = path.join(directory, 'identity');
    const created = path.join(directory, 'created-later');
    writeFileSync(replaced, 'node-identity-1\n', { mode: 0o644 });
    const maskedPaths = [...defaultMaskedPaths, replaced, created];
    // The template is made for this list now: the file masked, the other absent.
    expect(await readInTask(launcher, maskedPaths, [replaced, created])).toBe(
      `${replaced}=\n${created}=cat: ${created}: No such file or directory\n`,
    );

    const incoming = path.join(directory, 'identity.new');
    writeFileSync(incoming, 'node-identity-2\n', { mode: 0o644 });
    renameSync(incoming, replaced);
    writeFileSync(created, 'node-secret\n', { mode: 0o644 });
    // Past the template's recheck interval (100 ms).
    await new Promise((resolve) => setTimeout(resolve, 250));

    expect(await readInTask(launcher, maskedPaths, [replaced, created])).toBe(`${replaced}=\n${created}=\n`);
  });
});

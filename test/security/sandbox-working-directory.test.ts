// Red team: a Task's working directory (spec.workingDir) was entered while the child was still
// the agent's root, before it dropped to the Task's ids. Root passes every directory's search
// permission, so a Task could start inside a directory its own uid may not enter (a 0700 parent
// that guards an application's files, certificates, another user's tree) and read what lies
// below it by relative paths: the guarding directory was never searched again. The child now
// enters the working directory as the Task's user, so it fails as it would for that user.
//
// The guarded tree is the test's own, under /var/tmp (the host's /tmp is not in a Task's view):
// a 0700 directory of root's, an open directory inside it and a marker file. Needs root.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher } from '../../src/index.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';

const skip = missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root)', runningAsRoot);

describe.skipIf(skip !== undefined)(`a Task's working directory${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;
  let scratch: string;
  let inner: string;

  beforeAll(() => {
    launcher = new Launcher();
    scratch = mkdtempSync('/var/tmp/parafork-working-directory-');
    const guard = path.join(scratch, 'guard');
    inner = path.join(guard, 'inner');
    mkdirSync(inner, { recursive: true, mode: 0o755 });
    writeFileSync(path.join(inner, 'marker'), 'guarded-marker-5e1f\n', { mode: 0o644 });
    // Only the guard keeps others out, as a 0700 home or application directory does.
    chmodSync(guard, 0o700);
  });

  afterAll(async () => {
    await launcher.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('cannot be a directory its user may not reach: the spawn fails with EACCES from chdir, nothing read', async () => {
    const spawning = launcher.spawn({ file: '/bin/cat', args: ['marker'], cwd: inner, stdout: 'pipe', sandbox: {} });
    await expect(spawning).rejects.toMatchObject({ code: 'EACCES', syscall: 'chdir' });
  });

  it('is entered as the Task s user where that user may reach it', async () => {
    // As root (runAsUser 0) the guard is root's own directory, so the Task may enter it.
    const rooted = await launcher.spawn({ file: '/bin/cat', args: ['marker'], cwd: inner, stdout: 'pipe', sandbox: { runAsUser: 0, runAsGroup: 0 } });
    let output = '';
    rooted.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    await rooted.exited;
    expect(output).toBe('guarded-marker-5e1f\n');
  });
});

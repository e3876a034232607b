// `parafork run --seccomp-profile-dir DIR`: Tasks with sandbox.seccomp type Localhost run under
// the named profile, and a Task whose profile is missing, invalid or out of bounds fails with the
// reason in its status while the others run on. Runs the built CLI. Needs root (the sandbox).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';

const cli = path.resolve('dist/cli/main.js');
const skip = missingRequirement('parafork run sandboxes its Tasks, which needs root', runningAsRoot);

interface TaskStatus {
  phase: string;
  reason?: string;
  message?: string;
  exitCode?: number;
  stderrTail?: string;
}

describe.skipIf(skip !== undefined)(`parafork run with Localhost seccomp profiles${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  let profiles: string;
  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-run-seccomp-'));
    profiles = path.join(scratch, 'profiles');
    mkdirSync(path.join(profiles, 'team'), { recursive: true });
    const allowList = JSON.parse(readFileSync(new URL('../security/fixtures/allow-list-profile.json', import.meta.url), 'utf8')) as { syscalls: { names: string[] }[] };
    for (const rule of allowList.syscalls) rule.names = rule.names.filter((name) => name !== 'mkdir' && name !== 'mkdirat');
    allowList.syscalls.push({ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 18 } as { names: string[] });
    writeFileSync(path.join(profiles, 'team', 'no-mkdir.json'), JSON.stringify(allowList));
    writeFileSync(path.join(profiles, 'broken.json'), '{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALOW"}]}');
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('runs each Task under its profile, and fails those whose profile cannot be had with the reason', () => {
    const task = (name: string, localhostProfile: string, script: string): string =>
      `apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: ${name}}\nspec:\n  command: ["sh", "-c", ${JSON.stringify(script)}]\n  sandbox: {seccomp: {type: Localhost, localhostProfile: ${JSON.stringify(localhostProfile)}}}\n`;
    const manifest = path.join(scratch, 'tasks.yaml');
    writeFileSync(manifest, [
      task('allowed', 'team/no-mkdir.json', 'echo hello > /tmp/file && cat /tmp/file'),
      task('denied', 'team/no-mkdir.json', 'mkdir /tmp/d'),
      task('missing', 'team/nothing.json', 'true'),
      task('broken', 'broken.json', 'true'),
      task('escaping', 'team/../../etc/profile.json', 'true'),
    ].join('---\n'));
    const result = spawnSync(process.execPath, [cli, 'run', '-f', manifest, '-o', 'json', '--seccomp-profile-dir', profiles], { encoding: 'utf8', timeout: 120_000 });
    expect(result.status).toBe(1);
    const list = JSON.parse(result.stdout) as { items: { metadata: { name: string }; status: TaskStatus }[] };
    const byName = Object.fromEntries(list.items.map((item) => [item.metadata.name, item.status]));
    expect(byName.allowed).toMatchObject({ phase: 'Succeeded', exitCode: 0 });
    expect(byName.denied).toMatchObject({ phase: 'Failed', exitCode: 1, stderrTail: expect.stringContaining('Invalid cross-device link') as unknown });
    expect(byName.missing).toMatchObject({ phase: 'Failed', reason: 'SandboxUnavailable', message: `seccomp profile "team/nothing.json" (${profiles}/team/nothing.json) does not exist on this node (profiles are read from the agent's --seccomp-profile-dir ${profiles})` });
    expect(byName.broken).toMatchObject({ phase: 'Failed', reason: 'SandboxUnavailable', message: expect.stringContaining('is invalid: syscalls[0].action: unknown action "SCMP_ACT_ALOW"') as unknown });
    expect(byName.escaping).toMatchObject({ phase: 'Failed', reason: 'InvalidSpec' });
    expect(byName.escaping?.message).toMatch(/localhostProfile must be a relative path without '\.\.'/);
  });
});

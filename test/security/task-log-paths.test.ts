// Where a Task's log goes is built from its namespace, name and uid
// (<logs>/<namespace>_<name>_<uid>/<attempt>.log). In a cluster the apiserver validates all three;
// a manifest given to `parafork run` or `agent --manifests` is untrusted input (issue 12, finding
// 10) and nothing validated its metadata.namespace: `namespace: "../../../../<dir>/"` made the
// agent, as root, create a directory and write the Task's output in any directory of the machine
// (and forget it later with a recursive rm of that path). Now a namespace must be what the
// apiserver accepts (an RFC 1123 label), and the log store itself refuses any owner whose parts are
// not plain directory-name parts, so no other caller can take a log out of its directory.
// Needs root (parafork sandboxes the Tasks it runs); the CLI tests need a build (npm run build).
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { TaskLogStore } from '../../src/logs/task-log-store.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { parafork } from './standalone-cli.js';

const skip = missingRequirement('parafork sandboxes the Tasks it runs, which needs root', runningAsRoot);

const manifest = (namespace: string): string =>
  `apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: escape, namespace: ${JSON.stringify(namespace)}}\nspec: {command: [/bin/echo, written-outside]}\n`;

describe('a Task log never leaves the log directory', () => {
  let scratch: string;
  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-log-paths-'));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  describe.skipIf(skip !== undefined)(`parafork run with a hostile metadata.namespace${skip ? ` (skipped: ${skip})` : ''}`, () => {
    it.each([
      ['a path up and out of the log directory', (target: string) => `../../../../../../../..${target}/`],
      ['an absolute path', (target: string) => `${target}/`],
      ['a slash inside', () => 'team/a'],
      ['terminal escape sequences (the NAMESPACE column)', () => '\u001b]0;owned\u0007'],
      ['an upper-case name the apiserver would refuse', () => 'Team-A'],
      ['more than 63 characters', () => 'a'.repeat(64)],
    ])('refuses %s, exit 2, and writes nothing outside', async (_, namespaceFor) => {
      const target = mkdtempSync(path.join(scratch, 'target-'));
      const file = path.join(scratch, 'escape.yaml');
      writeFileSync(file, manifest(namespaceFor(target)));
      const run = await parafork(['run', '-q', '-f', file], 30_000);
      expect(run.timedOut).toBe(false);
      expect(run.status, run.stderr).toBe(2);
      expect(run.stderr).toContain('metadata.namespace');
      expect(readdirSync(target)).toEqual([]);
    });

    it('still runs a Task in a namespace the apiserver would accept', async () => {
      const file = path.join(scratch, 'fine.yaml');
      writeFileSync(file, manifest('team-a'));
      const run = await parafork(['run', '-q', '-f', file], 30_000);
      expect(run.status, run.stderr).toBe(0);
    });
  });

  describe('the log store refuses owners that are not plain directory-name parts', () => {
    it.each([
      { namespace: '../../etc', name: 'x', uid: 'u' },
      { namespace: 'default', name: '../x', uid: 'u' },
      { namespace: 'default', name: 'x', uid: '../../u' },
      { namespace: 'default', name: 'x', uid: '' },
      { namespace: '', name: 'x', uid: 'u' },
      { namespace: 'default', name: 'a/b', uid: 'u' },
      { namespace: 'default_x', name: 'y', uid: 'u' },
    ])('%o', (owner) => {
      const store = new TaskLogStore({ directory: path.join(scratch, 'logs'), maxBytesPerAttempt: 1024 });
      expect(() => store.attemptLog(owner, 1, undefined)).toThrow(/log/);
      expect(() => store.taskDirectory(owner)).toThrow(/log/);
      expect(existsSync(path.join(scratch, 'etc'))).toBe(false);
    });
  });
});

// `parafork run -o json|yaml` names where each Task's output is (src/standalone/run-log-files.ts):
// its log directory, and its attempts' logs oldest first, a rotated file before the one after it.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import type { Task } from '../../src/api/task.js';
import { logDirectoryAnnotation, logFilesAnnotation, withLogFiles } from '../../src/standalone/run-log-files.js';

let scratch: string;
beforeEach(() => {
  scratch = mkdtempSync(path.join(tmpdir(), 'parafork-run-log-files-'));
});
afterEach(() => {
  rmSync(scratch, { recursive: true, force: true });
});

const task = (name: string, annotations?: Record<string, string>): Task => ({
  apiVersion: 'parafork.dev/v1alpha1',
  kind: 'Task',
  metadata: { name, namespace: 'default', uid: `uid-${name}`, ...(annotations ? { annotations } : {}) },
  spec: { command: ['true'] },
});

describe('the log files of a run\'s Tasks', () => {
  it('annotates each Task with its log directory and its attempts\' logs in order, keeping its own annotations', () => {
    const directory = path.join(scratch, 'default_retried_uid-retried');
    mkdirSync(directory);
    for (const file of ['2.log', '1.log', '1.log.1', '10.log', 'notes.txt']) writeFileSync(path.join(directory, file), '');
    const [annotated] = withLogFiles([task('retried', { team: 'a' })], (owner) => path.join(scratch, `${owner.namespace}_${owner.name}_${owner.uid}`));
    expect(annotated?.metadata.annotations).toEqual({
      team: 'a',
      [logDirectoryAnnotation]: directory,
      [logFilesAnnotation]: ['1.log.1', '1.log', '2.log', '10.log'].map((file) => path.join(directory, file)).join(','),
    });
  });

  it('leaves a Task that never started (no log directory) as it is, and names no files where there are none', () => {
    const pending = task('pending');
    expect(withLogFiles([pending], () => path.join(scratch, 'missing'))[0]).toBe(pending);
    mkdirSync(path.join(scratch, 'array'));
    expect(withLogFiles([task('array')], () => path.join(scratch, 'array'))[0]?.metadata.annotations).toEqual({ [logDirectoryAnnotation]: path.join(scratch, 'array') });
  });
});

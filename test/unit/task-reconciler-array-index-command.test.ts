// What each index of a Task array is spawned with, through the reconciler (issue 17): its own
// index in env and args, the rest of the spec as it is, whichever of the launch's paths (the
// sandboxed one with its ids and cgroup, or a log of its own) the plan went through.
import { describe, expect, it } from 'vitest';

import type { Task } from '../../src/api/task.js';
import type { SpawnOptions } from '../../src/launcher/spawn-options.js';
import { oneTaskReconciler, statusRecordingWriter } from '../helpers/reconciler-harness.js';

const key = 'team/array';

describe('the spawn of an array\'s index', () => {
  it('carries its index in env and args, with spec.env and a PATH, for every index started', async () => {
    const task: Task = {
      apiVersion: 'parafork.dev/v1alpha1',
      kind: 'Task',
      metadata: { name: 'array', namespace: 'team', uid: 'uid-1', generation: 1 },
      spec: { nodeName: 'node', command: ['work', '--of=$(PARAFORK_TASK_COUNT)'], args: ['--shard=$(PARAFORK_TASK_INDEX)'], completions: 3, env: [{ name: 'MODE', value: 'fast' }, { name: 'JOB_COMPLETION_INDEX', value: 'spoofed' }] },
    };
    const cache = new Map<string, Task>([[key, task]]);
    const spawned: SpawnOptions[] = [];
    const { reconciler, settle } = oneTaskReconciler(key, cache, {
      writer: statusRecordingWriter(key, cache, []),
      launcher: {
        spawn: (options) => {
          spawned.push(options);
          return Promise.reject(new Error('spawns are only recorded here'));
        },
      },
    });
    await reconciler.reconcile(key);
    await settle();
    const byIndex = new Map(spawned.map((options) => [options.env?.PARAFORK_TASK_INDEX, options]));
    expect([...byIndex.keys()].sort()).toEqual(['0', '1', '2']);
    for (const [index, options] of byIndex) {
      expect(options.file).toBe('work');
      // Only spec.args expand: the command's own arguments are passed as they are.
      expect(options.args).toEqual(['--of=$(PARAFORK_TASK_COUNT)', `--shard=${index}`]);
      expect(options.env).toEqual({ PATH: '/usr/local/bin:/usr/bin:/bin', MODE: 'fast', PARAFORK_TASK_INDEX: index, JOB_COMPLETION_INDEX: index, PARAFORK_TASK_COUNT: '3' });
      expect(options.sandbox).toBeDefined();
    }
  });
});

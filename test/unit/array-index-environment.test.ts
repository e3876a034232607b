// What an index of a Task array sees of its index (src/tasks/array-index-environment.ts): the
// variables of Indexed Jobs and parafork's own, and $(NAME) of those three in args, nothing else.
import { describe, expect, it } from 'vitest';

import type { Task } from '../../src/api/task.js';
import { expandIndexArguments, indexCommand, indexEnvironment, taskForIndex } from '../../src/tasks/array-index-environment.js';
import { taskSpawnOptions } from '../../src/tasks/task-launch.js';

describe('indexEnvironment', () => {
  it('gives the index as PARAFORK_TASK_INDEX and JOB_COMPLETION_INDEX, and the count as PARAFORK_TASK_COUNT', () => {
    expect(indexEnvironment(17, 100)).toEqual({ PARAFORK_TASK_INDEX: '17', JOB_COMPLETION_INDEX: '17', PARAFORK_TASK_COUNT: '100' });
  });

  it('refuses an index outside the array', () => {
    expect(() => indexEnvironment(100, 100)).toThrow(RangeError);
    expect(() => indexEnvironment(-1, 100)).toThrow(RangeError);
  });
});

describe('expandIndexArguments', () => {
  const environment = indexEnvironment(7, 10);

  it('replaces $(PARAFORK_TASK_INDEX), $(JOB_COMPLETION_INDEX) and $(PARAFORK_TASK_COUNT) anywhere in an argument', () => {
    expect(expandIndexArguments(['--shard=$(PARAFORK_TASK_INDEX)/$(PARAFORK_TASK_COUNT)', 'out-$(JOB_COMPLETION_INDEX).txt'], environment)).toEqual([
      '--shard=7/10',
      'out-7.txt',
    ]);
  });

  it('leaves other references, shell variables and a lone $$ as they are', () => {
    expect(expandIndexArguments(['$(HOME)', '$PARAFORK_TASK_INDEX', 'kill $$', '${PARAFORK_TASK_COUNT}'], environment)).toEqual([
      '$(HOME)',
      '$PARAFORK_TASK_INDEX',
      'kill $$',
      '${PARAFORK_TASK_COUNT}',
    ]);
  });

  it('writes $$( as a literal $(', () => {
    expect(expandIndexArguments(['$$(PARAFORK_TASK_INDEX) is $(PARAFORK_TASK_INDEX)'], environment)).toEqual(['$(PARAFORK_TASK_INDEX) is 7']);
  });
});

describe('taskForIndex', () => {
  const task: Task = {
    apiVersion: 'parafork.dev/v1alpha1',
    kind: 'Task',
    metadata: { name: 'array' },
    spec: { command: ['work'], args: ['--shard=$(PARAFORK_TASK_INDEX)'], completions: 4, env: [{ name: 'MODE', value: 'fast' }, { name: 'PARAFORK_TASK_INDEX', value: 'spoofed' }] },
  };

  it('adds the index variables to spec.env, replacing any of the same name, and expands args', () => {
    const indexed = taskForIndex(task, 2);
    expect(indexed.spec.env).toEqual([
      { name: 'MODE', value: 'fast' },
      { name: 'PARAFORK_TASK_INDEX', value: '2' },
      { name: 'JOB_COMPLETION_INDEX', value: '2' },
      { name: 'PARAFORK_TASK_COUNT', value: '4' },
    ]);
    expect(indexed.spec.args).toEqual(['--shard=2']);
  });

  it('leaves the Task it was given as it was', () => {
    taskForIndex(task, 1);
    expect(task.spec.args).toEqual(['--shard=$(PARAFORK_TASK_INDEX)']);
    expect(task.spec.env).toHaveLength(2);
  });
});

describe('indexCommand', () => {
  const specs: Task['spec'][] = [
    { command: ['work'], args: ['--shard=$(PARAFORK_TASK_INDEX)', '$$(JOB_COMPLETION_INDEX)', 'plain'], completions: 4, env: [{ name: 'MODE', value: 'fast' }, { name: 'PARAFORK_TASK_INDEX', value: 'spoofed' }] },
    { command: ['/bin/true'], completions: 3 },
    { command: ['sh', '-c', 'echo $(PARAFORK_TASK_INDEX)'], args: ['no-reference'], completions: 5, env: [{ name: 'PATH', value: '/opt/bin' }, { name: 'A' }, { name: 'A', value: 'again' }, { name: '__proto__', value: 'x' }] },
    { command: ['env'], args: ['$(PARAFORK_TASK_COUNT)'], completions: 2, env: [{ name: 'JOB_COMPLETION_INDEX', value: '9' }, { name: 'Z', value: 'last' }] },
  ];

  it('is what the launch of taskForIndex runs: the same file, args and environment, in the same order', () => {
    for (const spec of specs) {
      const task: Task = { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: 'array' }, spec };
      for (let index = 0; index < (spec.completions ?? 0); index++) {
        const expected = taskSpawnOptions(taskForIndex(task, index).spec, { sandbox: undefined, cwd: '/', cgroup: undefined });
        const command = indexCommand(spec, index);
        expect(command.file).toBe(expected.file);
        expect(command.args).toEqual(expected.args);
        expect(Object.entries(command.env)).toEqual(Object.entries(expected.env ?? {}));
        expect(taskSpawnOptions(spec, { sandbox: undefined, cwd: '/', cgroup: undefined, command })).toEqual(expected);
      }
    }
  });

  it('leaves the spec as it was, and makes each index its own environment', () => {
    const spec = specs[0] as Task['spec'];
    const first = indexCommand(spec, 1);
    const second = indexCommand(spec, 2);
    expect(first.env.PARAFORK_TASK_INDEX).toBe('1');
    expect(second.env.PARAFORK_TASK_INDEX).toBe('2');
    expect(spec.args).toEqual(['--shard=$(PARAFORK_TASK_INDEX)', '$$(JOB_COMPLETION_INDEX)', 'plain']);
    expect(spec.env).toHaveLength(2);
  });

  it('refuses an index outside the array', () => {
    expect(() => indexCommand(specs[1] as Task['spec'], 3)).toThrow(RangeError);
    expect(() => indexCommand(specs[1] as Task['spec'], -1)).toThrow(RangeError);
  });
});

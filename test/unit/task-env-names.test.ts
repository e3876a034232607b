// Red team: env names the CRD accepts (a C identifier) that are special to JavaScript objects.
// The apiserver accepts `__proto__`, `constructor` and `hasOwnProperty`; the agent built the
// environment in a plain object, where assigning `__proto__` sets the object's prototype and
// the variable silently went missing from the Task's environment. Every accepted name must reach
// the process as it was written.
import { describe, expect, it } from 'vitest';

import { taskSpawnOptions } from '../../src/tasks/task-launch.js';

describe('a Task\'s environment', () => {
  it('holds every name the CRD accepts, those special to JavaScript objects too', () => {
    const options = taskSpawnOptions({ command: ['env'], env: [{ name: '__proto__', value: 'a' }, { name: 'constructor', value: 'b' }, { name: 'hasOwnProperty', value: 'c' }] }, { sandbox: undefined, cwd: '/', cgroup: undefined });
    expect(Object.entries(options.env ?? {})).toEqual(expect.arrayContaining([['__proto__', 'a'], ['constructor', 'b'], ['hasOwnProperty', 'c']]));
    expect(Object.getPrototypeOf(options.env)).toBe(Object.prototype);
  });
});

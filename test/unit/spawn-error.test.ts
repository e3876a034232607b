// SpawnError: Node's spawn-error fields (code, errno, syscall, path, spawnargs) plus the step that
// failed; its message starts with the failed call and what it worked on, then the code.
import { describe, expect, it } from 'vitest';

import { SpawnError } from '../../src/launcher/spawn-error.js';

describe('SpawnError', () => {
  it('carries code, a negative errno, syscall, step, path and spawnargs as given', () => {
    const error = new SpawnError({ errno: 13, syscall: 'cgroup.procs', step: 'cgroup', path: 'sh', spawnargs: ['-c', 'true'] });
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ name: 'SpawnError', code: 'EACCES', errno: -13, syscall: 'cgroup.procs', step: 'cgroup', path: 'sh', spawnargs: ['-c', 'true'] });
  });

  it('takes errno of either sign, as the native side and Node report it', () => {
    expect(new SpawnError({ errno: -2, syscall: 'execve', step: 'exec', path: 'x', spawnargs: [] }).errno).toBe(-2);
  });

  it('says by default why and which program was being spawned, after the failed call', () => {
    const error = new SpawnError({ errno: 1, syscall: 'identity', step: 'sandbox', path: 'sh', spawnargs: [] });
    expect(error.message).toBe('identity: operation not permitted, spawning sh (EPERM)');
  });

  it('puts the launcher\'s description of what failed after the failed call', () => {
    const error = new SpawnError({ errno: 2, syscall: 'cgroup.procs', step: 'cgroup', path: 'sh', spawnargs: [], description: 'no such cgroup /sys/fs/cgroup/x, spawning sh' });
    expect(error.message).toBe('cgroup.procs: no such cgroup /sys/fs/cgroup/x, spawning sh (ENOENT)');
  });
});

// Launcher.spawn's checks of a spawn's cgroup options (src/launcher/spawn-options.ts): a pooled
// task cgroup hands the same frozen options to spawn after spawn, and their check is remembered;
// it must hold for every spawn, so only what nobody can change is remembered, and only with the
// directories it was checked with.
import { describe, expect, it } from 'vitest';

import { InvalidSpawnOptionError } from '../../src/launcher/spawn-error.js';
import { toNativeRequest } from '../../src/launcher/spawn-options.js';

const directory = '/sys/fs/cgroup/parafork-test/task-1';
const v1Directory = '/sys/fs/cgroup/memory/parafork-test/task-1';

function frozenCgroupOptions() {
  const files = Object.freeze([Object.freeze({ path: `${directory}/pids.max`, value: '64' }), Object.freeze({ path: `${v1Directory}/memory.limit_in_bytes`, value: '1048576' })]);
  return Object.freeze({
    cgroup: directory,
    cgroupsV1: Object.freeze([v1Directory]),
    cgroupSetup: Object.freeze({ files, joinFds: Object.freeze({ cgroup: 7, cgroupsV1: Object.freeze([8]) }) }),
  });
}

describe('the cgroup options of a spawn', () => {
  it('check to the same native options each time they are given again', () => {
    const cgroup = frozenCgroupOptions();
    const first = toNativeRequest({ file: '/bin/true', ...cgroup });
    const second = toNativeRequest({ file: '/bin/true', ...cgroup });
    expect(second.cgroupSetup).toEqual({ files: [{ path: `${directory}/pids.max`, value: '64', readBack: '', mayFail: false }, { path: `${v1Directory}/memory.limit_in_bytes`, value: '1048576', readBack: '', mayFail: false }], joinFds: { cgroup: 7, cgroupsV1: [8] } });
    expect([second.cgroup, second.cgroupsV1, second.cgroupSetup]).toEqual([first.cgroup, first.cgroupsV1, first.cgroupSetup]);
  });

  it('are checked again when the same frozen setup comes with other directories', () => {
    const cgroup = frozenCgroupOptions();
    toNativeRequest({ file: '/bin/true', ...cgroup });
    expect(() => toNativeRequest({ file: '/bin/true', ...cgroup, cgroup: '/sys/fs/cgroup/parafork-test/task-2' })).toThrow(InvalidSpawnOptionError);
    expect(() => toNativeRequest({ file: '/bin/true', ...cgroup, cgroupsV1: Object.freeze(['/sys/fs/cgroup/memory/parafork-test/task-2']) })).toThrow(InvalidSpawnOptionError);
    expect(() => toNativeRequest({ file: '/bin/true', ...cgroup, cgroupsV1: [v1Directory, 'relative'] })).toThrow(InvalidSpawnOptionError);
  });

  it('are checked again at every spawn when they could have changed since (not frozen)', () => {
    const files = [{ path: `${directory}/pids.max`, value: '64' }];
    const cgroupsV1: string[] = [];
    const cgroupSetup = { files };
    toNativeRequest({ file: '/bin/true', cgroup: directory, cgroupsV1, cgroupSetup });
    files.push({ path: '/etc/passwd', value: 'x' });
    expect(() => toNativeRequest({ file: '/bin/true', cgroup: directory, cgroupsV1, cgroupSetup })).toThrow(/must name a file directly inside cgroup/);
    files.pop();
    cgroupsV1.push('not absolute');
    expect(() => toNativeRequest({ file: '/bin/true', cgroup: directory, cgroupsV1, cgroupSetup })).toThrow(InvalidSpawnOptionError);
  });
});

// The agent's flags for its cgroup group and its Tasks' host ids (issue 12, findings 12 and 3).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { ConfigError, parseAgentConfig } from '../../src/config/agent-config.js';

const environment = { NODE_NAME: 'node-a' };

describe('the cgroup group and task id flags', () => {
  it('give the cluster agent the group "parafork", and a manifest agent a group of its own per run unless one is named', () => {
    const folder = mkdtempSync(path.join(tmpdir(), 'parafork-config-'));
    try {
      expect(parseAgentConfig([], environment).cgroupParent).toBe('parafork');
      expect(parseAgentConfig(['--manifests', folder], environment).cgroupParent).toBeUndefined();
      expect(parseAgentConfig(['--manifests', folder, '--cgroup-parent', 'mine'], environment).cgroupParent).toBe('mine');
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('read --task-ids as FIRST-LAST, by default 0x70000000-0x7FFDFFFF', () => {
    expect(parseAgentConfig([], environment).taskIds).toEqual({ first: 0x7000_0000, last: 0x7ffd_ffff });
    expect(parseAgentConfig(['--task-ids', '200000-265535'], environment).taskIds).toEqual({ first: 200_000, last: 265_535 });
  });

  it.each(['0-65535', '100000-100001', '1-4294967295', '5', '-1-70000'])('refuse --task-ids %s', (range) => {
    expect(() => parseAgentConfig(['--task-ids', range], environment)).toThrow(ConfigError);
  });
});

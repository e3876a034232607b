// Red team: the host ids Tasks get as their own (--task-ids) and the ids a spec may name. A Task
// that names no runAsUser runs as a uid leased to it alone from the agent's range, and a
// userNamespace Task's ids map to a block of that range whose first id owns its user namespace.
// At baseline a spec may name any host uid but 0: naming one of the range ran a Task as the uid
// the agent had leased to another namespace's Task (its files in writable mounts, its per-uid
// kernel limits: RLIMIT_NPROC is that Task's pids limit on a cgroup v1 node, and the owner of a
// userNamespace Task's user namespace). Ids of the range are the agent's to hand out: a spec
// naming one needs privileged, as uid 0 does. Hostile input: runAsUser and runAsGroup inside the
// range at level baseline.
import { describe, expect, it } from 'vitest';

import type { TaskSpec } from '../../src/api/task.js';
import { parseAgentConfig } from '../../src/config/agent-config.js';
import { checkSandboxPolicy, isSandboxPolicyViolation, type SandboxPolicy, type SandboxPolicyLevel } from '../../src/sandbox/sandbox-policy.js';

const taskIds = { first: 1_879_048_192, last: 2_147_352_575 };

function check(sandbox: NonNullable<TaskSpec['sandbox']>, level: SandboxPolicyLevel = 'baseline') {
  const policy: SandboxPolicy = { level, allowedHostPaths: [], taskIds };
  return checkSandboxPolicy({ command: ['/bin/true'], sandbox }, policy, () => undefined);
}

describe('host ids of the agent\'s task id range named in a spec', () => {
  it('are refused at baseline, for runAsUser and runAsGroup, naming the field and the range', () => {
    for (const [field, id] of [['runAsUser', taskIds.first], ['runAsUser', taskIds.first + 70_000], ['runAsGroup', taskIds.last]] as const) {
      const result = check({ [field]: id });
      expect(isSandboxPolicyViolation(result), `${field} ${id}`).toBe(true);
      expect(result).toMatchObject({ field: `spec.sandbox.${field}`, needs: 'privileged' });
      expect(isSandboxPolicyViolation(result) ? result.message : '').toContain(`${taskIds.first}-${taskIds.last}`);
    }
  });

  it('are allowed at privileged, and inside a user namespace at every level', () => {
    expect(isSandboxPolicyViolation(check({ runAsUser: taskIds.first + 5 }, 'privileged'))).toBe(false);
    expect(isSandboxPolicyViolation(check({ runAsUser: 5, runAsGroup: 5, userNamespace: true }, 'restricted'))).toBe(false);
  });

  it('leave baseline\'s other host ids as they were', () => {
    expect(isSandboxPolicyViolation(check({ runAsUser: 1000, runAsGroup: 1000 }))).toBe(false);
    expect(isSandboxPolicyViolation(check({ runAsUser: taskIds.first - 1, runAsGroup: taskIds.last + 1 }))).toBe(false);
  });
});

describe('host ids of another running parafork instance\'s task id range named in a spec', () => {
  const other = { first: 1_610_612_736, last: 1_610_678_271 };
  const checkWithOthers = (sandbox: NonNullable<TaskSpec['sandbox']>, level: SandboxPolicyLevel = 'baseline') => {
    const policy: SandboxPolicy = { level, allowedHostPaths: [], taskIds, taskIdRangesInUse: () => [taskIds, other] };
    return checkSandboxPolicy({ command: ['/bin/true'], sandbox }, policy, () => undefined);
  };

  it('are refused below privileged, naming the other range', () => {
    for (const [field, id] of [['runAsUser', other.first], ['runAsGroup', other.last]] as const) {
      const result = checkWithOthers({ [field]: id });
      expect(result).toMatchObject({ field: `spec.sandbox.${field}`, needs: 'privileged' });
      expect(isSandboxPolicyViolation(result) ? result.message : '').toContain(`another parafork instance on this node (${other.first}-${other.last})`);
    }
  });

  it('are allowed at privileged and inside a user namespace, and ids outside every range stay baseline\'s', () => {
    expect(isSandboxPolicyViolation(checkWithOthers({ runAsUser: other.first }, 'privileged'))).toBe(false);
    expect(isSandboxPolicyViolation(checkWithOthers({ runAsUser: other.first, userNamespace: true }, 'restricted'))).toBe(false);
    expect(isSandboxPolicyViolation(checkWithOthers({ runAsUser: other.first - 1, runAsGroup: other.last + 1 }))).toBe(false);
  });
});

describe('the agent\'s sandbox policy', () => {
  it('carries its --task-ids range, so the check knows which ids are leased', () => {
    const environment = { NODE_NAME: 'node-a' };
    expect(parseAgentConfig(['--task-ids', '3000000000-3000131071'], environment).sandboxPolicy.taskIds).toEqual({ first: 3_000_000_000, last: 3_000_131_071 });
    expect(parseAgentConfig([], environment).sandboxPolicy.taskIds).toEqual(taskIds);
  });
});

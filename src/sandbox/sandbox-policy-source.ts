// Which sandbox policy a Task runs at: its namespace's parafork.dev/sandbox-policy label, else the
// agent's default level (sandbox-policy.ts). The cluster agent reads labels from a cache of the
// labelled namespaces (src/k8s/namespace-labels.ts); standalone modes have no namespaces and use
// the default for every Task.
import { levelFromLabels, sandboxPolicyLabel, type SandboxPolicy } from './sandbox-policy.js';

/** The labels of namespaces: from a cache, or read afresh. */
export interface NamespaceLabelSource {
  /**
   * Whether the cache has had its first list and is in step with the apiserver. Before the list,
   * a namespace it does not show may carry any label, a lower level than the default included;
   * while its watch is down, a relabel to a lower level may not have reached it.
   */
  readonly current: boolean;
  /** What the cache holds now; undefined for a namespace it has not seen (or that has no level label). */
  cached(namespace: string): Readonly<Record<string, string>> | undefined;
  /** Read from the apiserver now; undefined when the namespace is gone. Throws when it cannot be read (retried). */
  fresh(namespace: string): Promise<Readonly<Record<string, string>> | undefined>;
}

/** What the reconciler asks before each attempt. */
export interface SandboxPolicySource {
  /** The policy of a Task of `namespace`, from what is known now. */
  policyFor(namespace: string): SandboxPolicy;
  /**
   * The same, read afresh: a refusal is final, so it is confirmed against the namespace as it is
   * now (a label set a moment ago, not yet in the cache, must not fail the Task). Absent: nothing
   * fresher to read.
   */
  confirmedPolicyFor?(namespace: string): Promise<SandboxPolicy>;
}

/** Every Task at `defaults` (standalone: no namespace labels). */
export function fixedSandboxPolicy(defaults: SandboxPolicy): SandboxPolicySource {
  return { policyFor: () => defaults };
}

/**
 * A Task at its namespace's labelled level, else at `defaults.level`; the allowed host paths are the
 * agent's. While the cache of labelled namespaces is not current (before its first list: at the
 * agent's start, and for as long as listing fails; and while its watch is down), every Task is
 * held to restricted, the lowest level: a namespace the cache does not show yet may be labelled
 * below the default, and read as unlabelled it ran at the default, and a relabel to a lower level
 * made while the watch was down went unseen (red team, session 16). What a Task asks beyond
 * restricted is then confirmed against its namespace read afresh (confirmedPolicyFor), as any
 * refusal is.
 */
export function namespaceSandboxPolicy(defaults: SandboxPolicy, labels: NamespaceLabelSource): SandboxPolicySource {
  const withLevel = (namespaceLabels: Readonly<Record<string, string>> | undefined): SandboxPolicy => {
    const level = levelFromLabels(namespaceLabels, defaults.level);
    return level === defaults.level ? defaults : { ...defaults, level };
  };
  const notCurrent = withLevel({ [sandboxPolicyLabel]: 'restricted' });
  return {
    policyFor: (namespace) => (labels.current ? withLevel(labels.cached(namespace)) : notCurrent),
    confirmedPolicyFor: async (namespace) => withLevel(await labels.fresh(namespace)),
  };
}

/**
 * `source` with the --task-ids ranges of the machine's running parafork instances added to every
 * policy it gives (SandboxPolicy.taskIdRangesInUse), read when a spec names a host id.
 */
export function withTaskIdRangesInUse(source: SandboxPolicySource, taskIdRangesInUse: NonNullable<SandboxPolicy['taskIdRangesInUse']>): SandboxPolicySource {
  const add = (policy: SandboxPolicy): SandboxPolicy => ({ ...policy, taskIdRangesInUse });
  return {
    policyFor: (namespace) => add(source.policyFor(namespace)),
    ...(source.confirmedPolicyFor ? { confirmedPolicyFor: async (namespace: string) => add(await (source.confirmedPolicyFor?.(namespace) ?? source.policyFor(namespace))) } : {}),
  };
}

// Issue 14 on a real apiserver: who may loosen the sandbox. The chart's ValidatingAdmissionPolicy
// refuses, at `kubectl apply`, a Task that asks for more than its namespace's sandbox policy level
// (label parafork.dev/sandbox-policy, else restricted), with the agent's own message; without the
// policy the agent refuses it before any process (Failed, Forbidden; a marker file it would write
// stays absent); in a namespace labelled privileged it runs; a relabel decides the next attempt;
// --allowed-host-paths admits a path below it and refuses one beside it, through links and '..'.
// Needs root: the agent sandboxes its Tasks.
import { chmodSync, existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { taskApiVersion, taskKind } from '../../src/api/task.js';
import { checkSandboxPolicy, isSandboxPolicyViolation, type SandboxPolicyLevel } from '../../src/sandbox/sandbox-policy.js';
import { startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { createTestNamespace, getTask, kubectl, kubectlResult, waitFor, waitForTaskPhase, type TestNamespace } from '../helpers/cluster.js';
import { renderChart } from '../helpers/helm.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { makeTaskVisibleScratch } from '../helpers/task-visible-scratch.js';

const skip = missingRequirement('the agent sandboxes its Tasks, which needs root', runningAsRoot);

const nodeName = 'policy-node';
const policyTemplates = ['templates/validatingadmissionpolicy.yaml', 'templates/validatingadmissionpolicybinding.yaml'];
// Not under /tmp (a Task's /tmp is its own tmpfs), nor /var/tmp (masked).

interface LooseningCase {
  readonly name: string;
  /** spec.sandbox; `markers` is a world-writable host folder where the Task would leave its marker. */
  readonly sandbox: (markers: string) => Record<string, unknown>;
  readonly fieldPath: string;
}

const writable = (markers: string): Record<string, unknown> => ({ hostPath: markers, mountPath: '/mnt', readOnly: false });

// Each loosening field, each with a writable mount of the marker folder after it (refused later, so
// the refusal names the field under test) so that a Task that ran would leave its marker.
const cases: readonly LooseningCase[] = [
  { name: 'root-user', sandbox: (markers) => ({ runAsUser: 0, mounts: [writable(markers)] }), fieldPath: 'spec.sandbox.runAsUser' },
  { name: 'root-group', sandbox: (markers) => ({ runAsGroup: 0, mounts: [writable(markers)] }), fieldPath: 'spec.sandbox.runAsGroup' },
  { name: 'host-user', sandbox: (markers) => ({ runAsUser: 1000, mounts: [writable(markers)] }), fieldPath: 'spec.sandbox.runAsUser' },
  { name: 'host-network', sandbox: (markers) => ({ network: 'host', mounts: [writable(markers)] }), fieldPath: 'spec.sandbox.network' },
  { name: 'loopback-network', sandbox: (markers) => ({ network: 'loopback', mounts: [writable(markers)] }), fieldPath: 'spec.sandbox.network' },
  { name: 'unconfined-seccomp', sandbox: (markers) => ({ seccomp: { type: 'Unconfined' }, mounts: [writable(markers)] }), fieldPath: 'spec.sandbox.seccomp.type' },
  { name: 'rootfs', sandbox: (markers) => ({ rootfs: '/usr', mounts: [writable(markers)] }), fieldPath: 'spec.sandbox.rootfs' },
  { name: 'writable-root', sandbox: (markers) => ({ readOnlyRootFilesystem: false, mounts: [writable(markers)] }), fieldPath: 'spec.sandbox.readOnlyRootFilesystem' },
  { name: 'host-path', sandbox: () => ({ mounts: [{ hostPath: '/sys/fs/cgroup', mountPath: '/mnt' }] }), fieldPath: 'spec.sandbox.mounts[0].hostPath' },
  { name: 'writable-host-path', sandbox: (markers) => ({ mounts: [writable(markers)] }), fieldPath: 'spec.sandbox.mounts[0].hostPath' },
];

/** A Task manifest bound to the agent's node whose command writes /mnt/NAME (the marker) when it runs. */
function taskManifest(namespace: string, name: string, sandbox: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  const spec = { nodeName, command: ['/bin/sh', '-c', `echo started > /mnt/${name}`], sandbox, ...extra };
  return JSON.stringify({ apiVersion: taskApiVersion, kind: taskKind, metadata: { name, namespace }, spec });
}

/** Makes `directory` with mode 1777, so that a Task's own uid may write its marker there; returns it. */
function worldWritableDirectory(directory: string): string {
  mkdirSync(directory);
  chmodSync(directory, 0o1777);
  return directory;
}

/** What the agent's check says of this sandbox (the admission policy must say the same). */
function agentMessage(sandbox: Record<string, unknown>, level: SandboxPolicyLevel, allowedHostPaths: readonly string[]): string {
  const result = checkSandboxPolicy({ command: ['/bin/true'], sandbox }, { level, allowedHostPaths }, () => undefined);
  if (!isSandboxPolicyViolation(result)) throw new Error(`the agent's check admits ${JSON.stringify(sandbox)} at ${level}`);
  return result.message;
}

async function label(namespace: string, level: SandboxPolicyLevel): Promise<void> {
  await kubectl(['label', 'namespace', namespace, `parafork.dev/sandbox-policy=${level}`, '--overwrite']);
}

/** Refused before any process: Failed, Forbidden, the field and level named, no attempt, no marker. */
async function expectRefusedByAgent(namespace: string, name: string, fieldPath: string, level: SandboxPolicyLevel, marker: string | undefined): Promise<void> {
  const task = await waitForTaskPhase(namespace, name, ['Succeeded', 'Failed']);
  expect(task.status, name).toMatchObject({ phase: 'Failed', reason: 'Forbidden' });
  expect(task.status?.message).toContain(`${fieldPath} `);
  expect(task.status?.message).toContain(`sandbox policy level ${level}`);
  expect(task.status?.attempts ?? 0).toBe(0);
  expect(task.status?.startTime).toBeUndefined();
  if (marker !== undefined) expect(existsSync(marker), `${marker}: the Task ran`).toBe(false);
}

describe.skipIf(skip !== undefined)(`the sandbox policy${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let agent: AgentProcess;
  let scratch: string;
  let markers: string;
  let allowed: string;
  let beside: string;
  const namespaces: TestNamespace[] = [];

  async function newNamespace(prefix: string, level?: SandboxPolicyLevel): Promise<string> {
    const namespace = await createTestNamespace(prefix);
    namespaces.push(namespace);
    if (level !== undefined) await label(namespace.name, level);
    return namespace.name;
  }

  /** Installs (or removes) the chart's admission policy, and waits until the apiserver enforces it (or no longer does). */
  async function admissionPolicy(installed: boolean): Promise<void> {
    const manifests = await renderChart({ release: 'policy', namespace: 'parafork', showOnly: policyTemplates, set: [`sandboxPolicy.allowedHostPaths={${allowed}}`] });
    await kubectl(installed ? ['apply', '-f', '-'] : ['delete', '--ignore-not-found', '-f', '-'], { input: manifests });
    const probe = await newNamespace('policy-probe');
    let attempt = 0;
    await waitFor(async () => {
      attempt++;
      const result = await kubectlResult(['create', '-f', '-'], { input: taskManifest(probe, `probe-${attempt}`, { network: 'host' }, { suspend: true }) });
      return (result.status !== 0) === installed ? true : undefined;
    }, { description: `the admission policy to be ${installed ? 'enforced' : 'gone'}`, timeoutMs: 30_000, intervalMs: 500 });
  }

  beforeAll(async () => {
    scratch = makeTaskVisibleScratch('parafork-policy-it-');
    markers = path.join(scratch, 'markers');
    allowed = path.join(scratch, 'allowed');
    beside = path.join(scratch, 'beside');
    for (const directory of [markers, allowed, beside, path.join(allowed, 'below')]) worldWritableDirectory(directory);
    symlinkSync(beside, path.join(allowed, 'link-beside'));
    agent = await startAgent(nodeName, ['--sandbox-policy', 'restricted', '--allowed-host-paths', allowed]);
  });

  afterAll(async () => {
    await kubectlResult(['delete', '--ignore-not-found', '-f', '-'], { input: await renderChart({ release: 'policy', namespace: 'parafork', showOnly: policyTemplates }) });
    await agent?.stop();
    for (const namespace of namespaces) await namespace.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  });

  describe('with the chart\'s admission policy installed', () => {
    beforeAll(() => admissionPolicy(true), 60_000);

    it.each(cases)('refuses $name at kubectl apply in an unlabelled namespace, naming $fieldPath with the agent\'s message', async ({ name, sandbox, fieldPath }) => {
      const namespace = await newNamespace('policy-admission');
      const result = await kubectlResult(['apply', '-f', '-'], { input: taskManifest(namespace, name, sandbox(markers)) });
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain(`${fieldPath} `);
      expect(result.stderr).toContain(agentMessage(sandbox(markers), 'restricted', [allowed]));
      expect((await kubectlResult(['get', 'tasks.parafork.dev', name, '-n', namespace])).status).not.toBe(0);
    });

    it('refuses at baseline what only privileged allows, and admits the same Task in a namespace labelled privileged', async () => {
      const baseline = await newNamespace('policy-baseline', 'baseline');
      const refused = await kubectlResult(['apply', '-f', '-'], { input: taskManifest(baseline, 'root', { runAsUser: 0 }) });
      expect(refused.stderr).toContain(agentMessage({ runAsUser: 0 }, 'baseline', [allowed]));
      const loopback = await kubectlResult(['apply', '-f', '-'], { input: taskManifest(baseline, 'loopback', { network: 'loopback' }, { suspend: true }) });
      expect(loopback.status, loopback.stderr).toBe(0);
      const privileged = await newNamespace('policy-privileged', 'privileged');
      const admitted = await kubectlResult(['apply', '-f', '-'], { input: taskManifest(privileged, 'root', { runAsUser: 0, network: 'host' }, { suspend: true }) });
      expect(admitted.status, admitted.stderr).toBe(0);
    });

    it('checks host paths against the allowed ones by name: beside is refused, below admitted, and a link out of them is left to the agent', async () => {
      const namespace = await newNamespace('policy-admission-paths', 'baseline');
      const mount = (hostPath: string): Record<string, unknown> => ({ mounts: [{ hostPath, mountPath: '/mnt', readOnly: false }] });
      const besideResult = await kubectlResult(['apply', '-f', '-'], { input: taskManifest(namespace, 'beside', mount(beside)) });
      expect(besideResult.stderr).toContain(agentMessage(mount(beside), 'baseline', [allowed]));
      const dotdot = `${allowed}/../beside`;
      expect((await kubectlResult(['apply', '-f', '-'], { input: taskManifest(namespace, 'dotdot', mount(dotdot)) })).stderr).toContain(agentMessage(mount(dotdot), 'baseline', [allowed]));
      // CEL cannot resolve links: this one passes admission, and the agent refuses it (below).
      const link = await kubectlResult(['apply', '-f', '-'], { input: taskManifest(namespace, 'link', mount(path.join(allowed, 'link-beside')), { suspend: true }) });
      expect(link.status, link.stderr).toBe(0);
      const below = await kubectlResult(['apply', '-f', '-'], { input: taskManifest(namespace, 'below', mount(path.join(allowed, 'below')), { suspend: true }) });
      expect(below.status, below.stderr).toBe(0);
    });
  });

  describe('without the admission policy, the agent', () => {
    beforeAll(() => admissionPolicy(false), 60_000);

    it('refuses each loosening Task in an unlabelled namespace: Failed, Forbidden, never started, with an Event and a metric', async () => {
      const namespace = await newNamespace('policy-agent');
      for (const { name, sandbox } of cases) await kubectl(['apply', '-f', '-'], { input: taskManifest(namespace, name, sandbox(markers), { backoffLimit: 2, backoff: { initialSeconds: 1, maxSeconds: 1 } }) });
      for (const { name, fieldPath } of cases) await expectRefusedByAgent(namespace, name, fieldPath, 'restricted', path.join(markers, name));
      const events = JSON.parse(await kubectl(['get', 'events', '-n', namespace, '-o', 'json'])) as { items: { reason?: string; message?: string; note?: string; involvedObject?: { name?: string } }[] };
      const forbidden = events.items.filter((event) => event.reason === 'Forbidden');
      expect(forbidden.map((event) => event.involvedObject?.name).sort()).toEqual(cases.map((entry) => entry.name).sort());
      const port = /"port":(\d+)[^\n]*"msg":"agent ready"/.exec(agent.logs())?.[1];
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(/parafork_tasks_forbidden_total\{field="spec\.sandbox\.mounts\[\]\.hostPath"\} [1-9]/);
      expect(metrics).toMatch(/parafork_tasks_forbidden_total\{field="spec\.sandbox\.network"\} [1-9]/);
    }, 90_000);

    it('runs them in a namespace labelled privileged', async () => {
      const namespace = await newNamespace('policy-agent-privileged', 'privileged');
      const own = worldWritableDirectory(path.join(scratch, 'privileged-markers'));
      // Not the rootfs case (/usr has no /proc, /dev and /tmp to mount on: InvalidSpec anywhere),
      // nor the cgroupfs one (read-only: it leaves no marker).
      const runnable = cases.filter((entry) => entry.name !== 'rootfs' && entry.name !== 'host-path');
      for (const { name, sandbox } of runnable) await kubectl(['apply', '-f', '-'], { input: taskManifest(namespace, name, sandbox(own)) });
      for (const { name } of runnable) {
        const task = await waitForTaskPhase(namespace, name, ['Succeeded', 'Failed']);
        expect(task.status, name).toMatchObject({ phase: 'Succeeded' });
        expect(existsSync(path.join(own, name)), name).toBe(true);
      }
    }, 90_000);

    it('decides each attempt by the namespace\'s label as it is then: relabelled restricted, the retry is Forbidden', async () => {
      const namespace = await newNamespace('policy-relabel', 'privileged');
      const counter = worldWritableDirectory(path.join(scratch, 'relabel'));
      // Each attempt appends a line, then fails; the retry waits 3 s.
      const spec = { nodeName, command: ['/bin/sh', '-c', 'echo attempt >> /mnt/attempts; exit 1'], sandbox: { network: 'host', mounts: [writable(counter)] }, backoffLimit: 3, backoff: { initialSeconds: 3, maxSeconds: 3 } };
      await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: taskApiVersion, kind: taskKind, metadata: { name: 'retried', namespace }, spec }) });
      await waitFor(async () => ((await getTask(namespace, 'retried')).status?.nextRetryTime !== undefined ? true : undefined), { description: 'the first attempt to fail', timeoutMs: 20_000 });
      await label(namespace, 'restricted');
      const task = await waitForTaskPhase(namespace, 'retried', ['Succeeded', 'Failed'], 30_000);
      expect(task.status).toMatchObject({ phase: 'Failed', reason: 'Forbidden', attempts: 1 });
      expect(task.status?.message).toContain('spec.sandbox.network "host" is not allowed at sandbox policy level restricted');
      expect(existsSync(path.join(counter, 'attempts'))).toBe(true);
      // And the other way: a new Task after the namespace is labelled privileged again runs.
      await label(namespace, 'privileged');
      await kubectl(['apply', '-f', '-'], { input: taskManifest(namespace, 'after', { network: 'host', mounts: [writable(counter)] }) });
      expect((await waitForTaskPhase(namespace, 'after', ['Succeeded', 'Failed'])).status).toMatchObject({ phase: 'Succeeded' });
    }, 90_000);

    it('with --allowed-host-paths, admits a path below it (writable at baseline) and refuses one beside it, through a link or ..', async () => {
      const namespace = await newNamespace('policy-paths', 'baseline');
      const mount = (hostPath: string): Record<string, unknown> => ({ mounts: [{ hostPath, mountPath: '/mnt', readOnly: false }] });
      await kubectl(['apply', '-f', '-'], { input: taskManifest(namespace, 'below', mount(path.join(allowed, 'below'))) });
      await kubectl(['apply', '-f', '-'], { input: taskManifest(namespace, 'beside', mount(beside)) });
      await kubectl(['apply', '-f', '-'], { input: taskManifest(namespace, 'through-link', mount(path.join(allowed, 'link-beside'))) });
      await kubectl(['apply', '-f', '-'], { input: taskManifest(namespace, 'through-dotdot', mount(`${allowed}/../beside`)) });
      expect((await waitForTaskPhase(namespace, 'below', ['Succeeded', 'Failed'])).status).toMatchObject({ phase: 'Succeeded' });
      expect(existsSync(path.join(allowed, 'below', 'below'))).toBe(true);
      await expectRefusedByAgent(namespace, 'beside', 'spec.sandbox.mounts[0].hostPath', 'baseline', path.join(beside, 'beside'));
      await expectRefusedByAgent(namespace, 'through-link', 'spec.sandbox.mounts[0].hostPath', 'baseline', path.join(beside, 'through-link'));
      expect((await getTask(namespace, 'through-link')).status?.message).toContain(`it resolves to "${beside}"`);
      await expectRefusedByAgent(namespace, 'through-dotdot', 'spec.sandbox.mounts[0].hostPath', 'baseline', path.join(beside, 'through-dotdot'));
    }, 60_000);

    it('confirms a refusal against the namespace as it is now: a label set just before the Task is honoured', async () => {
      const namespace = await newNamespace('policy-fresh');
      // Labelled and used at once: the agent's cache may not have the label yet; a refusal is read again first.
      await label(namespace, 'privileged');
      await kubectl(['apply', '-f', '-'], { input: taskManifest(namespace, 'at-once', { network: 'host', mounts: [writable(markers)] }) });
      expect((await waitForTaskPhase(namespace, 'at-once', ['Succeeded', 'Failed'])).status).toMatchObject({ phase: 'Succeeded' });
    });
  });
});

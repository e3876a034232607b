// What a user does first, where it runs (issue 18): `helm install charts/parafork` on a node with a
// real kubelet and containerd (scripts/dev-cluster.sh up --node), the agent image built here
// without Docker (scripts/build-image.sh), then `kubectl apply` of Tasks. The agent runs as the
// chart says: in a container under the chart's seccomp profile (the runtime's default plus
// pivot_root), with the chart's capabilities, a read-only root, the node's cgroup tree mounted in,
// the Downward API, probes and the metrics Service. The dev node has no kube-proxy (it would write the host's netfilter rules):
// the agent is pointed at the apiserver's address directly, and the Service is read through the
// apiserver's service proxy, which goes to the Service's endpoints as kube-proxy would.
//
// The cases run in order on one release: install, Tasks, upgrade, uninstall.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { load } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { applyTask, kubectl, kubectlResult, waitFor, waitForTaskPhase } from '../helpers/cluster.js';
import { capabilitiesThisMachineGrants, chartDir, helm as helmAnywhere, onlyObject, parseManifests, renderChart, repositoryRoot } from '../helpers/helm.js';

const unavailable = inject('nodeUnavailable');
// A name of this run's own: the agent's state goes to the node's /var/lib/parafork/<release>.
const release = `parafork-e2e-${randomBytes(3).toString('hex')}`;
const stateHostPath = `/var/lib/parafork/${release}`;
const namespace = 'parafork-e2e';
const taskNamespace = 'parafork-e2e-tasks';

/** helm against this run's cluster. */
const helm = (args: readonly string[]): Promise<string> => helmAnywhere([...args, '--kubeconfig', inject('kubeconfigPath')]);

describe.skipIf(unavailable !== '')(`helm install charts/parafork on a node with a kubelet${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  const node = inject('nodeEnv');
  const nodeName = node.NODE_NAME ?? '';
  const [repository, tag] = inject('agentImage').replace(/^docker\.io\/library\//, '').split(':') as [string, string];
  const stateDir = inject('clusterStateDir');
  const ctr = (args: readonly string[]): string =>
    execFileSync(path.join(inject('nodeBinDir'), 'ctr'), ['--address', path.join(stateDir, 'containerd/containerd.sock'), '--namespace', 'k8s.io', ...args], { encoding: 'utf8' });

  /** The chart's values for this node: the image imported into its containerd, the kubelet's own seccomp dir, the apiserver's address. */
  const values = (imageTag: string): string[] => [
    '--set', `image.repository=${repository}`,
    '--set', `image.tag=${imageTag}`,
    '--set', 'image.pullPolicy=Never',
    '--set', `seccompProfiles.hostPath=${path.join(stateDir, 'kubelet/seccomp')}`,
    '--set', 'agent.shutdownGraceSeconds=20',
    '--set-json', `agent.extraEnv=${JSON.stringify([
      { name: 'KUBERNETES_SERVICE_HOST', value: node.NODE_IP },
      { name: 'KUBERNETES_SERVICE_PORT', value: node.APISERVER_PORT },
    ])}`,
    ...capabilitiesThisMachineGrants().flatMap((assignment) => ['--set-json', assignment]),
  ];

  interface PodSummary {
    name: string;
    image: string;
    ready: boolean;
    deleting: boolean;
    /** The agent container's seccompProfile type. */
    seccomp: string;
  }
  async function agentPods(): Promise<PodSummary[]> {
    const list = JSON.parse(await kubectl(['get', 'pods', '-n', namespace, '-l', `app.kubernetes.io/instance=${release}`, '-o', 'json'])) as {
      items: {
        metadata: { name: string; deletionTimestamp?: string };
        spec: { containers: { image: string; securityContext?: { seccompProfile?: { type: string } } }[] };
        status: { conditions?: { type: string; status: string }[] };
      }[];
    };
    return list.items.map((pod) => ({
      name: pod.metadata.name,
      image: pod.spec.containers[0]?.image ?? '',
      ready: pod.status.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True') ?? false,
      deleting: pod.metadata.deletionTimestamp !== undefined,
      seccomp: pod.spec.containers[0]?.securityContext?.seccompProfile?.type ?? '',
    }));
  }
  /** Waits for the one agent Pod to run `image` (with that seccomp profile) and be Ready, the old one gone. */
  async function waitForReadyAgent(image: string, timeoutMs = 240_000, seccomp = 'Localhost'): Promise<PodSummary> {
    return waitFor(
      async (observed) => {
        const pods = await agentPods();
        observed(pods);
        const [pod] = pods;
        return pods.length === 1 && pod!.ready && pod!.image === image && !pod!.deleting && pod!.seccomp === seccomp ? pod : undefined;
      },
      { description: `one Ready agent Pod running ${image} (seccomp ${seccomp})`, timeoutMs, intervalMs: 1000 },
    );
  }
  async function podDiagnostics(): Promise<string> {
    const described = await kubectlResult(['describe', 'pods', '-n', namespace]);
    const logs = await kubectlResult(['logs', '-n', namespace, '-l', `app.kubernetes.io/instance=${release}`, '--tail=40', '--all-containers', '--prefix']);
    return `${described.stdout}\n${logs.stdout}${logs.stderr}`;
  }

  /** A directory of this file's own: a reader's kubeconfig. */
  let scratch = '';
  /** Whether /var/lib/parafork was made for this run (then it goes with it). */
  let madeStateParent = false;

  beforeAll(async () => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-node-chart-'));
    madeStateParent = !existsSync(path.dirname(stateHostPath));
    await kubectl(['create', 'namespace', taskNamespace]);
    await helm(['install', release, chartDir, '--namespace', namespace, '--create-namespace', ...values(tag)]);
  });

  afterAll(async () => {
    // The uninstall case normally did this; after a failure it is the cleanup.
    await helm(['uninstall', release, '--namespace', namespace, '--ignore-not-found']).catch(() => undefined);
    // What the release leaves on the node by design (docs/deployment.md): its state directory.
    rmSync(stateHostPath, { recursive: true, force: true });
    if (madeStateParent) {
      try {
        rmdirSync(path.dirname(stateHostPath));
      } catch {
        // Not empty: another release's state is there now.
      }
    }
    if (scratch !== '') rmSync(scratch, { recursive: true, force: true });
  });

  /** `kubectl parafork logs TASK` as a reader who holds only the chart's log-reader and log-proxy roles. */
  let readerKubeconfig = '';
  async function readTaskLog(name: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
    if (readerKubeconfig === '') {
      await kubectl(['create', 'serviceaccount', 'log-reader', '-n', taskNamespace]);
      await kubectl(['create', 'rolebinding', 'log-reader', `--clusterrole=${release}-log-reader`, `--serviceaccount=${taskNamespace}:log-reader`, '-n', taskNamespace]);
      await kubectl(['create', 'rolebinding', 'log-reader', `--role=${release}-log-proxy`, `--serviceaccount=${taskNamespace}:log-reader`, '-n', namespace]);
      const token = (await kubectl(['create', 'token', 'log-reader', '-n', taskNamespace, '--duration=1h'])).trim();
      const admin = load(readFileSync(inject('kubeconfigPath'), 'utf8')) as { clusters: { cluster: Record<string, string> }[] };
      readerKubeconfig = path.join(scratch, 'reader-kubeconfig');
      writeFileSync(readerKubeconfig, JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'node', cluster: admin.clusters[0]!.cluster }],
        users: [{ name: 'reader', user: { token } }],
        contexts: [{ name: 'reader', context: { cluster: 'node', user: 'reader' } }],
        'current-context': 'reader',
      }), { mode: 0o600 });
    }
    return spawnSync(process.execPath, [path.join(repositoryRoot, 'dist/cli/kubectl-plugin.js'), 'logs', name, '-n', taskNamespace, '--agent-namespace', namespace, '--kubeconfig', readerKubeconfig], { encoding: 'utf8', timeout: 60_000 });
  }

  it("starts the DaemonSet's Pod, which becomes Ready (probes on /healthz and /readyz)", async () => {
    try {
      await waitForReadyAgent(`${repository}:${tag}`);
    } catch (error) {
      throw new Error(`${String(error)}\n${await podDiagnostics()}`);
    }
  });

  it('runs a Task applied with kubectl inside the Pod, sandboxed, to Succeeded', async () => {
    await applyTask(taskNamespace, 'hello', nodeName, {
      command: ['sh', '-c', 'echo uid=$(id -u) pid=$$ >&2; grep CapEff /proc/self/status >&2; ls /sys/class/net >&2 || true'],
    });
    const task = await waitForTaskPhase(taskNamespace, 'hello', ['Succeeded', 'Failed'], 60_000);
    expect(task.status).toMatchObject({ phase: 'Succeeded', exitCode: 0, attempts: 1 });
  });

  it("runs the agent's JavaScript thread and the V8 and libuv workers it waits for at nice -10 (the chart's CAP_SYS_NICE), its other threads at 0", async () => {
    // Found on the node by the Pod's uid in its cgroup path (the kubelet names the Pod's cgroup so).
    const uid = (await kubectl(['get', 'pods', '-n', namespace, '-l', `app.kubernetes.io/instance=${release}`, '-o', 'jsonpath={.items[0].metadata.uid}'])).trim();
    expect(uid).not.toBe('');
    const cgroupNames = [uid, uid.replaceAll('-', '_')];
    const agents = readdirSync('/proc').filter((entry) => {
      if (!/^\d+$/.test(entry)) return false;
      try {
        const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
        const cgroup = readFileSync(`/proc/${entry}/cgroup`, 'utf8');
        return command.includes('agent') && cgroupNames.some((name) => cgroup.includes(name)) && readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'parafork-init';
      } catch {
        return false; // gone meanwhile
      }
    });
    expect(agents).toHaveLength(1);
    /** proc(5): the nice value is the 19th field of stat, the 17th after the command name's parenthesis. */
    const niceOf = (statPath: string): number => Number(readFileSync(statPath, 'utf8').slice(readFileSync(statPath, 'utf8').lastIndexOf(')') + 2).split(' ')[16]);
    const pid = agents[0]!;
    expect(niceOf(`/proc/${pid}/stat`)).toBe(-10);
    const threads = readdirSync(`/proc/${pid}/task`).filter((tid) => tid !== pid);
    expect(threads.length).toBeGreaterThan(0);
    for (const tid of threads) {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      expect(niceOf(`/proc/${pid}/task/${tid}/stat`), name).toBe(['V8Worker', 'libuv-worker'].includes(name) ? -10 : 0);
    }
  });

  it("reports OOMKilled when a Task goes over its memory limit, the limit enforced in the node's cgroup tree", async () => {
    const manifest = readFileSync(path.join(chartDir, '../../examples/limits-memory.yaml'), 'utf8');
    await kubectl(['apply', '-n', taskNamespace, '-f', '-'], { input: manifest.replace(/^spec:$/m, `spec:\n  nodeName: ${nodeName}`) });
    const task = await waitForTaskPhase(taskNamespace, 'limits-memory', ['Succeeded', 'Failed'], 90_000);
    expect(task.status).toMatchObject({ phase: 'Failed', reason: 'OOMKilled' });
  });

  it('caps a fork bomb with the pids limit', async () => {
    const manifest = readFileSync(path.join(chartDir, '../../examples/limits-pids.yaml'), 'utf8');
    await kubectl(['apply', '-n', taskNamespace, '-f', '-'], { input: manifest.replace(/^spec:$/m, `spec:\n  nodeName: ${nodeName}`) });
    const task = await waitForTaskPhase(taskNamespace, 'limits-pids', ['Succeeded', 'Failed'], 90_000);
    expect(task.status).toMatchObject({ phase: 'Failed', reason: 'Error' });
    expect(task.status?.stderrTail).toContain('Cannot fork');
  });

  it.each([
    { what: 'writes to the root filesystem', command: 'echo x > /etc/parafork-marker', shows: 'Read-only file system' },
    { what: 'mounts a filesystem', command: 'mount -t tmpfs none /tmp', shows: 'must be superuser' },
    { what: 'reads the node cgroup tree', command: 'ls /sys/fs/cgroup', shows: 'No such file or directory' },
    // Its own PID namespace: the agent (node) is not among the processes it can see or signal.
    { what: 'looks for the agent to signal', command: 'cat /proc/[0-9]*/comm >&2', shows: 'sh\n', hides: 'node' },
  ])('refuses a hostile Task inside the Pod that $what', async ({ what, command, shows, hides }) => {
    const name = `hostile-${what.replaceAll(' ', '-').slice(0, 40)}`;
    await applyTask(taskNamespace, name, nodeName, { command: ['sh', '-c', `${command}; exit 3`] });
    const task = await waitForTaskPhase(taskNamespace, name, ['Succeeded', 'Failed'], 60_000);
    expect(task.status).toMatchObject({ phase: 'Failed', exitCode: 3 });
    expect(task.status?.stderrTail).toContain(shows);
    if (hides !== undefined) expect(task.status?.stderrTail).not.toContain(hides);
    // The agent is still there, and Ready.
    await waitForReadyAgent(`${repository}:${tag}`, 30_000);
  });

  it("serves the agent's metrics through the Service", async () => {
    const metrics = await waitFor(
      async (observed) => {
        const result = await kubectlResult(['get', '--raw', `/api/v1/namespaces/${namespace}/services/http:${release}-metrics:metrics/proxy/metrics`]);
        observed(result.stderr || result.stdout.slice(0, 200));
        return result.status === 0 ? result.stdout : undefined;
      },
      { description: 'metrics through the Service', timeoutMs: 60_000, intervalMs: 1000 },
    );
    expect(metrics).toMatch(/^parafork_launcher_info\{/m);
    expect(metrics).toMatch(/^parafork_reconcile_total\{/m);
  });

  it('helm upgrade to a new image tag drains the old agent and replaces it, no Task lost or run twice', async () => {
    const newTag = `${tag}-upgraded`;
    ctr(['images', 'tag', '--force', `docker.io/library/${repository}:${tag}`, `docker.io/library/${repository}:${newTag}`]);
    // A finished Task whose log the next agent Pod must still serve.
    await applyTask(taskNamespace, 'logged-before-upgrade', nodeName, { command: ['sh', '-c', 'echo written by the first agent; sleep 0.1; echo to stderr >&2'] });
    await waitForTaskPhase(taskNamespace, 'logged-before-upgrade', ['Succeeded'], 60_000);
    expect(await readTaskLog('logged-before-upgrade')).toMatchObject({ status: 0, stdout: 'written by the first agent\nto stderr\n' });
    // One Task running through the rollout, which the old agent drains, and one applied while the
    // new agent starts.
    await applyTask(taskNamespace, 'across-upgrade', nodeName, { command: ['sh', '-c', 'sleep 8; echo done >&2'] });
    await waitForTaskPhase(taskNamespace, 'across-upgrade', ['Running'], 60_000);
    await helm(['upgrade', release, chartDir, '--namespace', namespace, ...values(newTag)]);
    await applyTask(taskNamespace, 'during-upgrade', nodeName, { command: ['sh', '-c', 'echo during >&2'] });
    await waitForReadyAgent(`${repository}:${newTag}`);
    for (const name of ['across-upgrade', 'during-upgrade']) {
      const task = await waitForTaskPhase(taskNamespace, name, ['Succeeded', 'Failed'], 120_000);
      expect(task.status, name).toMatchObject({ phase: 'Succeeded', attempts: 1 });
    }
    // The new Pod serves the logs the old one wrote: the state directory is the node's, not the Pod's.
    expect(await readTaskLog('logged-before-upgrade')).toMatchObject({ status: 0, stdout: 'written by the first agent\nto stderr\n' });
    expect(await readTaskLog('across-upgrade')).toMatchObject({ status: 0, stdout: 'done\n' });
  });

  it("keeps the agent's state in a node directory of the release's own, which two releases never share", async () => {
    const stateVolume = async (releaseName: string): Promise<unknown> => {
      const daemonSet = onlyObject(parseManifests(await renderChart({ release: releaseName, namespace, showOnly: ['templates/daemonset.yaml'] })), 'DaemonSet') as unknown as {
        spec: { template: { spec: { volumes: { name: string; hostPath?: object }[] } } };
      };
      return daemonSet.spec.template.spec.volumes.find((volume) => volume.name === 'state');
    };
    expect(await stateVolume('one')).toEqual({ name: 'state', hostPath: { path: '/var/lib/parafork/one', type: 'DirectoryOrCreate' } });
    expect(await stateVolume('two')).toEqual({ name: 'state', hostPath: { path: '/var/lib/parafork/two', type: 'DirectoryOrCreate' } });
    // The installed release's agent writes there, on the node: the journal and the Tasks' logs.
    expect(readdirSync(stateHostPath).sort()).toEqual(expect.arrayContaining([`launched-${nodeName}`, 'logs']));
    expect(readdirSync(path.join(stateHostPath, 'logs', nodeName)).some((entry) => entry.startsWith(`${taskNamespace}_logged-before-upgrade_`))).toBe(true);
  });

  it("runs the agent under the chart's seccomp profile, written onto the node by its init container", async () => {
    const [pod] = await agentPods();
    expect(pod?.seccomp).toBe('Localhost');
    const written = readFileSync(path.join(stateDir, 'kubelet/seccomp/parafork', `${release}-agent.json`), 'utf8');
    expect(written).toBe(readFileSync(path.join(chartDir, `files/agent-seccomp-${process.arch === 'x64' ? 'x86_64' : process.arch}.json`), 'utf8'));
  });

  it("cannot build a Task's sandbox under the runtime's default seccomp profile, which refuses pivot_root (why the chart brings its own)", async () => {
    const upgradedTag = `${tag}-upgraded`;
    await helm(['upgrade', release, chartDir, '--namespace', namespace, ...values(upgradedTag), '--set', 'agentSeccompProfile.install=false', '--set', 'securityContext.seccompProfile.type=RuntimeDefault']);
    await waitForReadyAgent(`${repository}:${upgradedTag}`, 240_000, 'RuntimeDefault');
    await applyTask(taskNamespace, 'under-runtime-default', nodeName, { command: ['true'] });
    const task = await waitForTaskPhase(taskNamespace, 'under-runtime-default', ['Succeeded', 'Failed'], 60_000);
    expect(task.status).toMatchObject({ phase: 'Failed', reason: 'SandboxUnavailable' });
    expect(task.status?.message).toContain('EPERM in pivot_root');
    await helm(['upgrade', release, chartDir, '--namespace', namespace, ...values(upgradedTag)]);
    await waitForReadyAgent(`${repository}:${upgradedTag}`);
  });

  it('helm uninstall leaves no Task process, cgroup or mount on the node', async () => {
    await applyTask(taskNamespace, 'running-at-uninstall', nodeName, { command: ['sleep', '600'] });
    await waitForTaskPhase(taskNamespace, 'running-at-uninstall', ['Running'], 60_000);
    await helm(['uninstall', release, '--namespace', namespace]);
    await waitFor(async (observed) => {
      const pods = await agentPods();
      observed(pods);
      return pods.length === 0 ? true : undefined;
    }, { description: 'the agent Pod to be gone', timeoutMs: 120_000, intervalMs: 1000 });

    // No process of the host runs in the kubelet's Pod cgroups any more, and none is left of the
    // agent's task group (it sat beneath the agent container's cgroup, in every hierarchy).
    const cgroupRoot = node.CGROUP_ROOT ?? '';
    const leftovers = await waitFor(
      () => {
        const found: string[] = [];
        for (const hierarchy of readdirSync('/sys/fs/cgroup').map((entry) => path.join('/sys/fs/cgroup', entry))) {
          const podsDir = path.join(hierarchy, cgroupRoot, 'kubepods');
          if (!existsSync(podsDir)) continue;
          const walk = (directory: string): void => {
            const procs = readFileSync(path.join(directory, 'cgroup.procs'), 'utf8').trim();
            if (procs !== '' || path.basename(directory) === 'parafork') found.push(`${directory}: ${procs}`);
            for (const entry of readdirSync(directory, { withFileTypes: true })) if (entry.isDirectory()) walk(path.join(directory, entry.name));
          };
          walk(podsDir);
        }
        return found.length === 0 ? found : undefined;
      },
      { description: 'no process and no task group under the kubelet Pod cgroups', timeoutMs: 60_000, intervalMs: 1000 },
    );
    expect(leftovers).toEqual([]);
    // The sandbox's mounts live in mount namespaces of the agent's container; none reached the host.
    const hostMounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((line) => /parafork-task|\/run\/parafork\/(?!ids)/.test(line));
    expect(hostMounts).toEqual([]);
  });
});

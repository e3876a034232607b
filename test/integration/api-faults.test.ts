// The agent against an apiserver that misbehaves: behind test/helpers/fault-proxy.ts it meets 409
// Conflicts, 429s with Retry-After, 500s, connections cut mid-response and watches that go silent,
// and still brings every Task to the phase its command and retry policy call for, runs each
// attempt once, keeps to its --api-qps/--api-burst (and --event-qps/--event-burst) without
// retrying in a hot loop, and waits out every Retry-After. A watch that stays silent for good is
// given up by the agent's watchdog (90 s: that test is the slow one).
//
// PARAFORK_FAULT_TASKS sets how many Tasks (default 60); PARAFORK_FAULT_SEED repeats a run's draws.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { taskApiVersion, taskKind } from '../../src/api/task.js';
import { ApiClient } from '../../src/k8s/api-client.js';
import { startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { applyTask, createTestNamespace, kubectl, waitFor, waitForTaskPhase, waitForTerminalTasks, type TestNamespace } from '../helpers/cluster.js';
import { seededRandom, startFaultProxy, type FaultProxy, type FaultRule, type LoggedRequest } from '../helpers/fault-proxy.js';

const taskCount = Number(process.env.PARAFORK_FAULT_TASKS ?? 60);
const seed = Number(process.env.PARAFORK_FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));
// The agent's two client-side limits: one for Task reads and writes, one for Events (as the kubelet's).
const apiQps = 50;
const apiBurst = 100;
const eventQps = 20;
const eventBurst = 40;
const isEvent = (request: LoggedRequest): boolean => request.route.endsWith(' events');

let namespace: TestNamespace;
let scratch: string;
let proxy: FaultProxy;
const agents: AgentProcess[] = [];

beforeAll(async () => {
  namespace = await createTestNamespace('api-faults');
  scratch = mkdtempSync(path.join(tmpdir(), 'parafork-api-faults-'));
  // Tasks run as uids of their own (a retry keeps its own) and append to their marker files in here.
  chmodSync(scratch, 0o777);
  proxy = await startFaultProxy({ upstreamUrl: inject('apiserverUrl'), clusterStateDir: inject('clusterStateDir'), workDirectory: scratch, random: seededRandom(seed) });
  console.log(`api-faults: ${taskCount} Tasks, PARAFORK_FAULT_SEED=${seed}`);
});

afterAll(async () => {
  await Promise.all(agents.map((agent) => agent.stop()));
  await proxy.close();
  await namespace.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

/** What each kind of Task does, and how it must end. */
const kinds = {
  // Runs once and succeeds.
  succeeds: { script: 'exit 0', spec: {}, expected: { phase: 'Succeeded', attempts: 1, reason: 'Completed' } },
  // Fails every time: one retry, then BackoffLimitExceeded with the command's exit code.
  fails: { script: 'exit 3', spec: { backoffLimit: 1 }, expected: { phase: 'Failed', attempts: 2, reason: 'BackoffLimitExceeded', exitCode: 3 } },
  // Fails its first attempt and succeeds on the second (it counts its own runs in its marker file).
  flaky: { script: 'test "$(wc -l < "$0")" -ge 2', spec: { backoffLimit: 2 }, expected: { phase: 'Succeeded', attempts: 2, reason: 'Completed' } },
} as const;
type Kind = keyof typeof kinds;
const kindNames = Object.keys(kinds) as Kind[];

function kindOf(name: string): Kind {
  return kindNames[Number(name.split('-').at(-1)) % kindNames.length] ?? 'succeeds';
}

/**
 * A Task that appends a line to /mnt/NAME (its marker file) on every run, then does its kind's
 * thing. Every fifth is left unbound, for the agent to claim (the only agent up at the time).
 */
function markedTask(name: string, nodeName: string): Record<string, unknown> {
  const kind = kinds[kindOf(name)];
  const claimed = Number(name.split('-').at(-1)) % 5 === 4;
  return {
    apiVersion: taskApiVersion,
    kind: taskKind,
    metadata: { name, namespace: namespace.name },
    spec: {
      ...(claimed ? {} : { nodeName }),
      command: ['sh', '-c', `echo run >> "$0"; ${kind.script}`, `/mnt/${name}`],
      sandbox: { mounts: [{ hostPath: scratch, mountPath: '/mnt', readOnly: false }] },
      backoff: { initialSeconds: 1, maxSeconds: 1 },
      ...kind.spec,
    },
  };
}

/** Where to look when the agent did not converge: its log and the proxy's request log, kept on disk. */
function diagnostics(agent: AgentProcess): string {
  const file = path.join(tmpdir(), `parafork-api-faults-${seed}.log`);
  writeFileSync(file, `${agent.logs()}\n---- requests through the fault proxy ----\n${proxy.requests.map((request) => JSON.stringify(request)).join('\n')}\n`);
  return `PARAFORK_FAULT_SEED=${seed}; the agent's log and every request it made: ${file}`;
}

function runsOf(name: string): number {
  try {
    return readFileSync(path.join(scratch, name), 'utf8').split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}


/** Most requests to one object (its path, whatever the verb) in any `windowMs`. */
function maxPerObjectInWindow(requests: readonly LoggedRequest[], windowMs: number): { path: string; count: number } {
  const byPath = new Map<string, number[]>();
  for (const request of requests) {
    // Creates go to a collection (events), not to one object.
    if (request.watch || request.method === 'POST') continue;
    const objectPath = request.url.split('?')[0] ?? request.url;
    byPath.set(objectPath, [...(byPath.get(objectPath) ?? []), request.at]);
  }
  let worst = { path: '', count: 0 };
  for (const [objectPath, times] of byPath) {
    let first = 0;
    for (let last = 0; last < times.length; last++) {
      while ((times[last] ?? 0) - (times[first] ?? 0) >= windowMs) first++;
      if (last - first + 1 > worst.count) worst = { path: objectPath, count: last - first + 1 };
    }
  }
  return worst;
}

const faultRules: readonly FaultRule[] = [
  // Conflicts on status writes and finalizer JSON patches. Not on claims: a claim's 409 means
  // another agent won, which the watch then shows; an invented one would leave nothing to react to.
  { name: 'status-conflict', methods: ['PATCH'], path: /\/tasks\/[^/?]+\/status/, probability: 0.08, fault: { kind: 'status', status: 409, reason: 'Conflict' } },
  { name: 'finalizer-conflict', methods: ['PATCH'], path: /\/tasks\//, body: /"op"/, probability: 0.08, fault: { kind: 'status', status: 409, reason: 'Conflict' } },
  { name: 'too-many-requests', watch: false, probability: 0.05, fault: { kind: 'status', status: 429, reason: 'TooManyRequests', retryAfterSeconds: 1 } },
  { name: 'internal-error', watch: false, probability: 0.05, fault: { kind: 'status', status: 500, reason: 'InternalError' } },
  { name: 'dropped-response', watch: false, probability: 0.03, fault: { kind: 'drop', afterBytes: 20 } },
  // Watches: the first few each meet one fault for sure (a run is short and opens few), later ones by chance.
  { name: 'dropped-watch', watch: true, probability: 1, limit: 2, fault: { kind: 'drop', afterBytes: 400 } },
  { name: 'stalled-watch', watch: true, probability: 1, limit: 2, fault: { kind: 'stall', stallMs: 3000 } },
  { name: 'watch-unavailable', watch: true, probability: 1, limit: 2, fault: { kind: 'status', status: 503, reason: 'ServiceUnavailable' } },
  { name: 'dropped-watch-later', watch: true, probability: 0.2, fault: { kind: 'drop', afterBytes: 400 } },
];

describe("the agent's API client", () => {
  it('retries a request whose response was cut in the middle of its body, as any network failure', async () => {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(proxy.kubeconfigPath);
    const client = new ApiClient({ kubeConfig, qps: 100, burst: 100, userAgent: 'parafork-api-faults-test' });
    const namespacePath = `/api/v1/namespaces/${namespace.name}`;
    proxy.setRules([{ name: 'cut-body', methods: ['GET'], path: new RegExp(`^${namespacePath}$`), probability: 1, limit: 1, fault: { kind: 'drop', afterBytes: 20 } }]);
    const before = proxy.requests.length;
    const fetched = await client.request<{ metadata: { name: string } }>({ method: 'GET', path: namespacePath });
    expect(fetched.metadata.name).toBe(namespace.name);
    expect(proxy.requests.slice(before).map((request) => `${request.method} ${request.url} ${request.fault ?? 'passed'}`)).toEqual([`GET ${namespacePath} cut-body`, `GET ${namespacePath} passed`]);
  });
});

describe('an agent behind an apiserver that injects faults', () => {
  it(`brings ${taskCount} Tasks to the right end, runs each attempt once, and keeps its request rate bounded`, async () => {
    const nodeName = 'faults-node';
    proxy.setRules(faultRules);
    const agentStartedAt = performance.now();
    const agent = await startAgent(nodeName, ['--kubeconfig', proxy.kubeconfigPath, '--api-qps', String(apiQps), '--api-burst', String(apiBurst), '--event-qps', String(eventQps), '--event-burst', String(eventBurst)]);
    agents.push(agent);

    const names = Array.from({ length: taskCount }, (_, index) => `fault-${index}`);
    // Created straight at the apiserver: the faults are the agent's to survive, not the test's.
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: names.map((name) => markedTask(name, nodeName)) }) });
    const tasks = await waitForTerminalTasks(namespace.name, 'fault-', taskCount, 240_000).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\n${diagnostics(agent)}`);
    });
    const convergedAt = performance.now();
    // The same instant on the clock of the proxy's log (it started before this agent did).
    const convergedOnProxyClock = proxy.now();

    const wrong = tasks
      .map((task) => {
        const name = task.metadata.name ?? '';
        const expected = kinds[kindOf(name)].expected;
        const ended = { phase: task.status?.phase, attempts: task.status?.attempts, reason: task.status?.reason, ...('exitCode' in expected ? { exitCode: task.status?.exitCode } : {}) };
        // Every attempt runs its command exactly once: no lost attempt, no attempt run twice.
        const runs = runsOf(name);
        return JSON.stringify(ended) === JSON.stringify(expected) && runs === expected.attempts ? undefined : { name, expected, ended, runs, message: task.status?.message };
      })
      .filter((entry) => entry !== undefined);
    expect(wrong, wrong.length > 0 ? diagnostics(agent) : undefined).toEqual([]);
    // The unbound ones were claimed by the agent, in spite of the faults.
    expect(tasks.filter((task) => task.spec.nodeName !== nodeName).map((task) => task.metadata.name)).toEqual([]);

    // Once converged the agent goes quiet: no request loops on finished Tasks. What may still come
    // is the end of a retry chain begun before: a write whose answer was lost, refused with a 429 or
    // a 5xx, or met a conflict is sent again after its backoff (up to 5 s) or Retry-After, even when
    // the first send already landed and the test saw the Task end. So the wait lasts until the
    // agent has been quiet for 3 s (at least 5 s, at most 30 s), and each late request must be such
    // a retry. (The agent re-reads its Node's labels every minute: that is a schedule, not a loop.
    // Events may still be draining at their own rate limit; they are bounded in number below.)
    const quietSince = convergedOnProxyClock + 1_000;
    const isQuietCandidate = (request: LoggedRequest): boolean => !request.watch && request.route !== 'get nodes' && !isEvent(request);
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    await waitFor(
      () => {
        const last = proxy.requests.findLast(isQuietCandidate);
        return last === undefined || proxy.now() - last.at >= 3_000 ? true : undefined;
      },
      { description: `the agent to be quiet for 3 s after convergence (PARAFORK_FAULT_SEED=${seed})`, timeoutMs: 25_000, intervalMs: 250 },
    );
    const afterConvergence = proxy.requests.filter((request) => request.at >= quietSince && isQuietCandidate(request));
    const described = (request: LoggedRequest): string => `${request.method} ${request.url} at ${(request.at - convergedOnProxyClock).toFixed(0)} ms: ${request.fault ?? 'passed'} ${request.status}`;
    const unanswered = (request: LoggedRequest): boolean => request.fault !== undefined || request.status === 0 || request.status === 409 || request.status === 429 || request.status >= 500;
    const notRetries = afterConvergence.filter((request) => {
      const index = proxy.requests.indexOf(request);
      const previous = proxy.requests.slice(0, index).findLast((earlier) => earlier.method === request.method && earlier.url === request.url);
      // The client's longest wait between two sends: its 5 s backoff cap, or a Retry-After of 1 s.
      return previous === undefined || !unanswered(previous) || request.at - previous.at > 5_000 + 1_000;
    });
    // Each retry chain ended, answered for good (the quiet wait above saw no later send).
    const lastOfEachChain = [...new Map(afterConvergence.map((request) => [`${request.method} ${request.url}`, request])).values()];
    const unendedChains = lastOfEachChain.filter((request) => request.status === 0 || request.status === 429 || request.status >= 500);

    const injected = Object.fromEntries(proxy.injected());
    const requests = proxy.requests;
    const perSecond = proxy.maxInWindow(1_000, (request) => !isEvent(request));
    const perFiveSeconds = proxy.maxInWindow(5_000, (request) => !isEvent(request));
    const eventsPerSecond = proxy.maxInWindow(1_000, isEvent);
    const eventsPerFiveSeconds = proxy.maxInWindow(5_000, isEvent);
    const perObject = maxPerObjectInWindow(requests, 1_000);
    const plainRequests = requests.filter((request) => !request.watch).length;
    const rates = Object.fromEntries([...proxy.ratesByRoute()].map(([route, counts]) => [route, Math.max(...counts)]));
    console.log(
      `api-faults: ${taskCount} Tasks converged in ${((convergedAt - agentStartedAt) / 1000).toFixed(1)} s; ${plainRequests} requests ` +
        `(${(plainRequests / taskCount).toFixed(1)} per Task) + ${requests.length - plainRequests} watches; most in 1 s: ${perSecond} (+ ${eventsPerSecond} events), in 5 s: ${perFiveSeconds} (+ ${eventsPerFiveSeconds} events); ` +
        `most to one object in 1 s: ${perObject.count} (${perObject.path}); after convergence: ${JSON.stringify(afterConvergence.map(described))}; ` +
        `injected ${JSON.stringify(injected)}; retries after a 429: ${proxy.retriesAfterTooManyRequests}; peak per route per second ${JSON.stringify(rates)}`,
    );

    // Every failure names the seed that repeats this run's faults.
    const repeat = `PARAFORK_FAULT_SEED=${seed} repeats this run's faults`;
    // Each kind of fault was met, or the test proved nothing about it.
    for (const rule of faultRules.filter((rule) => rule.probability === 1)) expect(injected[rule.name] ?? 0, `fault ${rule.name} injected; ${repeat}`).toBeGreaterThan(0);
    // The token bucket allows at most burst + qps * t in any t. The proxy sees arrivals, not sends:
    // on a loaded 2-core machine requests paced apart can arrive bunched, so a second of slack.
    expect(perSecond, repeat).toBeLessThanOrEqual(apiBurst + apiQps * (1 + 1));
    expect(perFiveSeconds, repeat).toBeLessThanOrEqual(apiBurst + apiQps * (5 + 1));
    expect(eventsPerSecond, repeat).toBeLessThanOrEqual(eventBurst + eventQps * (1 + 1));
    expect(eventsPerFiveSeconds, repeat).toBeLessThanOrEqual(eventBurst + eventQps * (5 + 1));
    // A hot retry loop hammers one object with dozens a second. Backoff allows a few: the client's
    // retries (100 ms, doubling) of one write, then of the next (a retry's wait, then the ending).
    expect(perObject.count, `${perObject.path}; ${repeat}`).toBeLessThanOrEqual(12);
    // Writes per Task stay near the handful a Task needs (finalizer, Running, ending, finalizer, events).
    expect(plainRequests / taskCount, repeat).toBeLessThanOrEqual(15);
    // At most a Started and an ending Event per attempt (Events are never retried).
    const attempts = tasks.reduce((sum, task) => sum + (task.status?.attempts ?? 0), 0);
    expect(requests.filter(isEvent).length, repeat).toBeLessThanOrEqual(2 * attempts);
    expect(notRetries.map(described), `${repeat}\n${afterConvergence.map(described).join('\n')}`).toEqual([]);
    expect(unendedChains.map(described), `${repeat}\n${afterConvergence.map(described).join('\n')}`).toEqual([]);
    // Every request refused with 429 and Retry-After: 1 came back no sooner than a second later.
    expect(proxy.retriesAfterTooManyRequests, repeat).toBeGreaterThan(0);
    expect(proxy.earlyRetries, repeat).toEqual([]);
  }, 300_000);

  it('gives up a watch that stays open and silent for good (its watchdog), and then sees new Tasks', async () => {
    const nodeName = 'stall-node';
    const silenceSeconds = 5;
    // Only this agent's bound-Task watch, only once: everything else passes untouched.
    const stalledWatch = new RegExp(`fieldSelector=spec\\.nodeName%3D${nodeName}(&|$)`);
    proxy.setRules([{ name: 'silent-watch', watch: true, path: stalledWatch, probability: 1, limit: 1, fault: { kind: 'stall' } }]);
    const before = proxy.requests.length;
    agents.push(await startAgent(nodeName, ['--kubeconfig', proxy.kubeconfigPath, '--watch-silence-seconds', String(silenceSeconds)]));
    await waitFor(() => (proxy.injected().get('silent-watch') === 1 ? true : undefined), { description: 'the bound-Task watch to be stalled' });
    const stalledAt = performance.now();

    // Created while the watch is silent: only a new watch can show it to the agent.
    await applyTask(namespace.name, 'after-stall', nodeName, { command: ['true'] });
    const task = await waitForTaskPhase(namespace.name, 'after-stall', ['Succeeded', 'Failed'], 60_000);
    expect(task.status).toMatchObject({ phase: 'Succeeded', attempts: 1 });
    const recoveredAfterSeconds = (performance.now() - stalledAt) / 1000;
    const boundWatches = proxy.requests.slice(before).filter((request) => request.watch && stalledWatch.test(request.url));
    console.log(`api-faults: a silent watch was replaced after ${recoveredAfterSeconds.toFixed(1)} s; bound-Task watches opened: ${boundWatches.length}`);
    expect(boundWatches.length).toBeGreaterThanOrEqual(2);
    // The watchdog, not the apiserver's 60 s watch renewal, ended it.
    expect(recoveredAfterSeconds).toBeGreaterThanOrEqual(silenceSeconds - 1);
    expect(recoveredAfterSeconds).toBeLessThan(45);
  }, 120_000);
});


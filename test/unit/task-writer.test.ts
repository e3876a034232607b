// KubernetesTaskWriter.writeStatus against a local HTTP server that records the request (a fake
// of the status endpoint, for this module alone): the merge patch carries every field of the
// status the reconciler built, and null for each one it lacks, so the write replaces the status.
import { afterEach, describe, expect, it } from 'vitest';

import type { Task, TaskStatus } from '../../src/api/task.js';
import { KubernetesTaskWriter, parseApplyConflicts } from '../../src/k8s/task-writer.js';
import { closeLocalApiServers, localApiClient } from '../helpers/local-api-server.js';

interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly body: unknown;
}

afterEach(closeLocalApiServers);

/** A writer whose API server answers every request with the Task and records what it was sent. */
async function recordingWriter(): Promise<{ writer: KubernetesTaskWriter; requests: RecordedRequest[] }> {
  const requests: RecordedRequest[] = [];
  const client = await localApiClient((request, response) => {
    let text = '';
    request.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    request.on('end', () => {
      requests.push({ method: request.method ?? '', url: request.url ?? '', body: JSON.parse(text) as unknown });
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(task));
    });
  });
  return { writer: new KubernetesTaskWriter(client), requests };
}

const task: Task = { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: 'task', namespace: 'ns', uid: 'uid-1', generation: 1 }, spec: { nodeName: 'node', command: ['work'] } };

describe('KubernetesTaskWriter.writeStatus', () => {
  it('sends the host ids and spawn timings of a finished attempt with the rest of its status', async () => {
    const { writer, requests } = await recordingWriter();
    const status: TaskStatus = {
      phase: 'Failed',
      observedGeneration: 1,
      nodeName: 'node',
      attempts: 1,
      exitCode: 1,
      reason: 'Error',
      message: 'exited with status 1',
      hostIdentity: { uid: 1_879_048_192, gid: 1_879_048_192 },
      spawnTimings: { queuedNanoseconds: 10, spawnNanoseconds: 20 },
    };
    await writer.writeStatus(task, status);
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({ method: 'PATCH', url: '/apis/parafork.dev/v1alpha1/namespaces/ns/tasks/task/status' });
    expect((requests[0]?.body as { status: TaskStatus }).status).toMatchObject(status);
  });

  it('sends null for each field the new status lacks, so the merge patch removes it', async () => {
    const { writer, requests } = await recordingWriter();
    await writer.writeStatus(task, { phase: 'Pending' });
    const sent = (requests[0]?.body as { status: Record<string, unknown> }).status;
    expect(sent).toMatchObject({ phase: 'Pending', hostIdentity: null, spawnTimings: null, exitCode: null, stderrTail: null });
  });
});

// The wording is k8s.io/apiserver's fieldmanager (NewConflictError), managers applying through the status subresource.
describe('parseApplyConflicts', () => {
  it('reads one conflict', () => {
    const message = 'PATCH /apis/parafork.dev/v1alpha1/namespaces/n/tasks/shared/status: 409 Apply failed with 1 conflict: conflict with "parafork-agent/node-b" with subresource "status": .status.partitions[start=500].succeeded';
    expect(parseApplyConflicts(message)).toEqual([{ manager: 'parafork-agent/node-b', field: '.status.partitions[start=500].succeeded' }]);
  });

  it('reads several conflicts of several managers', () => {
    const message = [
      'PATCH /apis/parafork.dev/v1alpha1/namespaces/n/tasks/shared/status: 409 Apply failed with 3 conflicts: conflicts with "parafork-agent/node-b" with subresource "status":',
      '- .status.partitions[start=500].succeeded',
      '- .status.partitions[start=500].completedIndexes',
      'conflicts with "kubectl" using parafork.dev/v1alpha1:',
      '- .status.partitions[start=600].nodeName',
    ].join('\n');
    expect(parseApplyConflicts(message)).toEqual([
      { manager: 'parafork-agent/node-b', field: '.status.partitions[start=500].succeeded' },
      { manager: 'parafork-agent/node-b', field: '.status.partitions[start=500].completedIndexes' },
      { manager: 'kubectl', field: '.status.partitions[start=600].nodeName' },
    ]);
  });

  it('finds none in a refusal that is not about fields (a resourceVersion precondition)', () => {
    expect(parseApplyConflicts('PATCH /x: 409 Operation cannot be fulfilled on tasks.parafork.dev "shared": the object has been modified; please apply your changes to the latest version and try again')).toEqual([]);
  });
});

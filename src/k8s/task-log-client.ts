// The reading side of `kubectl parafork logs`: from wherever kubectl works, through the apiserver.
// The Task is read first (the caller must be allowed to get it, and its status.nodeName says where
// it ran), then the agent Pod on that node is found, and the log is streamed from that Pod's
// /logs endpoint through the apiserver's pod proxy. The agent decides access itself with the
// caller's token (src/k8s/log-access-review.ts): the proxy only needs pods/proxy on agent Pods.
import http from 'node:http';
import https from 'node:https';

import { taskGroup, taskPlural, taskVersion, type Task } from '../api/task.js';
import { ApiClient, ApiError } from './api-client.js';
import type { ApiCredentials } from './kube-config.js';

export interface TaskLogRequest {
  readonly namespace: string;
  readonly name: string;
  /** The agents' namespace and Pod label selector (the chart's defaults). */
  readonly agentNamespace: string;
  readonly agentSelector: string;
  /** Query parameters of GET /logs (src/logs/log-endpoint.ts). */
  readonly query: Readonly<Record<string, string>>;
}

export class TaskLogClientError extends Error {
  readonly code = 'ERR_PARAFORK_TASK_LOG';
}

interface PodList {
  readonly items: readonly {
    readonly metadata: { readonly name: string };
    readonly status?: { readonly phase?: string };
    readonly spec?: { readonly containers?: readonly { readonly ports?: readonly { readonly name?: string; readonly containerPort: number }[] }[] };
  }[];
}

/**
 * The node whose agent keeps the log: the Task's, or for an index of an array that several agents
 * share (no spec.nodeName, docs/arrays.md), the holder of the range the index is in. A range taken
 * over moves on; the logs of the attempts its earlier holder ran stay on that node.
 */
export function logNodeName(task: Task, index: number | undefined): string | undefined {
  if (task.spec.nodeName !== undefined && task.spec.nodeName !== '') return task.spec.nodeName;
  if (index === undefined) return undefined;
  return task.status?.partitions?.find((partition) => partition.start <= index && index < partition.end)?.nodeName;
}

/** Streams the log to `out`; resolves at its end, throws TaskLogClientError with what went wrong. */
export async function streamTaskLog(credentials: ApiCredentials, request: TaskLogRequest, out: (chunk: Buffer) => void, signal?: AbortSignal): Promise<void> {
  const client = new ApiClient({ kubeConfig: credentials, qps: 20, burst: 20, userAgent: 'kubectl-parafork', maxAttempts: 3 });
  const task = await client.request<Task>({ method: 'GET', path: `/apis/${taskGroup}/${taskVersion}/namespaces/${request.namespace}/${taskPlural}/${request.name}` }).catch((error: unknown) => {
    if (error instanceof ApiError && (error.status === 404 || error.status === 403)) throw new TaskLogClientError(`Task ${request.namespace}/${request.name}: ${error.message}`);
    throw error;
  });
  const index = request.query.index === undefined ? undefined : Number(request.query.index);
  const nodeName = logNodeName(task, index);
  if (nodeName === undefined || nodeName === '') {
    throw new TaskLogClientError(`${index === undefined ? '' : `index ${index} of `}Task ${request.namespace}/${request.name} has not been placed on a node yet: no logs`);
  }
  const pods = await client.request<PodList>({ method: 'GET', path: `/api/v1/namespaces/${request.agentNamespace}/pods`, query: { labelSelector: request.agentSelector, fieldSelector: `spec.nodeName=${nodeName}` } });
  const pod = pods.items.find((each) => each.status?.phase === 'Running') ?? pods.items[0];
  if (pod === undefined) throw new TaskLogClientError(`no parafork agent Pod (${request.agentSelector} in namespace ${request.agentNamespace}) runs on node ${nodeName}, where Task ${request.namespace}/${request.name} ran`);
  const port = pod.spec?.containers?.flatMap((container) => container.ports ?? []).find((each) => each.name === 'http')?.containerPort ?? 8080;
  const transport: https.RequestOptions = {};
  await credentials.applyToHTTPSOptions(transport);
  const headers = (transport.headers ?? {}) as Record<string, string>;
  const authorization = headers.Authorization ?? headers.authorization;
  if (authorization === undefined || !authorization.startsWith('Bearer ')) {
    throw new TaskLogClientError('kubectl parafork logs needs a kubeconfig user with a bearer token (a token, a token file or an exec plugin): the agent asks the apiserver who the token belongs to, and a client certificate cannot be passed on through the apiserver');
  }
  const server = new URL(credentials.getCurrentCluster()?.server ?? '');
  const query = new URLSearchParams(request.query).toString();
  const path = `${server.pathname.replace(/\/$/, '')}/api/v1/namespaces/${request.agentNamespace}/pods/${pod.metadata.name}:${port}/proxy/logs/${request.namespace}/${request.name}${query === '' ? '' : `?${query}`}`;
  await new Promise<void>((resolve, reject) => {
    const options: https.RequestOptions = { ...transport, method: 'GET', hostname: server.hostname, port: server.port, path, headers: { ...headers, 'X-Parafork-Token': authorization, 'User-Agent': 'kubectl-parafork' }, ...(signal ? { signal } : {}) };
    const sent = (server.protocol === 'https:' ? https : http).request(options, (response) => {
      const status = response.statusCode ?? 0;
      if (status !== 200) {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => reject(new TaskLogClientError(`the agent on ${nodeName} answered ${status}: ${Buffer.concat(chunks).toString('utf8').trim()}`)));
        return;
      }
      response.on('data', out);
      response.on('end', resolve);
      response.on('error', reject);
    });
    sent.on('error', reject);
    sent.end();
  });
}

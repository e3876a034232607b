// The agent's one HTTP server: /healthz (the process serves), /readyz (its caches have synced and it
// is not shutting down), /metrics (the Prometheus text format) and, for the manifest-folder agent,
// /tasks (its Tasks and their status as JSON, since there is no apiserver to ask), and /logs/<ns>/<name>
// (a Task's output, src/logs/log-endpoint.ts). What /metrics says is handed in
// as a function, so this module knows HTTP and nothing of prom-client.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { isLocalAdministrator } from './local-peer.js';
import { terminalSafeJson } from './terminal-safe-json.js';

export interface HttpServerOptions {
  readonly address: string;
  /** 0 picks a free port; HttpServer.port says which. */
  readonly port: number;
  readonly ready: () => boolean;
  /** Serves GET /metrics; without it /metrics is 404. */
  readonly metrics?: () => Promise<{ readonly contentType: string; readonly body: string }>;
  /** Serves GET /tasks as JSON (the manifest-folder agent's Tasks with their status); without it 404. */
  readonly tasks?: () => unknown;
  /** Serves /logs/... (src/logs/log-endpoint.ts); without it 404. */
  readonly logs?: (request: http.IncomingMessage, response: http.ServerResponse) => void;
  /**
   * /tasks and /logs answer only root or the agent's user on this machine, over loopback (403 for
   * anyone else): the manifest-folder agent's, which has no apiserver to ask who a reader is.
   */
  readonly taskOutputToLocalAdministratorsOnly?: boolean;
}

export interface HttpServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Whoever reaches the port may open connections and send nothing, each an fd of the agent's: the
 * fds every Task's spawn needs too (pipes, pidfds, cgroup and namespace files). Node times a
 * request out only once it has begun (headersTimeout, requestTimeout) and never an idle socket,
 * so 2,500 idle connections to an agent with an open-file limit of 2048 kept every Task from
 * starting for as long as they were held (red team, agent-idle-connections.test.ts). So: at most
 * a quarter of the open-file limit in connections (1024 at most: the log readers, maxLogStreams,
 * and the reviews on their way, maxPendingLogReviews, fit), more closed at once; a connection that
 * has not begun a request within firstRequestTimeoutMs closed; a request's headers within 10 s.
 */
export const firstRequestTimeoutMs = 10_000;

/** The connections the server keeps at once: a quarter of the agent's open-file limit, from 64 to 1024. */
export function maxHttpConnections(openFileLimit = softOpenFileLimit()): number {
  return Math.max(64, Math.min(1024, Math.floor(openFileLimit / 4)));
}

/** RLIMIT_NOFILE's soft limit (/proc/self/limits; Node has no getrlimit), or Infinity when unreadable or unlimited. */
function softOpenFileLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((entry) => entry.startsWith('Max open files'));
    const soft = Number(line?.split(/\s+/)[3]);
    return Number.isFinite(soft) && soft > 0 ? soft : Infinity;
  } catch {
    return Infinity;
  }
}

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const server = http.createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    // Every endpoint only reads; another method is a client's mistake, not a GET.
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end(`method ${request.method ?? ''} not allowed: GET or HEAD\n`);
    } else if (path === '/healthz') {
      plain(response, 200, 'ok\n');
    } else if (path === '/readyz') {
      const ready = options.ready();
      plain(response, ready ? 200 : 503, ready ? 'ok\n' : 'not ready\n');
    } else if (path === '/metrics' && options.metrics) {
      options.metrics().then(
        ({ contentType, body }) => response.writeHead(200, { 'Content-Type': contentType }).end(body),
        (error: unknown) => plain(response, 500, `could not collect metrics: ${error instanceof Error ? error.message : String(error)}\n`),
      );
    } else if (path?.startsWith('/logs/') === true && options.logs) {
      const logs = options.logs;
      serveTaskOutput(options, request, response, () => logs(request, response));
    } else if (path === '/tasks' && options.tasks) {
      const tasks = options.tasks;
      serveTaskOutput(options, request, response, () => response.writeHead(200, { 'Content-Type': 'application/json' }).end(`${terminalSafeJson(tasks())}\n`));
    } else {
      plain(response, 404, 'not found\n');
    }
  });
  server.maxConnections = maxHttpConnections();
  server.headersTimeout = firstRequestTimeoutMs;
  // Until its first request, a connection lives firstRequestTimeoutMs; then Node's own timers (a
  // request's, keep-alive's between requests) take over, and a log follower may stay quiet.
  server.on('connection', (socket) => socket.setTimeout(firstRequestTimeoutMs, () => socket.destroy()));
  server.on('request', (request: http.IncomingMessage) => request.socket.setTimeout(0));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.address, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        // A scraper keeps its connection open between scrapes; an idle one must not hold up close.
        server.closeIdleConnections();
      }),
  };
}

/** /tasks and /logs/...: a Task's status (with its stderr tail) and output, which may hold secrets. */
function serveTaskOutput(options: HttpServerOptions, request: http.IncomingMessage, response: http.ServerResponse, serve: () => void): void {
  if (options.taskOutputToLocalAdministratorsOnly !== true) {
    serve();
    return;
  }
  isLocalAdministrator(request.socket).then(
    (allowed) => (allowed ? serve() : plain(response, 403, "forbidden: Task output is served only to root (or the agent's user) on this machine, over loopback\n")),
    (error: unknown) => plain(response, 500, `could not tell who is asking: ${(error as Error).message}\n`),
  );
}

function plain(response: http.ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' }).end(text);
}

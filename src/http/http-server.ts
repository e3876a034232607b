// The agent's one HTTP server: /healthz (the process serves), /readyz (its caches have synced and it
// is not shutting down), /metrics (the Prometheus text format) and, for the manifest-folder agent,
// /tasks (its Tasks and their status as JSON, since there is no apiserver to ask), and /logs/<ns>/<name>
// (a Task's output, src/logs/log-endpoint.ts). What /metrics says is handed in
// as a function, so this module knows HTTP and nothing of prom-client.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { isLocalAdministrator } from './local-peer.js';

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

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const server = http.createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/healthz') {
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
      serveTaskOutput(options, request, response, () => response.writeHead(200, { 'Content-Type': 'application/json' }).end(`${JSON.stringify(tasks(), null, 2)}\n`));
    } else {
      plain(response, 404, 'not found\n');
    }
  });
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

// The agent's one HTTP server: /healthz (the process serves), /readyz (its caches have synced and it
// is not shutting down), /metrics (the Prometheus text format) and, for the manifest-folder agent,
// /tasks (its Tasks and their status as JSON, since there is no apiserver to ask), and /logs/<ns>/<name>
// (a Task's output, src/logs/log-endpoint.ts). What /metrics says is handed in
// as a function, so this module knows HTTP and nothing of prom-client.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

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
      options.logs(request, response);
    } else if (path === '/tasks' && options.tasks) {
      response.writeHead(200, { 'Content-Type': 'application/json' }).end(`${JSON.stringify(options.tasks(), null, 2)}\n`);
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

function plain(response: http.ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' }).end(text);
}

// The agent's HTTP server: /metrics beside /healthz and /readyz, on loopback.
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';

import { maxHttpConnections, startHttpServer, type HttpServer, type HttpServerOptions } from '../../src/http/http-server.js';
import { MetricsRegistry } from '../../src/metrics/registry.js';

const servers: HttpServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function serve(options: Partial<HttpServerOptions> = {}): Promise<string> {
  const server = await startHttpServer({ address: '127.0.0.1', port: 0, ready: () => true, ...options });
  servers.push(server);
  return `http://127.0.0.1:${server.port}`;
}

describe('/metrics', () => {
  it('serves the registry in the Prometheus text format, version 0.0.4', async () => {
    const metrics = new MetricsRegistry({ processMetrics: false });
    metrics.spawn.spawned({ queuedNs: 10_000, spawnNs: 90_000 });
    const url = await serve({ metrics: () => metrics.scrape() });
    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(await response.text()).toContain('parafork_spawn_duration_seconds_count 1\n');
  });

  it('answers 500 with the reason when collecting fails', async () => {
    const url = await serve({ metrics: () => Promise.reject(new Error('a collector broke')) });
    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(500);
    expect(await response.text()).toContain('a collector broke');
  });

  it('is 404 when the server was given no metrics', async () => {
    const url = await serve();
    expect((await fetch(`${url}/metrics`)).status).toBe(404);
  });
});

describe('health endpoints', () => {
  it('/healthz answers 200 while the process serves', async () => {
    const url = await serve({ ready: () => false });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it('/readyz follows the readiness function at each request', async () => {
    let ready = false;
    const url = await serve({ ready: () => ready });
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
    ready = true;
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  });
});

describe('methods', () => {
  // Red team, session 12: every endpoint is read-only, but answered any method as GET (DELETE /tasks
  // listed the Tasks with 200). Other methods now get 405 naming what is allowed.
  it.each(['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])('answers %s with 405 and Allow: GET, HEAD', async (method) => {
    const url = await serve({ metrics: () => Promise.resolve({ contentType: 'text/plain', body: 'metric 1\n' }), tasks: () => ({ items: [] }) });
    for (const path of ['/metrics', '/healthz', '/readyz', '/tasks', '/logs/ns/name']) {
      const response = await fetch(`${url}${path}`, { method });
      expect(response.status, `${method} ${path}`).toBe(405);
      expect(response.headers.get('allow')).toBe('GET, HEAD');
      expect(await response.text()).not.toContain('metric 1');
    }
  });

  it('keeps GET and HEAD', async () => {
    const url = await serve({ metrics: () => Promise.resolve({ contentType: 'text/plain', body: 'metric 1\n' }) });
    expect((await fetch(`${url}/metrics`, { method: 'HEAD' })).status).toBe(200);
    expect(await (await fetch(`${url}/metrics`)).text()).toBe('metric 1\n');
  });
});

describe('close', () => {
  it('does not wait for a scraper\'s idle keep-alive connection', async () => {
    const server = await startHttpServer({ address: '127.0.0.1', port: 0, ready: () => true, metrics: () => Promise.resolve({ contentType: 'text/plain', body: '' }) });
    const agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: server.port, path: '/metrics', agent }, (response) => {
        response.resume();
        response.on('end', resolve);
      }).on('error', reject);
    });
    const started = performance.now();
    await server.close();
    expect(performance.now() - started).toBeLessThan(1_000);
    agent.destroy();
  });
});

describe('connections', () => {
  it('keeps at most a quarter of the open-file limit, from 64 to 1024 (agent-idle-connections.test.ts)', () => {
    expect(maxHttpConnections(2048)).toBe(512);
    expect(maxHttpConnections(100)).toBe(64);
    expect(maxHttpConnections(1_048_576)).toBe(1024);
    expect(maxHttpConnections(Infinity)).toBe(1024);
  });
});

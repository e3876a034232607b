// An ApiClient against a local HTTP server whose answers the test writes: a fake of the apiserver's
// endpoints for one module's unit tests (a real client, a real socket, no cluster). Every server
// made is closed by closeLocalApiServers, which the test file calls in afterEach.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { ApiClient, type ApiClientOptions } from '../../src/k8s/api-client.js';

const servers: http.Server[] = [];

/** A client whose requests `answer` handles; `options` override the client's defaults (a generous rate limit). */
export async function localApiClient(answer: http.RequestListener, options: Partial<ApiClientOptions> = {}): Promise<ApiClient> {
  const server = http.createServer(answer);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return new ApiClient({
    kubeConfig: { getCurrentCluster: () => ({ server: `http://127.0.0.1:${port}` }), applyToHTTPSOptions: () => Promise.resolve() },
    qps: 100_000,
    burst: 100_000,
    userAgent: 'parafork-test',
    ...options,
  });
}

/** Closes every server localApiClient made, cutting watches still open. */
export async function closeLocalApiServers(): Promise<void> {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

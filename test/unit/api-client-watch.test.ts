// ApiClient.watch against a local HTTP server (a fake of one endpoint, for this module alone): what
// the observer hears when a watch is answered and how its stream ends.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';

import { ApiClient, type WatchEnd } from '../../src/k8s/api-client.js';

type Behaviour = (response: http.ServerResponse) => void;

const servers: http.Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function clientFor(behaviour: Behaviour): Promise<{ client: ApiClient; opened: number[]; ended: WatchEnd[] }> {
  const server = http.createServer((_request, response) => behaviour(response));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const opened: number[] = [];
  const ended: WatchEnd[] = [];
  const client = new ApiClient({
    kubeConfig: { getCurrentCluster: () => ({ server: `http://127.0.0.1:${port}` }), applyToHTTPSOptions: () => Promise.resolve() },
    qps: 100,
    burst: 100,
    userAgent: 'parafork-test',
    observer: { watchOpened: (status) => opened.push(status), watchEnded: (reason) => ended.push(reason) },
  });
  return { client, opened, ended };
}

const event = (type: string, object: unknown): string => `${JSON.stringify({ type, object })}\n`;

async function watchOnce(client: ApiClient, silenceMs = 5_000, signal = new AbortController().signal): Promise<{ events: string[]; error: unknown }> {
  const events: string[] = [];
  try {
    await client.watch<{ metadata: { name: string } }>('/apis/parafork.dev/v1alpha1/tasks', {}, (watchEvent) => {
      if (watchEvent.type === 'ERROR') throw new Error('watch error event');
      events.push(`${watchEvent.type} ${watchEvent.object.metadata.name}`);
    }, { signal, silenceMs });
    return { events, error: undefined };
  } catch (error) {
    return { events, error };
  }
}

describe('ApiClient.watch and its observer', () => {
  it('hears a stream the server closes as opened 200, then closed', async () => {
    const { client, opened, ended } = await clientFor((response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(event('ADDED', { metadata: { name: 'a' } }));
    });
    expect(await watchOnce(client)).toEqual({ events: ['ADDED a'], error: undefined });
    expect(opened).toEqual([200]);
    expect(ended).toEqual(['closed']);
  });

  it('hears a stream that goes quiet as silent once the watchdog gives up on it', async () => {
    const { client, ended } = await clientFor((response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write(event('ADDED', { metadata: { name: 'a' } }));
    });
    const { events, error } = await watchOnce(client, 200);
    expect(events).toEqual(['ADDED a']);
    expect(error).toMatchObject({ reason: 'WatchSilent' });
    expect(ended).toEqual(['silent']);
  });

  it('counts a refused watch by its status and no stream end', async () => {
    const { client, opened, ended } = await clientFor((response) => {
      response.writeHead(410, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' }));
    });
    const { error } = await watchOnce(client);
    expect(error).toMatchObject({ status: 410 });
    expect(opened).toEqual([410]);
    expect(ended).toEqual([]);
  });

  it('does not count a watch it stopped itself', async () => {
    const { client, ended } = await clientFor((response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write(event('ADDED', { metadata: { name: 'a' } }));
    });
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 100);
    const { error } = await watchOnce(client, 5_000, stop.signal);
    expect(error).toBeDefined();
    expect(ended).toEqual([]);
  });
});

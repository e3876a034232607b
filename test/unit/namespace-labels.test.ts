// NamespaceLabels.fresh (src/k8s/namespace-labels.ts) against a local HTTP server that holds each
// GET of a namespace until the test lets it answer. While the cache of labelled namespaces is not
// current, every Task asking more than restricted reads its namespace afresh (red team, session
// 16): the reads of one namespace are shared, and each caller still gets a read sent after its call.
import type http from 'node:http';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';

import { NamespaceLabels } from '../../src/k8s/namespace-labels.js';
import { closeLocalApiServers, localApiClient } from '../helpers/local-api-server.js';
import { waitFor } from '../helpers/wait-for.js';

afterEach(async () => {
  await closeLocalApiServers();
});

/** A server whose namespace GETs wait in `held` until answered, with the level the namespace had when each came. */
async function namespaceServer() {
  const held: { response: http.ServerResponse; level: string }[] = [];
  let level = 'restricted';
  let gets = 0;
  const client = await localApiClient((request, response) => {
    if (request.url?.startsWith('/api/v1/namespaces/team') === true) {
      gets++;
      held.push({ response, level });
      return;
    }
    response.writeHead(404).end();
  });
  const answerAll = (): void => {
    for (const { response, level: then } of held.splice(0)) {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ metadata: { name: 'team', labels: { 'parafork.dev/sandbox-policy': then } } }));
    }
  };
  const labels = new NamespaceLabels({ client, label: 'parafork.dev/sandbox-policy', logger: pino({ level: 'silent' }) });
  return { labels, answerAll, held, gets: () => gets, relabel: (to: string) => (level = to) };
}

describe('a namespace read afresh', () => {
  it('is one read for the calls that come while it is on its way, and one more, sent after it, for those', async () => {
    const server = await namespaceServer();
    const first = server.labels.fresh('team');
    await waitFor(() => (server.held.length === 1 ? true : undefined), { description: 'the first read to arrive' });
    // Relabelled after the first read was sent: the calls after it must see the new label.
    server.relabel('privileged');
    const later = Array.from({ length: 20 }, () => server.labels.fresh('team'));
    server.answerAll();
    expect((await first)?.['parafork.dev/sandbox-policy']).toBe('restricted');
    await waitFor(() => (server.held.length === 1 ? true : undefined), { description: 'the second read to arrive' });
    server.answerAll();
    for (const labels of await Promise.all(later)) expect(labels?.['parafork.dev/sandbox-policy']).toBe('privileged');
    expect(server.gets()).toBe(2);
  });

  it('keeps no answer once it came: the next call sends a read of its own', async () => {
    const server = await namespaceServer();
    const first = server.labels.fresh('team');
    await waitFor(() => (server.held.length === 1 ? true : undefined), { description: 'the first read to arrive' });
    server.answerAll();
    await first;
    const next = server.labels.fresh('team');
    await waitFor(() => (server.held.length === 1 ? true : undefined), { description: 'the next read to arrive' });
    server.answerAll();
    await next;
    expect(server.gets()).toBe(2);
  });
});

// The cluster agent's GET /logs/<namespace>/<name> against a reader who may read the logs of one
// namespace and tries to read another's: every spelling of the path an HTTP client can send
// (dot segments, percent-encoded dots and slashes, doubled slashes, a query or fragment holding a
// path, a name in the query), token header forms, and requests that never finish. The rule under
// test: the agent serves the log of exactly the namespace/name it asked the authorizer about (its
// SubjectAccessReview, src/k8s/log-access-review.ts), and nothing of any log before the answer.
// The authorizer is a stand-in here; test/integration/task-logs.test.ts runs the real reviews.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startHttpServer, type HttpServer } from '../../src/http/http-server.js';
import { logEndpoint, logTokenHeader, maxLogStreams } from '../../src/logs/log-endpoint.js';
import { taskLogDirectoryName } from '../../src/logs/task-log-store.js';
import { waitFor } from '../helpers/wait-for.js';

const readerToken = 'reader-token';
/** A token whose review the stand-in holds until the test answers it, as a flooded apiserver would. */
const waitingToken = 'waiting-token';
const busyToken = 'busy-token';
const secret = 'victim-secret-5e1a';

describe('the agent s log endpoint serves a log only to a reader allowed that very log', () => {
  let directory: string;
  let server: HttpServer;
  const asked: string[] = [];
  const waitingReviews: ((access: 'allowed' | 'unauthenticated') => void)[] = [];

  beforeAll(async () => {
    directory = mkdtempSync(path.join(tmpdir(), 'parafork-log-access-'));
    const write = (namespace: string, name: string, line: string, ended = true): void => {
      const taskDirectory = path.join(directory, taskLogDirectoryName({ namespace, name, uid: `uid-${namespace}-${name}` }));
      mkdirSync(taskDirectory, { recursive: true });
      const end = ended ? `2026-01-01T00:00:00.000000001Z parafork F end ${line.length + 1}\n` : '';
      writeFileSync(path.join(taskDirectory, '1.log'), `2026-01-01T00:00:00.000000000Z stdout F ${line}\n${end}`);
    };
    write('team-a', 'job', 'team-a-output');
    // A log with no end record yet: its Task is still running, and a follower waits for more.
    write('team-a', 'running', 'team-a-running', false);
    write('victim', 'job', secret);
    write('victim', 'other', secret);
    server = await startHttpServer({
      address: '127.0.0.1',
      port: 0,
      ready: () => true,
      logs: logEndpoint({
        directories: [directory],
        authorize: (token, namespace, name) => {
          asked.push(`${namespace}/${name}`);
          if (token === waitingToken) return new Promise((resolve) => waitingReviews.push(resolve));
          if (token === busyToken) return Promise.resolve('busy');
          if (token !== readerToken) return Promise.resolve('unauthenticated');
          return Promise.resolve(namespace === 'team-a' ? 'allowed' : 'forbidden');
        },
      }),
    });
  });
  afterAll(async () => {
    await server.close();
    rmSync(directory, { recursive: true, force: true });
  });

  /** Sends `target` as the request line's path, byte for byte (fetch would normalise it first). */
  async function raw(target: string, headers: Record<string, string> = { [logTokenHeader]: `Bearer ${readerToken}` }): Promise<{ status: number; body: string }> {
    const socket = net.connect(server.port, '127.0.0.1');
    const head = [`GET ${target} HTTP/1.1`, 'Host: agent', 'Connection: close', ...Object.entries(headers).map(([key, value]) => `${key}: ${value}`), '', ''].join('\r\n');
    socket.write(head);
    const response = await readAll(socket);
    return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(response)?.[1] ?? 0), body: response };
  }

  /** Everything the agent answers until it closes (a reset after its answer, as for 431, ends it too). */
  async function readAll(socket: net.Socket): Promise<string> {
    let response = '';
    try {
      for await (const chunk of socket) response += (chunk as Buffer).toString('latin1');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ECONNRESET') throw error;
    }
    return response;
  }

  it('serves the reader its own namespace s log', async () => {
    const answer = await raw('/logs/team-a/job');
    expect(answer.status, answer.body).toBe(200);
    expect(answer.body).toContain('team-a-output');
  });

  it.each([
    '/logs/victim/job',
    '/logs/team-a/../victim/job',
    '/logs/team-a/%2e%2e/victim/job',
    '/logs/team-a/%2E%2E/%2E%2E/logs/victim/job',
    '/logs/team-a/job/../../victim/job',
    '/logs/team-a%2F..%2Fvictim/job',
    '/logs/team-a/job%2F..%2F..%2Fvictim%2Fjob',
    '/logs//victim/job',
    '/logs/victim//job',
    '/logs/./victim/job',
    '/logs/victim/job?namespace=team-a',
    '/logs/victim/job#/logs/team-a/job',
    '/logs/team-a/job/../../victim/other',
    '/logs/victim/job/',
    '/logs/VICTIM/job',
    '/logs/victim/job%00',
    '/logs/victim%00team-a/job',
    'http://agent/logs/victim/job',
    '/logs\\victim\\job',
    '/logs/team-a/..%5cvictim/job',
  ])('never serves another namespace s log through %s', async (target) => {
    asked.length = 0;
    const answer = await raw(target);
    expect(answer.body).not.toContain(secret);
    expect(answer.status).not.toBe(200);
    // Whatever was served was asked about first, and what was asked about is not team-a's unless served as team-a's.
    for (const subject of asked) expect(subject === 'team-a/job' || subject.startsWith('victim/')).toBe(true);
  });

  // Red team, session 12: values it cannot take were dropped without a word, so `tail=-5`,
  // `tail=abc` or `attempt=0` served the whole log of the newest attempt, and `stream=stdrr` both
  // streams, as if the reader had asked for that; `index=x` alone was refused.
  it.each([
    ['tail=-5', /tail must be a whole number/],
    ['tail=abc', /tail must be a whole number/],
    ['tail=', /tail must be a whole number/],
    ['tail=1e3', /tail must be a whole number/],
    ['attempt=0', /attempt must be a whole number from 1/],
    ['attempt=-1', /attempt must be a whole number from 1/],
    ['attempt=0x1', /attempt must be a whole number from 1/],
    ['stream=stdrr', /stream must be stdout or stderr/],
    ['follow=yes', /follow must be true or false/],
    ['previous=1', /previous must be true or false/],
    ['timestamps=on', /timestamps must be true or false/],
    ['index=1.5', /index must be a whole number/],
  ])('answers 400 naming the parameter, with no log bytes, for ?%s', async (query, message) => {
    const answer = await raw(`/logs/team-a/job?${query}`);
    expect(answer.status, answer.body).toBe(400);
    expect(answer.body).toMatch(message);
    expect(answer.body).not.toContain('team-a-output');
  });

  it('quotes the value it refuses with every control character escaped (C0, DEL and C1, such as CSI)', async () => {
    const answer = await raw(`/logs/team-a/job?stream=${encodeURIComponent('\u001b[2J\u007f\u009b31m')}`);
    expect(answer.status).toBe(400);
    const message = answer.body.split('\r\n').find((line) => line.startsWith('stream must be'))?.trimEnd();
    expect(message).toBe('stream must be stdout or stderr, got "\\u001b[2J\\u007f\\u009b31m"');
  });

  it('takes the values it documents', async () => {
    for (const query of ['tail=0', 'tail=1', 'attempt=1', 'stream=stdout', 'follow=false', 'previous=false', 'timestamps=true', 'index=0&tail=5']) {
      const answer = await raw(`/logs/team-a/job?${query}`);
      expect([200, 404], `${query}: ${answer.body}`).toContain(answer.status);
    }
  });

  it.each([
    ['no token', {}],
    ['an empty token', { [logTokenHeader]: '' }],
    ['Bearer without a token', { [logTokenHeader]: 'Bearer ' }],
    ['the token in Authorization (the proxy drops it; the agent does not read it)', { Authorization: `Bearer ${readerToken}` }],
    ['a wrong token', { [logTokenHeader]: 'Bearer someone-else' }],
  ])('answers 401 with no log bytes for %s', async (_, headers: Record<string, string>) => {
    const answer = await raw('/logs/team-a/job', headers);
    expect(answer.status).toBe(401);
    expect(answer.body).not.toContain('team-a-output');
  });

  it('answers 403 for an allowed reader s token sent twice (joined, it is no token the apiserver knows)', async () => {
    const socket = net.connect(server.port, '127.0.0.1');
    socket.write(`GET /logs/victim/job HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n${logTokenHeader}: Bearer ${readerToken}\r\n${logTokenHeader}: Bearer ${readerToken}\r\n\r\n`);
    const response = await readAll(socket);
    expect(response).not.toContain(secret);
    expect(response).toMatch(/^HTTP\/1\.1 40[13]/);
  });

  it('refuses a request with both Content-Length and Transfer-Encoding (a smuggled second request inside) with 400', async () => {
    const socket = net.connect(server.port, '127.0.0.1');
    const smuggled = `GET /logs/victim/job HTTP/1.1\r\nHost: agent\r\n\r\n`;
    socket.write(
      `GET /logs/team-a/job HTTP/1.1\r\nHost: agent\r\n${logTokenHeader}: Bearer ${readerToken}\r\nContent-Length: ${smuggled.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
    );
    setTimeout(() => socket.end(), 500);
    const response = await readAll(socket);
    // Node's parser refuses the pair outright (RFC 9112 6.1), so neither request is served.
    expect(response).toMatch(/^HTTP\/1\.1 400/);
    expect(response).not.toContain(secret);
  });

  it('answers 429 with no log bytes when the authorizer is too busy to review another token', async () => {
    const answer = await raw('/logs/team-a/job', { [logTokenHeader]: `Bearer ${busyToken}` });
    expect(answer.status).toBe(429);
    expect(answer.body).not.toContain('team-a-output');
  });

  it('serves an allowed reader while more than maxLogStreams requests wait for their reviews, and counts none of those that leave', async () => {
    // Red team: places were taken from the request on, so requests with tokens the apiserver was
    // slow to review (a flood of made-up ones, each one more review in a rate-limited client) held
    // them all and every allowed reader got 429 for as long as the reviews waited.
    const flood: net.Socket[] = [];
    for (let index = 0; index < maxLogStreams + 8; index++) {
      const socket = net.connect(server.port, '127.0.0.1');
      socket.write(`GET /logs/team-a/running?follow=true HTTP/1.1\r\nHost: agent\r\n${logTokenHeader}: Bearer ${waitingToken}\r\n\r\n`);
      socket.on('error', () => undefined);
      flood.push(socket);
    }
    try {
      await waitFor((observed) => (observed(waitingReviews.length), waitingReviews.length >= maxLogStreams ? true : undefined), { description: `${maxLogStreams} flooding requests to wait for their reviews`, timeoutMs: 20_000 });
      const answer = await raw('/logs/team-a/job');
      expect(answer.status, answer.body).toBe(200);
      expect(answer.body).toContain('team-a-output');
    } finally {
      for (const socket of flood) socket.destroy();
    }
    // They left before their answer came: allowed now, they are served nothing and hold no place
    // (the bound below still serves maxLogStreams followers).
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (const answer of waitingReviews.splice(0)) answer('allowed');
  });

  it('holds log readers to a bound (maxLogStreams): past it a reader gets 429 at once, and those following stay served', async () => {
    // Each follower polls its file every 200 ms on the agent's one JavaScript thread: an allowed
    // reader opening thousands would take that thread from every Task the agent runs.
    const followers: net.Socket[] = [];
    const firstAnswers: Promise<string>[] = [];
    for (let index = 0; index < maxLogStreams; index++) {
      const socket = net.connect(server.port, '127.0.0.1');
      socket.write(`GET /logs/team-a/running?follow=true HTTP/1.1\r\nHost: agent\r\n${logTokenHeader}: Bearer ${readerToken}\r\n\r\n`);
      followers.push(socket);
      firstAnswers.push(new Promise((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1')))));
    }
    try {
      for (const answer of await Promise.all(firstAnswers)) expect(answer).toMatch(/^HTTP\/1\.1 200/);
      const refused = await raw('/logs/team-a/running?follow=true');
      expect(refused.status).toBe(429);
      expect(refused.body).not.toContain('team-a-running');
    } finally {
      for (const socket of followers) socket.destroy();
    }
    // Once they have gone, readers are served again.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await raw('/logs/team-a/job')).status).toBe(200);
  });

  it('answers 431 to headers past the limit, and keeps serving', async () => {
    const answer = await raw('/logs/team-a/job', { [logTokenHeader]: `Bearer ${readerToken}`, 'X-Filler': 'x'.repeat(64 * 1024) });
    expect(answer.status).toBe(431);
    expect((await raw('/logs/team-a/job')).status).toBe(200);
  });
});

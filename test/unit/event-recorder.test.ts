// The EventRecorder against a local HTTP server standing in for the events.k8s.io API: what it
// creates, how it aggregates repeats, and that recording never blocks or fails the caller, even
// when the API refuses or falls behind.
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';

import { EventRecorder } from '../../src/k8s/event-recorder.js';
import type { EventSubject } from '../../src/store/task-store.js';
import { closeLocalApiServers, localApiClient } from '../helpers/local-api-server.js';
import { waitFor } from '../helpers/wait-for.js';

interface Received {
  readonly method: string;
  readonly path: string;
  readonly body: Record<string, unknown>;
}

const subject: EventSubject = { apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', namespace: 'ns', name: 'task', uid: 'uid-1' };

afterEach(closeLocalApiServers);

/**
 * A recorder whose API answers each request with `status` (a created Event echoes its name),
 * once `gate` lets it: a gate not yet open holds every request, as a slow apiserver would.
 */
async function recorderAgainst(status = 201, gate: Promise<unknown> = Promise.resolve()) {
  const received: Received[] = [];
  const client = await localApiClient((request, response) => {
    let text = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (text += chunk));
    request.on('end', () => {
      const body = JSON.parse(text || '{}') as Record<string, unknown>;
      void gate.then(() => {
        received.push({ method: request.method ?? '', path: request.url ?? '', body });
        response.writeHead(status, { 'content-type': 'application/json' });
        response.end(JSON.stringify(status < 300 ? body : { kind: 'Status', code: status, reason: 'InternalError', message: 'refused' }));
      });
    });
  });
  const recorder = new EventRecorder({ client, logger: pino({ level: 'silent' }), controller: 'parafork.dev/agent', instance: 'agent-node-a' });
  const receivedAtLeast = (count: number): Promise<unknown> => waitFor(() => (received.length >= count ? true : undefined), { description: `${count} requests`, timeoutMs: 10_000, intervalMs: 5 });
  return { recorder, received, receivedAtLeast };
}

describe('an event recorded once', () => {
  it('is created as an events.k8s.io/v1 Event about the Task, named after it, from this agent', async () => {
    const { recorder, received, receivedAtLeast } = await recorderAgainst();
    recorder.record(subject, 'Normal', 'Started', 'attempt 1 started as pid 42');
    await receivedAtLeast(1);
    expect(received[0]).toMatchObject({ method: 'POST', path: '/apis/events.k8s.io/v1/namespaces/ns/events' });
    expect(received[0]?.body).toMatchObject({
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { namespace: 'ns' },
      reportingController: 'parafork.dev/agent',
      reportingInstance: 'agent-node-a',
      action: 'Started',
      reason: 'Started',
      type: 'Normal',
      note: 'attempt 1 started as pid 42',
      regarding: subject,
    });
    expect((received[0]?.body.metadata as { name: string }).name).toMatch(/^task\.[0-9a-f]+$/);
    expect(received[0]?.body.eventTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });

  it('has its note cut to 1024 characters', async () => {
    const { recorder, received, receivedAtLeast } = await recorderAgainst();
    recorder.record(subject, 'Warning', 'Failed', 'x'.repeat(5000));
    await receivedAtLeast(1);
    expect(received[0]?.body.note).toHaveLength(1024);
  });

  it('has its note cut to 1024 bytes of UTF-8, on a character boundary (the apiserver counts bytes)', async () => {
    const { recorder, received, receivedAtLeast } = await recorderAgainst();
    recorder.record(subject, 'Warning', 'Failed', `x${'é'.repeat(1000)}`);
    await receivedAtLeast(1);
    const note = String(received[0]?.body.note);
    expect(Buffer.byteLength(note)).toBe(1023);
    expect(note).toBe(`x${'é'.repeat(511)}`);
  });

  it('shows the terminal controls of its note as \\u escapes', async () => {
    const { recorder, received, receivedAtLeast } = await recorderAgainst();
    recorder.record(subject, 'Warning', 'Forbidden', 'hostPath "/a\u001b[2J\u009b2J\u007f" is not allowed\nsecond line');
    await receivedAtLeast(1);
    expect(received[0]?.body.note).toBe('hostPath "/a\\u001b[2J\\u009b2J\\u007f" is not allowed\\u000asecond line');
  });

  it('is named within 253 characters, ending its cut Task name in a letter or digit, for a Task name of 253', async () => {
    const { recorder, received, receivedAtLeast } = await recorderAgainst();
    const name = `${'a'.repeat(200)}${'-'.repeat(52)}b`; // the cut falls among the dashes, whatever the suffix's length
    recorder.record({ ...subject, name }, 'Warning', 'Failed', 'exited with code 1');
    await receivedAtLeast(1);
    const eventName = (received[0]?.body.metadata as { name: string }).name;
    expect(eventName.length).toBeLessThanOrEqual(253);
    expect(eventName).toMatch(/^a+\.[0-9a-f]+$/);
    expect((received[0]?.body.regarding as { name: string }).name).toBe(name);
  });
});

describe('an event that repeats', () => {
  it('raises the series count of the first Event instead of creating another', async () => {
    const { recorder, received, receivedAtLeast } = await recorderAgainst();
    recorder.record(subject, 'Warning', 'Failed', 'exited with code 2');
    await receivedAtLeast(1);
    recorder.record(subject, 'Warning', 'Failed', 'exited with code 2');
    await receivedAtLeast(2);
    recorder.record(subject, 'Warning', 'Failed', 'exited with code 2');
    await receivedAtLeast(3);
    const name = (received[0]?.body.metadata as { name: string }).name;
    expect(received.slice(1).map((request) => [request.method, request.path, (request.body.series as { count: number }).count])).toEqual([
      ['PATCH', `/apis/events.k8s.io/v1/namespaces/ns/events/${name}`, 2],
      ['PATCH', `/apis/events.k8s.io/v1/namespaces/ns/events/${name}`, 3],
    ]);
  });

  it('raises the first Event\'s count even when it repeats before the first one\'s creation has answered', async () => {
    const gate = Promise.withResolvers<undefined>();
    const { recorder, received, receivedAtLeast } = await recorderAgainst(201, gate.promise);
    for (let repeat = 0; repeat < 3; repeat++) recorder.record(subject, 'Warning', 'Failed', 'exited with code 2');
    // Each record starts a sender of its own (up to eight run at once): all three are on their way.
    await new Promise((resolve) => setTimeout(resolve, 50));
    gate.resolve(undefined);
    await receivedAtLeast(3);
    const name = (received[0]?.body.metadata as { name: string }).name;
    expect(received.map((request) => [request.method, request.path, (request.body.series as { count: number } | undefined)?.count])).toEqual([
      ['POST', '/apis/events.k8s.io/v1/namespaces/ns/events', undefined],
      ['PATCH', `/apis/events.k8s.io/v1/namespaces/ns/events/${name}`, 2],
      ['PATCH', `/apis/events.k8s.io/v1/namespaces/ns/events/${name}`, 3],
    ]);
  });

  it('is a new Event when its note, reason or Task differs', async () => {
    const { recorder, received, receivedAtLeast } = await recorderAgainst();
    recorder.record(subject, 'Warning', 'Failed', 'exited with code 2');
    await receivedAtLeast(1);
    recorder.record(subject, 'Warning', 'Failed', 'exited with code 3');
    recorder.record(subject, 'Warning', 'Killed', 'exited with code 2');
    recorder.record({ ...subject, uid: 'uid-2' }, 'Warning', 'Failed', 'exited with code 2');
    await receivedAtLeast(4);
    expect(received.map((request) => request.method)).toEqual(['POST', 'POST', 'POST', 'POST']);
  });
});

describe('recording', () => {
  it('returns at once and never throws while the API refuses every event, and sends the ones after', async () => {
    const { recorder, received, receivedAtLeast } = await recorderAgainst(500);
    expect(() => {
      recorder.record(subject, 'Normal', 'Started', 'one');
      recorder.record(subject, 'Normal', 'Completed', 'two');
    }).not.toThrow();
    await receivedAtLeast(2);
    expect(received.map((request) => request.body.note)).toEqual(['one', 'two']);
  });

  it('returns at once while the API holds every request', async () => {
    const gate = Promise.withResolvers<undefined>();
    const { recorder } = await recorderAgainst(201, gate.promise);
    const started = performance.now();
    for (let index = 0; index < 100; index++) recorder.record(subject, 'Normal', 'Started', `event ${index}`);
    expect(performance.now() - started).toBeLessThan(1_000);
    gate.resolve(undefined);
  });
});

describe('a full queue', () => {
  it('drops the oldest Normal event, never a Warning while a Normal one waits, and counts what it dropped', async () => {
    const gate = Promise.withResolvers<undefined>();
    const { recorder, received, receivedAtLeast } = await recorderAgainst(201, gate.promise);
    // 8 go out at once and are held by the API; the next 1000 fill the queue.
    for (let index = 0; index < 8; index++) recorder.record({ ...subject, uid: `held-${index}` }, 'Normal', 'Started', 'held');
    recorder.record(subject, 'Warning', 'Failed', 'oldest warning');
    for (let index = 0; index < 999; index++) recorder.record({ ...subject, uid: `queued-${index}` }, 'Normal', 'Started', `normal ${index}`);
    expect(recorder.dropped).toBe(0);
    recorder.record(subject, 'Normal', 'Started', 'one more');
    expect(recorder.dropped).toBe(1);
    gate.resolve(undefined);
    await receivedAtLeast(1008);
    const notes = received.map((request) => request.body.note);
    expect(notes).toContain('oldest warning');
    expect(notes).not.toContain('normal 0');
    expect(notes).toContain('normal 1');
    expect(notes).toContain('one more');
  });

  it('drops from the namespace with the most events waiting: one namespace\'s flood of Warnings does not push out another\'s (red team, session 15)', async () => {
    const gate = Promise.withResolvers<undefined>();
    const { recorder, received, receivedAtLeast } = await recorderAgainst(201, gate.promise);
    const loud = { ...subject, namespace: 'loud' };
    const quiet = { ...subject, namespace: 'quiet' };
    // 8 go out at once and are held by the API; then a quiet namespace's Warning and Normal, then a flood.
    for (let index = 0; index < 8; index++) recorder.record({ ...loud, uid: `held-${index}` }, 'Warning', 'Failed', 'held');
    recorder.record(quiet, 'Warning', 'Failed', 'quiet warning');
    recorder.record({ ...quiet, uid: 'uid-q2' }, 'Normal', 'Started', 'quiet normal');
    for (let index = 0; index < 3000; index++) recorder.record({ ...loud, uid: `flood-${index}` }, 'Warning', 'Failed', `flood ${index}`);
    expect(recorder.dropped).toBe(3000 + 2 - 1000);
    gate.resolve(undefined);
    await receivedAtLeast(1008);
    const notes = received.map((request) => request.body.note);
    expect(notes).toContain('quiet warning');
    // A Normal event goes before any Warning, whichever namespace it is of.
    expect(notes).not.toContain('quiet normal');
    expect(notes).toContain('flood 2999');
  });
});

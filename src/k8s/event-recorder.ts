// Kubernetes Events (events.k8s.io/v1) about Tasks: Started, Completed, Failed, Killed. Recording
// never blocks and never fails the caller: events wait in a bounded queue (when it is full, the
// oldest Normal event of the namespace with the most waiting is dropped, a Warning only when there
// is no Normal one) and are sent in the background, a few at a time, through a client whose rate limit
// is the Events' own (the agent's --event-qps), so that they never hold up a status write; one
// that repeats (same object, reason and note) within ten minutes only raises the count of the
// first, as the kubelet's aggregation does.
import type { Logger } from 'pino';

import { terminalSafeText } from '../http/terminal-safe-json.js';
import type { EventSubject, EventType, TaskEventSink } from '../store/task-store.js';
import type { ApiClient } from './api-client.js';
import { eventsPath } from './task-resources.js';

interface PendingEvent {
  readonly subject: EventSubject;
  readonly type: EventType;
  readonly reason: string;
  readonly note: string;
  /** When it was recorded (epoch ms): a queued event keeps its own time. */
  readonly at: number;
}

interface SentEvent {
  /**
   * The created Event's name, once its POST has answered (undefined if it failed). Remembered
   * before the POST is sent: up to maxInFlight senders run at once, and a repeat taken off the
   * queue while the first one's POST was still on its way created a second Event instead of
   * raising the first one's series count (event-recorder.test.ts, seen on a loaded machine).
   */
  readonly name: Promise<string | undefined>;
  readonly firstAt: number;
  count: number;
}

const maxQueued = 1000;
/**
 * Requests in flight at once. One at a time, a ~30 ms round trip under load caps events at ~30/s,
 * fewer than the Tasks a busy node finishes: the queue would overflow and drop them (issue 7).
 */
const maxInFlight = 8;
const aggregationWindowMs = 10 * 60 * 1000;
const maxRemembered = 5000;
/** events.k8s.io/v1 refuses a note of more than 1024 bytes (Go's len, not characters). */
const maxNoteBytes = 1024;
/** An Event's name is a DNS subdomain: at most 253 characters. */
const maxNameLength = 253;

export class EventRecorder implements TaskEventSink {
  readonly #client: ApiClient;
  readonly #logger: Logger;
  readonly #controller: string;
  readonly #instance: string;
  readonly #queue: PendingEvent[] = [];
  readonly #sent = new Map<string, SentEvent>();
  #inFlight = 0;
  #dropped = 0;

  constructor(options: { client: ApiClient; logger: Logger; controller: string; instance: string }) {
    this.#client = options.client;
    this.#logger = options.logger;
    this.#controller = options.controller;
    this.#instance = options.instance;
  }

  /** Events dropped because the queue was full (the apiserver was slower than the tasks). */
  get dropped(): number {
    return this.#dropped;
  }

  record(subject: EventSubject, type: EventType, reason: string, note: string): void {
    if (this.#queue.length >= maxQueued) {
      this.#queue.splice(this.#dropPosition(), 1);
      this.#dropped++;
    }
    this.#queue.push({ subject, type, reason, note: eventNote(note), at: Date.now() });
    if (this.#inFlight < maxInFlight) void this.#drain();
  }

  /**
   * Which queued event a full queue drops: status is the record of what happened, Events are best
   * effort, and Warnings say more, so the oldest Normal one while any waits, else the oldest
   * Warning; of the namespace with the most events waiting of that type, so that one namespace's
   * flood (a thousand Tasks failing at once) does not push out every other namespace's Events,
   * which the oldest overall did (red team, session 15; event-recorder.test.ts). One pass over the
   * queue, only when it is full.
   */
  #dropPosition(): number {
    const type: EventType = this.#queue.some((queued) => queued.type === 'Normal') ? 'Normal' : 'Warning';
    const waiting = new Map<string, { count: number; oldest: number }>();
    let loudest: { count: number; oldest: number } | undefined;
    this.#queue.forEach((queued, position) => {
      if (queued.type !== type) return;
      const namespace = waiting.get(queued.subject.namespace) ?? { count: 0, oldest: position };
      namespace.count++;
      waiting.set(queued.subject.namespace, namespace);
      if (loudest === undefined || namespace.count > loudest.count) loudest = namespace;
    });
    return loudest?.oldest ?? 0;
  }

  /** One sender: takes events off the queue until it is empty; up to maxInFlight run at once. */
  async #drain(): Promise<void> {
    this.#inFlight++;
    try {
      for (let event = this.#queue.shift(); event !== undefined; event = this.#queue.shift()) {
        await this.#send(event).catch((error: unknown) => {
          this.#logger.debug({ err: (error as Error).message, reason: event.reason }, 'could not record an event');
        });
      }
    } finally {
      this.#inFlight--;
    }
  }

  async #send(event: PendingEvent): Promise<void> {
    const now = event.at;
    const aggregationKey = `${event.subject.uid}\u0000${event.reason}\u0000${event.note}`;
    const previous = this.#sent.get(aggregationKey);
    const nowMicro = new Date(now).toISOString().replace('Z', '000Z');
    if (previous && now - previous.firstAt < aggregationWindowMs) {
      const count = ++previous.count;
      const name = await previous.name;
      if (name !== undefined) {
        await this.#client.request({
          method: 'PATCH',
          path: `${eventsPath(event.subject.namespace)}/${name}`,
          body: { series: { count, lastObservedTime: nowMicro } },
          retry: false,
        });
        return;
      }
      // The first one was never created: this one is.
    }
    const creation = Promise.withResolvers<string | undefined>();
    if (this.#sent.size >= maxRemembered) this.#sent.clear();
    this.#sent.set(aggregationKey, { name: creation.promise, firstAt: now, count: 1 });
    try {
      creation.resolve(await this.#create(event, now, nowMicro));
    } catch (error) {
      creation.resolve(undefined);
      throw error;
    }
  }

  async #create(event: PendingEvent, now: number, nowMicro: string): Promise<string> {
    const created = await this.#client.request<{ metadata: { name: string } }>({
      method: 'POST',
      path: eventsPath(event.subject.namespace),
      retry: false,
      body: {
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        // Named as the kubelet names its events: the object's name and a unique hex suffix.
        metadata: { name: eventName(event.subject.name, `${now.toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`), namespace: event.subject.namespace },
        eventTime: nowMicro,
        reportingController: this.#controller,
        reportingInstance: this.#instance,
        action: event.reason,
        reason: event.reason,
        type: event.type,
        note: event.note,
        regarding: {
          apiVersion: event.subject.apiVersion,
          kind: event.subject.kind,
          namespace: event.subject.namespace,
          name: event.subject.name,
          uid: event.subject.uid,
        },
      },
    });
    return created.metadata.name;
  }
}

/**
 * The Event's name: the object's name and a unique hex suffix, as the kubelet names its events, with
 * the object's name cut so that the whole stays a DNS subdomain of at most 253 characters. A Task
 * name near the limit (253 characters are allowed) made every one of its Events refused (422),
 * dropped with a debug line only (red team, session 15; task-author-api.test.ts).
 */
export function eventName(objectName: string, suffix: string): string {
  const room = maxNameLength - suffix.length - 1;
  // A cut name must still end in a letter or digit: "a-." is not a DNS subdomain.
  const stem = objectName.length <= room ? objectName : objectName.slice(0, room).replace(/[-.]+$/, '');
  return `${stem}.${suffix}`;
}

/**
 * The note as sent: its terminal controls escaped (it quotes what the Task's author wrote, and
 * `kubectl describe` and `kubectl events` print it), cut to at most 1024 bytes of UTF-8 on a
 * character boundary. Cut at 1024 characters, a note of two-byte characters was refused (422) and
 * the Event lost (red team, session 15; task-author-api.test.ts).
 */
export function eventNote(note: string): string {
  const safe = terminalSafeText(note);
  if (Buffer.byteLength(safe) <= maxNoteBytes) return safe;
  let bytes = 0;
  let end = 0;
  for (const character of safe) {
    const size = Buffer.byteLength(character);
    if (bytes + size > maxNoteBytes) break;
    bytes += size;
    end += character.length;
  }
  return safe.slice(0, end);
}

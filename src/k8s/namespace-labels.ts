// The labels of the namespaces that carry one label (the sandbox policy's,
// parafork.dev/sandbox-policy): a list+watch cache filtered by that label, so the agent holds the
// few labelled namespaces and not every namespace of the cluster; one whose label is removed
// leaves the cache (the watch reports it as deleted). A namespace the cache does not show can be
// read afresh, which the sandbox policy does before it refuses a Task: a namespace labelled a
// moment ago may not be in the cache yet. Needs get, list and watch on namespaces.
import type { Logger } from 'pino';

import { ApiError, type ApiClient } from './api-client.js';
import { Informer } from './informer.js';
import { objectKey } from '../store/task-store.js';

interface Namespace {
  readonly metadata: { readonly name?: string; readonly resourceVersion?: string; readonly labels?: Readonly<Record<string, string>> };
}

const namespacesPath = '/api/v1/namespaces';

export interface NamespaceLabelsOptions {
  readonly client: ApiClient;
  /** The label a namespace must have to be cached. */
  readonly label: string;
  readonly logger: Logger;
  readonly silenceMs?: number;
}

/** A namespace's fresh reads (NamespaceLabels.fresh): the one on its way, and the one waiting for it to come. */
interface FreshReads {
  inFlight: Promise<Readonly<Record<string, string>> | undefined> | undefined;
  queued: Promise<Readonly<Record<string, string>> | undefined> | undefined;
}

const ignore = (): undefined => undefined;

export class NamespaceLabels {
  readonly #client: ApiClient;
  readonly #informer: Informer<Namespace>;
  readonly #flights = new Map<string, FreshReads>();

  constructor(options: NamespaceLabelsOptions) {
    this.#client = options.client;
    this.#informer = new Informer<Namespace>({
      client: options.client,
      path: namespacesPath,
      labelSelector: options.label,
      logger: options.logger,
      // Nothing is queued on a change: each Task reads its namespace's level when it is next reconciled.
      onChange: () => undefined,
      ...(options.silenceMs !== undefined ? { silenceMs: options.silenceMs } : {}),
    });
  }

  /**
   * Keeps the cache current until `signal` aborts. Nothing waits for its first list: a namespace
   * it does not show yet only sends a refusal to fresh() first.
   */
  run(signal: AbortSignal): Promise<void> {
    return this.#informer.run(signal);
  }

  /**
   * Whether the cache has had its first list and is in step with the apiserver (Informer.current):
   * before the list, or while its watch is down, a namespace may carry another label than it shows.
   */
  get current(): boolean {
    return this.#informer.current;
  }

  /** The labels the cache holds for `namespace`; undefined when it does not hold it (no such label, or not seen yet). */
  cached(namespace: string): Readonly<Record<string, string>> | undefined {
    return this.#informer.get(objectKey('', namespace))?.metadata.labels;
  }

  /**
   * The namespace's labels read from the apiserver now; undefined when there is no such namespace.
   * Always a read sent after the call (a refusal it confirms is final), but shared: calls that come
   * while a read of the namespace is on its way share the one read sent after it. While the cache
   * is not current every Task asking more than restricted reads its namespace
   * (sandbox-policy-source.ts), and a burst of one namespace's Tasks must not be a burst of GETs of
   * one object: at most two reads of a namespace are under way or waiting at once.
   */
  fresh(namespace: string): Promise<Readonly<Record<string, string>> | undefined> {
    let flight = this.#flights.get(namespace);
    if (flight === undefined) {
      flight = { inFlight: undefined, queued: undefined };
      this.#flights.set(namespace, flight);
    }
    const inFlight = flight.inFlight;
    if (inFlight === undefined) return this.#send(namespace, flight);
    const state = flight;
    state.queued ??= inFlight.then(ignore, ignore).then(() => {
      state.queued = undefined;
      return this.#send(namespace, state);
    });
    return state.queued;
  }

  /** Sends a read of `namespace` as `flight`'s read under way. */
  #send(namespace: string, flight: FreshReads): Promise<Readonly<Record<string, string>> | undefined> {
    const read = this.#read(namespace);
    flight.inFlight = read;
    const settled = (): void => {
      if (flight.inFlight === read) flight.inFlight = undefined;
      if (flight.inFlight === undefined && flight.queued === undefined && this.#flights.get(namespace) === flight) this.#flights.delete(namespace);
    };
    read.then(settled, settled);
    return read;
  }

  async #read(namespace: string): Promise<Readonly<Record<string, string>> | undefined> {
    try {
      const object = await this.#client.request<Namespace>({ method: 'GET', path: `${namespacesPath}/${encodeURIComponent(namespace)}` });
      return object.metadata.labels ?? {};
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return undefined;
      throw error;
    }
  }
}

// A list+watch cache of one kind of object, restricted by field and label selectors, that keeps
// itself current through anything the apiserver does: it lists, then watches from the list's
// resourceVersion; a watch that ends is resumed from the last resourceVersion seen (bookmarks keep
// it fresh); 410 Gone (the version is too old) relists; errors reconnect with backoff; and a
// watch that goes silent (client-node's own informers have been seen to stop without an error)
// is dropped by a watchdog and resumed. Every change is reported as a key, so the consumer
// reconciles by state: it reads the cache, never the event.
import type { Logger } from 'pino';

import { objectKey } from '../store/task-store.js';
import { ApiError, isResourceVersionExpired, type ApiClient, type WatchEvent } from './api-client.js';

export interface KubernetesObject {
  readonly metadata: { readonly name?: string | undefined; readonly namespace?: string | undefined; readonly resourceVersion?: string | undefined };
}

interface ObjectList<T> {
  readonly metadata: { readonly resourceVersion: string; readonly continue?: string };
  readonly items: T[];
}

export interface InformerOptions {
  readonly client: ApiClient;
  /** A collection path, e.g. /apis/parafork.dev/v1alpha1/tasks. */
  readonly path: string;
  readonly fieldSelector?: string;
  readonly labelSelector?: string;
  readonly logger: Logger;
  /** Called with the key of every object that appeared, changed or went away. */
  readonly onChange: (key: string) => void;
  /** The server closes each watch after this long (default 60 s), and we resume it. */
  readonly watchTimeoutSeconds?: number;
  /** No byte for this long means the watch is dead (default 90 s). */
  readonly silenceMs?: number;
  readonly pageSize?: number;
}

export class Informer<T extends KubernetesObject> {
  readonly #options: InformerOptions;
  readonly #store = new Map<string, T>();
  #resourceVersion = '';
  #synced = false;
  /** The watch failed, and nothing has been heard from the apiserver since (no list, no event). */
  #broken = false;
  #syncedWaiters: (() => void)[] = [];
  #restarts = 0;

  constructor(options: InformerOptions) {
    this.#options = options;
  }

  get(key: string): T | undefined {
    return this.#store.get(key);
  }

  list(): T[] {
    return [...this.#store.values()];
  }

  get size(): number {
    return this.#store.size;
  }

  /** True once the first list has filled the cache. */
  get synced(): boolean {
    return this.#synced;
  }

  /**
   * True once the first list has filled the cache, and while it is in step with the apiserver:
   * false from a failed watch (an error, silence) until a list, an event or a watch that ran its
   * course, as changes made meanwhile may not have reached the cache yet.
   */
  get current(): boolean {
    return this.#synced && !this.#broken;
  }

  /** How often the watch had to be re-established after an error or silence. */
  get restarts(): number {
    return this.#restarts;
  }

  waitForSync(): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((resolve) => this.#syncedWaiters.push(resolve));
  }

  /** Runs until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    // A function, because the flag changes while we await (TypeScript would narrow a plain read).
    const stopped = (): boolean => signal.aborted;
    let failures = 0;
    let needList = true;
    while (!stopped()) {
      try {
        if (needList) {
          await this.#relist(signal);
          needList = false;
        }
        await this.#watch(signal);
        failures = 0;
        this.#broken = false; // it ran its course: nothing was missed
      } catch (error) {
        if (stopped()) break;
        this.#broken = true;
        if (isResourceVersionExpired(error)) {
          this.#options.logger.info({ path: this.#options.path }, 'watch resourceVersion expired; relisting');
          needList = true;
          continue;
        }
        failures++;
        this.#restarts++;
        const backoffMs = Math.min(30_000, 250 * 2 ** Math.min(failures - 1, 7));
        this.#options.logger.warn({ path: this.#options.path, err: (error as Error).message, retryInMs: backoffMs }, 'watch failed; reconnecting');
        await new Promise((resolve) => setTimeout(resolve, backoffMs * (0.8 + Math.random() * 0.4)));
      }
    }
  }

  async #relist(signal: AbortSignal): Promise<void> {
    const fresh = new Map<string, T>();
    let continueToken: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.#options.client.request<ObjectList<T>>({
        method: 'GET',
        path: this.#options.path,
        query: {
          fieldSelector: this.#options.fieldSelector,
          labelSelector: this.#options.labelSelector,
          limit: this.#options.pageSize ?? 500,
          continue: continueToken,
        },
        signal,
      });
      for (const item of page.items) fresh.set(keyOf(item), withoutManagedFields(item));
      continueToken = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion;
    } while (continueToken !== undefined);

    const previous = this.#store;
    const changed: string[] = [];
    for (const [key, item] of fresh) {
      if (previous.get(key)?.metadata.resourceVersion !== item.metadata.resourceVersion) changed.push(key);
    }
    for (const key of previous.keys()) if (!fresh.has(key)) changed.push(key);
    this.#store.clear();
    for (const [key, item] of fresh) this.#store.set(key, item);
    this.#resourceVersion = resourceVersion;
    this.#broken = false;
    for (const key of changed) this.#options.onChange(key);
    if (!this.#synced) {
      this.#synced = true;
      for (const resolve of this.#syncedWaiters.splice(0)) resolve();
    }
  }

  async #watch(signal: AbortSignal): Promise<void> {
    await this.#options.client.watch<T | { code?: number; reason?: string; message?: string }>(
      this.#options.path,
      {
        fieldSelector: this.#options.fieldSelector,
        labelSelector: this.#options.labelSelector,
        resourceVersion: this.#resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: this.#options.watchTimeoutSeconds ?? 60,
      },
      (event) => this.#apply(event),
      { signal, silenceMs: this.#options.silenceMs ?? 90_000 },
    );
  }

  #apply(event: WatchEvent<T | { code?: number; reason?: string; message?: string }>): void {
    if (event.type === 'ERROR') {
      const status = event.object as { code?: number; reason?: string; message?: string };
      throw new ApiError(`watch error: ${status.message ?? ''}`, status.code ?? 0, status.reason ?? 'WatchError');
    }
    const object = event.object as T;
    this.#broken = false; // the watch delivers again, from where the cache stopped
    if (object.metadata.resourceVersion) this.#resourceVersion = object.metadata.resourceVersion;
    if (event.type === 'BOOKMARK') return;
    const key = keyOf(object);
    if (event.type === 'DELETED') this.#store.delete(key);
    else this.#store.set(key, withoutManagedFields(object));
    this.#options.onChange(key);
  }
}

/**
 * Drops metadata.managedFields (server-side apply's bookkeeping, often the largest part of a small
 * object), which nothing here reads: a cache of 1,000 Tasks is then ~1 MB smaller, as with
 * client-go's informer transform that controllers use to the same end.
 */
function withoutManagedFields<T extends KubernetesObject>(object: T): T {
  delete (object.metadata as { managedFields?: unknown }).managedFields;
  return object;
}

function keyOf(object: KubernetesObject): string {
  return objectKey(object.metadata.namespace ?? '', object.metadata.name ?? '');
}

// The agent's HTTP client for the Kubernetes API. Credentials and TLS come from ApiCredentials
// (kube-config.ts: in-cluster service account or a kubeconfig file, token files re-read as they
// rotate; or a client-node KubeConfig);
// requests go through Node's https with keep-alive so that status codes, Retry-After and watch
// streams are fully in our hands. Every request waits for the client-side rate limit (QPS/burst).
//
// Retryable versus terminal is decided here and nowhere else: 429 (after its Retry-After), 5xx and
// network failures are retried with exponential backoff; anything else (404, 409, 422, ...) goes
// back to the caller, which knows what it means for its object.
import http from 'node:http';
import https from 'node:https';
import type { ApiCredentials } from './kube-config.js';
import { TokenBucket } from './token-bucket.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface ApiRequest {
  readonly method: HttpMethod;
  readonly path: string;
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly body?: unknown;
  /** Defaults to application/json; PATCH defaults to a JSON merge patch. */
  readonly contentType?: string;
  readonly signal?: AbortSignal;
  /** Retry 429, 5xx and network failures (default true). */
  readonly retry?: boolean;
}

/** A failed API call: `status` is the HTTP status (0 for a network failure or a silent watch). */
export class ApiError extends Error {
  readonly status: number;
  /** The Status object's reason ('NotFound', 'Conflict', 'Expired', ...) or the network error code. */
  readonly reason: string;
  readonly retryAfterSeconds: number | undefined;

  constructor(message: string, status: number, reason: string, retryAfterSeconds?: number) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.reason = reason;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export interface WatchEvent<T> {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: T;
}

/** Why a watch stream ended: the server closed it (its timeout), the watchdog gave up on silence, the resourceVersion expired (410), or anything else failed. */
export type WatchEnd = 'closed' | 'silent' | 'expired' | 'error';

/** What the metrics layer may observe; every hook is optional. */
export interface ApiClientObserver {
  responded?(method: HttpMethod, status: number, durationMs: number): void;
  /** A watch was answered with `status` (a stream when 200). */
  watchOpened?(status: number): void;
  /** A watch that had been answered 200 ended. */
  watchEnded?(reason: WatchEnd): void;
}

export interface ApiClientOptions {
  /** AgentCredentials, or a client-node KubeConfig. */
  readonly kubeConfig: ApiCredentials;
  readonly qps: number;
  readonly burst: number;
  readonly userAgent: string;
  readonly maxAttempts?: number;
  readonly observer?: ApiClientObserver;
}

const retryableStatuses = new Set([429, 500, 502, 503, 504]);
const maxRetryAfterSeconds = 60;

export function isRetryable(error: unknown): boolean {
  return error instanceof ApiError && (error.status === 0 || retryableStatuses.has(error.status));
}

function delay(milliseconds: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, milliseconds);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export class ApiClient {
  readonly #kubeConfig: ApiCredentials;
  readonly #server: URL;
  readonly #limiter: TokenBucket;
  readonly #userAgent: string;
  readonly #maxAttempts: number;
  readonly #observer: ApiClientObserver | undefined;
  readonly #agent: http.Agent;
  #transport: { options: https.RequestOptions; readAt: number } | undefined;

  constructor(options: ApiClientOptions) {
    const cluster = options.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig names no current cluster');
    this.#kubeConfig = options.kubeConfig;
    this.#server = new URL(cluster.server);
    this.#limiter = new TokenBucket(options.qps, options.burst);
    this.#userAgent = options.userAgent;
    this.#maxAttempts = options.maxAttempts ?? 6;
    this.#observer = options.observer;
    const secure = this.#server.protocol === 'https:';
    this.#agent = secure ? new https.Agent({ keepAlive: true, maxSockets: 32 }) : new http.Agent({ keepAlive: true, maxSockets: 32 });
  }

  /** Sends a request, retrying what is retryable; resolves with the parsed JSON body. */
  async request<T>(request: ApiRequest): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#send<T>(request);
      } catch (error) {
        const retry = request.retry !== false && request.signal?.aborted !== true && isRetryable(error) && attempt < this.#maxAttempts;
        if (!retry) throw error;
        const apiError = error as ApiError;
        const backoffMs = Math.min(5_000, 100 * 2 ** (attempt - 1));
        const waitMs = apiError.status === 429 && apiError.retryAfterSeconds !== undefined
          ? Math.min(apiError.retryAfterSeconds, maxRetryAfterSeconds) * 1000
          : backoffMs;
        await delay(waitMs, request.signal);
      }
    }
  }

  /**
   * Streams a watch: calls `onEvent` for each event until the server ends the stream (resolves)
   * or it fails (rejects with ApiError; a 410 Gone arrives as an ERROR event, passed on as is).
   * `silenceMs`: no byte for that long means the connection is dead, though no error says so.
   */
  async watch<T>(path: string, query: ApiRequest['query'], onEvent: (event: WatchEvent<T>) => void, options: { signal: AbortSignal; silenceMs: number }): Promise<void> {
    await this.#limiter.take();
    const { request, response } = await this.#open('GET', path, { ...query, watch: true }, undefined, undefined, options.signal);
    this.#observer?.watchOpened?.(response.statusCode ?? 0);
    if (response.statusCode !== 200) throw await this.#errorFrom(response, 'GET', path);
    try {
      await this.#stream(request, response, path, onEvent, options.silenceMs);
      this.#observer?.watchEnded?.('closed');
    } catch (error) {
      // Our own stop (the agent shutting down) is not a watch failing.
      if (!options.signal.aborted) this.#observer?.watchEnded?.(watchEndOf(error));
      throw error;
    }
  }

  #stream<T>(request: http.ClientRequest, response: http.IncomingMessage, path: string, onEvent: (event: WatchEvent<T>) => void, silenceMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let buffered = '';
      let watchdog = setTimeout(onSilence, silenceMs);
      function onSilence(): void {
        request.destroy(new ApiError(`watch ${path} was silent for ${silenceMs} ms`, 0, 'WatchSilent'));
      }
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        clearTimeout(watchdog);
        watchdog = setTimeout(onSilence, silenceMs);
        buffered += chunk;
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line.length === 0) continue;
          try {
            onEvent(JSON.parse(line) as WatchEvent<T>);
          } catch (error) {
            // The consumer refused the stream (a 410 inside an ERROR event, say): end it with that error.
            clearTimeout(watchdog);
            request.destroy(error as Error);
            return;
          }
        }
      });
      response.on('end', () => {
        clearTimeout(watchdog);
        resolve();
      });
      response.on('error', (error) => {
        clearTimeout(watchdog);
        reject(toApiError(error));
      });
      request.on('error', (error) => {
        clearTimeout(watchdog);
        reject(toApiError(error));
      });
    });
  }

  async #send<T>(request: ApiRequest): Promise<T> {
    await this.#limiter.take();
    const started = performance.now();
    const contentType = request.contentType ?? (request.method === 'PATCH' ? 'application/merge-patch+json' : 'application/json');
    const { response } = await this.#open(request.method, request.path, request.query, request.body, contentType, request.signal);
    const status = response.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      const error = await this.#errorFrom(response, request.method, request.path);
      this.#observer?.responded?.(request.method, status, performance.now() - started);
      throw error;
    }
    // A connection cut in the middle of the body is a network failure like any other (retried).
    const text = await readBody(response).catch((error: unknown) => {
      throw toApiError(error);
    });
    this.#observer?.responded?.(request.method, status, performance.now() - started);
    return (text.length > 0 ? JSON.parse(text) : undefined) as T;
  }

  async #transportOptions(): Promise<https.RequestOptions> {
    // KubeConfig re-reads rotating service-account tokens; once every 30 s is plenty.
    if (this.#transport && performance.now() - this.#transport.readAt < 30_000) return this.#transport.options;
    const options: https.RequestOptions = {};
    try {
      await this.#kubeConfig.applyToHTTPSOptions(options);
    } catch (error) {
      // A token file caught mid-rotation, an exec plugin that failed once (its cloud's token
      // service unreachable): retried as a network failure is, not the end of the informer.
      throw toApiError(error);
    }
    this.#transport = { options, readAt: performance.now() };
    return options;
  }

  async #open(method: HttpMethod, path: string, query: ApiRequest['query'], body: unknown, contentType: string | undefined, signal: AbortSignal | undefined): Promise<{ request: http.ClientRequest; response: http.IncomingMessage }> {
    const url = new URL(path, this.#server);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const transport = await this.#transportOptions();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: http.OutgoingHttpHeaders = {
      ...(transport.headers as http.OutgoingHttpHeaders | undefined),
      Accept: 'application/json',
      'User-Agent': this.#userAgent,
      ...(payload === undefined ? {} : { 'Content-Type': contentType ?? 'application/json', 'Content-Length': Buffer.byteLength(payload) }),
    };
    const secure = url.protocol === 'https:';
    const options: https.RequestOptions = { ...transport, method, headers, agent: this.#agent, ...(signal ? { signal } : {}) };
    return new Promise((resolve, reject) => {
      const request = (secure ? https : http).request(url, options, (response) => resolve({ request, response }));
      request.on('error', (error) => reject(toApiError(error)));
      request.end(payload);
    });
  }

  async #errorFrom(response: http.IncomingMessage, method: string, path: string): Promise<ApiError> {
    const status = response.statusCode ?? 0;
    const text = await readBody(response).catch(() => '');
    let reason = String(status);
    let message = text.slice(0, 500);
    try {
      const parsed = JSON.parse(text) as { reason?: string; message?: string };
      reason = parsed.reason ?? reason;
      message = parsed.message ?? message;
    } catch {
      // not a Status object: keep the raw text
    }
    const retryAfter = Number(response.headers['retry-after']);
    return new ApiError(`${method} ${path}: ${status} ${message}`, status, reason, Number.isFinite(retryAfter) ? retryAfter : undefined);
  }
}

/** A watch or list that asked for a resourceVersion the server no longer has (410 Gone): relist. */
export function isResourceVersionExpired(error: unknown): boolean {
  return error instanceof ApiError && (error.status === 410 || error.reason === 'Expired' || error.reason === 'Gone');
}

function watchEndOf(error: unknown): WatchEnd {
  if (isResourceVersionExpired(error)) return 'expired';
  if (error instanceof ApiError && error.reason === 'WatchSilent') return 'silent';
  return 'error';
}

function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? (error as Error).name;
  return new ApiError((error as Error).message, 0, code);
}

function readBody(response: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => (text += chunk));
    response.on('end', () => resolve(text));
    response.on('error', reject);
  });
}

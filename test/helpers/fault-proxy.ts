// A fault-injecting HTTPS proxy in front of the integration run's kube-apiserver, for tests of an
// agent that must converge when the API misbehaves. The agent gets a kubeconfig pointing at the
// proxy and keeps talking TLS with client credentials, as it does to a real apiserver: the proxy
// terminates TLS with the dev cluster's own serving certificate (its SAN is 127.0.0.1, signed by
// the CA the kubeconfig already trusts) and forwards every request upstream as the cluster admin.
//
// Rules pick requests (method, path, watch or not) and, with a probability, answer them with a
// fault instead of (or in the middle of) the apiserver's answer:
//   status  an HTTP error (409 Conflict, 429 with Retry-After, 500, ...) as a Kubernetes Status,
//           without forwarding: the request never reaches the apiserver;
//   stall   a watch that opens (200 and headers) and then says nothing, for a while or for good;
//   drop    the request is forwarded and the connection cut after part of the response.
// Every request is logged with its arrival time, route and outcome, so a test can count requests
// per verb and route per second, and check that a request refused with Retry-After did not come
// back before its time. cutWatches() ends every open watch, as a load balancer's restart would.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';

export type Fault =
  | { readonly kind: 'status'; readonly status: number; readonly reason: string; readonly retryAfterSeconds?: number }
  | { readonly kind: 'stall'; /** Then cut the connection; undefined: silent until the client gives up. */ readonly stallMs?: number }
  | { readonly kind: 'drop'; /** Bytes of the response body passed on before the cut (watches: events' bytes). */ readonly afterBytes: number };

export interface FaultRule {
  /** For the log and the per-rule counts. */
  readonly name: string;
  /** HTTP methods it applies to (GET, POST, PATCH, ...); default every one. */
  readonly methods?: readonly string[];
  /** Tested against the path with its query string. */
  readonly path?: RegExp;
  /** Tested against the request body (a JSON patch's "op"s, a claim's "nodeName", ...). */
  readonly body?: RegExp;
  /** true: only watches; false: only plain requests; default both. */
  readonly watch?: boolean;
  /** 0..1, drawn per matching request. */
  readonly probability: number;
  /** At most this many injections; default unlimited. */
  readonly limit?: number;
  readonly fault: Fault;
}

export interface LoggedRequest {
  /** Milliseconds since the proxy started (performance.now() clock). */
  readonly at: number;
  readonly method: string;
  /** "list tasks", "watch tasks", "patch tasks/status", "create events", ... */
  readonly route: string;
  readonly url: string;
  readonly watch: boolean;
  /** The rule that injected a fault into it, if any. */
  fault: string | undefined;
  /** The status sent downstream (0: the connection was cut before a status line). */
  status: number;
}

/** A request repeated before the Retry-After of a 429 it got had passed. */
export interface EarlyRetry {
  readonly route: string;
  readonly url: string;
  readonly refusedAt: number;
  readonly allowedAt: number;
  readonly cameAt: number;
}

export interface FaultProxy {
  /** https://127.0.0.1:PORT */
  readonly url: string;
  /** A kubeconfig file like the admin's, with its server the proxy. */
  readonly kubeconfigPath: string;
  /** Replaces the rules; [] passes everything through untouched. */
  setRules(rules: readonly FaultRule[]): void;
  /** Now on the clock of LoggedRequest.at (milliseconds since the proxy started). */
  now(): number;
  readonly requests: readonly LoggedRequest[];
  /** How often each rule fired. */
  injected(): ReadonlyMap<string, number>;
  readonly earlyRetries: readonly EarlyRetry[];
  /** Requests repeated after a 429 with Retry-After, early or not: how often the check above ran. */
  readonly retriesAfterTooManyRequests: number;
  /** Watches open right now (stalled ones included). */
  readonly openWatches: number;
  /** Ends every open watch abruptly (the socket is destroyed); returns how many. */
  cutWatches(): number;
  /** Most requests (matching `filter`) seen in any window of `windowMs`, from the log. */
  maxInWindow(windowMs: number, filter?: (request: LoggedRequest) => boolean): number;
  /** Requests per second by "verb route", from `sinceMs` on: one array entry per second. */
  ratesByRoute(sinceMs?: number): ReadonlyMap<string, readonly number[]>;
  close(): Promise<void>;
}

export interface FaultProxyOptions {
  /** https://127.0.0.1:PORT of the real apiserver. */
  readonly upstreamUrl: string;
  /** The dev cluster's PARAFORK_CLUSTER_DIR (its pki/ has the certificates). */
  readonly clusterStateDir: string;
  /** Where the proxy's kubeconfig is written. */
  readonly workDirectory: string;
  /** Seeded draws make a failing run repeatable; default Math.random. */
  readonly random?: () => number;
}

/** A small deterministic generator (mulberry32) for repeatable fault draws. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * "verb resource[/subresource]" as the apiserver's audit log names requests: the namespace and
 * object names are left out, so the counts group by what was done rather than to which object.
 */
export function routeOf(method: string, url: URL): string {
  const parts = url.pathname.split('/').filter(Boolean);
  // /api/v1/... or /apis/GROUP/VERSION/...
  let rest = parts[0] === 'api' ? parts.slice(2) : parts.slice(3);
  if (rest[0] === 'namespaces' && rest.length >= 3) rest = rest.slice(2);
  const [resource = url.pathname, name, subresource] = rest;
  const watch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
  const verb = { GET: watch ? 'watch' : name === undefined ? 'list' : 'get', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' }[method] ?? method.toLowerCase();
  return `${verb} ${resource}${subresource === undefined ? '' : `/${subresource}`}`;
}

function statusBody(status: number, reason: string, message: string): string {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code: status });
}

function readBody(request: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

/** Starts the proxy on 127.0.0.1 (a free port) and writes its kubeconfig. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const pki = path.join(options.clusterStateDir, 'pki');
  const upstream = new URL(options.upstreamUrl);
  const random = options.random ?? Math.random;
  const started = performance.now();
  const now = (): number => performance.now() - started;
  // Upstream as the admin; keep-alive like any client. No socket cap: watches hold theirs.
  const upstreamAgent = new https.Agent({
    keepAlive: true,
    ca: readFileSync(path.join(pki, 'ca.crt')),
    cert: readFileSync(path.join(pki, 'admin.crt')),
    key: readFileSync(path.join(pki, 'admin.key')),
  });

  let rules: readonly FaultRule[] = [];
  const injections = new Map<string, number>();
  const requests: LoggedRequest[] = [];
  const earlyRetries: EarlyRetry[] = [];
  let retriesAfterTooManyRequests = 0;
  /** Identical request (method, url, body) -> when a 429 allowed it back. */
  const retryAfterDeadlines = new Map<string, { refusedAt: number; allowedAt: number }>();
  const openWatches = new Set<Socket>();
  const sockets = new Set<Socket>();

  function pickFault(method: string, url: string, watch: boolean, body: Buffer): FaultRule | undefined {
    for (const rule of rules) {
      if (rule.methods !== undefined && !rule.methods.includes(method)) continue;
      if (rule.watch !== undefined && rule.watch !== watch) continue;
      if (rule.path !== undefined && !rule.path.test(url)) continue;
      if (rule.body !== undefined && !rule.body.test(body.toString('utf8'))) continue;
      const count = injections.get(rule.name) ?? 0;
      if (rule.limit !== undefined && count >= rule.limit) continue;
      if (random() >= rule.probability) continue;
      injections.set(rule.name, count + 1);
      return rule;
    }
    return undefined;
  }

  function checkRetryAfter(identity: string, logged: LoggedRequest): void {
    const deadline = retryAfterDeadlines.get(identity);
    if (deadline === undefined) return;
    retryAfterDeadlines.delete(identity);
    retriesAfterTooManyRequests++;
    // 50 ms of slack for timer and scheduling jitter between the two processes.
    if (logged.at + 50 < deadline.allowedAt) earlyRetries.push({ route: logged.route, url: logged.url, refusedAt: deadline.refusedAt, allowedAt: deadline.allowedAt, cameAt: logged.at });
  }

  async function handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const method = request.method ?? 'GET';
    const target = new URL(request.url ?? '/', upstream);
    const watch = target.searchParams.get('watch') === 'true' || target.searchParams.get('watch') === '1';
    // Timed on arrival of the headers: reading the body must not shift it.
    const arrivedAt = now();
    const body = await readBody(request);
    const logged: LoggedRequest = { at: arrivedAt, method, route: routeOf(method, target), url: `${target.pathname}${target.search}`, watch, fault: undefined, status: 0 };
    requests.push(logged);
    const identity = createHash('sha1').update(`${method} ${logged.url}\n`).update(body).digest('hex');
    checkRetryAfter(identity, logged);
    const rule = pickFault(method, logged.url, watch, body);
    const fault = rule?.fault;
    if (rule) logged.fault = rule.name;

    if (fault?.kind === 'status') {
      const headers: http.OutgoingHttpHeaders = { 'Content-Type': 'application/json' };
      if (fault.retryAfterSeconds !== undefined) {
        headers['Retry-After'] = String(fault.retryAfterSeconds);
        retryAfterDeadlines.set(identity, { refusedAt: logged.at, allowedAt: logged.at + fault.retryAfterSeconds * 1000 });
      }
      logged.status = fault.status;
      response.writeHead(fault.status, headers);
      response.end(statusBody(fault.status, fault.reason, `injected by the fault proxy (rule ${rule?.name ?? ''})`));
      return;
    }
    if (fault?.kind === 'stall' && watch) {
      // Open and silent: a watch whose server (or a middlebox) hangs without closing.
      logged.status = 200;
      response.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
      response.flushHeaders();
      const socket = request.socket;
      openWatches.add(socket);
      response.once('close', () => openWatches.delete(socket));
      if (fault.stallMs !== undefined) setTimeout(() => socket.destroy(), fault.stallMs).unref();
      return;
    }
    forward(request, response, method, target, body, logged, fault?.kind === 'drop' ? fault.afterBytes : undefined);
  }

  function forward(request: http.IncomingMessage, response: http.ServerResponse, method: string, target: URL, body: Buffer, logged: LoggedRequest, dropAfterBytes: number | undefined): void {
    const headers = { ...request.headers, host: upstream.host };
    delete headers.connection;
    // The admin's certificate speaks for the client upstream; the client's own credentials stay here.
    delete headers.authorization;
    const upstreamRequest = https.request(target, { method, headers, agent: upstreamAgent });
    const downstream = request.socket;
    if (logged.watch) {
      openWatches.add(downstream);
      response.once('close', () => openWatches.delete(downstream));
    }
    // Whatever happens upstream (refused while the apiserver restarts, reset, timed out), the client
    // sees its connection go, as it would talking to the apiserver directly.
    upstreamRequest.on('error', () => downstream.destroy());
    // The client went away (or we cut it) before the answer was complete: so does the upstream call.
    response.once('close', () => {
      if (!response.writableFinished) upstreamRequest.destroy();
    });
    upstreamRequest.on('response', (upstreamResponse) => {
      logged.status = upstreamResponse.statusCode ?? 0;
      const responseHeaders = { ...upstreamResponse.headers };
      delete responseHeaders.connection;
      delete responseHeaders['keep-alive'];
      response.writeHead(upstreamResponse.statusCode ?? 502, responseHeaders);
      if (logged.watch) response.flushHeaders();
      let passed = 0;
      upstreamResponse.on('data', (chunk: Buffer) => {
        if (dropAfterBytes !== undefined && passed + chunk.length >= dropAfterBytes) {
          response.write(chunk.subarray(0, Math.max(0, dropAfterBytes - passed)));
          // Cut mid-response: the client has a status line and part of a body, then a reset.
          setImmediate(() => downstream.destroy());
          upstreamResponse.destroy();
          return;
        }
        passed += chunk.length;
        response.write(chunk);
      });
      upstreamResponse.on('end', () => response.end());
      upstreamResponse.on('error', () => downstream.destroy());
    });
    upstreamRequest.end(body);
  }

  const server = https.createServer(
    {
      cert: readFileSync(path.join(pki, 'apiserver.crt')),
      key: readFileSync(path.join(pki, 'apiserver.key')),
      // Watches are long responses; Node's default (300 s) would cut a quiet one. Idle keep-alive
      // connections still close after Node's 5 s, so a client's idle fd count settles.
      requestTimeout: 0,
    },
    (request, response) => {
      handle(request, response).catch(() => request.socket.destroy());
    },
  );
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `https://127.0.0.1:${port}`;

  // The admin kubeconfig with the proxy as its server: same CA (the proxy serves the apiserver's
  // certificate) and the same client certificate, which the proxy accepts without asking for.
  const adminKubeconfig = readFileSync(path.join(options.clusterStateDir, 'kubeconfig'), 'utf8');
  const kubeconfigPath = path.join(options.workDirectory, `fault-proxy-${port}.kubeconfig`);
  writeFileSync(kubeconfigPath, adminKubeconfig.replace(/server: https:\/\/127\.0\.0\.1:\d+/, `server: ${url}`), { mode: 0o600 });

  return {
    url,
    kubeconfigPath,
    setRules(next) {
      rules = [...next];
    },
    now,
    requests,
    injected: () => new Map(injections),
    earlyRetries,
    get retriesAfterTooManyRequests() {
      return retriesAfterTooManyRequests;
    },
    get openWatches() {
      return openWatches.size;
    },
    cutWatches() {
      const count = openWatches.size;
      for (const socket of openWatches) socket.destroy();
      openWatches.clear();
      return count;
    },
    maxInWindow(windowMs, filter = () => true) {
      const times = requests.filter(filter).map((request) => request.at);
      let most = 0;
      let first = 0;
      for (let last = 0; last < times.length; last++) {
        while ((times[last] ?? 0) - (times[first] ?? 0) >= windowMs) first++;
        most = Math.max(most, last - first + 1);
      }
      return most;
    },
    ratesByRoute(sinceMs = 0) {
      const rates = new Map<string, number[]>();
      for (const request of requests) {
        if (request.at < sinceMs) continue;
        const second = Math.floor((request.at - sinceMs) / 1000);
        const counts = rates.get(request.route) ?? [];
        while (counts.length <= second) counts.push(0);
        counts[second] = (counts[second] ?? 0) + 1;
        rates.set(request.route, counts);
      }
      return rates;
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
      upstreamAgent.destroy();
    },
  };
}

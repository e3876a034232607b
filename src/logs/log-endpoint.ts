// The agent's log API, GET /logs/<namespace>/<name>: what `kubectl parafork logs` reads through the
// apiserver's proxy to the agent Pod on the Task's node, and what `agent --manifests` serves as is.
// Query: index=N (an array's index), attempt=N (from 1), previous=true, tail=N, timestamps=true,
// stream=stdout|stderr, follow=true; any other value of these is refused with 400 naming it.
// Lines go out as they are read (chunked), so a follower sees each as the Task writes it. Access is
// decided by `authorize` (delegated to the apiserver: src/k8s/log-access-review.ts) before any file
// is touched; an agent without it (the manifest-folder one, whose /tasks is open too) serves all.
// Only allowed readers count against maxLogStreams: counted from the request on, a reader whose
// review was still on its way held a place, so 512 made-up tokens left allowed readers 429 for as
// long as their reviews waited (log-endpoint-access.test.ts). The reviewer bounds those apart.
import type http from 'node:http';

import { UnreadableLogFormatError } from './log-format.js';
import { showTaskLog, TaskLogNotFoundError } from './show-task-log.js';

/** 'busy': the authorizer cannot take another review now (answered 429). */
export type LogAuthorizer = (token: string | undefined, namespace: string, name: string) => Promise<'allowed' | 'forbidden' | 'unauthenticated' | 'busy'>;

export interface LogEndpointOptions {
  /** The agent's log directories. */
  readonly directories: readonly string[];
  readonly authorize?: LogAuthorizer;
}

/**
 * The most log responses the agent serves at once to readers it has allowed; past it such a reader
 * gets 429. Each follower polls its file every 200 ms on the agent's one JavaScript thread, the
 * thread that starts every Task.
 */
export const maxLogStreams = 512;

/** The header a reader's bearer token comes in (the proxy drops Authorization). */
export const logTokenHeader = 'x-parafork-token';

const namePattern = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function logEndpoint(options: LogEndpointOptions): (request: http.IncomingMessage, response: http.ServerResponse) => void {
  let streams = 0;
  /**
   * Takes a place for an allowed reader's response until it closes (the caller has seen it open);
   * false when none is left.
   */
  const takeStream = (response: http.ServerResponse): boolean => {
    if (streams >= maxLogStreams) return false;
    streams++;
    response.once('close', () => streams--);
    return true;
  };
  return (request, response) => {
    serve(options, takeStream, request, response).catch((error: unknown) => {
      if (!response.headersSent) plain(response, 500, `could not read the log: ${(error as Error).message}\n`);
      else response.end();
    });
  };
}

async function serve(options: LogEndpointOptions, takeStream: (response: http.ServerResponse) => boolean, request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://agent');
  const [, , namespace = '', name = '', ...rest] = url.pathname.split('/');
  if (request.method !== 'GET' || rest.length > 0 || !namePattern.test(namespace) || !namePattern.test(name)) {
    plain(response, 404, 'not found: GET /logs/<namespace>/<name>\n'); return;
  }
  if (options.authorize) {
    const header = request.headers[logTokenHeader];
    const access = await options.authorize(typeof header === 'string' ? header.replace(/^Bearer /, '') : undefined, namespace, name);
    if (access === 'unauthenticated') { plain(response, 401, `unauthenticated: send a bearer token the apiserver accepts in ${logTokenHeader}\n`); return; }
    if (access === 'forbidden') { plain(response, 403, `forbidden: you may not get tasks/log of ${namespace}/${name} (bind the parafork-log-reader ClusterRole in ${namespace})\n`); return; }
    if (access === 'busy') { plain(response, 429, 'too many log requests waiting for the apiserver\'s review on this agent: try again later\n'); return; }
  }
  if (response.closed) return; // gone while its review was on its way: nothing to serve, nothing to count
  const query = parseLogQuery(url.searchParams);
  if (typeof query === 'string') { plain(response, 400, `${query}\n`); return; }
  if (!takeStream(response)) { plain(response, 429, `too many log readers on this agent (${maxLogStreams} at once): try again later\n`); return; }
  const { attempt, tail, index, stream } = query;
  const aborted = new AbortController();
  response.on('close', () => aborted.abort());
  try {
    await showTaskLog(
      {
        directories: options.directories,
        namespace,
        name,
        ...(index !== undefined ? { index } : {}),
        ...(attempt !== undefined ? { attempt } : {}),
        previous: query.previous,
        ...(tail !== undefined ? { tail } : {}),
        timestamps: query.timestamps,
        ...(stream !== undefined ? { stream } : {}),
        follow: query.follow,
        signal: aborted.signal,
      },
      (text) => {
        if (!response.headersSent) response.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
        response.write(text);
      },
    );
  } catch (error) {
    if (error instanceof TaskLogNotFoundError && !response.headersSent) { plain(response, 404, `${error.message}\n`); return; }
    if (error instanceof UnreadableLogFormatError && !response.headersSent) { plain(response, 500, `${error.message}\n`); return; }
    throw error;
  }
  if (!response.headersSent) response.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
  response.end();
}

interface LogQuery {
  readonly index?: number;
  readonly attempt?: number;
  readonly tail?: number;
  readonly stream?: 'stdout' | 'stderr';
  readonly previous: boolean;
  readonly timestamps: boolean;
  readonly follow: boolean;
}

/**
 * The query's parameters, or what is wrong with one (answered 400). A value the endpoint cannot
 * take is refused, never dropped: `tail=-5` or `attempt=0` used to serve the whole newest log, as
 * if the reader had asked for that (red team, session 12; log-endpoint-access.test.ts).
 */
function parseLogQuery(query: URLSearchParams): LogQuery | string {
  // The value as the reader sent it, cut, in quotes, with every control character escaped: JSON's
  // quoting escapes C0 but leaves DEL and C1 (U+0080-U+009F, CSI among them) for a terminal to act on.
  const quoted = (text: string): string => JSON.stringify(text.slice(0, 32)).replace(/[\u007f-\u009f]/g, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const whole = (key: string, from: number): number | undefined | string => {
    const text = query.get(key);
    if (text === null) return undefined;
    const value = /^[0-9]{1,16}$/.test(text) ? Number(text) : Number.NaN;
    return Number.isSafeInteger(value) && value >= from ? value : `${key} must be a whole number from ${from}, got ${quoted(text)}`;
  };
  const flag = (key: string): boolean | string => {
    const text = query.get(key);
    if (text === null || text === 'false') return false;
    return text === 'true' ? true : `${key} must be true or false, got ${quoted(text)}`;
  };
  const index = whole('index', 0);
  const attempt = whole('attempt', 1);
  const tail = whole('tail', 0);
  const previous = flag('previous');
  const timestamps = flag('timestamps');
  const follow = flag('follow');
  const stream = query.get('stream');
  for (const value of [index, attempt, tail, previous, timestamps, follow]) if (typeof value === 'string') return value;
  if (stream !== null && stream !== 'stdout' && stream !== 'stderr') return `stream must be stdout or stderr, got ${quoted(stream)}`;
  return {
    ...(typeof index === 'number' ? { index } : {}),
    ...(typeof attempt === 'number' ? { attempt } : {}),
    ...(typeof tail === 'number' ? { tail } : {}),
    ...(stream !== null ? { stream } : {}),
    previous: previous === true,
    timestamps: timestamps === true,
    follow: follow === true,
  };
}

function plain(response: http.ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' }).end(text);
}

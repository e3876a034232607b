// parafork_api_*: requests to the Kubernetes API, by verb and status code, in the spirit of
// client-go's rest_client_* metrics, from the API client's observer hook. Paths never become
// labels. Each attempt counts: a request retried after a 503 shows as a 503 and then its answer.
// A watch counts as verb WATCH when it is answered (its stream is not timed), and how its stream
// ended is counted apart. Network failures that never got a status are not counted.
import { Counter, Histogram, type Registry } from 'prom-client';

import type { ApiClientObserver, HttpMethod, WatchEnd } from '../k8s/api-client.js';
import { apiRequestBuckets } from './buckets.js';

export const apiClientMetricNames = {
  requests: 'parafork_api_requests_total',
  duration: 'parafork_api_request_duration_seconds',
  watchEnds: 'parafork_api_watch_ends_total',
} as const;

const apiVerbs: readonly HttpMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
const watchEnds: readonly WatchEnd[] = ['closed', 'silent', 'expired', 'error'];

export class ApiClientMetrics implements ApiClientObserver {
  readonly #requests: Counter<'verb' | 'code'>;
  readonly #duration: Histogram<'verb'>;
  readonly #watchEnds: Counter<'reason'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.#requests = new Counter({
      name: apiClientMetricNames.requests,
      help: 'Responses from the Kubernetes API, by HTTP verb and status code.',
      labelNames: ['verb', 'code'],
      registers,
    });
    this.#duration = new Histogram({
      name: apiClientMetricNames.duration,
      help: 'From sending a request to the Kubernetes API to its whole response, by HTTP verb; the client-side rate limit\'s wait is not included.',
      labelNames: ['verb'],
      buckets: [...apiRequestBuckets],
      registers,
    });
    // Every verb's series exists from the first scrape, at zero: Prometheus's rate() counts no
    // increase for a series until it has seen it once, so a series born with its first request
    // would hide a burst that fits in one scrape interval (a short Task costs one PATCH).
    for (const verb of apiVerbs) this.#duration.zero({ verb });
    this.#watchEnds = new Counter({
      name: apiClientMetricNames.watchEnds,
      help: 'Watch streams that ended, by reason: closed (the server\'s timeout, resumed), silent (the watchdog gave up on a quiet connection), expired (410 Gone: relist), error.',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of watchEnds) this.#watchEnds.inc({ reason }, 0);
  }

  responded(method: HttpMethod, status: number, durationMs: number): void {
    this.#requests.inc({ verb: method, code: String(status) });
    this.#duration.observe({ verb: method }, durationMs / 1000);
  }

  watchOpened(status: number): void {
    this.#requests.inc({ verb: 'WATCH', code: String(status) });
  }

  watchEnded(reason: WatchEnd): void {
    this.#watchEnds.inc({ reason });
  }
}

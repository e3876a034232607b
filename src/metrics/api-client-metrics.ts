// parafork_api_*: requests to the Kubernetes API, by verb and status code, in the spirit of
// client-go's rest_client_* metrics, from the API client's observer hook. Paths never become
// labels. Each attempt counts: a request retried after a 503 shows as a 503 and then its answer.
// Watches are long-lived streams and are not counted; nor are network failures, which get no status.
import { Counter, Histogram, type Registry } from 'prom-client';

import type { ApiClientObserver, HttpMethod } from '../k8s/api-client.js';
import { apiRequestBuckets } from './buckets.js';

export const apiClientMetricNames = {
  requests: 'parafork_api_requests_total',
  duration: 'parafork_api_request_duration_seconds',
} as const;

const apiVerbs: readonly HttpMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

export class ApiClientMetrics implements ApiClientObserver {
  readonly #requests: Counter<'verb' | 'code'>;
  readonly #duration: Histogram<'verb'>;

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
  }

  responded(method: HttpMethod, status: number, durationMs: number): void {
    this.#requests.inc({ verb: method, code: String(status) });
    this.#duration.observe({ verb: method }, durationMs / 1000);
  }
}

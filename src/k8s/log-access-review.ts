// Who may read a Task's log through the agent: delegated authentication and authorization, as the
// kubelet does for its own API (--authentication-token-webhook, --authorization-mode=Webhook). The
// caller's bearer token goes to a TokenReview (who is it?), then a SubjectAccessReview asks whether
// that user may `get` the Task's `log` subresource (tasks/log) in its namespace. The apiserver's
// pod proxy, which remote readers come through, drops their Authorization header once it has
// authenticated them, so `kubectl parafork logs` sends the token in X-Parafork-Token instead.
// Decisions are kept for a few seconds, as the kubelet's webhook cache does, so a follower or a
// burst of reads costs two API calls, not two per read; the same review asked again while it is
// on its way waits for that one.
//
// The reviews go through an API client of their own (logReviewRate): anyone who reaches the
// agent's port can make it ask, one review per made-up token, and in the client of the agent's
// writes they held back every Task's status (test/integration/log-review-flood.test.ts). A flood
// now slows log readers only. Reviews on their way are bounded too (maxPendingLogReviews): past it
// a reader whose decision is not kept is answered 'busy' at once rather than queued without end.
import { taskGroup } from '../api/task.js';
import type { ApiClient } from './api-client.js';

/** 'busy': too many reviews on their way to ask another now (maxPendingLogReviews). */
export type LogAccess = 'allowed' | 'forbidden' | 'unauthenticated' | 'busy';

interface TokenReviewStatus {
  readonly authenticated?: boolean;
  readonly user?: { readonly username?: string; readonly uid?: string; readonly groups?: readonly string[]; readonly extra?: Readonly<Record<string, readonly string[]>> };
}

const decisionTtlMs = 10_000;
const cachedDecisionsLimit = 4096;

/** The rate limit of the reviews' own API client: a few readers' worth, apart from the agent's writes. */
export const logReviewRate = { qps: 10, burst: 20 } as const;

/**
 * The most reviews on their way at once (each a request waiting for that client: at 10 a second,
 * 256 are 25 s of waiting). A reader whose decision is kept, or whose review is on its way already,
 * does not count; one more is 'busy'. Log responses are bounded apart (maxLogStreams), and count
 * only readers allowed, so made-up tokens cannot take the places of allowed readers.
 */
export const maxPendingLogReviews = 256;

export class LogAccessReviewer {
  readonly #client: ApiClient;
  readonly #decisions = new Map<string, { access: LogAccess; at: number }>();
  readonly #pending = new Map<string, Promise<LogAccess>>();

  /** `client` is for the reviews alone (rate limit logReviewRate), never the one the agent writes Tasks with. */
  constructor(client: ApiClient) {
    this.#client = client;
  }

  async review(token: string | undefined, namespace: string, name: string): Promise<LogAccess> {
    if (token === undefined || token === '') return 'unauthenticated';
    const key = `${token}\0${namespace}\0${name}`;
    const cached = this.#decisions.get(key);
    if (cached !== undefined && Date.now() - cached.at < decisionTtlMs) return cached.access;
    const pending = this.#pending.get(key);
    if (pending !== undefined) return pending;
    if (this.#pending.size >= maxPendingLogReviews) return 'busy';
    const deciding = this.#decide(token, namespace, name).finally(() => this.#pending.delete(key));
    this.#pending.set(key, deciding);
    const access = await deciding;
    if (this.#decisions.size >= cachedDecisionsLimit) this.#decisions.clear();
    this.#decisions.set(key, { access, at: Date.now() });
    return access;
  }

  async #decide(token: string, namespace: string, name: string): Promise<LogAccess> {
    const review = await this.#client.request<{ status?: TokenReviewStatus }>({
      method: 'POST',
      path: '/apis/authentication.k8s.io/v1/tokenreviews',
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } },
    });
    const user = review.status?.user;
    if (review.status?.authenticated !== true || user?.username === undefined) return 'unauthenticated';
    const decision = await this.#client.request<{ status?: { allowed?: boolean } }>({
      method: 'POST',
      path: '/apis/authorization.k8s.io/v1/subjectaccessreviews',
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: user.username,
          ...(user.uid !== undefined ? { uid: user.uid } : {}),
          groups: user.groups ?? [],
          ...(user.extra !== undefined ? { extra: user.extra } : {}),
          resourceAttributes: { group: taskGroup, resource: 'tasks', subresource: 'log', verb: 'get', namespace, name },
        },
      },
    });
    return decision.status?.allowed === true ? 'allowed' : 'forbidden';
  }
}

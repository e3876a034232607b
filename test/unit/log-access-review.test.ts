// Who may read a Task's log (src/k8s/log-access-review.ts), against a fake apiserver: a reader's
// token is asked about (TokenReview), then exactly the Task it reads (SubjectAccessReview of
// tasks/log); a decision is kept for a while, and the same review asked again while it is on its
// way is not asked twice (each review is an API call anyone reaching the agent's port can cause).
import type http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';

import { LogAccessReviewer, maxPendingLogReviews } from '../../src/k8s/log-access-review.js';
import { closeLocalApiServers, localApiClient } from '../helpers/local-api-server.js';

afterEach(closeLocalApiServers);

interface Asked {
  readonly path: string;
  readonly body: { spec?: { token?: string; user?: string; resourceAttributes?: Record<string, string> } };
}

/**
 * A fake apiserver: `reader-token` is user `reader`, who may read Task team/mine; nothing else is
 * known. A TokenReview of a token starting `waiting-` is never answered (a review held up).
 */
async function reviewer(asked: Asked[]): Promise<LogAccessReviewer> {
  const answer: http.RequestListener = (request, response) => {
    let text = '';
    request.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    request.on('end', () => {
      const body = JSON.parse(text) as Asked['body'];
      asked.push({ path: request.url ?? '', body });
      if (body.spec?.token?.startsWith('waiting-') === true) return;
      const status = request.url?.includes('tokenreviews') === true
        ? (body.spec?.token === 'reader-token' ? { authenticated: true, user: { username: 'reader', groups: ['readers'] } } : { authenticated: false })
        : { allowed: body.spec?.user === 'reader' && body.spec.resourceAttributes?.namespace === 'team' && body.spec.resourceAttributes.name === 'mine' };
      setTimeout(() => response.writeHead(201, { 'Content-Type': 'application/json' }).end(JSON.stringify({ status })), 20);
    });
  };
  return new LogAccessReviewer(await localApiClient(answer));
}

describe('LogAccessReviewer', () => {
  it('allows the Task the apiserver allows, refuses its neighbour in another namespace, and knows no made-up token', async () => {
    const asked: Asked[] = [];
    const review = await reviewer(asked);
    expect(await review.review('reader-token', 'team', 'mine')).toBe('allowed');
    expect(await review.review('reader-token', 'team-b', 'mine')).toBe('forbidden');
    expect(await review.review('made-up', 'team', 'mine')).toBe('unauthenticated');
    expect(await review.review(undefined, 'team', 'mine')).toBe('unauthenticated');
    const checked = asked.filter((each) => each.path.includes('subjectaccessreviews')).map((each) => each.body.spec?.resourceAttributes);
    expect(checked).toEqual([
      { group: 'parafork.dev', resource: 'tasks', subresource: 'log', verb: 'get', namespace: 'team', name: 'mine' },
      { group: 'parafork.dev', resource: 'tasks', subresource: 'log', verb: 'get', namespace: 'team-b', name: 'mine' },
    ]);
  });

  it('asks once for 50 reads of one Task with one token at the same moment, and not again while the decision is kept', async () => {
    const asked: Asked[] = [];
    const review = await reviewer(asked);
    const answers = await Promise.all(Array.from({ length: 50 }, () => review.review('reader-token', 'team', 'mine')));
    expect(new Set(answers)).toEqual(new Set(['allowed']));
    expect(await review.review('reader-token', 'team', 'mine')).toBe('allowed');
    expect(asked).toHaveLength(2); // one TokenReview, one SubjectAccessReview
  });

  it('keeps at most maxPendingLogReviews reviews on their way: one more new token is busy at once, a kept decision is still given', async () => {
    const asked: Asked[] = [];
    const review = await reviewer(asked);
    expect(await review.review('reader-token', 'team', 'mine')).toBe('allowed');
    const waiting = Array.from({ length: maxPendingLogReviews }, (_, index) => review.review(`waiting-${index}`, 'team', 'mine'));
    for (const each of waiting) each.catch(() => undefined); // cut when the fake apiserver closes
    expect(await review.review('waiting-one-more', 'team', 'mine')).toBe('busy');
    expect(await review.review('reader-token', 'team', 'mine')).toBe('allowed');
    // The same review again joins the one on its way: neither busy nor asked twice.
    const again = review.review('waiting-0', 'team', 'mine');
    again.catch(() => undefined);
    expect(await Promise.race([again, new Promise((resolve) => setTimeout(() => resolve('still waiting'), 100))])).toBe('still waiting');
  });
});

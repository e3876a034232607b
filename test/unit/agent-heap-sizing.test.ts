// The V8 flags the agent sets at start (src/agent/heap-sizing.ts): the old generation held near
// what is live either way; the young generation left to grow to a cap only where one was set at
// start (the image's NODE_OPTIONS), and held small by --optimize-for-size where none was.
import { describe, expect, it } from 'vitest';

import { heapSizingFlags } from '../../src/agent/heap-sizing.js';

describe('heapSizingFlags', () => {
  it('sets only the old generation\'s growing factor when NODE_OPTIONS caps the young generation (the image)', () => {
    expect(heapSizingFlags([], '--max-semi-space-size=8')).toBe('--heap-growing-percent=30');
    expect(heapSizingFlags([], '--enable-source-maps  --max_semi_space_size=16')).toBe('--heap-growing-percent=30');
  });

  it('does the same when Node\'s own flags cap it', () => {
    expect(heapSizingFlags(['--max-semi-space-size=8', '--cpu-prof'], undefined)).toBe('--heap-growing-percent=30');
    expect(heapSizingFlags(['--max-semi-space-size', '8'], '')).toBe('--heap-growing-percent=30');
  });

  it('keeps --optimize-for-size where nothing caps the young generation', () => {
    expect(heapSizingFlags([], undefined)).toBe('--optimize-for-size');
    expect(heapSizingFlags(['--max-old-space-size=512'], '--max-semi-space-sizes=8 --min-semi-space-size=8')).toBe('--optimize-for-size');
  });
});

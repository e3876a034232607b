// The vitest config test/node/security-in-pod.test.ts runs inside the agent's Pod: every file of
// test/security, with the timeouts the unit-and-native project gives them on the host, and the
// JSON report written where the Pod's host directory is mounted (PARAFORK_SECURITY_RESULTS), not
// into the checkout, which the Pod sees read-only.
import { defineConfig } from 'vitest/config';

import base from '../../vitest.config.js';

const results = process.env.PARAFORK_SECURITY_RESULTS;
if (results === undefined) throw new Error('security-in-pod.config.ts: set PARAFORK_SECURITY_RESULTS to the JSON report file');

export default defineConfig({
  // Vite's cache would go to node_modules/.vite, read-only in the Pod.
  cacheDir: '/tmp/parafork-security-vite',
  test: {
    pool: base.test!.pool!,
    testTimeout: base.test!.testTimeout!,
    hookTimeout: base.test!.hookTimeout!,
    include: ['test/security/**/*.test.ts'],
    reporters: ['default', ['json', { outputFile: results }]],
  },
});

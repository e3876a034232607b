import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Each file runs in its own process: native threads, pidfds and child processes stay per file.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // One report for the whole run, whichever projects ran: scripts/print-test-summary.mjs reads it.
    reporters: ['default', ['json', { outputFile: '.vitest-results.json' }]],
    // `npx vitest run` runs every project; `--project integration` only that one. Projects extend
    // this config, and merged arrays concatenate: include, exclude and globalSetup stay per project.
    projects: [
      {
        extends: true,
        test: {
          name: 'unit-and-native',
          // Every test outside integration/ (today unit/ and native/), so a new folder is not
          // silently left out; none of it needs the control plane.
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/integration/**', 'test/node/**'],
          globalSetup: ['test/helpers/scratch-teardown.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // Starts one control plane (etcd + kube-apiserver) for the run and installs the CRDs.
          globalSetup: ['test/integration/global-setup.ts', 'test/helpers/scratch-teardown.ts'],
          // Files share that one apiserver; one at a time keeps its latency, and so the
          // timeouts below, predictable on a busy machine.
          fileParallelism: false,
          testTimeout: 60_000,
          // Hooks create namespaces and may wait for objects to settle.
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'node',
          // `npm run test:node`: the chart installed with helm on a one-node cluster with a real
          // kubelet and containerd, the agent image built without Docker (issue 18).
          include: ['test/node/**/*.test.ts'],
          globalSetup: ['test/node/global-setup.ts'],
          fileParallelism: false,
          // After the other projects, not beside them: a second cluster, a kubelet and rolling
          // Pods on a 2-core machine would stretch every timeout of the integration project.
          sequence: { groupOrder: 1 },
          // Pods start, roll and drain in tens of seconds on a busy machine.
          testTimeout: 300_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});

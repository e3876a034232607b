#!/usr/bin/env bash
# The one command that runs every test on a fresh machine: sets up (scripts/setup.sh --tests),
# builds the control-plane and node tools the integration and node tests start when they are not
# cached yet (scripts/build-tools.sh: minutes to hours the first time, fetching Go when there is
# none), lints, then runs the native unit tests and the vitest suites through `npm test`.
# .ci/run calls exactly this.
#
# The `node` project (npm run test:node: the chart on a real kubelet, issue 18) runs only when the
# tools were already cached when this started: a cold run spends CI's 90 minutes on building them
# (README, "Set up and run"), and the node project adds its two images and ~10 minutes of tests.
# It says so when it leaves the project out; the next run, with the tools cached, runs it.
# PARAFORK_TEST_NODE=always runs it anyway, =never never.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/setup.sh" --tests || exit 1
eval "$("$root/scripts/setup.sh" --env)" || exit 1
tools_cached=1
"$root/scripts/build-tools.sh" --check >/dev/null 2>&1 || tools_cached=0
"$root/scripts/build-tools.sh" >/dev/null || exit 1

projects=()
case "${PARAFORK_TEST_NODE:-cached}" in
  always) ;;
  never) projects=(--project unit-and-native --project integration) ;;
  cached)
    if ((!tools_cached)); then
      echo "[test] the tools were built in this run: leaving out the node project (npm run test:node), which runs once they are cached (PARAFORK_TEST_NODE=always to run it now)" >&2
      projects=(--project unit-and-native --project integration)
    fi ;;
  *) echo "[test] PARAFORK_TEST_NODE must be cached, always or never" >&2; exit 2 ;;
esac

npm run --silent lint || exit 1
npm test -- "${projects[@]}"
status=$?
node scripts/print-test-summary.mjs .vitest-results.json || status=1
exit $status

#!/usr/bin/env bash
# The one command that runs every test on a fresh machine: sets up (scripts/setup.sh --tests),
# builds the control-plane tools the integration tests start when they are not cached yet
# (scripts/build-tools.sh: minutes the first time, fetching Go when there is none), lints, then runs
# the native unit tests and the vitest suites through `npm test`. .ci/run calls exactly this.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/setup.sh" --tests || exit 1
eval "$("$root/scripts/setup.sh" --env)" || exit 1
"$root/scripts/build-tools.sh" >/dev/null || exit 1

npm run --silent lint || exit 1
npm test
status=$?
node scripts/print-test-summary.mjs .vitest-results.json || status=1
exit $status

#!/usr/bin/env bash
# The one command that runs every test on a fresh machine: sets up (scripts/setup.sh), lints, then
# runs the native unit tests and the vitest suites through `npm test`. .ci/run calls exactly this.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=setup.sh
source "$root/scripts/setup.sh" || exit 1
set +e  # setup.sh runs with -e; from here each step's status is handled below

npm run --silent lint || exit 1
npm test
status=$?
node scripts/print-test-summary.mjs .vitest-results.json || status=1
exit $status

#!/usr/bin/env bash
# Builds and runs the GoogleTest unit tests of native/ under AddressSanitizer and
# UndefinedBehaviorSanitizer (native/test/Makefile; only what changed is recompiled): the XOR lock,
# the delivery gate and the event queue behind the batcher, the event records, the child table and
# the reaper (on real child processes), the spawner end to end and its preparation steps (PATH
# search, stdio, cgroups on a stand-in directory), the seccomp policy, the masks and the network
# namespace pool. GoogleTest comes from Debian's googletest/libgtest-dev packages, libseccomp (which
# names system call numbers for the seccomp policy) from libseccomp-dev, the sanitizer runtimes
# from gcc's libasan and libubsan (which g++ brings).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -f /usr/include/gtest/gtest.h ]; then
  echo "test-native-units: GoogleTest is missing: apt-get install -y libgtest-dev" >&2
  exit 1
fi
make --no-print-directory -s -j "$(nproc)" -f "$root/native/test/Makefile"
"$root/native/build/unit-tests/native-unit-tests" --gtest_brief=1

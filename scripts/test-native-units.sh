#!/usr/bin/env bash
# Builds and runs the GoogleTest unit tests of native/ under AddressSanitizer and
# UndefinedBehaviorSanitizer. GoogleTest comes from Debian's googletest/libgtest-dev packages,
# libseccomp (which names system call numbers for the seccomp policy) from libseccomp-dev.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/native/build/unit-tests"
mkdir -p "$out"
if [ ! -f /usr/include/gtest/gtest.h ]; then
  echo "test-native-units: GoogleTest is missing: apt-get install -y libgtest-dev" >&2
  exit 1
fi
g++ -std=c++20 -O1 -g -Wall -Wextra -Werror -fstack-protector-strong \
  -fsanitize=address,undefined -fno-omit-frame-pointer -pthread \
  "$root"/native/test/*_test.cc "$root/native/src/xor_lock.cc" "$root/native/src/seccomp_policy.cc" \
  "$root/native/src/network_namespace_pool.cc" "$root/native/src/network_namespace_leftovers.cc" \
  "$root/native/src/sandbox_masks.cc" "$root/native/src/log_file.cc" "$root/native/src/log_pump.cc" \
  -lgtest -lgtest_main -lseccomp -o "$out/native-unit-tests"
"$out/native-unit-tests" --gtest_brief=1

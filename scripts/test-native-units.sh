#!/usr/bin/env bash
# Builds and runs the GoogleTest unit tests of native/ under AddressSanitizer and
# UndefinedBehaviorSanitizer: the XOR lock, the delivery gate and the event queue behind the
# batcher, the event records, the child table and the reaper (with real child processes), the
# spawner's preparation steps (PATH search, stdio, cgroups on a stand-in directory), the seccomp
# policy, the masks and the network namespace pool. Everything but the Node-API glue (addon.cc,
# engine.cc, event_batcher.cc, seccomp_profile.cc, file_lock.cc, errors.cc) and the code that runs
# between clone and exec is linked. GoogleTest comes from Debian's googletest/libgtest-dev
# packages, libseccomp (which names system call numbers for the seccomp policy) from
# libseccomp-dev; the sanitizer runtimes from gcc's libasan and libubsan (pulled in by g++).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/native/build/unit-tests"
mkdir -p "$out"
if [ ! -f /usr/include/gtest/gtest.h ]; then
  echo "test-native-units: GoogleTest is missing: apt-get install -y libgtest-dev" >&2
  exit 1
fi
modules=(
  xor_lock seccomp_policy network_namespace_pool network_namespace_leftovers sandbox_masks
  event event_queue child_table reaper exec_search stdio_preparation cgroup_state_cache cgroup_join
  sandbox_preparation sandbox_resources user_namespace_handshake capabilities spawner
)
sources=()
for module in "${modules[@]}"; do sources+=("$root/native/src/$module.cc"); done
# The child's code runs between clone and exec on a stack of its own, sharing our memory: no
# sanitizer runtime there (not async-signal-safe, and ASan would poison shadow memory of a stack it
# does not know). Built alone, without -fsanitize, and linked in.
g++ -std=c++20 -O2 -Wall -Wextra -Werror -Wno-missing-field-initializers -fstack-protector-strong -c "$root/native/src/child.cc" -o "$out/child.o"
g++ -c "$root/native/src/clone3_entry.S" -o "$out/clone3_entry.o"
# -fno-sanitize-recover: undefined behaviour fails the run instead of printing and going on.
g++ -std=c++20 -O1 -g -Wall -Wextra -Werror -Wno-missing-field-initializers -fstack-protector-strong \
  -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -pthread \
  "$root"/native/test/*_test.cc "${sources[@]}" "$out/child.o" "$out/clone3_entry.o" \
  -lgtest -lgtest_main -lseccomp -o "$out/native-unit-tests"
"$out/native-unit-tests" --gtest_brief=1

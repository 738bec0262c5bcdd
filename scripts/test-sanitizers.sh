#!/usr/bin/env bash
# scripts/test-sanitizers.sh asan|tsan [ctest args...]
#
# Builds the libraries, the unit tests and the conformance suites with g++
# and a sanitizer (asan: AddressSanitizer + UndefinedBehaviorSanitizer, in
# build-asan/; tsan: ThreadSanitizer, in build-tsan/), then runs them with
# the servers started as for `make test` (scripts/with-servers.sh). Examples
# and benchmarks are left out. Default ctest selection: labels unit, fuzz and
# conformance.
#
# TSan: Debian's abseil, protobuf, gRPC, cnats and Proton are not
# instrumented, so TSan cannot see their synchronisation (absl::Mutex waits,
# gRPC completion queues) and reports races that are not there.
# fuzz/tsan.supp suppresses reports whose stack is entirely inside those
# libraries; what remains points into our code.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
kind="${1:?usage: test-sanitizers.sh asan|tsan [ctest args]}"
shift
jobs="${JOBS:-2}"
case "$kind" in
  asan)
    flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0}"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
    # The gRPC transport's deliberate process-lifetime pin (fuzz/lsan.supp).
    export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$root/fuzz/lsan.supp}"
    ;;
  tsan)
    # -U__SANITIZE_THREAD__: protobuf's map_field.h adds two members to
    # MapFieldBase when that macro is set, so our code and Debian's
    # uninstrumented libprotobuf would disagree on the layout of every map
    # field (a SEGV in RepeatedPtrFieldBase::Clear). Abseil's headers then
    # also match their uninstrumented library.
    flags="-fsanitize=thread -U__SANITIZE_THREAD__ -fno-omit-frame-pointer"
    export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=0:second_deadlock_stack=1:suppressions=$root/fuzz/tsan.supp}"
    ;;
  *) echo "usage: test-sanitizers.sh asan|tsan" >&2; exit 2 ;;
esac
build="$root/build-$kind"
bash "$root/scripts/install-deps.sh"
start=$(date +%s)
# Configured every time (a second or two) so that a change of the flags
# above reaches an existing build directory.
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" \
  -DSWITCHBOARD_BUILD_EXAMPLES=OFF -DSWITCHBOARD_BUILD_BENCH=OFF \
  >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
# TARGETS="a b": build only these (a subset such as make test-asan-core).
cmake --build "$build" -j"$jobs" ${TARGETS:+--target $TARGETS}
built=$(date +%s)
echo "test-$kind: build took $((built - start)) s"
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(-L "unit|conformance|fuzz")
rc=0
bash "$root/scripts/with-servers.sh" ctest --test-dir "$build" --output-on-failure -j"$jobs" \
  --timeout 900 "${args[@]}" || rc=$?
echo "test-$kind: tests took $(( $(date +%s) - built )) s (rc $rc)"
exit $rc

#!/usr/bin/env bash
# scripts/fuzz.sh [seconds-per-target] [target...]
#
# Configures and builds the libFuzzer targets (fuzz/) with clang-14 in
# build-fuzz/ (ASan + UBSan + libFuzzer; core, the protos and the
# transports' wire units only), then runs each target for the given time
# (default 60 s) on a working copy of its seed corpus. Exits non-zero when a
# target crashes, leaks, times out or hits undefined behaviour; the input is
# kept in build-fuzz/crashes/<name>/ (copy it to fuzz/regressions/<name>/
# once fixed, so fuzz_regression_test replays it).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-60}"
shift || true
build="${SWITCHBOARD_FUZZ_BUILD:-$root/build-fuzz}"
jobs="${JOBS:-1}"

cc=clang-14; cxx=clang++-14
command -v "$cxx" >/dev/null || { cc=clang; cxx=clang++; }
command -v "$cxx" >/dev/null || { echo "fuzz: clang++-14 not found (scripts/install-deps.sh installs it)" >&2; exit 1; }

if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=$cc CXX=$cxx cmake -S "$root/fuzz" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DSWITCHBOARD_FUZZ=ON >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
fi
cmake --build "$build" -j"$jobs"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for bin in "$build"/*_fuzz; do targets+=("$(basename "$bin" _fuzz)"); done
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
printf '%-16s %8s %10s %8s %s\n' target seconds execs/s corpus result
for name in "${targets[@]}"; do
  bin="$build/${name}_fuzz"
  [ -x "$bin" ] || { echo "fuzz: no target $name" >&2; failed+=("$name"); continue; }
  work="$build/corpus/$name"
  crashes="$build/crashes/$name"
  mkdir -p "$work" "$crashes"
  log="$build/$name.log"
  rc=0
  # New inputs go to the working corpus; fuzz/corpus/ stays the small
  # reviewed seed set.
  "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -artifact_prefix="$crashes/" -print_final_stats=1 \
    "$work" "$root/fuzz/corpus/$name" >"$log" 2>&1 || rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  units=$(ls "$work" | wc -l)
  if [ $rc -ne 0 ]; then
    failed+=("$name")
    printf '%-16s %8s %10s %8s %s\n' "$name" "$secs" "$rate" "$units" "FAILED (rc $rc, log $log, inputs in $crashes)"
    grep -m1 -E 'ERROR|runtime error|deadly signal' "$log" || true
  else
    printf '%-16s %8s %10s %8s %s\n' "$name" "$secs" "$rate" "$units" "ok ($execs execs)"
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi

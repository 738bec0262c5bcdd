#!/usr/bin/env bash
# bench/run.sh BUILD_DIR [transport_bench flags...]: runs the benchmarks and
# writes docs/benchmarks.json and the results section of docs/benchmarks.md.
# `make bench` runs it under scripts/with-servers.sh, which starts nats-server
# and RabbitMQ on loopback and exports where they are; without them the
# network transports are reported as skipped.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
shift || true
case "$build" in /*) ;; *) build="$root/$build" ;; esac
bin="$build/bench/transport_bench"
if [[ ! -x "$bin" ]]; then
  echo "bench/run.sh: $bin is missing; build first (make build)" >&2
  exit 1
fi
tmp="$(mktemp -d /tmp/sb-bench.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

# The exact command, as `make bench` runs it (under with-servers.sh) or not.
command_text="bash bench/run.sh ${build#$root/}${*:+ $*}"
if [[ -n "${SWITCHBOARD_SERVERS_DIR:-}" ]]; then
  command_text="bash scripts/with-servers.sh $command_text"
fi
# The whole run stays within 10 minutes; the runner's own budget is below it.
timeout 570 "$bin" --json="$tmp/benchmarks.json" --md="$tmp/results.md" \
  --command="$command_text" "$@" | tee "$tmp/stdout"

idem="$build/bench/idempotency_bench"
if [[ -x "$idem" ]]; then
  echo
  echo "idempotency stores (bench/idempotency_bench):"
  timeout 60 "$idem" --benchmark_min_time=0.2 --benchmark_counters_tabular=true \
    2>/dev/null | tee "$tmp/idem.txt" || true
  {
    echo
    echo "Idempotency stores (\`idempotency_bench --benchmark_min_time=0.2\`, same run):"
    echo
    echo '```'
    cat "$tmp/idem.txt"
    echo '```'
  } >> "$tmp/results.md"
fi

cp "$tmp/benchmarks.json" "$root/docs/benchmarks.json"
md="$root/docs/benchmarks.md"
begin='<!-- results:begin -->'
end='<!-- results:end -->'
if [[ -f "$md" ]] && grep -q "$begin" "$md" && grep -q "$end" "$md"; then
  awk -v begin="$begin" -v end="$end" -v results="$tmp/results.md" '
    $0 == begin { print; while ((getline line < results) > 0) print line; skip = 1; next }
    $0 == end { skip = 0 }
    !skip { print }' "$md" > "$tmp/benchmarks.md"
  cp "$tmp/benchmarks.md" "$md"
else
  { echo "# Benchmarks"; echo; echo "$begin"; cat "$tmp/results.md"; echo "$end"; } > "$md"
fi
echo "bench/run.sh: wrote docs/benchmarks.md and docs/benchmarks.json"

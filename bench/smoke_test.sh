#!/usr/bin/env bash
# smoke_test.sh BENCH_BINARY: runs the transport benchmark in --quick mode on
# inproc only and checks that it writes a JSON report with the expected keys.
# It checks that the runner works, never how fast anything is.
set -euo pipefail
bin="$1"
out="$(mktemp -d /tmp/sb-bench-smoke.XXXXXX)"
trap 'rm -rf "$out"' EXIT
timeout 60 "$bin" --quick --transports=inproc --json="$out/b.json" --md="$out/b.md" >"$out/stdout"
for key in '"machine"' '"loadavg_start"' '"rows"' '"transport": "inproc"' '"style": "request"' \
           '"style": "command"' '"style": "event"' '"throughput_ratio"' '"p99_us"' \
           '"request_reply_calls_per_s_one_thread"' '"heap_bytes_per_in_flight_call"' '"rss_bytes_per_in_flight_call"' \
           '"memory_store_lookups_per_s"'; do
  if ! grep -q "$key" "$out/b.json"; then
    echo "missing $key in the report:"; cat "$out/b.json"; exit 1
  fi
done
if command -v python3 >/dev/null; then
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["rows"]) == 12, d["rows"]' "$out/b.json"
fi
grep -q "Results of" "$out/b.md"
echo "transport_bench smoke: ok"

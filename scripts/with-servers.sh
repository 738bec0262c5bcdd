#!/usr/bin/env bash
# with-servers.sh CMD...: starts the servers the tests need on 127.0.0.1 with
# free ports, exports where they are, runs CMD, and stops them whatever
# happens. Each server has a script in scripts/servers/ with `start DIR`
# (prints `export NAME=VALUE` lines) and `stop DIR`.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
run_dir="$(mktemp -d /tmp/switchboard-servers.XXXXXX)"
chmod 755 "$run_dir"
started=()

cleanup() {
  for s in "${started[@]}"; do
    bash "$here/servers/$s.sh" stop "$run_dir/$s" >/dev/null 2>&1 || true
  done
  rm -rf "$run_dir"
}
trap cleanup EXIT INT TERM

for script in "$here"/servers/*.sh; do
  name="$(basename "$script" .sh)"
  mkdir -p "$run_dir/$name"
  chmod 777 "$run_dir/$name"
  if exports="$(bash "$script" start "$run_dir/$name")"; then
    started+=("$name")
    eval "$exports"
    echo "with-servers: $name up"
  else
    echo "with-servers: $name failed to start (see $run_dir/$name)" >&2
    cat "$run_dir/$name"/*.log 2>/dev/null | tail -30 >&2
    exit 1
  fi
done
export SWITCHBOARD_REQUIRE_SERVERS=1
export SWITCHBOARD_SERVERS_DIR="$run_dir"
"$@"
rc=$?
exit $rc

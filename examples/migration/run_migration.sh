#!/usr/bin/env bash
# Runs one migration step with the service and the caller as two processes
# and checks what the README promises:
#   request-grpc:  no service -> the call fails at once with UNAVAILABLE;
#                  with the service up -> the call completes.
#   command-nats, command-amqp: the caller starts first, the service 2s
#                  later, and the call still completes within its deadline.
#
#   run_migration.sh BINARY CONFIG_DIR request-grpc|command-nats|command-amqp
#
# Exit 0 pass, 1 fail, 77 skipped (the server's env var is missing and
# SWITCHBOARD_REQUIRE_SERVERS is not 1).
set -u
bin=$1
dir=$2
step=$3
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; for f in "$work"/*.log; do echo "--- $f"; cat "$f"; done; exit 1; }

need() {  # need VAR: the server this step talks to
  if [ -z "${!1:-}" ]; then
    if [ "${SWITCHBOARD_REQUIRE_SERVERS:-0}" = 1 ]; then fail "$1 is not set"; fi
    echo "SKIP: $1 is not set; run under scripts/with-servers.sh"
    exit 77
  fi
}

# Waits (at most $2 seconds) until file $1 contains $3.
wait_for() {
  for _ in $(seq 1 $(( $2 * 10 ))); do grep -q "$3" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# A unique prefix so leftovers of other runs in the broker cannot interfere.
export SB_MIGRATION_PREFIX="mig$(date +%s)$$$RANDOM"

case "$step" in
  request-grpc)
    config="$dir/step1-request-grpc.yaml"
    port="$(bash "$here/../../scripts/free-port.sh")"
    export SB_MIGRATION_TARGET="127.0.0.1:$port"
    # 1. No service: the request fails fast.
    start=$(date +%s%N)
    SB_MIGRATION_LISTEN= timeout 30 "$bin" --role caller --config "$config" --orders 1 --deadline 2s \
      >"$work/caller-alone.log" 2>&1
    rc=$?
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    [ $rc = 1 ] || fail "caller without a service exited $rc, want 1"
    grep -q "failed after .* UNAVAILABLE" "$work/caller-alone.log" || fail "no UNAVAILABLE without a service"
    echo "request with no service: UNAVAILABLE after ${ms} ms"
    # 2. With the service up the call completes.
    SB_MIGRATION_LISTEN="127.0.0.1:$port" timeout 60 "$bin" --role service --config "$config" --orders 1 \
      --for 40s >"$work/service.log" 2>&1 &
    pids+=($!)
    wait_for "$work/service.log" 20 "service: ready" || fail "service did not start"
    SB_MIGRATION_LISTEN= timeout 30 "$bin" --role caller --config "$config" --orders 1 --deadline 5s \
      >"$work/caller.log" 2>&1 || fail "caller failed with the service up"
    grep -q "1 of 1 order(s) placed" "$work/caller.log" || fail "order not placed"
    ;;
  command-nats | command-amqp)
    if [ "$step" = command-nats ]; then
      need SWITCHBOARD_TEST_NATS_URL
      config="$dir/step2-command-nats.yaml"
    else
      need SWITCHBOARD_TEST_AMQP_URL
      config="$dir/step3-command-amqp.yaml"
    fi
    # The caller first: its order waits in the queue while no service runs.
    timeout 60 "$bin" --role caller --config "$config" --orders 1 --deadline 20s >"$work/caller.log" 2>&1 &
    caller=$!
    pids+=($caller)
    wait_for "$work/caller.log" 20 "caller: PlaceOrder is bound" || fail "caller did not start"
    sleep 2
    kill -0 $caller 2>/dev/null || fail "the caller ended while no service was running"
    timeout 60 "$bin" --role service --config "$config" --orders 1 --for 40s >"$work/service.log" 2>&1 &
    pids+=($!)
    wait $caller
    rc=$?
    [ $rc = 0 ] || fail "caller exited $rc"
    grep -q "1 of 1 order(s) placed" "$work/caller.log" || fail "order not placed"
    grep -q "placed ord-.* as command" "$work/service.log" || fail "service did not handle it as a command"
    ;;
  *)
    echo "unknown step $step"
    exit 2
    ;;
esac
cat "$work"/caller*.log
echo "PASS: $step"

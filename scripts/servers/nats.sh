#!/usr/bin/env bash
# nats.sh start|stop|restart DIR: a JetStream-enabled nats-server on
# 127.0.0.1, data in DIR. `start` prints the exports tests read.
set -euo pipefail
cmd="$1"; dir="$2"
here="$(cd "$(dirname "$0")/.." && pwd)"

start() {
  local port
  port="$(cat "$dir/port" 2>/dev/null || bash "$here/free-port.sh")"
  echo "$port" > "$dir/port"
  # The default max_payload (1 MB) is below Switchboard's default
  # max_payload_bytes (4 MiB); the conformance suite sends 1 MiB + headers.
  echo "max_payload: 8MB" > "$dir/nats.conf"
  # Its own stdout/stderr: an inherited pipe would keep the caller's
  # $(nats.sh start ...) waiting until the server exits. Its own session: a
  # test that restarts it must not take it down when the test's process
  # group is cleaned up.
  setsid nats-server -c "$dir/nats.conf" -js -a 127.0.0.1 -p "$port" -sd "$dir/js" -l "$dir/nats.log" \
    >>"$dir/nats.out" 2>&1 </dev/null &
  echo $! > "$dir/pid"
  for _ in $(seq 1 100); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
      echo "export SWITCHBOARD_TEST_NATS_URL=nats://127.0.0.1:$port"
      echo "export SWITCHBOARD_TEST_NATS_RESTART='bash $here/servers/nats.sh restart $dir'"
      return 0
    fi
    sleep 0.1
  done
  echo "nats-server did not accept connections on port $port" >&2
  return 1
}

stop() {
  [ -f "$dir/pid" ] || return 0
  local pid; pid="$(cat "$dir/pid")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  restart) stop; start >/dev/null ;;
  *) echo "usage: nats.sh start|stop|restart DIR" >&2; exit 2 ;;
esac

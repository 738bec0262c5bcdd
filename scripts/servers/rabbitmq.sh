#!/usr/bin/env bash
# rabbitmq.sh start|stop|restart DIR: a RabbitMQ 3.10 node with the AMQP 1.0
# and management plugins, on 127.0.0.1 only, every file (data, logs, config,
# Erlang cookie, TLS material) inside DIR. It listens for AMQP on a plain and
# on a mutual-TLS port. `start` prints the exports tests read; stdout is
# eval'ed by with-servers.sh, so every diagnostic goes to DIR/*.log or stderr.
#
# The node runs as the calling user (/usr/lib/rabbitmq/bin/rabbitmq-server;
# the /usr/sbin wrapper would switch to user rabbitmq). It gets its own epmd
# on a free port so that a system epmd (port 4369) neither clashes with nor
# outlives it; `stop` ends exactly the processes recorded in DIR.
set -euo pipefail
cmd="${1:-}"; dir="${2:-}"
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: rabbitmq.sh start|stop|restart DIR" >&2; exit 2
fi
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
here="$(cd "$(dirname "$0")/.." && pwd)"
sbin=/usr/lib/rabbitmq/bin
wait_seconds="${SWITCHBOARD_RABBITMQ_START_TIMEOUT:-60}"

# Ports, the node name and the TLS material are chosen once per DIR and reused by restart, so
# clients reconnect to the same URL and the node finds its own data.
pick() {  # pick FILE: the value stored in DIR/FILE, or a new free port
  local f="$dir/$1"
  if [ ! -s "$f" ]; then bash "$here/free-port.sh" > "$f"; fi
  cat "$f"
}

setup_env() {
  local amqp_port amqps_port mgmt_port dist_port epmd_port node
  amqp_port="$(pick amqp_port)"
  amqps_port="$(pick amqps_port)"
  mgmt_port="$(pick mgmt_port)"
  dist_port="$(pick dist_port)"
  epmd_port="$(pick epmd_port)"
  if [ ! -s "$dir/nodename" ]; then
    echo "sb$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')@localhost" > "$dir/nodename"
  fi
  node="$(cat "$dir/nodename")"
  mkdir -p "$dir/mnesia" "$dir/log" "$dir/home"
  # TLS listener (AMQP 1.0 over TLS): certificates made now, clients must
  # present one signed by the test CA.
  if [ ! -s "$dir/tls/client.key" ]; then
    bash "$here/../tests/support/gen-test-certs.sh" "$dir/tls" >> "$dir/certs.log" 2>&1
  fi
  echo "[rabbitmq_amqp1_0,rabbitmq_management]." > "$dir/enabled_plugins"
  cat > "$dir/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$amqp_port
listeners.ssl.default = 127.0.0.1:$amqps_port
ssl_options.cacertfile = $dir/tls/ca.pem
ssl_options.certfile = $dir/tls/server.pem
ssl_options.keyfile = $dir/tls/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true
loopback_users = none
management.tcp.ip = 127.0.0.1
management.tcp.port = $mgmt_port
EOF
  : > "$dir/rabbitmq-env.conf"
  export HOME="$dir/home"
  export RABBITMQ_NODENAME="$node"
  export RABBITMQ_MNESIA_BASE="$dir/mnesia"
  export RABBITMQ_LOG_BASE="$dir/log"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
  export RABBITMQ_CONFIG_FILE="$dir/rabbitmq"
  export RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config"
  export RABBITMQ_PID_FILE="$dir/rabbitmq.pid"
  export RABBITMQ_DIST_PORT="$dist_port"
  export ERL_EPMD_ADDRESS=127.0.0.1
  export ERL_EPMD_PORT="$epmd_port"
  AMQP_PORT="$amqp_port"; AMQPS_PORT="$amqps_port"; MGMT_PORT="$mgmt_port"
  # The Debian package runs the broker as user rabbitmq; when this script is
  # run as root the folders stay root's, which is fine because the node runs
  # as the calling user too.
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

mgmt_ready() {
  python3 - "$MGMT_PORT" <<'EOF' 2>/dev/null
import base64, sys, urllib.request
req = urllib.request.Request("http://127.0.0.1:%s/api/overview" % sys.argv[1])
req.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
sys.exit(0 if urllib.request.urlopen(req, timeout=2).status == 200 else 1)
EOF
}

start() {
  setup_env
  # Our own epmd, in the foreground of its own session, so its pid is known.
  if ! port_open "$ERL_EPMD_PORT"; then
    setsid epmd -port "$ERL_EPMD_PORT" -address 127.0.0.1 >> "$dir/epmd.log" 2>&1 < /dev/null &
    echo $! > "$dir/epmd.pid"
    for _ in $(seq 1 50); do port_open "$ERL_EPMD_PORT" && break; sleep 0.1; done
  fi
  setsid "$sbin/rabbitmq-server" >> "$dir/server.log" 2>&1 < /dev/null &
  echo $! > "$dir/server.pid"
  local deadline=$((SECONDS + wait_seconds))
  while [ $SECONDS -lt $deadline ]; do
    if ! kill -0 "$(cat "$dir/server.pid")" 2>/dev/null; then
      echo "rabbitmq-server exited during start (see $dir/server.log, $dir/log)" >&2
      return 1
    fi
    if port_open "$AMQP_PORT" && port_open "$AMQPS_PORT" && mgmt_ready; then
      echo "export SWITCHBOARD_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:$AMQP_PORT"
      # localhost, not 127.0.0.1: Proton checks the peer name against DNS
      # names of the certificate only (its SAN has both).
      echo "export SWITCHBOARD_TEST_AMQPS_URL=amqps://localhost:$AMQPS_PORT"
      echo "export SWITCHBOARD_TEST_TLS_DIR=$dir/tls"
      echo "export SWITCHBOARD_TEST_RABBITMQ_MGMT=http://guest:guest@127.0.0.1:$MGMT_PORT"
      echo "export SWITCHBOARD_TEST_AMQP_RESTART='bash $here/servers/rabbitmq.sh restart $dir'"
      return 0
    fi
    sleep 0.5
  done
  echo "rabbitmq-server did not accept AMQP on $AMQP_PORT and management on $MGMT_PORT within ${wait_seconds}s (see $dir/server.log)" >&2
  return 1
}

kill_group() {  # kill_group PIDFILE: TERM, bounded wait, then KILL its session
  local f="$1" pid
  [ -s "$f" ] || return 0
  pid="$(cat "$f")"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  rm -f "$f"
}

stop() {
  [ -s "$dir/nodename" ] || return 0
  setup_env
  if [ -s "$dir/server.pid" ] && kill -0 "$(cat "$dir/server.pid")" 2>/dev/null; then
    timeout 30 "$sbin/rabbitmqctl" -n "$RABBITMQ_NODENAME" stop >> "$dir/stop.log" 2>&1 || true
  fi
  kill_group "$dir/server.pid"
  kill_group "$dir/epmd.pid"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  restart)
    # Keeps the epmd (same port) and the data; only the broker restarts.
    setup_env
    if [ -s "$dir/server.pid" ]; then
      timeout 30 "$sbin/rabbitmqctl" -n "$RABBITMQ_NODENAME" stop >> "$dir/stop.log" 2>&1 || true
      kill_group "$dir/server.pid"
    fi
    start > /dev/null ;;
  *) echo "usage: rabbitmq.sh start|stop|restart DIR" >&2; exit 2 ;;
esac

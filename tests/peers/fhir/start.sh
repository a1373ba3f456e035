# shellcheck shell=bash
# Starts the FHIR test peer (server.mjs: Medplum FhirRouter + MemoryRepository); to be SOURCED
# after setup.sh:
#
#   bash tests/peers/fhir/setup.sh
#   source tests/peers/fhir/start.sh        # returns non-zero if the peer does not come up
#   ... tests use $RAPPEL_TEST_FHIR_URL and $RAPPEL_TEST_FHIR_CONTROL ...
#   stop_fhir_peer
#
# Port: a free loopback port chosen by the OS, or $FHIR_PORT when set (to restart on the same
# port). Extra server flags: $FHIR_PEER_ARGS (e.g. "--validate", "--non-atomic-transactions",
# "--raw-bundles"; see server.mjs). Log: $FHIR_PEER_LOG (default $PEERS_DIR/fhir.log; appended).
# Exports:
#   RAPPEL_TEST_FHIR_URL      http://127.0.0.1:$P/fhir/R4   (FHIR base)
#   RAPPEL_TEST_FHIR_CONTROL  http://127.0.0.1:$P/_control  (reset, seed, pause, resume, ...)
#   FHIR_PEER_PID, FHIR_PEER_PORT
# Defines start_fhir_peer (what sourcing runs) and stop_fhir_peer (kills $FHIR_PEER_PID only).
#
# Downtime: the data is in memory, so a restart loses it:
#   stop_fhir_peer; FHIR_PORT=$FHIR_PEER_PORT start_fhir_peer   # same URL, empty repository
# To simulate an outage without losing data: POST $RAPPEL_TEST_FHIR_CONTROL/pause (every FHIR
# request then answers 503) and POST $RAPPEL_TEST_FHIR_CONTROL/resume.
# A second, independent instance: save the variables of the first, then
#   FHIR_PORT=<port or unset> start_fhir_peer   (it overwrites the exported variables).

_fhir_peer_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PEERS_DIR="${PEERS_DIR:-$(cd "$_fhir_peer_here/../../.." && pwd)/target/peers}"
export PEERS_DIR

_fhir_free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

stop_fhir_peer() {
  local pid="${1:-${FHIR_PEER_PID:-}}"
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    local _
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if [ -z "${1:-}" ]; then
    FHIR_PEER_PID=""
  fi
  return 0
}

start_fhir_peer() {
  local dest="$PEERS_DIR/fhir"
  if [ ! -f "$dest/node_modules/@medplum/fhir-router/package.json" ]; then
    echo "fhir peer: $dest/node_modules missing; run tests/peers/fhir/setup.sh first" >&2
    return 1
  fi
  local log="${FHIR_PEER_LOG:-$PEERS_DIR/fhir.log}"
  # ES modules resolve packages from the importing file's directory (NODE_PATH does not apply),
  # so the server runs from a copy placed next to node_modules.
  local tmp="$dest/.server.mjs.$$"
  cp "$_fhir_peer_here/server.mjs" "$tmp" && mv -f "$tmp" "$dest/server.mjs" || return 1
  local flags=()
  # @medplum/core needs a global WebSocket when loaded: Node 22+ has one, Node 20 needs the flag.
  if ! node -e 'process.exit(typeof WebSocket === "undefined" ? 1 : 0)' 2>/dev/null; then
    flags+=(--experimental-websocket)
    if node --disable-warning=ExperimentalWarning -e 0 2>/dev/null; then
      flags+=(--disable-warning=ExperimentalWarning)
    fi
  fi
  local port="${FHIR_PORT:-}"
  if [ -z "$port" ]; then
    port="$(_fhir_free_port)" || return 1
  fi
  # shellcheck disable=SC2086
  node "${flags[@]}" "$dest/server.mjs" --host 127.0.0.1 --port "$port" ${FHIR_PEER_ARGS:-} >>"$log" 2>&1 &
  local pid=$!
  local deadline=$((SECONDS + 60))
  while :; do
    # The pid check tells this server from another one already on the port.
    if curl -fsS --max-time 2 "http://127.0.0.1:$port/_control/health" 2>/dev/null | grep -q "\"pid\":$pid[,}]"; then
      break
    fi
    if ! kill -0 "$pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
      echo "fhir peer: did not come up on 127.0.0.1:$port within 60 s; log ($log):" >&2
      tail -n 20 "$log" >&2 || true
      stop_fhir_peer "$pid"
      return 1
    fi
    sleep 0.2
  done
  export FHIR_PEER_PID="$pid" FHIR_PEER_PORT="$port"
  export RAPPEL_TEST_FHIR_URL="http://127.0.0.1:$port/fhir/R4"
  export RAPPEL_TEST_FHIR_CONTROL="http://127.0.0.1:$port/_control"
  return 0
}

start_fhir_peer

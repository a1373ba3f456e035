# shellcheck shell=bash
# Starts the Twilio test peers; to be SOURCED after setup.sh:
#
#   bash tests/peers/twilio/setup.sh
#   source tests/peers/twilio/start.sh      # returns non-zero if a peer does not come up
#   ... tests ...
#   check_prism_log                          # non-zero if Prism saw an invalid request/response
#   stop_twilio_peers
#
# Starts, on two free loopback ports:
#   - fake_provider.py (scripted fake Twilio REST API + control API /_fake/...)
#   - Prism in proxy mode with --errors in front of it, validating every request and response
#     against Twilio's OpenAPI description ($PEERS_DIR/twilio_api_v2010.prism.json); its output
#     goes to $TWILIO_PRISM_LOG (default $PEERS_DIR/prism.log; the fake's to $TWILIO_FAKE_LOG,
#     default $PEERS_DIR/fake_provider.log)
# Exports:
#   RAPPEL_TEST_TWILIO_URL        http://127.0.0.1:$PRISM_PORT   (what Rappel's client talks to)
#   RAPPEL_TEST_TWILIO_FAKE_URL   http://127.0.0.1:$FAKE_PORT    (control API, no Prism)
#   RAPPEL_TEST_TWILIO_AUTH_TOKEN (kept if already set; default test-auth-token-9f8e7d6c5b4a)
#   TWILIO_PEER_PIDS              "<fake pid> <prism pid>"
# Defines the functions stop_twilio_peers and check_prism_log.

_twilio_peers_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PEERS_DIR="${PEERS_DIR:-$(cd "$_twilio_peers_here/../../.." && pwd)/target/peers}"
export PEERS_DIR
export SCARF_ANALYTICS=false
export RAPPEL_TEST_TWILIO_AUTH_TOKEN="${RAPPEL_TEST_TWILIO_AUTH_TOKEN:-test-auth-token-9f8e7d6c5b4a}"
# Logs (truncated / appended at each start). Two runs sharing one PEERS_DIR at the same time
# should give each its own TWILIO_PRISM_LOG, or check_prism_log sees the other run's lines.
export TWILIO_PRISM_LOG="${TWILIO_PRISM_LOG:-$PEERS_DIR/prism.log}"
export TWILIO_FAKE_LOG="${TWILIO_FAKE_LOG:-$PEERS_DIR/fake_provider.log}"

# The readiness probe asks Prism for this path; check_prism_log ignores the lines it causes.
_TWILIO_PRISM_PROBE_PATH="/__twilio_peers_ready__"

# Two distinct free loopback ports, chosen by the OS (bind to port 0) and released at once.
_twilio_free_ports() {
  python3 - <<'EOF'
import socket
socks = []
for _ in range(2):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

# Answers 0 when something answers HTTP on the URL (any status).
_twilio_http_up() {
  python3 - "$1" <<'EOF' >/dev/null 2>&1
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=2).read()
except urllib.error.HTTPError:
    pass
EOF
}

stop_twilio_peers() {
  local pid
  for pid in ${TWILIO_PEER_PIDS:-}; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in ${TWILIO_PEER_PIDS:-}; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  TWILIO_PEER_PIDS=""
  return 0
}

# Fails (1) and prints the offending lines if Prism refused a request as invalid or turned an
# upstream response into a 500 for breaking the spec. With `proxy --errors`, Prism 5.16 logs every
# such refusal as one line
#   [HTTP SERVER] <method> <path> ✖  error     Request terminated with error: https://stoplight.io/prism/errors#<CODE>: <title>
# where CODE is UNPROCESSABLE_ENTITY (invalid request: 422, also for a wrong content type),
# VIOLATIONS (response not valid: 500), UNAUTHORIZED (no Basic auth: 401),
# NO_PATH_MATCHED_ERROR / NO_METHOD_MATCHED_ERROR (not in the spec: 404 / 405), ...
# (the details are only in the HTTP answer, not in the log). Also caught: any "[VALIDATOR] ✖"
# error line. Not caught on purpose: Prism's
#   [VALIDATOR] ⚠  warning   Violation: response Unable to match the returned status code ...
# which it logs for every scripted error answer of the fake (400, 401, 429, 500: not in the
# spec, passed through unchanged), and the probe's own 404 on $_TWILIO_PRISM_PROBE_PATH.
check_prism_log() {
  local log="${1:-$TWILIO_PRISM_LOG}"
  if [ ! -f "$log" ]; then
    echo "check_prism_log: $log not found" >&2
    return 1
  fi
  local bad
  bad="$(grep -E 'Request terminated with error: https://stoplight\.io/prism/errors#|\[VALIDATOR\] ✖' "$log" \
    | grep -v -F " $_TWILIO_PRISM_PROBE_PATH " || true)"
  if [ -n "$bad" ]; then
    echo "check_prism_log: Prism reported invalid requests or responses ($log):" >&2
    printf '%s\n' "$bad" >&2
    return 1
  fi
  return 0
}

_twilio_start_peers() {
  local prism="$PEERS_DIR/node/node_modules/.bin/prism"
  local py="$PEERS_DIR/venv/bin/python"
  local spec="$PEERS_DIR/twilio_api_v2010.prism.json"
  local f
  for f in "$prism" "$py" "$spec"; do
    if [ ! -e "$f" ]; then
      echo "twilio peers: $f missing; run tests/peers/twilio/setup.sh first" >&2
      return 1
    fi
  done
  local ports fake_port prism_port
  ports="$(_twilio_free_ports)" || return 1
  read -r fake_port prism_port <<<"$ports"

  "$py" "$_twilio_peers_here/fake_provider.py" --host 127.0.0.1 --port "$fake_port" \
    --auth-token "$RAPPEL_TEST_TWILIO_AUTH_TOKEN" --public-url "http://127.0.0.1:$prism_port" 2>>"$TWILIO_FAKE_LOG" &
  local fake_pid=$!
  : >"$TWILIO_PRISM_LOG"
  "$prism" proxy --errors -h 127.0.0.1 -p "$prism_port" "$spec" "http://127.0.0.1:$fake_port" \
    >>"$TWILIO_PRISM_LOG" 2>&1 &
  local prism_pid=$!
  TWILIO_PEER_PIDS="$fake_pid $prism_pid"
  export TWILIO_PEER_PIDS

  local deadline=$((SECONDS + 60)) fake_ok="" prism_ok=""
  while [ $SECONDS -lt $deadline ]; do
    if [ -z "$fake_ok" ] && _twilio_http_up "http://127.0.0.1:$fake_port/_fake/health"; then
      fake_ok=1
    fi
    if [ -z "$prism_ok" ] && _twilio_http_up "http://127.0.0.1:$prism_port$_TWILIO_PRISM_PROBE_PATH"; then
      prism_ok=1
    fi
    if [ -n "$fake_ok" ] && [ -n "$prism_ok" ]; then
      break
    fi
    if ! kill -0 "$fake_pid" 2>/dev/null || ! kill -0 "$prism_pid" 2>/dev/null; then
      break
    fi
    sleep 0.25
  done
  if [ -z "$fake_ok" ] || [ -z "$prism_ok" ]; then
    echo "twilio peers: did not come up within 60 s (fake: ${fake_ok:-no}, prism: ${prism_ok:-no})" >&2
    tail -n 20 "$TWILIO_PRISM_LOG" >&2 || true
    tail -n 20 "$TWILIO_FAKE_LOG" >&2 || true
    stop_twilio_peers
    return 1
  fi
  export RAPPEL_TEST_TWILIO_URL="http://127.0.0.1:$prism_port"
  export RAPPEL_TEST_TWILIO_FAKE_URL="http://127.0.0.1:$fake_port"
  return 0
}

_twilio_start_peers

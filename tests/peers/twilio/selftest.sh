#!/usr/bin/env bash
# End-to-end self-test of the Twilio peers with curl (no Rust involved):
#   bash tests/peers/twilio/selftest.sh
# Runs setup.sh, sources start.sh, starts a tiny webhook/TwiML listener of its own, drives the
# fake through Prism and checks what comes back, then stops everything it started.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$HERE/setup.sh"
WORK="$(mktemp -d)"
LISTENER_PID=""
cleanup() {
  if [ -n "$LISTENER_PID" ]; then kill "$LISTENER_PID" 2>/dev/null || true; fi
  if declare -F stop_twilio_peers >/dev/null; then stop_twilio_peers; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
# Own logs: never touch the prism.log of a test run that may be using the same PEERS_DIR.
export TWILIO_PRISM_LOG="$WORK/prism.log" TWILIO_FAKE_LOG="$WORK/fake_provider.log"
# shellcheck source=/dev/null
source "$HERE/start.sh"
PY="$PEERS_DIR/venv/bin/python"

# --- a listener: records signed webhooks (checking X-Twilio-Signature) and plays an IVR -------
cat >"$WORK/listener.py" <<'EOF'
import http.server, json, sys, urllib.parse
from twilio.request_validator import RequestValidator
port, token, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
validator = RequestValidator(token)
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        params = {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
        url = "http://127.0.0.1:%d%s" % (port, self.path)
        ok = validator.validate(url, params, self.headers.get("X-Twilio-Signature", ""))
        with open(out, "a") as f:
            f.write(json.dumps({"path": self.path, "params": params, "signature_ok": ok}) + "\n")
        path, _, query = self.path.partition("?")
        body, ctype = b"", "text/plain"
        if path == "/voice":  # identity question; relative action
            body, ctype = b'<Response><Gather action="menu?n=1" numDigits="1"><Say>1?</Say></Gather></Response>', "text/xml"
        elif path == "/menu":
            n = int(urllib.parse.parse_qs(query)["n"][0])
            body = (b'<Response><Gather action="/menu?n=%d"><Say>?</Say></Gather></Response>' % (n + 1)
                    if n < 3 else b"<Response><Say>Merci</Say><Hangup/></Response>")
            ctype = "application/xml"
        elif path == "/inbound":
            body, ctype = b"<Response/>", "text/xml"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
EOF
LPORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$PY" "$WORK/listener.py" "$LPORT" "$RAPPEL_TEST_TWILIO_AUTH_TOKEN" "$WORK/hooks.jsonl" &
LISTENER_PID=$!
L="http://127.0.0.1:$LPORT"
for _ in $(seq 40); do curl -s -o /dev/null -X POST "$L/ping" && break; sleep 0.1; done

T="$RAPPEL_TEST_TWILIO_AUTH_TOKEN"
P="$RAPPEL_TEST_TWILIO_URL"
F="$RAPPEL_TEST_TWILIO_FAKE_URL"
pass=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
fail() { echo "FAIL $*" >&2; exit 1; }
expect() { if [ "$1" = "$2" ]; then ok "$3 ($1)"; else fail "$3: got '$1', want '$2'"; fi; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
wait_idle() {
  for _ in $(seq 100); do
    [ "$(curl -s "$F/_fake/$1/pending" | json 'd["pending"]')" = 0 ] && return 0
    sleep 0.1
  done
  fail "background work of $1 did not finish"
}
send() {  # send ACCOUNT TO [curl args...] -> prints HTTP status, body in $WORK/body
  local acc="$1" to="$2"; shift 2
  curl -s -u "$acc:$T" -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' "$@" \
    "$P/2010-04-01/Accounts/$acc/Messages.json" --data-urlencode "To=$to" \
    --data-urlencode "From=+33757000000" --data-urlencode "Body=Rappel: RDV demain 9h. Répondez OUI" \
    --data-urlencode "StatusCallback=$L/status/sms?c=1" || true
}

A1=AC00000000000000000000000000000a01
expect "$(send $A1 +33612340001)" 201 "valid message through Prism"
expect "$(json 'd["status"]' <"$WORK/body")" queued "message status"
wait_idle $A1
expect "$(grep -c '"MessageStatus": "' "$WORK/hooks.jsonl")" 2 "status callbacks reached the listener"
expect "$(grep -c '"signature_ok": true' "$WORK/hooks.jsonl")" 2 "callback signatures valid"
expect "$(curl -s "$F/_fake/$A1/callbacks" | json '",".join(c["params"]["MessageStatus"] for c in d)')" sent,delivered "callback sequence"
if check_prism_log; then ok "check_prism_log clean after valid traffic"; else fail "check_prism_log on valid traffic"; fi

code="$(curl -s -u "$A1:$T" -o /dev/null -w '%{http_code}' "$P/2010-04-01/Accounts/$A1/Messages.json" \
  --data-urlencode From=+33757000000 --data-urlencode Body=x)"
expect "$code" 422 "missing To refused by Prism"
if check_prism_log >/dev/null 2>&1; then fail "check_prism_log missed the 422"; else ok "check_prism_log catches the 422"; fi

A2=AC00000000000000000000000000000a02
expect "$(send $A2 +33612341211)" 400 "1211 invalid number"
expect "$(json 'd["code"]' <"$WORK/body")" 21211 "1211 error code"
expect "$(send $A2 +33612341610)" 400 "1610 opted out"
expect "$(json 'd["code"]' <"$WORK/body")" 21610 "1610 error code"
expect "$(send $A2 +33612341614)" 400 "1614 not mobile"
expect "$(json 'd["code"]' <"$WORK/body")" 21614 "1614 error code"
for i in 1 2 3; do
  expect "$(send $A2 +33612340429)" 429 "0429 try $i"
  if grep -qi '^retry-after: 1' "$WORK/headers"; then ok "Retry-After: 1"; else fail "no Retry-After"; fi
done
expect "$(send $A2 +33612340429)" 201 "0429 try 4"
expect "$(send $A2 +33612340500)" 500 "0500 answer"
expect "$(json 'd["code"]' <"$WORK/body")" 20500 "0500 error code"
expect "$(send $A2 +33612340408 -m 2)" 000 "0408 client timeout"
expect "$(send $A2 +33612340006)" 201 "0006 created"
expect "$(send $A2 whatsapp:+33612343016)" 201 "3016 created"
wait_idle $A2
D="$(date -u +%F)"
list() { curl -s -u "$A2:$T" "$P/2010-04-01/Accounts/$A2/Messages.json?$1"; }
expect "$(list "To=%2B33612340500&DateSent%3E=$D" | json 'len(d["messages"])')" 1 "0500 message visible in list"
expect "$(list "To=%2B33612340408&DateSent>=$D&PageSize=20" | json 'len(d["messages"])')" 1 "0408 message visible in list (literal >=)"
expect "$(list "To=whatsapp%3A%2B33612343016&DateSent%3E=$D" | json 'd["messages"][0]["status"], d["messages"][0]["error_code"]')" "failed 63016" "3016 failed 63016"
expect "$(list "To=%2B33612340006" | json 'd["messages"][0]["status"], d["messages"][0]["error_code"]')" "undelivered 30006" "0006 undelivered 30006"
expect "$(list "To=%2B33612340001&DateSent%3E=2099-01-01" | json 'len(d["messages"])')" 0 "date filter"
expect "$(grep -c 'Request terminated with error' "$TWILIO_PRISM_LOG")" 2 "scripted 400/429/500 pass through Prism unflagged (only the probe and the 422 terminated)"

A3=AC00000000000000000000000000000a03
code="$(curl -s -u "$A3:$T" -o "$WORK/body" -w '%{http_code}' "$P/2010-04-01/Accounts/$A3/Calls.json" \
  --data-urlencode To=+33612340122 --data-urlencode From=+33757000000 --data-urlencode "Url=$L/voice" \
  --data-urlencode "StatusCallback=$L/status/call" -d StatusCallbackEvent=initiated \
  -d StatusCallbackEvent=ringing -d StatusCallbackEvent=answered -d StatusCallbackEvent=completed \
  -d MachineDetection=Enable -d AsyncAmd=true --data-urlencode "AsyncAmdStatusCallback=$L/amd")"
expect "$code" 201 "call created"
wait_idle $A3
expect "$(curl -s "$F/_fake/$A3/twiml" | json '",".join(t["params"].get("Digits", "-") for t in d)')" "-,1,2,2" "digits 1,2,2 posted to the Gathers"
expect "$(curl -s "$F/_fake/$A3/callbacks" | json '",".join(c["params"].get("CallStatus") or c["params"]["AnsweredBy"] for c in d)')" \
  "initiated,ringing,human,in-progress,completed" "call callbacks"
expect "$(curl -s -u "$A3:$T" "$P/2010-04-01/Accounts/$A3/Calls.json?To=%2B33612340122&StartTime%3E=$D" | json 'd["calls"][0]["status"]')" completed "call list"

A4=AC00000000000000000000000000000a04
code="$(curl -s -o "$WORK/body" -w '%{http_code}' "$F/_fake/$A4/inbound" -H 'Content-Type: application/json' \
  -d "{\"url\": \"$L/inbound\", \"from\": \"+33612345678\", \"to\": \"+33757000000\", \"body\": \"Je confirme\", \"channel\": \"whatsapp\", \"button_payload\": \"confirm\", \"button_text\": \"Je confirme\"}")"
expect "$code" 200 "inbound injected"
expect "$(json 'd["status"]' <"$WORK/body")" 200 "listener answered the inbound webhook"
expect "$(curl -s -X POST "$F/_fake/$A4/replay-last-callback" | json 'd["status"]')" 200 "replay"
expect "$(tail -n 2 "$WORK/hooks.jsonl" | grep -c '"ButtonPayload": "confirm".*"signature_ok": true')" 2 "inbound + replay signed"

echo "selftest: $pass checks passed"

#!/usr/bin/env bash
# End-to-end self-test of the FHIR test peer with curl (no Rust involved):
#   bash tests/peers/fhir/selftest.sh
# Runs setup.sh, sources start.sh, exercises the FHIR API and the control API, restarts the peer
# on the same port, starts a second instance with --non-atomic-transactions, and stops everything
# it started. Ends with "N passed, N failed"; exits non-zero on any failure.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$HERE/setup.sh"
WORK="$(mktemp -d)"
OTHER_PID=""
cleanup() {
  if [ -n "$OTHER_PID" ]; then stop_fhir_peer "$OTHER_PID"; fi
  if declare -F stop_fhir_peer >/dev/null; then stop_fhir_peer; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
export FHIR_PEER_LOG="$WORK/fhir.log"
unset FHIR_PORT FHIR_PEER_ARGS
# shellcheck source=/dev/null
source "$HERE/start.sh"
B="$RAPPEL_TEST_FHIR_URL"
C="$RAPPEL_TEST_FHIR_CONTROL"

PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); }
fail() {
  FAILED=$((FAILED + 1))
  echo "FAIL: $*" >&2
}
# expect DESCRIPTION ACTUAL EXPECTED
expect() {
  if [ "$2" = "$3" ]; then ok; else fail "$1: got '$2', expected '$3'"; fi
}

# req METHOD URL [curl args...]: body in $WORK/body, headers in $WORK/headers; prints the status.
req() {
  local method="$1" url="$2"
  shift 2
  curl -sS -X "$method" -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' "$@" "$url"
}
# header NAME: value of a response header of the last req (without CR).
header() {
  grep -i "^$1:" "$WORK/headers" | head -n 1 | cut -d' ' -f2- | tr -d '\r'
}
# py EXPR [ARG...]: prints a Python expression over b = the JSON of the last body (or of
# $PYFILE), with a = [ARG...]; lists, dicts, booleans and None as JSON.
py() {
  python3 -c 'import json, sys
b = json.load(open(sys.argv[2]))
a = sys.argv[3:]
v = eval(sys.argv[1])
print(json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list, bool)) or v is None else v)' "$1" "${PYFILE:-$WORK/body}" "${@:2}"
}
FJ=(-H 'Content-Type: application/fhir+json')
JP=(-H 'Content-Type: application/json-patch+json')

# --- control: health, reset, seed ------------------------------------------------------------
expect "health" "$(req GET "$C/health")" 200
expect "health pid" "$(py 'b["pid"]')" "$FHIR_PEER_PID"
expect "reset" "$(req POST "$C/reset")" 200
expect "seed" "$(req POST "$C/seed" -d '{"day": "2026-11-25", "tz_offset": "+01:00", "count": 12, "prefix": "SELF"}')" 200
cp "$WORK/body" "$WORK/seed.json"
expect "seed counts" "$(py '[len(b["patients"]), len(b["appointments"]), len(b["slots"])]')" "[12, 12, 12]"
expect "seed other day" "$(req POST "$C/seed" -d '{"day": "2026-11-26", "tz_offset": "+01:00", "count": 2, "prefix": "OTHER"}')" 200
expect "seed bad day" "$(req POST "$C/seed" -d '{"day": "2026-02-30"}')" 400
P1="$(PYFILE="$WORK/seed.json" py 'b["patients"][0]')"
A1="$(PYFILE="$WORK/seed.json" py 'b["appointments"][0]')"
A2="$(PYFILE="$WORK/seed.json" py 'b["appointments"][1]')"
A4="$(PYFILE="$WORK/seed.json" py 'b["appointments"][3]')"
S4="$(PYFILE="$WORK/seed.json" py 'b["slots"][3]')"

expect "seeded patient" "$(req GET "$B/Patient/$P1")" 200
expect "patient telecom" "$(py '[(t["system"], t["use"], t["value"]) for t in b["telecom"]]')" \
  '[["phone", "home", "+33141230001"], ["phone", "mobile", "+33612340001"]]'
expect "patient language" "$(py 'b["communication"][0]["language"]["coding"][0]["code"]')" fr
expect "seeded appointment" "$(req GET "$B/Appointment/$A2")" 200
expect "appointment fields" \
  "$(py '[b["status"], b["start"], b["end"], b["patientInstruction"], b["serviceType"][0]["coding"][0]["system"], b["serviceType"][0]["coding"][0]["code"], b["extension"]]')" \
  '["booked", "2026-11-25T08:20:00+01:00", "2026-11-25T08:40:00+01:00", "A jeun 3 h", "http://rappel.example/exam", "RX-THO", [{"url": "http://example.org/fhir/StructureDefinition/ris-id", "valueString": "RIS-2"}]]'
expect "appointment participants" \
  "$(py '[(p.get("actor", {}).get("reference", "").split("/")[0], p["status"]) for p in b["participant"]]')" \
  '[["Patient", "needs-action"], ["", "accepted"]]'
expect "appointment slot" "$(py 'b["slot"][0]["reference"].split("/")[0]')" Slot
codes=""
for i in 2 4 9; do
  req GET "$B/Appointment/$(PYFILE="$WORK/seed.json" py "b['appointments'][$i]")" >/dev/null
  codes="$codes $(py 'b["serviceType"][0]["coding"][0]["code"]')"
done
expect "exam codes of appointments 3, 5, 10" "$codes" " UNKNOWN-EXAM IRM-GEN IRM-GEN"
expect "seeded slot" "$(req GET "$B/Slot/$S4")" 200
expect "slot status" "$(py 'b["status"]')" busy

# Offset edge cases: 00:30+01:00 on the 25th (23:30Z on the 24th) is in the day, 00:10+01:00 on
# the 26th (23:10Z on the 25th) is not.
edge=()
for start in 2026-11-24T23:30:00Z 2026-11-25T23:10:00Z; do
  expect "create edge appointment $start" "$(req POST "$B/Appointment" "${FJ[@]}" -d "{\"resourceType\": \"Appointment\", \"status\": \"pending\", \"start\": \"$start\", \"end\": \"$start\", \"participant\": [{\"actor\": {\"reference\": \"Patient/$P1\"}, \"status\": \"needs-action\"}]}")" 201
  edge+=("$(py 'b["id"]')")
done

# --- search: _include, encoded offset, paging ------------------------------------------------
DAY_Q="date=ge2026-11-25T00:00:00%2B01:00&date=lt2026-11-26T00:00:00%2B01:00&status=booked,pending&_include=Appointment:patient"
expect "search" "$(req GET "$B/Appointment?$DAY_Q&_count=5")" 200
expect "search content type" "$(header Content-Type)" "application/fhir+json; charset=utf-8"
expect "search bundle" "$(py '[b["resourceType"], b["type"], b["total"]]')" '["Bundle", "searchset", 13]'
expect "search page 1 modes" "$(py '[e["search"]["mode"] for e in b["entry"]]')" \
  '["match", "match", "match", "match", "match", "include", "include", "include", "include", "include"]'
expect "included are the patients of the matches" \
  "$(py 'sorted(e["resource"]["resourceType"] + "/" + e["resource"]["id"] for e in b["entry"] if e["search"]["mode"] == "include") == sorted(set(e["resource"]["participant"][0]["actor"]["reference"] for e in b["entry"] if e["search"]["mode"] == "match"))')" true
expect "fullUrl" "$(py 'all(e["fullUrl"] == a[0] + "/" + e["resource"]["resourceType"] + "/" + e["resource"]["id"] for e in b["entry"])' "$B")" true
expect "self link" "$(py '[l["url"] for l in b["link"] if l["relation"] == "self"]')" "[\"$B/Appointment?$DAY_Q&_count=5\"]"
# Follow next links.
pages=0
ids=""
url="$B/Appointment?$DAY_Q&_count=5"
while [ -n "$url" ] && [ $pages -lt 10 ]; do
  req GET "$url" >/dev/null
  pages=$((pages + 1))
  ids="$ids $(py '" ".join(e["resource"]["id"] for e in b.get("entry", []) if e["search"]["mode"] == "match")')"
  url="$(py 'next((l["url"] for l in b["link"] if l["relation"] == "next"), "")')"
done
expect "pages" "$pages" 3
expect "distinct matches over all pages" "$(echo $ids | tr ' ' '\n' | sort -u | wc -l | tr -d ' ')" 13
expect "00:30+01:00 on the day is in" "$(echo " $ids " | grep -c " ${edge[0]} " || true)" 1
expect "00:10+01:00 on the next day is out" "$(echo " $ids " | grep -c " ${edge[1]} " || true)" 0
expect "day count" "$(req GET "$B/Appointment?date=ge2026-11-25T00:00:00%2B01:00&date=lt2026-11-26T00:00:00%2B01:00&_summary=count")" 200
expect "day total (12 seeded + 00:30+01:00)" "$(py 'b["total"]')" 13
expect "unknown search parameter" "$(req GET "$B/Appointment?$DAY_Q&bogus=1")" 400
expect "non-integer _count" "$(req GET "$B/Appointment?$DAY_Q&_count=all")" 400
expect "reference search" "$(req GET "$B/Appointment?patient=Patient/$P1&_summary=count")" 200
expect "reference search total (seeded + 2 edge)" "$(py 'b["total"]')" 3
expect "chained search" "$(req GET "$B/Appointment?patient.telecom=%2B33612340002&$DAY_Q&_summary=count")" 200
expect "chained search total" "$(py 'b["total"]')" 1
# Quirk of the memory repository: string search is "contains" (FHIR says "starts with").
expect "string search" "$(req GET "$B/Patient?family=ELFNom1&_summary=count")" 200
expect "string search matches inside (SELFNom1, SELFNom10..12)" "$(py 'b["total"]')" 4
expect "raw + in the offset (decoded as a space)" "$(req GET "$B/Appointment?date=ge2026-11-25T00:00:00+01:00")" 400
expect "sort" "$(req GET "$B/Appointment?date=ge2026-11-25T00:00:00%2B01:00&date=lt2026-11-26T00:00:00%2B01:00&_sort=-date&_count=2")" 200
expect "sorted descending" "$(py '[e["resource"]["start"] for e in b["entry"]]')" '["2026-11-25T11:40:00+01:00", "2026-11-25T11:20:00+01:00"]'

# --- read: ETag ------------------------------------------------------------------------------
expect "read appointment" "$(req GET "$B/Appointment/$A1")" 200
V1="$(py 'b["meta"]["versionId"]')"
expect "ETag" "$(header ETag)" "W/\"$V1\""
[ -n "$(header Last-Modified)" ] && ok || fail "Last-Modified missing"
expect "unknown id" "$(req GET "$B/Appointment/does-not-exist")" 404
expect "unknown type" "$(req GET "$B/Appointement?_count=1")" 404
expect "metadata" "$(req GET "$B/metadata")" 200
expect "CapabilityStatement" "$(py '[b["resourceType"], b["fhirVersion"]]')" '["CapabilityStatement", "4.0.1"]'

# --- PATCH (JSON Patch) with If-Match --------------------------------------------------------
PATCH_ACCEPT='[{"op": "test", "path": "/participant/0/status", "value": "needs-action"}, {"op": "replace", "path": "/participant/0/status", "value": "accepted"}]'
expect "PATCH If-Match current" "$(req PATCH "$B/Appointment/$A1" "${JP[@]}" -H "If-Match: W/\"$V1\"" -d "$PATCH_ACCEPT")" 200
V2="$(py 'b["meta"]["versionId"]')"
expect "PATCH applied" "$(py 'b["participant"][0]["status"]')" accepted
expect "PATCH new ETag" "$(header ETag)" "W/\"$V2\""
[ "$V1" != "$V2" ] && ok || fail "versionId unchanged by PATCH"
expect "PATCH stale If-Match" "$(req PATCH "$B/Appointment/$A1" "${JP[@]}" -H "If-Match: W/\"$V1\"" -d '[{"op": "replace", "path": "/status", "value": "cancelled"}]')" 412
expect "412 outcome" "$(py '[b["resourceType"], b.get("id"), b["issue"][0]["code"]]')" '["OperationOutcome", "precondition-failed", "processing"]'
expect "PATCH strong If-Match form" "$(req PATCH "$B/Appointment/$A1" "${JP[@]}" -H "If-Match: \"$V2\"" -d '[{"op": "add", "path": "/comment", "value": "ok"}]')" 200
expect "PATCH unquoted If-Match" "$(req PATCH "$B/Appointment/$A1" "${JP[@]}" -H "If-Match: $V2" -d '[{"op": "add", "path": "/comment", "value": "x"}]')" 400
expect "PATCH with fhir+json content type" "$(req PATCH "$B/Appointment/$A1" "${FJ[@]}" -d '[{"op": "add", "path": "/comment", "value": "x"}]')" 415
expect "PATCH failed test op" "$(req PATCH "$B/Appointment/$A1" "${JP[@]}" -d "$PATCH_ACCEPT")" 400
expect "status unchanged" "$(req GET "$B/Appointment/$A1" >/dev/null; py 'b["status"]')" booked

# --- PUT keeps extensions and unknown fields -------------------------------------------------
req GET "$B/Appointment/$A2" >/dev/null
V="$(py 'b["meta"]["versionId"]')"
python3 - "$WORK/body" "$WORK/put.json" <<'EOF'
import json, sys
a = json.load(open(sys.argv[1]))
a["participant"][0]["status"] = "accepted"
a["extension"].append({"url": "http://example.org/fhir/StructureDefinition/other", "valueBoolean": True})
a["modifierExtension"] = [{"url": "http://example.org/fhir/StructureDefinition/mod", "valueCode": "x"}]
a["_patientInstruction"] = {"extension": [{"url": "http://example.org/fhir/StructureDefinition/lang", "valueCode": "fr"}]}
a["unknownVendorField"] = {"keep": [1, 2]}
json.dump(a, open(sys.argv[2], "w"))
EOF
expect "PUT If-Match current" "$(req PUT "$B/Appointment/$A2" "${FJ[@]}" -H "If-Match: W/\"$V\"" --data-binary @"$WORK/put.json")" 200
expect "PUT ETag" "$(header ETag)" "W/\"$(py 'b["meta"]["versionId"]')\""
expect "GET after PUT" "$(req GET "$B/Appointment/$A2")" 200
expect "extensions kept" "$(py '[e["url"].rsplit("/", 1)[1] for e in b["extension"]] + [b["modifierExtension"][0]["valueCode"], b["_patientInstruction"]["extension"][0]["valueCode"], b["unknownVendorField"], b["participant"][0]["status"]]')" \
  '["ris-id", "other", "x", "fr", {"keep": [1, 2]}, "accepted"]'
expect "PUT stale If-Match" "$(req PUT "$B/Appointment/$A2" "${FJ[@]}" -H "If-Match: W/\"$V\"" --data-binary @"$WORK/put.json")" 412
expect "PUT wrong content type" "$(req PUT "$B/Appointment/$A2" -H 'Content-Type: text/plain' --data-binary @"$WORK/put.json")" 415

# --- Slot GET/PUT, generic create ------------------------------------------------------------
req GET "$B/Slot/$S4" >/dev/null
VS="$(py 'b["meta"]["versionId"]')"
python3 -c 'import json, sys
s = json.load(open(sys.argv[1])); s["comment"] = "checked"; json.dump(s, open(sys.argv[2], "w"))' "$WORK/body" "$WORK/slot.json"
expect "PUT Slot" "$(req PUT "$B/Slot/$S4" "${FJ[@]}" -H "If-Match: W/\"$VS\"" --data-binary @"$WORK/slot.json")" 200
expect "POST Patient" "$(req POST "$B/Patient" "${FJ[@]}" -d '{"resourceType": "Patient", "name": [{"family": "Created"}]}')" 201
expect "Location" "$(header Location)" "$B/Patient/$(py 'b["id"]')/_history/$(py 'b["meta"]["versionId"]')"
expect "POST type mismatch" "$(req POST "$B/Patient" "${FJ[@]}" -d '{"resourceType": "Slot"}')" 400

# --- transaction: Appointment cancelled + Slot free ------------------------------------------
req GET "$B/Appointment/$A4" >/dev/null
cp "$WORK/body" "$WORK/a4.json"
req GET "$B/Slot/$S4" >/dev/null
cp "$WORK/body" "$WORK/s4.json"
python3 - "$WORK" <<'EOF'
import json, sys
w = sys.argv[1]
a = json.load(open(w + "/a4.json")); s = json.load(open(w + "/s4.json"))
etag = lambda r: 'W/"%s"' % r["meta"]["versionId"]
a2 = dict(a, status="cancelled", cancelationReason={"text": "Annulé par le patient"})
s2 = dict(s, status="free")
def tx(slot_if_match):
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": a2,
         "request": {"method": "PUT", "url": "Appointment/" + a["id"], "ifMatch": etag(a)}},
        {"resource": s2, "request": {"method": "PUT", "url": "Slot/" + s["id"], "ifMatch": slot_if_match}}]}
json.dump(tx('W/"stale"'), open(w + "/tx_bad.json", "w"))
json.dump(tx(etag(s)), open(w + "/tx_good.json", "w"))
EOF
expect "transaction with a stale entry" "$(req POST "$B" "${FJ[@]}" --data-binary @"$WORK/tx_bad.json")" 412
expect "transaction rolled back" "$(req GET "$B/Appointment/$A4" >/dev/null; py 'b["status"]')" booked
expect "transaction" "$(req POST "$B" "${FJ[@]}" --data-binary @"$WORK/tx_good.json")" 200
expect "transaction-response" "$(py '[b["type"]] + [[e["response"]["status"], e["response"]["location"].split("/")[0], e["resource"]["status"], e["response"]["etag"] == "W/\"%s\"" % e["resource"]["meta"]["versionId"]] for e in b["entry"]]')" \
  '["transaction-response", ["200", "Appointment", "cancelled", true], ["200", "Slot", "free", true]]'
expect "appointment cancelled" "$(req GET "$B/Appointment/$A4" >/dev/null; py 'b["status"]')" cancelled
expect "slot free" "$(req GET "$B/Slot/$S4" >/dev/null; py 'b["status"]')" free
expect "day total after cancel" "$(req GET "$B/Appointment?$DAY_Q&_summary=count" >/dev/null; py 'b["total"]')" 12

# --- pause / resume --------------------------------------------------------------------------
expect "pause" "$(req POST "$C/pause")" 200
expect "paused read" "$(req GET "$B/Appointment/$A1")" 503
expect "paused PATCH" "$(req PATCH "$B/Appointment/$A1" "${JP[@]}" -d '[{"op": "add", "path": "/comment", "value": "p"}]')" 503
expect "paused health" "$(req GET "$C/health" >/dev/null; py 'b["paused"]')" true
expect "pause with Retry-After" "$(req POST "$C/pause" -d '{"retry_after": 3}')" 200
expect "paused search" "$(req GET "$B/Appointment?$DAY_Q")" 503
expect "Retry-After" "$(header Retry-After)" 3
expect "resume" "$(req POST "$C/resume")" 200
expect "read after resume" "$(req GET "$B/Appointment/$A1")" 200
expect "data kept over the pause" "$(py 'b["comment"]')" ok

# --- recorded requests, log --------------------------------------------------------------------
req GET "$C/requests" >/dev/null
expect "recorded If-Match of the stale PATCH" \
  "$(py 'any(r["method"] == "PATCH" and r["status"] == 412 and r["headers"].get("if-match") == a[0] for r in b["requests"])' "W/\"$V1\"")" true
expect "no patient data in the log" "$(grep -cE 'SELFNom|Prenom|\+336|\+331|2026-11-25T' "$FHIR_PEER_LOG" || true)" 0

# --- restart on the same port: data lost -----------------------------------------------------
port="$FHIR_PEER_PORT"
old_pid="$FHIR_PEER_PID"
stop_fhir_peer
kill -0 "$old_pid" 2>/dev/null && fail "peer still running after stop_fhir_peer" || ok
expect "down" "$(curl -s -o /dev/null -w '%{http_code}' "$B/Appointment/$A1" || true)" 000
FHIR_PORT="$port" start_fhir_peer
expect "same URL after restart" "$RAPPEL_TEST_FHIR_URL" "$B"
expect "data lost by the restart" "$(req GET "$B/Appointment/$A1")" 404

# --- Medplum's own transaction semantics (second instance, --non-atomic-transactions) -------
main_pid="$FHIR_PEER_PID"
FHIR_PEER_ARGS="--non-atomic-transactions" start_fhir_peer
OTHER_PID="$FHIR_PEER_PID"
B2="$RAPPEL_TEST_FHIR_URL"
C2="$RAPPEL_TEST_FHIR_CONTROL"
req POST "$C2/seed" -d '{"day": "2026-11-25", "count": 1}' >/dev/null
A="$(py 'b["appointments"][0]')"
S="$(py 'b["slots"][0]')"
req GET "$B2/Appointment/$A" >/dev/null; cp "$WORK/body" "$WORK/a4.json"
req GET "$B2/Slot/$S" >/dev/null; cp "$WORK/body" "$WORK/s4.json"
python3 - "$WORK" <<'EOF'
import json, sys
w = sys.argv[1]
a = json.load(open(w + "/a4.json")); s = json.load(open(w + "/s4.json"))
json.dump({"resourceType": "Bundle", "type": "transaction", "entry": [
    {"resource": dict(a, status="cancelled"), "request": {"method": "PUT", "url": "Appointment/" + a["id"], "ifMatch": 'W/"%s"' % a["meta"]["versionId"]}},
    {"resource": dict(s, status="free"), "request": {"method": "PUT", "url": "Slot/" + s["id"], "ifMatch": 'W/"stale"'}}]},
    open(w + "/tx_bad.json", "w"))
EOF
expect "non-atomic: failed transaction" "$(req POST "$B2" "${FJ[@]}" --data-binary @"$WORK/tx_bad.json")" 412
expect "non-atomic: first entry stays applied (Medplum MemoryRepository)" "$(req GET "$B2/Appointment/$A" >/dev/null; py 'b["status"]')" cancelled
stop_fhir_peer "$OTHER_PID"
OTHER_PID=""
FHIR_PEER_PID="$main_pid"
stop_fhir_peer

echo "fhir peer selftest: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]

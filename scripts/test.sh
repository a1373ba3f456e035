#!/usr/bin/env bash
# Runs Rappel's whole test suite: unit tests, the corpus, and the integration suite on SQLite
# and on a throwaway PostgreSQL started here on a loopback port (stopped on exit).
set -euo pipefail
cd "$(dirname "$0")/.."

pg_bin=""
for d in /usr/lib/postgresql/*/bin /usr/local/bin /usr/bin; do
  if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then pg_bin="$d"; break; fi
done
if [ -z "$pg_bin" ]; then
  echo "PostgreSQL not found: installing it (Debian package postgresql)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)
fi

pg_dir=$(mktemp -d)
pg_port=$(( 20000 + RANDOM % 20000 ))
run_pg() {
  if [ "$(id -u)" = 0 ]; then
    # initdb refuses to run as root: use the postgres system user (created if missing).
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown -R postgres "$pg_dir"
    su postgres -s /bin/sh -c "$*"
  else
    sh -c "$*"
  fi
}
cleanup() { run_pg "'$pg_bin/pg_ctl' -D '$pg_dir/data' -m immediate stop" >/dev/null 2>&1 || true; rm -rf "$pg_dir"; }
trap cleanup EXIT
run_pg "'$pg_bin/initdb' -D '$pg_dir/data' -U rappel --auth=trust -E UTF8 >/dev/null"
run_pg "'$pg_bin/pg_ctl' -D '$pg_dir/data' -l '$pg_dir/pg.log' -w -o \"-c listen_addresses=127.0.0.1 -p $pg_port -k '$pg_dir' -c fsync=off -c max_connections=300\" start >/dev/null"
export RAPPEL_TEST_POSTGRES_URL="postgres://rappel@127.0.0.1:$pg_port/postgres"
echo "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port"

# Twilio peers: Prism (proxy, --errors) over Twilio's official spec in front of the scripted fake
# provider; pinned npm and PyPI packages cached under target/peers.
bash tests/peers/twilio/setup.sh
# shellcheck source=../tests/peers/twilio/start.sh
source tests/peers/twilio/start.sh
# FHIR R4 peer: Medplum's FhirRouter + MemoryRepository behind a small wrapper (pinned npm packages).
bash tests/peers/fhir/setup.sh
# shellcheck source=../tests/peers/fhir/start.sh
source tests/peers/fhir/start.sh
cleanup_all() { stop_twilio_peers || true; stop_fhir_peer || true; cleanup; }
trap cleanup_all EXIT

# The crash tests need the fault-injection points, compiled only into test builds.
status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --release --features crash-points --no-fail-fast "$@" || status=$?
else
  cargo test --release --features crash-points --no-fail-fast "$@" || status=$?
fi
# Every request Rappel made, and every answer of the fake, must be valid by Twilio's spec.
if ! check_prism_log; then
  echo "Prism reported requests or responses that break Twilio's spec"
  status=1
fi
exit $status

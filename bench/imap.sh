#!/usr/bin/env bash
# End-to-end IMAP benchmark (issue 3): the corpus loaded into a private
# Dovecot, drained by `intake run --once` into SQLite and into PostgreSQL,
# against a plain fetch-only IMAP client measured in the same run.
#
#   bash bench/imap.sh [COUNT=10000]
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-10000}
PORT=${PORT:-24143}
work=$(mktemp -d /tmp/intake-imapbench.XXXXXX)
chmod 0755 "$work"  # Dovecot's auth process (user dovecot) must traverse it
fixture=tests/fixtures/dovecot-fixture.sh
. bench/imap_toml.sh
cleanup() { bash "$fixture" stop "$work/dovecot" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
# Blob stores of PostgreSQL runs (the default is /var/lib/intake/blobs/<db>).
export STATE_DIRECTORY="$work/state"
python3 bench/gen_corpus.py "$work/corpus" --count "$COUNT" --seed 42 >/dev/null
# INTAKE_BIN: measure another build (e.g. an earlier commit's) in the same run.
bin=${INTAKE_BIN:-$PWD/target/release/intake}
[ -n "${INTAKE_BIN:-}" ] || cargo build --release -q --bin intake
FIXTURE_USERS="support:supportpw" bash "$fixture" start "$work/dovecot" "$PORT" $((PORT + 1)) >/dev/null

run_intake() {  # $1 = database url, $2 = label
  imap_toml "$1" "$PORT" > "$work/intake.toml"
  measure_run_once "$work/intake.toml" "$2" intake_run_once
}

bash "$fixture" load "$work/dovecot" support "$work/corpus" >/dev/null
echo "# $(date -u +%F) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $COUNT messages"
python3 bench/imap_baseline.py "$PORT" support supportpw 200
run_intake "sqlite://$work/intake.db" sqlite
db=intake_imapbench_$$
psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $db" postgres
run_intake "postgres://postgres@127.0.0.1:5432/$db" postgres
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE $db" postgres

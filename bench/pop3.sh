#!/usr/bin/env bash
# End-to-end POP3 benchmark (issue 12): the corpus loaded into a private
# Dovecot serving POP3, drained by `intake run --once` into SQLite and into
# PostgreSQL (after_import = "keep"), against a plain fetch-only POP3 client
# (Python's poplib: UIDL, then RETR one by one) measured in the same run.
#
#   bash bench/pop3.sh [COUNT=10000]
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-10000}
PORT=${PORT:-24243}
export POP3_PORT=${POP3_PORT:-24245}
work=$(mktemp -d /tmp/intake-pop3bench.XXXXXX)
chmod 0755 "$work"  # Dovecot's auth process (user dovecot) must traverse it
fixture=tests/fixtures/dovecot-fixture.sh
. bench/imap_toml.sh
cleanup() { bash "$fixture" stop "$work/dovecot" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
export STATE_DIRECTORY="$work/state"
python3 bench/gen_corpus.py "$work/corpus" --count "$COUNT" --seed 42 >/dev/null
bin=${INTAKE_BIN:-$PWD/target/release/intake}
[ -n "${INTAKE_BIN:-}" ] || cargo build --release -q --bin intake
FIXTURE_USERS="support:supportpw" bash "$fixture" start "$work/dovecot" "$PORT" $((PORT + 1)) >/dev/null

run_intake() {  # $1 = database url, $2 = label
  imap_toml "$1" "$POP3_PORT" | sed 's/^name = "support"$/name = "support"\nprotocol = "pop3"/' > "$work/intake.toml"
  measure_run_once "$work/intake.toml" "$2" intake_run_once_pop3
}

bash "$fixture" load "$work/dovecot" support "$work/corpus" >/dev/null
echo "# $(date -u +%F) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $COUNT messages over POP3"
python3 bench/pop3_baseline.py "$POP3_PORT" support supportpw
run_intake "sqlite://$work/intake.db" sqlite
db=intake_pop3bench_$$
psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $db" postgres
run_intake "postgres://postgres@127.0.0.1:5432/$db" postgres
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE $db" postgres

#!/usr/bin/env bash
# bench/imap.sh's `intake run --once` for several builds, interleaved round
# by round against ONE Dovecot loaded once (after_import = "keep" leaves
# the folder as it was), each run into a fresh SQLite file and a fresh
# PostgreSQL database; prints each build's figures and their medians.
#
#   bash bench/imap_compare.sh ROUNDS COUNT NAME=INTAKE_BINARY...
#   e.g. bash bench/imap_compare.sh 5 5000 after=target/release/intake before=/tmp/old/intake
#
# PG_ASYNC_COMMIT=1 sets synchronous_commit = off on the benchmark's
# PostgreSQL database: the WAL flush of each commit then no longer waits for
# the disk, whose latency on a virtual machine spreads single runs by a
# factor of two; what remains is the work and round trips intake itself does.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:?rounds}; COUNT=${2:?count}; shift 2
PORT=${PORT:-24143}
work=$(mktemp -d /tmp/intake-imapcmp.XXXXXX)
chmod 0755 "$work"  # Dovecot's auth process (user dovecot) must traverse it
fixture=tests/fixtures/dovecot-fixture.sh
. bench/imap_toml.sh
cleanup() { bash "$fixture" stop "$work/dovecot" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
# Blob stores of PostgreSQL runs (the default is /var/lib/intake/blobs/<db>).
export STATE_DIRECTORY="$work/state"
python3 bench/gen_corpus.py "$work/corpus" --count "$COUNT" --seed 42 >/dev/null
FIXTURE_USERS="support:supportpw" bash "$fixture" start "$work/dovecot" "$PORT" $((PORT + 1)) >/dev/null
bash "$fixture" load "$work/dovecot" support "$work/corpus" >/dev/null
echo "# $(date -u +%F) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $COUNT messages, $ROUNDS rounds, PG_ASYNC_COMMIT=${PG_ASYNC_COMMIT:-0}"

run_one() {  # $1 = binary, $2 = database url, $3 = name, $4 = label
  imap_toml "$2" "$PORT" > "$work/intake.toml"
  local t0 t1 n
  t0=$(date +%s.%N)
  "$1" --config "$work/intake.toml" run --once
  t1=$(date +%s.%N)
  n=$("$1" --config "$work/intake.toml" export | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(len(t["comments"]) for t in d["tickets"]) + len(d["quarantine"]))')
  python3 -c "print('$3 intake run --once into $4 %.1f' % ($n / ($t1 - $t0)))" >> "$work/out"
}

for r in $(seq 1 "$ROUNDS"); do
  for spec in "$@"; do
    name=${spec%%=*}; bin=${spec#*=}
    rm -rf "$work/i.db"* "$work/state"
    run_one "$bin" "sqlite://$work/i.db" "$name" sqlite
    db=intake_imapcmp_$$
    psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $db" postgres
    if [ "${PG_ASYNC_COMMIT:-0}" = 1 ]; then
      psql -q -h 127.0.0.1 -U postgres -c "ALTER DATABASE $db SET synchronous_commit = off" postgres
    fi
    run_one "$bin" "postgres://postgres@127.0.0.1:5432/$db" "$name" postgres
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE $db" postgres
  done
done
python3 bench/medians.py "$work/out"

#!/usr/bin/env bash
# The in-process stages of bench/run.sh for several builds, interleaved
# round by round on one corpus, so that a change is measured against an
# earlier build in the same run on the same machine; prints each build's
# figures and their medians.
#
#   bash bench/compare.sh ROUNDS COUNT NAME=BENCH_INGEST_BINARY...
#   e.g. bash bench/compare.sh 7 10000 after=target/release/examples/bench_ingest before=/tmp/old/bench_ingest
#
# Stages: parse+classify only, the pipeline into SQLite (batch 500) and
# into PostgreSQL (127.0.0.1:5432, batch 500).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:?rounds}; COUNT=${2:?count}; shift 2
work=$(mktemp -d /tmp/intake-compare.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Blob stores of PostgreSQL runs (the default is /var/lib/intake/blobs/<db>).
export STATE_DIRECTORY="$work/state"
python3 bench/gen_corpus.py "$work/corpus" --count "$COUNT" --seed 42 >/dev/null
echo "# $(date -u +%F) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $COUNT messages, $ROUNDS rounds"
for r in $(seq 1 "$ROUNDS"); do
  for spec in "$@"; do
    name=${spec%%=*}; bin=${spec#*=}
    rm -rf "$work/b.db"* "$work/state"
    "$bin" "$work/corpus" "sqlite://$work/b.db" 500 | sed "s/^/$name sqlite /" >> "$work/out"
    db=intake_compare_$$
    psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $db" postgres
    "$bin" "$work/corpus" "postgres://postgres@127.0.0.1:5432/$db" 500 | grep pipeline | sed "s/^/$name postgres /" >> "$work/out"
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE $db" postgres
  done
done
python3 - "$work/out" > "$work/lines" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    name, db, js = line.split(" ", 2)
    d = json.loads(js)
    stage = d.get("stage", "?")
    print(name, stage if stage != "pipeline" else f"pipeline {db}", d["per_second"])
PY
python3 bench/medians.py "$work/lines"

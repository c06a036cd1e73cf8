#!/usr/bin/env bash
# Ingestion benchmark over the deterministic support-mail corpus.
#
#   bash bench/run.sh [COUNT=10000]
#
# Generates the corpus with gen_corpus.py (seed 42), then measures in one run:
#   1. parse+classify only (no database): the ceiling of the pure stages;
#   2. the pipeline into SQLite, batch 500 (the default);
#   3. the pipeline into SQLite, batch 1: one commit per message, the
#      classic design (django-helpdesk style), as the in-run baseline;
#   4. the pipeline into PostgreSQL (127.0.0.1:5432), batch 500.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-10000}
GEN=${GEN_CORPUS:-bench/gen_corpus.py}
[ -f "$GEN" ] || GEN=../shared/bench/gen_corpus.py
work=$(mktemp -d /tmp/intake-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Blob stores of PostgreSQL runs (the default is /var/lib/intake/blobs/<db>).
export STATE_DIRECTORY="$work/state"
python3 "$GEN" "$work/corpus" --count "$COUNT" --seed 42 >/dev/null
# BENCH_BIN: measure another build (e.g. an earlier commit's) in the same run.
bin=${BENCH_BIN:-target/release/examples/bench_ingest}
[ -n "${BENCH_BIN:-}" ] || cargo build --release --example bench_ingest -q
echo "# $(date -u +%F) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
$bin "$work/corpus" "sqlite://$work/b500.db" 500
$bin "$work/corpus" "sqlite://$work/b1.db" 1 | grep pipeline
db=intake_bench_$$
psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $db" postgres
$bin "$work/corpus" "postgres://postgres@127.0.0.1:5432/$db" 500 | grep pipeline
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE $db" postgres

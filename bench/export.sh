#!/usr/bin/env bash
# `intake export` at a store's size: the corpus (seed 42) ingested into a
# fresh SQLite file by examples/bench_ingest, then the full export written
# to a file, with its time, size and peak RSS.
#
#   bash bench/export.sh [COUNT=100000]
#   BENCH_BIN=…/bench_ingest INTAKE_BIN=…/intake: measure another build.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-100000}
work=$(mktemp -d /tmp/intake-export.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 bench/gen_corpus.py "$work/corpus" --count "$COUNT" --seed 42 >/dev/null
bench=${BENCH_BIN:-target/release/examples/bench_ingest}
bin=${INTAKE_BIN:-target/release/intake}
[ -n "${BENCH_BIN:-}${INTAKE_BIN:-}" ] || cargo build --release -q --bin intake --example bench_ingest
"$bench" "$work/corpus" "sqlite://$work/e.db" 500 | grep pipeline >/dev/null
printf '[database]\nurl = "sqlite://%s/e.db"\n[desk]\ndomain = "desk.test"\n' "$work" > "$work/intake.toml"
t0=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$work/rss" "$bin" --config "$work/intake.toml" export > "$work/out.json"
t1=$(date +%s.%N)
python3 -c "print('{\"stage\":\"export\",\"messages\":$COUNT,\"db_bytes\":$(stat -c %s "$work/e.db"),\"json_bytes\":$(stat -c %s "$work/out.json"),\"seconds\":%.2f,\"peak_rss_kb\":$(cat "$work/rss")}' % ($t1 - $t0))"

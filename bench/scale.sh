#!/usr/bin/env bash
# Scale: SLICES slices of 10,000 benchmark mails (10 corpora of different
# seeds, each slice's Message-IDs renumbered) drained into one growing
# database, on SQLite and on PostgreSQL; one JSON line per slice, then each
# backend's last slice against its first (and the medians of the first and
# last three).
#
#   bash bench/scale.sh [SLICES=100] [backends: sqlite postgres]
set -euo pipefail
cd "$(dirname "$0")/.."
SLICES=${1:-100}; shift || true
BACKENDS=${*:-sqlite postgres}
work=$(mktemp -d /tmp/intake-scale.XXXXXX)
trap 'rm -rf "$work"' EXIT
export STATE_DIRECTORY="$work/state"
bin=${BENCH_SCALE_BIN:-target/release/examples/bench_scale}
[ -n "${BENCH_SCALE_BIN:-}" ] || cargo build --release -q --example bench_scale
dirs=()
for s in $(seq 1 10); do
  python3 bench/gen_corpus.py "$work/c$s" --count 10000 --seed "$s" >/dev/null
  dirs+=("$work/c$s")
done
echo "# $(date -u +%F) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $SLICES slices of 10,000"
for b in $BACKENDS; do
  if [ "$b" = sqlite ]; then
    url="sqlite://$work/scale.db"
  else
    db=intake_scale_$$
    psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $db" postgres
    url="postgres://postgres@127.0.0.1:5432/$db"
  fi
  "$bin" "$url" "$SLICES" "${dirs[@]}" | sed "s/^/$b /" | tee "$work/$b.out"
  [ "$b" = sqlite ] || psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE $db" postgres
  rm -rf "$work/scale.db"* "$work/state"
  python3 - "$work/$b.out" <<'PY'
import json, statistics, sys
rows = [json.loads(l.split(' ', 1)[1]) for l in open(sys.argv[1])]
name = open(sys.argv[1]).readline().split(' ', 1)[0]
first, last = rows[0], rows[-1]
m = lambda rs: statistics.median(r['per_second'] for r in rs)
print(f"# {name}: {last['messages']:,} messages; last slice {last['per_second']}/s against the first {first['per_second']}/s = {last['per_second']/first['per_second']:.2f}; "
      f"medians of three {m(rows[-3:]):.0f} / {m(rows[:3]):.0f} = {m(rows[-3:])/m(rows[:3]):.2f}; "
      f"database {last['db_bytes_per_message']} B/message, blobs {last['blob_bytes_per_message']} B/message")
PY
done

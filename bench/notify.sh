#!/usr/bin/env bash
# Notification benchmark (issue 5): ingestion throughput with the
# acknowledgement trigger on and the sender delivering to an SMTP server
# slowed to 50 ms a message, against no triggers, measured back to back in
# the same run; then the outbox drain rate.
#
#   bash bench/notify.sh [COUNT=10000] [ROUNDS=7] [DATABASE=sqlite|postgres://...] [LIMIT=10]
#
# LIMIT is the per-recipient rate limit (10 per hour as shipped), applied by
# the sender when it takes notifications for delivery; with a large one every
# acknowledgement is delivered, the busiest case for the sender.
# BENCH_SENDER=off leaves the sender out of both cases, which tells the
# ingest transaction's share of the cost from the sender's (and the SMTP
# server's, which runs on the same machine here).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-10000}
ROUNDS=${2:-7}
DB=${3:-sqlite}
LIMIT=${4:-10}
work=$(mktemp -d /tmp/intake-notifybench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
# Blob stores of PostgreSQL runs (the default is /var/lib/intake/blobs/<db>).
export STATE_DIRECTORY="$work/state"
python3 bench/gen_corpus.py "$work/corpus" --count "$COUNT" --seed 42 >/dev/null
cargo build --release -q --example bench_notify
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
start_sink() {  # $1 = name, $2 = port, then extra arguments
  mkdir -p "$work/$1"
  /usr/bin/python3 tests/fixtures/smtp_sink.py --dir "$work/$1" --port "$2" --timeout 7200 "${@:3}" > "$work/$1.out" &
  pids+=($!)
  for _ in $(seq 1 100); do
    grep -q READY "$work/$1.out" 2>/dev/null && return
    sleep 0.1
  done
  echo "SMTP sink $1 did not start" >&2; exit 1
}
slow=$(free_port); start_sink slow "$slow" --delay-ms 50
fast=$(free_port); start_sink fast "$fast"
echo "# $(date -u '+%F %H:%M') UTC; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
target/release/examples/bench_notify "$work/corpus" "$slow" "$fast" "$ROUNDS" 200 "$DB" "$LIMIT"

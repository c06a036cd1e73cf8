#!/usr/bin/env bash
# Webhook load benchmark: signed contact posts for 1,000 distinct callers,
# server and load generator as two processes on loopback, into SQLite.
#
#   bash bench/webhooks.sh [SECONDS=60] [CONNECTIONS=32]
#
# Prints the load generator's JSON lines (without and with Idempotency-Key)
# and the server's RSS every 10 s (memory must stay flat).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
CONNS=${2:-32}
cargo build --release --example webhook_load -q
bin=target/release/examples/webhook_load
work=$(mktemp -d /tmp/intake-wh-bench.XXXXXX)
"$bin" serve "sqlite://$work/bench.db" 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
server=$!
trap 'kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
addr=$(awk '/listening on/ {print $3}' "$work/serve.out")
echo "# $(date -u +%F) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
"$bin" load "http://$addr" "$SECS" "$CONNS" 1000
"$bin" load "http://$addr" "$SECS" "$CONNS" 1000 --idempotency
echo "# server RSS (MiB) every 10 s:" $(grep -o '[0-9.]*' "$work/serve.err" | tr '\n' ' ')

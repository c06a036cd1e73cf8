#!/usr/bin/env bash
# Hostile-input benchmark: the worst inputs found for issue 10 and a few more,
# each in its own process (so that its peak RSS is its own), next to a normal
# mail of the same size.
#
#   bash bench/hostile.sh [--quick]
#
# Mail cases go through parse+classify (the pure stages, `pipeline::prepare`);
# the 1 MB raw 8-bit subject, the 50,000-entry References and the 50,000 Cc
# also go through the whole pipeline into a fresh SQLite database. The webhook
# case sends one request with thousands of `v1=` signature candidates and a
# 1 MB body to the real HTTP router on loopback and measures whatever the
# current code does with it (the answer is 401 either way).
#
# Prints one table row per case: time, peak RSS (VmHWM), outcome, and the
# same for a normal mail of that size. --quick uses smaller sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example bench_hostile -q
bin=target/release/examples/bench_hostile
work=$(mktemp -d /tmp/intake-hostile.XXXXXX)
trap 'rm -rf "$work"' EXIT
scale=1
[ "${1:-}" = "--quick" ] && scale=10

# case N [pipeline]
cases=(
  "raw8bit_open_words $((1000000 / scale)) pipeline"
  "references $((50000 / scale)) pipeline"
  "in_reply_to $((50000 / scale))"
  "encoded_word_run $((1000000 / scale))"
  "open_q_words $((1000000 / scale))"
  "open_words $((1000000 / scale))"
  "huge_header_line $((10000000 / scale))"
  "header_lines $((1000000 / scale))"
  "cc $((50000 / scale)) pipeline"
  "deep_multipart $((10000 / scale))"
  "deep_rfc822 $((10000 / scale))"
  "attachments $((10000 / scale))"
  "returned_ids $((50000 / scale))"
)

field() { grep -o "\"$1\":[^,}]*" | head -1 | cut -d: -f2- | tr -d '"'; }

echo "# $(date -u +%F) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
printf '| %-20s | %8s | %9s | %9s | %8s | %-34s | %9s | %8s |\n' \
  case N bytes "parse s" "RSS MiB" outcome "normal s" "nRSS MiB"
for spec in "${cases[@]}"; do
  set -- $spec
  name=$1 n=$2 db=""
  [ "${3:-}" = pipeline ] && db="sqlite://$work/$name.db"
  out=$($bin mail "$name" "$n" $db)
  bytes=$(echo "$out" | field bytes)
  norm=$($bin mail normal "$bytes")
  printf '| %-20s | %8s | %9s | %9s | %8s | %-34.34s | %9s | %8s |\n' \
    "$name" "$n" "$bytes" "$(echo "$out" | field parse_classify_s)" "$(echo "$out" | field peak_rss_mib)" \
    "$(echo "$out" | field outcome)" "$(echo "$norm" | field parse_classify_s)" "$(echo "$norm" | field peak_rss_mib)"
  if [ -n "$db" ]; then
    echo "|   whole pipeline into SQLite: $(echo "$out" | field pipeline_s) s, $(echo "$out" | field stored)"
  fi
done
for cand in $((20000 / scale)) $((60000 / scale)); do
  out=$($bin webhook "$cand" 1000000)
  echo "| webhook, $cand signature candidates, 1 MB body: $(echo "$out" | field request_s) s, HTTP $(echo "$out" | field status), peak RSS $(echo "$out" | field peak_rss_mib) MiB"
done

# What the end-to-end benchmarks share: the configuration bench/imap.sh and
# bench/imap_compare.sh run intake with (imap_toml DATABASE_URL IMAP_PORT),
# and the timing of one `intake run --once` (measure_run_once).
imap_toml() {
  cat <<TOML
[database]
url = "$1"
[desk]
domain = "desk.test"
addresses = ["support@desk.test"]
[http]
listen = "127.0.0.1:0"
[logging]
level = "warn"
[[mailboxes]]
name = "support"
host = "127.0.0.1"
port = $2
tls = "none"
username = "support"
password = "supportpw"
address = "support@desk.test"
after_import = "keep"
fetch_batch = 200
TOML
}

# measure_run_once CONFIG LABEL STAGE: time `intake run --once` with CONFIG
# (binary $bin, scratch dir $work) and print one JSON line: messages stored
# (comments + quarantine), seconds, messages/s and peak RSS.
measure_run_once() {
  local t0 t1 rss n
  t0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$work/rss" "$bin" --config "$1" run --once
  t1=$(date +%s.%N)
  rss=$(cat "$work/rss")
  n=$("$bin" --config "$1" export | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(len(t["comments"]) for t in d["tickets"]) + len(d["quarantine"]))')
  python3 -c "s=$t1-$t0; print('{\"stage\":\"$3\",\"database\":\"$2\",\"messages\":$n,\"seconds\":%.3f,\"per_second\":%.0f,\"peak_rss_kb\":$rss}' % (s, $n/s))"
}

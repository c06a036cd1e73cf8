#!/usr/bin/env bash
# End-to-end JMAP benchmark (issue 12): the corpus delivered over LMTP into a
# private Cyrus IMAP 3.6 serving JMAP (tests/fixtures/cyrus-jmap-fixture.sh),
# drained by `intake run --once` into SQLite and into PostgreSQL
# (after_import = "keep"), against a plain fetch-only JMAP client (Python's
# urllib: Email/query, Email/get, one blob download after another) measured
# in the same run.
#
#   bash bench/jmap.sh [COUNT=10000]
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-10000}
IMAP=${IMAP:-24343}; HTTP=${HTTP:-24380}; LMTP=${LMTP:-24324}
work=$(mktemp -d /tmp/intake-jmapbench.XXXXXX)
chmod 0755 "$work"
fixture=tests/fixtures/cyrus-jmap-fixture.sh
. bench/imap_toml.sh
cleanup() { bash "$fixture" stop "$work/cyrus" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
export STATE_DIRECTORY="$work/state"
python3 bench/gen_corpus.py "$work/corpus" --count "$COUNT" --seed 42 >/dev/null
bin=${INTAKE_BIN:-$PWD/target/release/intake}
[ -n "${INTAKE_BIN:-}" ] || cargo build --release -q --bin intake
FIXTURE_USERS="support:supportpw" bash "$fixture" start "$work/cyrus" "$IMAP" "$HTTP" "$LMTP" >/dev/null
python3 - "$work/corpus" "$LMTP" <<'PY'
import os, smtplib, sys
src, port = sys.argv[1], int(sys.argv[2])
s = smtplib.LMTP("127.0.0.1", port)
for f in sorted(x for x in os.listdir(src) if x.endswith(".eml")):
    s.sendmail("bench@cust.test", ["support"], open(os.path.join(src, f), "rb").read())
s.quit()
PY
url="http://127.0.0.1:$HTTP/jmap/"

run_intake() {  # $1 = database url, $2 = label
  cat > "$work/intake.toml" <<TOML
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
protocol = "jmap"
url = "$url"
username = "support"
password = "supportpw"
address = "support@desk.test"
after_import = "keep"
fetch_batch = 200
TOML
  measure_run_once "$work/intake.toml" "$2" intake_run_once_jmap
}

echo "# $(date -u +%F) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $COUNT messages over JMAP"
python3 bench/jmap_baseline.py "$url" support supportpw
run_intake "sqlite://$work/intake.db" sqlite
db=intake_jmapbench_$$
psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $db" postgres
run_intake "postgres://postgres@127.0.0.1:5432/$db" postgres
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE $db" postgres

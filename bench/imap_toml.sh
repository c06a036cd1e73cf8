# The configuration bench/imap.sh and bench/imap_compare.sh run intake with:
# imap_toml DATABASE_URL IMAP_PORT
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

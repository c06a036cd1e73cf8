#!/usr/bin/env bash
# Install (from Debian's packages) and start what the tests talk to:
# PostgreSQL on 127.0.0.1:5432, Dovecot with IMAP and POP3 (private instances are started by the
# tests themselves), an SMTP capture server (python3-aiosmtpd), systemd's
# `systemd-analyze` for unit verification, Prometheus's `promtool` for the
# alert rules in contrib/prometheus, Chromium with chromedriver for the
# status page's browser test, openapi-spec-validator for docs/openapi.json,
# s3s-fs (from crates.io) for the S3 blob backend, and Cyrus IMAP (Debian's
# packages, unpacked, not installed) as the JMAP server.
set -euo pipefail

command -v cargo >/dev/null 2>&1 || { echo "setup: cargo not found: install Rust 1.95 (rustup; rust-toolchain.toml pins it)" >&2; exit 1; }

need=()
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v kill >/dev/null 2>&1 && command -v ps >/dev/null 2>&1 || need+=(procps)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
command -v dovecot >/dev/null 2>&1 || need+=(dovecot-imapd)
[ -x /usr/lib/dovecot/pop3 ] || need+=(dovecot-pop3d)
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || need+=(python3-aiosmtpd)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v psql >/dev/null 2>&1 || need+=(postgresql)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq || true
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Only promtool is wanted from the prometheus package: where systemd runs,
  # its install also enabled and started the server (port 9090).
  if [[ " ${need[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1 \
     && systemctl is-enabled --quiet prometheus 2>/dev/null; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi
# The OpenAPI test validates docs/openapi.json with openapi-spec-validator,
# under whichever python3 is first on PATH: from PyPI where that python has
# pip, else Debian's package.
if ! python3 -c 'import openapi_spec_validator' >/dev/null 2>&1; then
  echo "setup: installing openapi-spec-validator"
  python3 -m pip install --quiet 'openapi-spec-validator==0.9.0' 2>/dev/null \
    || { SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
         DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-openapi-spec-validator >/dev/null; }
  python3 -c 'import openapi_spec_validator'
fi
# Debian may start a system Dovecot on install; the tests' private instances
# use their own high ports, so it is left alone.
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "setup: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
fi
pg_isready -h 127.0.0.1 -p 5432
# The tests connect as postgres over TCP without a password: make sure a
# freshly installed cluster trusts loopback (pre-provisioned machines do).
if ! psql -h 127.0.0.1 -U postgres -w -c 'SELECT 1' postgres >/dev/null 2>&1; then
  hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -1)
  echo "setup: trusting loopback connections in $hba"
  sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main reload \
    || su postgres -c "psql -c 'SELECT pg_reload_conf()'"
  sleep 1
  psql -h 127.0.0.1 -U postgres -w -c 'SELECT 1' postgres >/dev/null
fi
# The S3 blob backend's tests talk to s3s-fs, an S3-compatible server that
# checks SigV4 signatures and serves path-style buckets from a directory
# (crates.io; 0.14.1 is the last release this toolchain builds).
if ! command -v s3s-fs >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs" ]; then
  echo "setup: installing s3s-fs 0.14.1 (cargo install, about 2 minutes)"
  cargo install s3s-fs@0.14.1 --locked --features binary --quiet
fi
# The JMAP source's tests talk to Cyrus IMAP 3.6 (Debian's cyrus-caldav
# serves JMAP). Its packages conflict with dovecot-imapd, so they are
# unpacked into a cache directory and run as private instances.
bash "$(dirname "$0")/../tests/fixtures/cyrus-jmap-fixture.sh" unpack

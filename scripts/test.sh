#!/usr/bin/env bash
# The whole test suite: installs and starts what the tests need, then runs
# every test on SQLite and PostgreSQL.
#
#   bash scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-test-deps.sh

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets --no-fail-fast "$@" -- --test-threads="${TEST_THREADS:-2}"

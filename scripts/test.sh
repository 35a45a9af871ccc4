#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine of this kind, installing what it needs first:
# Debian packages used as real peers (openssl, PostgreSQL if absent), the wasm32-wasip2 target,
# cargo-nextest, and the Python tools of tests/requirements.txt in a virtual environment.
# .ci/run calls exactly this script.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Builds and the Python environment are cached outside the clone so that CI reuses them.
cache="${MEGALIS_CACHE:-$HOME/.cache/megalis}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
mkdir -p "$cache"

step() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

step "Debian packages"
packages=()
command -v openssl >/dev/null || packages+=(openssl)
command -v curl >/dev/null || packages+=(curl)
command -v python3 >/dev/null || packages+=(python3 python3-venv)
# Headless Chromium and its WebDriver for the portal's browser tests (auth, issue 3).
command -v chromium >/dev/null || packages+=(chromium)
command -v chromedriver >/dev/null || packages+=(chromium-driver)
# The time-zone database: the publications test computes Paris wall-clock times with `date`.
[ -e /usr/share/zoneinfo/Europe/Paris ] || packages+=(tzdata)
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    packages+=(postgresql postgresql-contrib)
fi
if ((${#packages[@]})); then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${packages[@]}"
fi

step "PostgreSQL at 127.0.0.1:5432 (trust authentication, database test)"
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    version="$(ls /etc/postgresql | sort -V | tail -n 1)"
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    # A freshly installed server asks for passwords on TCP; the tests use trust on loopback.
    if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
        as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
    fi
    # Start it unless it is already running (it may be finishing a crash recovery).
    if ! pg_lsclusters -h 2>/dev/null | grep -q online; then
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
    fi
    for _ in $(seq 1 600); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
fi
if ! psql -h 127.0.0.1 -U postgres -d test -c 'SELECT 1' >/dev/null 2>&1; then
    psql -h 127.0.0.1 -U postgres -d postgres -c 'CREATE DATABASE test' >/dev/null
fi
export MEGALIS_TEST_PG="postgres://postgres@127.0.0.1:5432/test"
# Each test creates its own database (megalis_t_*): drop them before (left by an interrupted
# run) and after the run, so the shared server does not accumulate hundreds of databases.
drop_test_databases() {
    psql -h 127.0.0.1 -U postgres -d test -Atc \
        "SELECT datname FROM pg_database WHERE datname LIKE 'megalis\_t\_%' OR datname LIKE 'megalis\_bench\_%'" 2>/dev/null |
        while read -r db; do psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS \"$db\"" || true; done
}
drop_test_databases
trap drop_test_databases EXIT

step "Rust toolchain: wasm32-wasip2 target, cargo-nextest"
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked

step "Python tools (virtual environment)"
requirements="tests/requirements.txt"
venv="$cache/venv-$(sha256sum "$requirements" | cut -c1-16)"
# A virtual environment cannot be renamed (its scripts name their interpreter by absolute path):
# build it in place and mark it complete, so an interrupted install is redone from scratch.
if [ ! -f "$venv/.complete" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet -r "$requirements"
    touch "$venv/.complete"
fi
export MEGALIS_PYTHON="$venv/bin/python"

step "Formatting and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Build the binaries the end-to-end tests start"
cargo build --workspace --bins --locked

step "Tests"
cargo nextest run --workspace --locked --no-fail-fast

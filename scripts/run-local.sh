#!/usr/bin/env bash
# Runs the platform locally: embedded SQLite and local blob store in ./megalis-data, demo data,
# HTTPS on https://127.0.0.1:8443 with a self-signed certificate generated on first run.
# Extra arguments go to `megalis serve` (e.g. --listen 127.0.0.1:9443).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${MEGALIS_CACHE:-$HOME/.cache/megalis}/target}"

# Plugins are WebAssembly components built for this target.
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

cargo build --locked -p megalis-server --bin megalis
exec "$CARGO_TARGET_DIR/debug/megalis" --data-dir "${MEGALIS_DATA_DIR:-./megalis-data}" serve --demo "$@"

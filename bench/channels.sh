#!/usr/bin/env bash
# Plugin WebSocket channel relay latency (docs/benchmarks.md, "Plugin host", channels): the probe
# test plugin's relay channel (/apps/probe/signal) served by release `megalis serve` processes;
# tests/examples/channel_latency.rs sends one small message at a time from member A and times
# its arrival at member B, over plain ws:// (the servers' plain HTTP listener):
#  - SQLite, one server (in-process rooms);
#  - PostgreSQL, A and B on the same server (local delivery; the frame is still NOTIFYed);
#  - PostgreSQL, A on server 1 and B on server 2 (the frame crosses LISTEN/NOTIFY).
# Needs: a PostgreSQL server at MEGALIS_BENCH_PG (default postgres://postgres@127.0.0.1:5432/test;
# a fresh database is created beside it), the wasm32-wasip2 target.
# BENCH_MESSAGES (default 2000), BENCH_BYTES (default 100), BENCH_ROUNDS (default 3).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
admin="${MEGALIS_BENCH_PG:-postgres://postgres@127.0.0.1:5432/test}"
messages="${BENCH_MESSAGES:-2000}"
bytes="${BENCH_BYTES:-100}"
rounds="${BENCH_ROUNDS:-3}"

cargo build --release --locked --manifest-path plugins/Cargo.toml --target wasm32-wasip2 \
    --target-dir "$target/plugins-wasm" -p probe
probe="$target/plugins-wasm/wasm32-wasip2/release/probe.wasm"
cargo build --release --locked -p megalis-server --bin megalis -p megalis-e2e --example channel_latency
bin="$target/release/megalis"
client="$target/release/examples/channel_latency"

work="$(mktemp -d)"
db="megalis_bench_channels_$$"
# Servers start inside command substitutions (subshells): their pids go to a file.
cleanup() {
    [ -f "$work/pids" ] && kill $(cat "$work/pids") 2>/dev/null || true
    sleep 1
    psql -q "$admin" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
psql -q "$admin" -c "CREATE DATABASE $db" >/dev/null
pg_url="${admin%/*}/$db"
sha="$(sha256sum "$probe" | cut -c1-64)"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() { # name database-url → prints the plain HTTP port
    local data="$work/$1" plain
    mkdir -p "$data"
    "$bin" --data-dir "$data" plugin fetch "$probe" --sha256 "$sha" >/dev/null
    printf '[[plugins]]\nid = "probe"\nsha256 = "%s"\ngrants = ["context", "store", "logging"]\n' \
        "$sha" > "$data/plugins.toml"
    plain="$(port)"
    local db_args=()
    [ -n "$2" ] && db_args=(--database-url "$2")
    "$bin" --data-dir "$data" --log-level warn "${db_args[@]}" serve \
        --listen "127.0.0.1:$(port)" --plain-http-listen "127.0.0.1:$plain" \
        --mllp-listen "127.0.0.1:$(port)" >"$work/$1.log" 2>&1 &
    echo $! >> "$work/pids"
    for _ in $(seq 1 600); do
        curl -sf "http://127.0.0.1:$plain/apps/probe/hello" >/dev/null && break
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:$plain/apps/probe/hello" >/dev/null || { cat "$work/$1.log"; exit 1; }
    echo "$plain"
}

p_sqlite="$(start sqlite "")"
p_one="$(start pg1 "$pg_url")"
p_two="$(start pg2 "$pg_url")"
url() { echo "ws://127.0.0.1:$1/apps/probe/signal?room=ok-$2"; }

nproc; uname -srm; grep -m1 'model name' /proc/cpuinfo || true
for r in $(seq 1 "$rounds"); do
    echo "round $r"
    echo -n "  sqlite, same server:  "; "$client" "$(url "$p_sqlite" "s$r")" "$(url "$p_sqlite" "s$r")" "$messages" "$bytes"
    echo -n "  postgres, same server: "; "$client" "$(url "$p_one" "p$r")" "$(url "$p_one" "p$r")" "$messages" "$bytes"
    echo -n "  postgres, two servers: "; "$client" "$(url "$p_one" "x$r")" "$(url "$p_two" "x$r")" "$messages" "$bytes"
done

#!/usr/bin/env bash
# Plugin host benchmark (docs/benchmarks.md, "Plugin host (issue 6)"), in one run:
#  1. the same `hello` component served over plain HTTP/1.1 by (a) `megalis plugin run`,
#     (b) `wasmtime serve -S cli` (wasmtime-cli 48.0.8) and (c) a native axum handler
#     (platform/server/examples/hello_plain.rs): wrk req/s and p99 at 1 and 64 connections,
#     alternating the three servers over several rounds and keeping medians (shared machine);
#  2. instantiation cost per request and RSS with 100 live instances
#     (platform/plugin-host/examples/instances.rs).
# Needs: wrk, wasmtime 48.0.8 on PATH or WASMTIME=… (cargo install wasmtime-cli --version 48.0.8
# --locked), the wasm32-wasip2 target.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
wasmtime="${WASMTIME:-wasmtime}"
duration="${BENCH_DURATION:-8s}"
rounds="${BENCH_ROUNDS:-3}"

cargo build --release --manifest-path plugins/Cargo.toml --target wasm32-wasip2 \
    --target-dir "$target/plugins-wasm" -p hello -p probe
wasm="$target/plugins-wasm/wasm32-wasip2/release"
cargo build --release -p megalis-server --bin megalis --example hello_plain
cargo build --release -p megalis-plugin-host --example instances
"$wasmtime" --version

work="$(mktemp -d)"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
p_megalis="$(port)"; p_wasmtime="$(port)"; p_native="$(port)"
"$target/release/megalis" --data-dir "$work/data" --log-level warn \
    plugin run "$wasm/hello.wasm" --listen "127.0.0.1:$p_megalis" >/dev/null &
pids+=($!)
"$wasmtime" serve -S cli --addr "127.0.0.1:$p_wasmtime" "$wasm/hello.wasm" >/dev/null 2>&1 &
pids+=($!)
"$target/release/examples/hello_plain" "127.0.0.1:$p_native" >/dev/null &
pids+=($!)
for p in "$p_megalis" "$p_wasmtime" "$p_native"; do
    for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$p/" >/dev/null && break; sleep 0.05; done
done

run_wrk() { # port connections → "rps p99_ms"
    local out rps p99
    out="$(wrk -t"$(( $2 > 1 ? 2 : 1 ))" -c"$2" -d"$duration" --latency "http://127.0.0.1:$1/")"
    rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}' <<<"$out")"
    echo "$rps $p99"
}
for c in 1 64; do
    : > "$work/megalis-$c"; : > "$work/wasmtime-$c"; : > "$work/native-$c"
    for _ in $(seq 1 "$rounds"); do
        run_wrk "$p_megalis" "$c" >> "$work/megalis-$c"
        run_wrk "$p_wasmtime" "$c" >> "$work/wasmtime-$c"
        run_wrk "$p_native" "$c" >> "$work/native-$c"
    done
    python3 - "$work" "$c" <<'PY'
import statistics, sys
work, c = sys.argv[1], sys.argv[2]
med = {}
for name in ("megalis", "wasmtime", "native"):
    rows = [list(map(float, l.split())) for l in open(f"{work}/{name}-{c}") if l.strip()]
    med[name] = (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows))
    print(f"c={c:>2}  {name:8} {med[name][0]:9.0f} req/s  p99 {med[name][1]:7.2f} ms  (runs: {[int(r[0]) for r in rows]})")
print(f"c={c:>2}  megalis/wasmtime {med['megalis'][0]/med['wasmtime'][0]:.2f}   megalis/native {med['megalis'][0]/med['native'][0]:.2f}")
PY
done
"$target/release/examples/instances" "$wasm/hello.wasm" "$wasm/probe.wasm" 100

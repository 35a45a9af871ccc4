#!/usr/bin/env bash
# Benchmarks of the platform foundation (issue 2), figures for docs/benchmarks.md:
#  1. cold start to ready (empty SQLite, empty PostgreSQL database);
#  2. GET /healthz over HTTPS with wrk: megalis against a minimal axum+rustls server
#     (platform/server/examples/hello_tls.rs) built in the same run;
#  3. audit append throughput (cargo bench -p megalis-audit --bench append).
# Needs: wrk (Debian), PostgreSQL at 127.0.0.1:5432 (trust), python3.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${MEGALIS_CACHE:-$HOME/.cache/megalis}/target}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

duration="${BENCH_DURATION:-5s}"
parts=" ${BENCH_PARTS:-coldstart healthz audit} "   # run a subset, e.g. BENCH_PARTS=healthz
want() { [[ "$parts" == *" $1 "* ]]; }
cargo build --release --locked -p megalis-server --bin megalis --example hello_tls
bin="$CARGO_TARGET_DIR/release/megalis"
hello="$CARGO_TARGET_DIR/release/examples/hello_tls"

if want coldstart; then
    echo "== Cold start"
    python3 bench/coldstart.py "$bin" sqlite 10
    python3 bench/coldstart.py "$bin" postgres 10
fi

if want healthz; then
    echo "== GET /healthz over HTTPS (wrk, 1 thread, $duration per run, alternating rounds)"
    work="$(mktemp -d)"
    trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
    free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
    port_megalis="$(free_port)"
    port_hello="$(free_port)"
    "$bin" --data-dir "$work/data" --log-level warn serve --listen "127.0.0.1:$port_megalis" >/dev/null &
    for _ in $(seq 1 200); do curl -skf "https://127.0.0.1:$port_megalis/readyz" >/dev/null && break; sleep 0.05; done
    "$hello" "127.0.0.1:$port_hello" "$work/data/tls/self-signed-cert.pem" "$work/data/tls/self-signed-key.pem" >/dev/null &
    for _ in $(seq 1 200); do curl -skf "https://127.0.0.1:$port_hello/healthz" >/dev/null && break; sleep 0.05; done

    run_wrk() { # name port connections → "rps p99_ms"
        local out
        out="$(wrk -t1 -c"$3" -d"$duration" --latency "https://127.0.0.1:$2/healthz")"
        local rps p99
        rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
        # wrk prints latencies with a unit (us, ms, s): normalise to milliseconds.
        p99="$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}' <<<"$out")"
        echo "$rps $p99"
    }
    # The machine is shared: alternate the two servers over several rounds and keep the medians, so
    # that a burst of load elsewhere does not land on one side only.
    rounds="${BENCH_ROUNDS:-5}"
    for c in 1 64; do
        : > "$work/hello-$c"; : > "$work/megalis-$c"
        for _ in $(seq 1 "$rounds"); do
            run_wrk hello "$port_hello" "$c" >> "$work/hello-$c"
            run_wrk megalis "$port_megalis" "$c" >> "$work/megalis-$c"
        done
        python3 bench/wrk_summary.py "$work/hello-$c" "$work/megalis-$c" "$c"
    done

fi

if want audit; then
    echo "== Audit append"
    cargo bench --locked -p megalis-audit --bench append
fi

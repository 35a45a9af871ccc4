#!/usr/bin/env bash
# Benchmarks of the regional patient index (issue 4), figures for docs/benchmarks.md:
#  1. MLLP ingest through `megalis serve`: ADT^A28 messages of a synthetic population (matching
#     included), each acknowledged AA only after its durable commit, over 1 and 8 concurrent
#     connections, on SQLite and on PostgreSQL; the server's peak resident memory;
#  2. `$match` (PatientIndex::find_matches, in process) p50/p99 at BENCH_PERSONS persons
#     (≈ 1.35 source records per person) loaded in bulk, on the backends in BENCH_MATCH_BACKENDS.
# Needs PostgreSQL at 127.0.0.1:5432 (trust). Matching quality is bench/matching.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${MEGALIS_CACHE:-$HOME/.cache/megalis}/target}"
messages="${BENCH_MESSAGES:-20000}"
persons="${BENCH_PERSONS:-750000}"
parts=" ${BENCH_PARTS:-mllp match} "
want() { [[ "$parts" == *" $1 "* ]]; }
pg="${MEGALIS_BENCH_PG:-postgres://postgres@127.0.0.1:5432}"

cargo build --release --locked -p megalis-server --bin megalis -p megalis-identity-index --example identity_bench
bin="$CARGO_TARGET_DIR/release/megalis"
bench="$CARGO_TARGET_DIR/release/examples/identity_bench"
work="$(mktemp -d)"
dbs=()
cleanup() {
    kill $(jobs -p) 2>/dev/null || true
    for d in "${dbs[@]}"; do psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $d" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
new_pg() { local d="megalis_bench_$$_$1"; psql -q "$pg/postgres" -c "CREATE DATABASE $d"; dbs+=("$d"); echo "$pg/$d"; }
authorities='["1.2.250.1.71.4.2.2.290000017", "1.2.250.1.71.4.2.2.350005179", "1.2.250.1.71.4.2.2.560023210", "1.2.250.1.71.4.2.2.560008799", "1.2.250.1.71.4.2.2.220000020", "1.2.250.1.71.4.2.2.290000785"]'

if want mllp; then
    for backend in sqlite postgres; do
        data="$work/$backend"
        mkdir -p "$data"
        echo "\"BENCH|BENCH\" = $authorities" > "$data/mllp-senders.toml"
        db_args=()
        [ "$backend" = postgres ] && db_args=(--database-url "$(new_pg mllp)")
        port="$(free_port)"; mllp="$(free_port)"
        "$bin" --data-dir "$data" --log-level warn "${db_args[@]}" serve \
            --listen "127.0.0.1:$port" --mllp-listen "127.0.0.1:$mllp" >"$work/$backend.log" 2>&1 &
        server=$!
        for _ in $(seq 1 400); do curl -skf "https://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
        echo "== MLLP ingest, $backend, $messages messages per run"
        "$bench" mllp "127.0.0.1:$mllp" 1 "$messages" 11
        "$bench" mllp "127.0.0.1:$mllp" 8 "$messages" 12
        echo "server peak RSS: $(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' /proc/$server/status)"
        kill "$server"; wait "$server" 2>/dev/null || true
    done
fi

if want match; then
    for backend in ${BENCH_MATCH_BACKENDS:-postgres sqlite}; do
        if [ "$backend" = postgres ]; then url="$(new_pg match)"; else url="sqlite://$work/match.db"; fi
        echo "== \$match at $persons persons, $backend"
        /usr/bin/time -f "load peak RSS %M KiB" "$bench" load "$url" "$persons" 1
        "$bench" match "$url" "$persons" 1 2000
        if [ "$backend" = postgres ]; then
            echo "database size: $(psql -tAq "$url" -c "SELECT pg_size_pretty(pg_database_size(current_database()))")"
            psql -tAq "$url" -c "SELECT 'golden records: ' || COUNT(*) FROM identity_patient WHERE merged_into IS NULL"
        else
            echo "database size: $(du -sh "$work"/match.db* | awk '{print $1}' | paste -sd+)"
        fi
    done
fi

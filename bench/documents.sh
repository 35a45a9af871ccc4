#!/usr/bin/env bash
# Benchmarks of shared documents (issue 5), figures for docs/benchmarks.md:
#  1. a 200 MB EEG (EDF) uploaded (`POST /fhir/Binary`, streamed to the local blob store with
#     SHA-256/SHA-1 and fsync) and downloaded (`GET /fhir/Binary/{id}`, SHA-256 checked while
#     streaming) through `megalis serve` over plain HTTP with curl, against a plain copy of the
#     same file on the same disk (`dd … conv=fsync`); the server's peak resident memory;
#  2. the access decision: `decide` alone and facts + decide per request (decision_bench);
#  3. ITI-67 find at 1,000,000 DocumentReferences (documents_bench).
# Needs PostgreSQL at 127.0.0.1:5432 (trust) for parts 2 and 3.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${MEGALIS_CACHE:-$HOME/.cache/megalis}/target}"
export MEGALIS_TEST_PG="${MEGALIS_TEST_PG:-postgres://postgres@127.0.0.1:5432/test}"
parts=" ${BENCH_PARTS:-transfer decision find} "
want() { [[ "$parts" == *" $1 "* ]]; }
size_mb="${BENCH_EEG_MB:-200}"

cargo build --release --locked -p megalis-server --bin megalis \
    -p megalis-sharing --example decision_bench -p megalis-documents --example documents_bench
bin="$CARGO_TARGET_DIR/release/megalis"
work="$(mktemp -d "${BENCH_DIR:-/tmp}/megalis-documents-bench.XXXXXX")"
cleanup() { kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[1]):.2f}')" "$1"; }

if want transfer; then
    # An EDF file of about $size_mb MB: 32 channels at 512 Hz, one-second records.
    python3 - "$work/eeg.edf" "$size_mb" <<'PY'
import os, sys
path, mb = sys.argv[1], int(sys.argv[2])
ns, spr = 32, 512
records = mb * 1_000_000 // (ns * spr * 2)
f = lambda s, n: s.ljust(n)[:n].encode("ascii")
h = f("0", 8) + f("X X X X", 80) + f("Startdate 20-NOV-2026 X X X", 80) + f("20.11.26", 8) + f("09.30.00", 8)
h += f(str(256 * (ns + 1)), 8) + f("", 44) + f(str(records), 8) + f("1", 8) + f(str(ns), 4)
for field, n in [("EEG", 16), ("AgAgCl", 80), ("uV", 8), ("-3200", 8), ("3200", 8), ("-32768", 8), ("32767", 8), ("", 80), (str(spr), 8), ("", 32)]:
    h += b"".join(f(field + (str(i) if field == "EEG" else ""), n) for i in range(ns))
block = os.urandom(ns * spr * 2)
with open(path, "wb") as out:
    out.write(h)
    for _ in range(records):
        out.write(block)
PY
    bytes=$(stat -c %s "$work/eeg.edf")
    data="$work/data"; mkdir -p "$data"
    printf 'bench-secret-0123456789abcdef0123456789\n' > "$work/secret"
    "$bin" --data-dir "$data" admin client add --id bench --secret-file "$work/secret" \
        --grant client_credentials --scope "system/DocumentReference.crs" >/dev/null
    port="$(free_port)"; plain="$(free_port)"
    "$bin" --data-dir "$data" --log-level warn serve --listen "127.0.0.1:$port" \
        --plain-http-listen "127.0.0.1:$plain" --documents-max-size 1GiB >"$work/server.log" 2>&1 &
    server=$!
    for _ in $(seq 1 400); do curl -sf "http://127.0.0.1:$plain/readyz" >/dev/null && break; sleep 0.05; done
    token=$(curl -sf -u bench:bench-secret-0123456789abcdef0123456789 -d grant_type=client_credentials \
        "http://127.0.0.1:$plain/oauth2/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    echo "== 200 MB EEG: $bytes bytes"
    sync
    start=$(date +%s.%N); dd if="$work/eeg.edf" of="$work/copy.edf" bs=1M conv=fsync status=none; end=$(date +%s.%N)
    copy=$(python3 -c "print($end - $start)")
    rm -f "$work/copy.edf"; sync
    up=$(curl -sf -o "$work/binary.json" -w '%{time_total}' -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/edf' -H 'Expect:' -X POST -T "$work/eeg.edf" "http://127.0.0.1:$plain/fhir/Binary")
    id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/binary.json")
    down=$(curl -sf -o "$work/down.edf" -w '%{time_total}' -H "Authorization: Bearer $token" \
        "http://127.0.0.1:$plain/fhir/Binary/$id")
    cmp "$work/eeg.edf" "$work/down.edf"
    echo "plain copy (dd conv=fsync): $(secs "$copy") s, $(python3 -c "print(f'{$bytes/$copy/1e6:.0f}')") MB/s"
    echo "upload:   $(secs "$up") s, $(python3 -c "print(f'{$bytes/$up/1e6:.0f}')") MB/s, $(python3 -c "print(f'{$copy/$up*100:.0f}')")% of the copy"
    echo "download: $(secs "$down") s, $(python3 -c "print(f'{$bytes/$down/1e6:.0f}')") MB/s, $(python3 -c "print(f'{$copy/$down*100:.0f}')")% of the copy"
    echo "server peak RSS: $(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' /proc/$server/status)"
    kill "$server"; wait "$server" 2>/dev/null || true
fi

if want decision; then
    for backend in sqlite postgres; do
        "$CARGO_TARGET_DIR/release/examples/decision_bench" "$backend" "${BENCH_PATIENTS:-10000}"
    done
fi

if want find; then
    for backend in sqlite postgres; do
        "$CARGO_TARGET_DIR/release/examples/documents_bench" "$backend" 1000000 100000 2000
    done
fi

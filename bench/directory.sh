#!/usr/bin/env bash
# Directory import benchmark (issue 3), figures for docs/benchmarks.md: generate the synthetic
# extraction (2 million rows by default), import it with the release binary into SQLite and into
# PostgreSQL, then import the same file again (everything unchanged). Prints the importer's own
# report (rows/s) and the wall time and peak RSS from /usr/bin/time.
# Needs: PostgreSQL at 127.0.0.1:5432 (trust; MEGALIS_BENCH_PG to change), psql, /usr/bin/time.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${MEGALIS_CACHE:-$HOME/.cache/megalis}/target}"
rows="${MEGALIS_BENCH_ROWS:-2000000}"
admin="${MEGALIS_BENCH_PG:-postgres://postgres@127.0.0.1:5432/test}"
backends=" ${BENCH_BACKENDS:-sqlite postgres} "

cargo build --release --locked -p megalis-server --bin megalis
bin="$CARGO_TARGET_DIR/release/megalis"
work="$(mktemp -d)"
pgdb="megalis_bench_directory_$$"
cleanup() {
    rm -rf "$work"
    psql "$admin" -qc "DROP DATABASE IF EXISTS $pgdb" >/dev/null 2>&1 || true
}
trap cleanup EXIT

file="$work/PS_LibreAcces_Personne_activite_bench.txt"
echo "== Generate $rows rows"
/usr/bin/time -f "generate: %e s wall, peak RSS %M KiB" \
    "$bin" directory generate --rows "$rows" --seed 1 --output "$file"
ls -l "$file" | awk '{printf "file: %.0f MB\n", $5 / 1e6}'

run() { # label, then megalis arguments before `directory`
    local label="$1"
    shift
    for pass in first again; do
        echo "== $label: $pass import"
        /usr/bin/time -f "$label $pass: %e s wall, peak RSS %M KiB" \
            "$bin" --log-level warn "$@" directory import "$file"
    done
}

if [[ "$backends" == *" sqlite "* ]]; then
    run sqlite --data-dir "$work/sqlite"
fi
if [[ "$backends" == *" postgres "* ]]; then
    psql "$admin" -qc "CREATE DATABASE $pgdb" >/dev/null
    run postgres --data-dir "$work/pg" --database-url "${admin%/*}/$pgdb"
fi

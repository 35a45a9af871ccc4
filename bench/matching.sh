#!/usr/bin/env bash
# Matching quality, ours and Splink's side by side, on the same synthetic population.
#
#   bench/matching.sh [PERSONS]      (default 743500 persons ≈ 1,000,000 source records)
#
# 1. builds and runs `matching_quality` (trains on seed 1, scores on seed 2, exports seed 2 as
#    CSV with the truth), under /usr/bin/time -v for peak memory;
# 2. creates a venv at ~/.cache/megalis/venv-splink with pinned Splink and DuckDB
#    (bench/requirements-splink.txt) and runs bench/splink_reference.py on the CSV;
# 3. prints both, side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
PERSONS="${1:-743500}"
OUT="${MATCHING_OUT:-$HOME/.cache/megalis/matching}"
VENV="$HOME/.cache/megalis/venv-splink"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/megalis/target-matching}"
mkdir -p "$OUT"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q -r bench/requirements-splink.txt

cargo build --release -p megalis-identity --example matching_quality
/usr/bin/time -v "$CARGO_TARGET_DIR/release/examples/matching_quality" "$PERSONS" 1 2 \
    --export "$OUT/test.csv" >"$OUT/ours.txt" 2>"$OUT/ours.err"
/usr/bin/time -v "$VENV/bin/python" bench/splink_reference.py "$OUT/test.csv" \
    >"$OUT/splink.txt" 2>"$OUT/splink.err"

rss() { awk -F': ' '/Maximum resident/ {printf "%.2f GB", $2 / 1048576}' "$1"; }
wall() { awk -F': ' '/Elapsed \(wall/ {print $2}' "$1"; }
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k {print $2}'; }

ours=$(grep '^SUMMARY' "$OUT/ours.txt")
echo "Population: $(field "$ours" records) source records, $(field "$ours" persons) persons, $(field "$ours" true_pairs) true duplicate pairs"
echo
printf '%-24s %-10s %-9s %-8s %-7s %-13s %-6s %-14s %-10s %s\n' \
    matcher threshold precision recall F1 false_merges twins review\(true\) wall peak_RSS
printf '%-24s %-10s %-9s %-8s %-7s %-13s %-6s %-14s %-10s %s\n' \
    "megalis (trained seed 1)" "rule" "$(field "$ours" precision)" "$(field "$ours" recall)" \
    "$(field "$ours" f1)" "$(field "$ours" false_merges)" "$(field "$ours" false_twin_merges)" \
    "$(field "$ours" review_pairs) ($(field "$ours" review_true))" "$(wall "$OUT/ours.err")" "$(rss "$OUT/ours.err")"
while read -r line; do
    printf '%-24s %-10s %-9.4f %-8.4f %-7.4f %-13s %-6s %-14s %-10s %s\n' \
        "splink (EM, unlabelled)" "p>=$(field "$line" threshold)" "$(field "$line" precision)" \
        "$(field "$line" recall)" "$(field "$line" f1)" "$(field "$line" false_merges)" \
        "$(field "$line" false_twin_merges)" \
        "$(field "$line" review_pairs) ($(field "$line" review_true))" "$(wall "$OUT/splink.err")" "$(rss "$OUT/splink.err")"
done < <(grep '^SPLINK' "$OUT/splink.txt")
echo
grep -E '^(trained|exported)' "$OUT/ours.err" || true
grep -E '^test seed' "$OUT/ours.txt" || true
head -1 "$OUT/splink.txt"

#!/usr/bin/env python3
"""Summarise alternating wrk rounds: medians of req/s and p99 for each server, and their ratio.

usage: wrk_summary.py HELLO_FILE MEGALIS_FILE CONNECTIONS (files: one "rps p99_ms" line per run)
"""
import statistics
import sys


def load(path):
    rows = [list(map(float, line.split())) for line in open(path) if line.strip()]
    return (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows),
            [int(r[0]) for r in rows])


hello, megalis, c = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3]
print(f"c={c:>2}  hello   {hello[0]:9.0f} req/s  p99 {hello[1]:6.2f} ms   (runs: {hello[2]})")
print(f"c={c:>2}  megalis {megalis[0]:9.0f} req/s  p99 {megalis[1]:6.2f} ms   (runs: {megalis[2]})")
print(f"c={c:>2}  ratio megalis/hello (medians): {megalis[0] / hello[0]:.2f}")

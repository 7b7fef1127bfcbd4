#!/usr/bin/env python3
"""Summarises the last criterion run: per benchmark, the median time per
iteration and the min and max over criterion's samples (the machine's
noise), from target/criterion/*/new/sample.json.

Usage: python3 benches/report.py [TARGET_DIR]
"""
import json, os, statistics, sys

root = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "target", "criterion")

def fmt(ns):
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.1f} ns"

rows = []
for dirpath, dirs, files in os.walk(root):
    if os.path.basename(dirpath) == "new" and "sample.json" in files:
        with open(os.path.join(dirpath, "sample.json")) as f:
            s = json.load(f)
        per_iter = [t / n for t, n in zip(s["times"], s["iters"])]
        bench = os.path.relpath(os.path.dirname(dirpath), root)
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            b = json.load(f)
        elems = (b.get("throughput") or {}).get("Elements", 1)
        rows.append((bench, statistics.median(per_iter), min(per_iter), max(per_iter), elems))

print("| benchmark | median / iteration | min | max | elements / iteration | median / element |")
print("|---|---:|---:|---:|---:|---:|")
for bench, med, lo, hi, el in sorted(rows):
    print(f"| {bench} | {fmt(med)} | {fmt(lo)} | {fmt(hi)} | {el} | {fmt(med / el)} |")

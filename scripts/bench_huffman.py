#!/usr/bin/env python3
"""Benchmark: Pith's Huffman decoder against zstd on the same raw symbol stream.

Issue: Huffman decode of index streams at >= 500 MB/s of decoded symbols on one core, and at
least half the speed of `zstd -d` on a `zstd -19` file of the same raw symbol stream.

The stream: 50,000,000 5-bit codebook indices (one byte each) of Laplace-distributed weights
clustered on a uniform grid (seed 0). Pith: `pith bench huffman` (4-stream canonical Huffman, in
process, the fastest of 5 decodes). zstd: `zstd -b19 -i5` (in-process benchmark mode: level 19,
single thread; its decompression speed is the fastest of its runs). Both measure decoding alone, the
same way; the two alternate for `--rounds` rounds and the round with the median ratio is reported.
With --write, replaces the huffman section of docs/benchmarks.md.
"""
import argparse
import json
import os
import platform
import re
import subprocess
import time

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
DATA = os.path.join(ROOT, ".cache", "bench", "indices-50m.u8")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pith", default=os.path.join(ROOT, ".build", "release", "pith"))
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    indices = np.clip(np.round(rng.laplace(0, 1, 50_000_000) * 3) + 16, 0, 31).astype(np.uint8)
    os.makedirs(os.path.dirname(DATA), exist_ok=True)
    indices.tofile(DATA)

    rounds = []
    for _ in range(args.rounds):
        pith = json.loads(subprocess.run([args.pith, "bench", "huffman", DATA, "--runs", "5"], check=True,
                                         capture_output=True, text=True).stdout)
        out = subprocess.run(["zstd", "-b19", "-i5", "-T1", DATA], check=True, capture_output=True, text=True)
        text = (out.stdout + out.stderr).replace("\r", "\n")
        line = [l for l in text.splitlines() if "->" in l and "MB/s" in l][-1]
        zstd_size = int(re.search(r"->\s*(\d+)", line).group(1))
        zstd_decode = [float(x) for x in re.findall(r"([\d.]+) MB/s", line)][-1]
        rounds.append((pith["best_decode_megabytes_per_second"] / zstd_decode, pith, zstd_decode))
    rounds.sort(key=lambda r: r[0])
    ratio, pith, zstd_decode = rounds[len(rounds) // 2]
    version = subprocess.run(["zstd", "--version"], capture_output=True, text=True).stdout.strip().strip("* ")
    rows = [
        f"| Pith canonical Huffman, 4 streams, 11-bit table (two symbols per lookup for short codes) | {pith['encoded_bytes']:,} | {pith['best_decode_megabytes_per_second']:.0f} |",
        f"| {version.split(',')[0]}, `-19` | {zstd_size:,} | {zstd_decode:.0f} |",
    ]
    table = "\n".join(["| decoder | compressed bytes | decode MB/s (decoded symbols, one core) |", "|---|---:|---:|", *rows])
    summary = (f"Pith decodes at {ratio:.2f}× zstd's speed (the median of {args.rounds} alternating rounds; "
               f"all: {', '.join(f'{r[0]:.2f}' for r in rounds)}).")
    print(table)
    print(summary)
    if args.write:
        from benchdoc import replace_section
        replace_section("huffman", (f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores, by "
                   f"`scripts/bench_huffman.py --write`.\n\n{table}\n\n{summary}"))


if __name__ == "__main__":
    main()

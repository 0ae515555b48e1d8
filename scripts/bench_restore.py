#!/usr/bin/env python3
"""Benchmark: `pith restore` of a lossless container against reading and writing the model's bytes.

Issue 4: restore of a 50 MB model costs no more than twice reading and writing its bytes. The model
is the 80 MB MLP of bench_inspect.py (run that first); the container is its lossless `.pith`.
Times whole commands, median of 5 after a warm-up (files in the page cache): `cat MODEL > OUT`, which
reads the bytes into user memory and writes them out (128 KiB at a time), as any program that
produces a file's bytes must; `cp MODEL OUT`, which on Linux asks the kernel to copy the file with
copy_file_range(2) and so never moves the bytes through user memory (shown for reference); and
`pith restore MODEL.pith -o OUT.onnx`. The acceptance ratio is restore over `cat`.
With --write, updates docs/benchmarks.md.
"""
import argparse
import os
import platform
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
MODEL = os.path.join(ROOT, ".cache", "bench", "mlp-80mb.onnx")


def timed(command, runs=5):
    subprocess.run(command, check=True, capture_output=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pith", default=os.path.join(ROOT, ".build", "release", "pith"))
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if not os.path.exists(MODEL):
        subprocess.run(["python3", os.path.join(ROOT, "scripts", "bench_inspect.py"), "--pith", args.pith, "--runs", "1"], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        container = os.path.join(tmp, "m.pith")
        subprocess.run([args.pith, "compress", MODEL, "-o", container], check=True, capture_output=True)
        copy = timed(["cp", MODEL, os.path.join(tmp, "copy.onnx")])
        cat = timed(["sh", "-c", f'cat "{MODEL}" > "{os.path.join(tmp, "cat.onnx")}"'])
        restore = timed([args.pith, "restore", container, "-o", os.path.join(tmp, "back.onnx"), "--force"])
        identical = open(MODEL, "rb").read() == open(os.path.join(tmp, "back.onnx"), "rb").read()
    table = "\n".join([
        "| command | seconds (median of 5) |", "|---|---:|",
        f"| `cat` of the 80 MB ONNX file to a new file (read + write its bytes) | {cat:.3f} |",
        f"| `cp` of the same file (an in-kernel copy_file_range, no user memory) | {copy:.3f} |",
        f"| `pith restore` of its lossless container to ONNX | {restore:.3f} |"])
    summary = f"Restore takes {restore / cat:.1f}× reading and writing the bytes (`cat`), {restore / copy:.1f}× the in-kernel `cp`; the restored file is {'byte-identical to' if identical else 'DIFFERENT from'} the source."
    print(table)
    print(summary)
    if args.write:
        from benchdoc import replace_section
        replace_section("restore", f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores, by `scripts/bench_restore.py --write`.\n\n{table}\n\n{summary}")


if __name__ == "__main__":
    main()

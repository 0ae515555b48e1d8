#!/usr/bin/env python3
"""Benchmark: `pith restore` of a lossless container against reading and writing the model's bytes.

Issue 4: restore of a 50 MB model costs no more than twice reading and writing its bytes. Two models,
each restored from its lossless `.pith`:
- the 80 MB MLP of bench_inspect.py (normal weights with 8% exact zeros, so that all four byte planes
  of every float are Huffman-coded: the most decoding a lossless float32 container asks for);
- ddddocr's 54 MB OCR model (`common.onnx` from the ddddocr 1.6.1 wheel on PyPI, fetched into
  .cache/wheels): trained weights, whose exponent plane alone is Huffman-coded.

Whole commands are timed, interleaved (one run of each command per round, so that the machine's
load falls on all of them alike), median of the rounds after a warm-up round:
- `cat MODEL > OUT`: reads the bytes into user memory and writes them out (128 KiB at a time), as any
  program that produces a file's bytes must;
- `cp MODEL OUT`: on Linux an in-kernel copy_file_range(2), the bytes never in user memory (shown for
  reference);
- `pith restore MODEL.pith -o OUT.onnx`.
Two cases, each command in both:
- a new output file (the previous one removed, untimed, before each run): the usual restore;
- replacing an existing output (`--force` for restore, which writes a temporary file and renames it
  over the old one; `cat` and `cp` truncate it). Freeing the old file's blocks then costs every
  command the same tens of milliseconds on this ext4 (mounted with `discard`), which flatters ratios.
The acceptance ratio is restore over `cat` for a new file. With --write, updates docs/benchmarks.md.
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
WHEELS = os.path.join(ROOT, ".cache", "wheels")


def ddddocr_model():
    """The 54 MB `common.onnx` of the ddddocr wheel, or None when pip cannot fetch it."""
    target = os.path.join(WHEELS, "ddddocr", "ddddocr", "common.onnx")
    if not os.path.exists(target):
        os.makedirs(WHEELS, exist_ok=True)
        subprocess.run(["python3", "-m", "pip", "download", "--no-deps", "-q", "-d", WHEELS, "ddddocr==1.6.1"], capture_output=True)
        wheels = [w for w in os.listdir(WHEELS) if w.startswith("ddddocr-1.6.1") and w.endswith(".whl")]
        if not wheels:
            return None
        import zipfile
        with zipfile.ZipFile(os.path.join(WHEELS, wheels[0])) as wheel:
            wheel.extract("ddddocr/common.onnx", os.path.join(WHEELS, "ddddocr"))
    return target


def measure(commands, fresh, rounds):
    """Median seconds of each (name, argv, output) over interleaved rounds; round 0 is a warm-up."""
    times = {name: [] for name, _, _ in commands}
    for round_ in range(rounds + 1):
        for name, argv, output in commands:
            if fresh and os.path.exists(output):
                os.unlink(output)
            start = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            elapsed = time.perf_counter() - start
            if round_ > 0:
                times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pith", default=os.path.join(ROOT, ".build", "release", "pith"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if not os.path.exists(MODEL):
        subprocess.run(["python3", os.path.join(ROOT, "scripts", "bench_inspect.py"), "--pith", args.pith, "--runs", "1"], check=True)
    sections = []
    for label, model in [("80 MB MLP (`mlp-80mb.onnx`)", MODEL), ("ddddocr `common.onnx`, 54 MB", ddddocr_model())]:
        if model is None:
            print(f"{label}: not measured (pip could not fetch ddddocr)")
            continue
        table, summary = measure_model(args, label, model)
        print(table)
        print(summary)
        sections.append(f"{table}\n\n{summary}")
    if args.write:
        from benchdoc import replace_section
        replace_section("restore", f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores, by `scripts/bench_restore.py --write`.\n\n" + "\n\n".join(sections))


def measure_model(args, label, model):
    with tempfile.TemporaryDirectory() as tmp:
        container = os.path.join(tmp, "m.pith")
        subprocess.run([args.pith, "compress", model, "-o", container], check=True, capture_output=True)
        out = {name: os.path.join(tmp, f"{name}.onnx") for name in ("cat", "cp", "restore")}
        commands = [
            ("cat", ["sh", "-c", f'cat "{model}" > "{out["cat"]}"'], out["cat"]),
            ("cp", ["cp", model, out["cp"]], out["cp"]),
            ("restore", [args.pith, "restore", container, "-o", out["restore"], "--force"], out["restore"]),
        ]
        fresh = measure(commands, fresh=True, rounds=args.rounds)
        replace = measure(commands, fresh=False, rounds=args.rounds)
        identical = open(model, "rb").read() == open(out["restore"], "rb").read()
    rows = [
        ("`cat` of the ONNX file (read + write its bytes)", "cat"),
        ("`cp` of the same file (in-kernel copy_file_range, no user memory)", "cp"),
        ("`pith restore` of its lossless container to ONNX", "restore"),
    ]
    table = "\n".join(
        [f"| {label} | new output, s | replacing an output, s |", "|---|---:|---:|"]
        + [f"| {name} | {fresh[key]:.3f} | {replace[key]:.3f} |" for name, key in rows]
        + [f"| **restore ÷ `cat`** | **{fresh['restore'] / fresh['cat']:.1f}×** | {replace['restore'] / replace['cat']:.1f}× |"])
    summary = (f"Medians of {args.rounds} interleaved rounds. Restore takes {fresh['restore'] / fresh['cat']:.1f}× reading and writing "
               f"the bytes (`cat`) into a new file and {replace['restore'] / replace['cat']:.1f}× when both replace an existing file; "
               f"the restored file is {'byte-identical to' if identical else 'DIFFERENT from'} the source.")
    return table, summary

if __name__ == "__main__":
    main()

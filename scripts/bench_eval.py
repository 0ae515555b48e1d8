#!/usr/bin/env python3
"""Benchmark: Pith's reference evaluator against onnxruntime, side by side in one run.

Models (issue 5 and issue 12, item 3):
  - LeNet-300-100 on the 10,000 MNIST test images (shared/data/mnist), `pith eval` in its default
    batches of 500;
  - rapidocr's PP-OCRv4 det on a batch of 8 × 3 × 320 × 320 and rec on 8 × 3 × 48 × 320 (from the
    rapidocr-onnxruntime wheel, fetched with pip like Tests/interop/test_real_models.py does),
    inputs uniform in [-1, 1) from a fixed seed.

For each model, `--runs` rounds (default 5), interleaved — one round runs each measurement once,
in turn, so that load from other processes falls on both sides alike — and the median of each:
  - pith, whole command: `pith eval MODEL --data FILE` as a process (start, load, build step, read,
    run, report), wall time; the outputs are saved (for the comparison) in one more, untimed, run;
  - pith, compute: the run alone, as `pith eval` reports it (field `seconds`);
  - onnxruntime `session.run`: one call on the same input in this process, session made once with
    intra_op_num_threads=2 (the machine's cores) and warmed up with one run.
The ratio the issue asks about is pith's whole command over onnxruntime's session.run (target ≤ 1.5×).
CPU time (user + system, all threads) is given beside: on a shared machine it moves less with
the load than wall time does (though onnxruntime's spinning worker threads count in it). onnxruntime
with one thread (intra_op_num_threads=1), timed in the same rounds, shows what its spinning costs it
under load: on a busy machine it can beat its own two-thread run.
Outputs are checked against onnxruntime (largest error relative to the largest output magnitude).
Each timed measurement starts after a pause of SETTLE_SECONDS, so that none runs while onnxruntime's
worker threads still spin after the previous session.run.
The load average is printed before and after. With --baseline, an earlier pith binary's whole
command is timed in the same rounds (before/after). With --write, updates docs/benchmarks.md.
"""
import argparse
import glob
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np
import onnxruntime as ort

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
MNIST = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "mnist"))
if not os.path.isdir(MNIST):
    MNIST = "/work/shared/data/mnist"
IMAGES = os.path.join(MNIST, "t10k-images.idx3-ubyte.gz")
LABELS = os.path.join(MNIST, "t10k-labels.idx1-ubyte.gz")
LENET = os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx")
CACHE = os.path.join(ROOT, ".cache", "wheels")
OCR = {"det": ("ch_PP-OCRv4_det_infer.onnx", (8, 3, 320, 320)), "rec": ("ch_PP-OCRv4_rec_infer.onnx", (8, 3, 48, 320))}


def ocr_models():
    """The rapidocr wheel's models, fetched with pip into .cache/wheels once."""
    target = os.path.join(CACHE, "rapidocr_onnxruntime")
    found = glob.glob(os.path.join(target, "**", "*.onnx"), recursive=True)
    if not found:
        os.makedirs(CACHE, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", CACHE, "rapidocr-onnxruntime==1.4.4"], check=True)
        with zipfile.ZipFile(glob.glob(os.path.join(CACHE, "rapidocr_onnxruntime-*.whl"))[0]) as wheel:
            for member in wheel.namelist():
                if member.endswith(".onnx"):
                    wheel.extract(member, target)
        found = glob.glob(os.path.join(target, "**", "*.onnx"), recursive=True)
    return {os.path.basename(p): p for p in found}


def idx(path):
    import gzip
    data = gzip.open(path).read()
    rank = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(shape)


def settle():
    """A pause before each timed measurement: onnxruntime's worker threads keep spinning for a while
    after session.run returns (allow_spinning, its default), and a pith process started at once
    shares the cores with them (measured: det's whole command 0.197 s right after a run, 0.149 s
    after a 0.1 s pause, 0.165 s with no onnxruntime in the loop)."""
    time.sleep(SETTLE_SECONDS)


SETTLE_SECONDS = 0.25


class Case:
    def __init__(self, label, model, data, feed, extra=()):
        self.label, self.model, self.data, self.feed, self.extra = label, model, data, feed, list(extra)
        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count()
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        single = ort.SessionOptions()
        single.intra_op_num_threads, single.inter_op_num_threads = 1, 1
        self.single = ort.InferenceSession(model, single, providers=["CPUExecutionProvider"])
        self.name = self.session.get_inputs()[0].name
        self.reference = self.session.run(None, {self.name: feed})[0]  # warm-up
        self.single.run(None, {self.name: feed})
        self.times = {"whole": [], "compute": [], "ort": [], "whole_cpu": [], "ort_cpu": [], "baseline": [], "ort1": []}

    def baseline(self, pith):
        command = [pith, "eval", self.model, "--data", self.data, "--format", "json"] + self.extra
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, text=True)
        self.times["baseline"].append(time.perf_counter() - start)

    def pith(self, pith, out=None):
        command = [pith, "eval", self.model, "--data", self.data, "--format", "json"] + self.extra
        if out:
            # Not timed: the outputs, for the comparison with onnxruntime.
            report = json.loads(subprocess.run(command + ["--save-outputs", out], check=True, capture_output=True, text=True).stdout)
            return report
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = subprocess.run(command, check=True, capture_output=True, text=True)
        self.times["whole"].append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.times["whole_cpu"].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        report = json.loads(result.stdout)
        self.times["compute"].append(report["seconds"])
        return report

    def onnxruntime(self):
        cpu, start = time.process_time(), time.perf_counter()
        self.session.run(None, {self.name: self.feed})
        self.times["ort"].append(time.perf_counter() - start)
        self.times["ort_cpu"].append(time.process_time() - cpu)
        start = time.perf_counter()
        self.single.run(None, {self.name: self.feed})
        self.times["ort1"].append(time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pith", default=os.path.join(ROOT, ".build", "release", "pith"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--models", default="lenet,det,rec", help="comma-separated subset of lenet, det, rec")
    parser.add_argument("--baseline", help="another pith binary (an earlier build) timed in the same rounds, for before/after")
    parser.add_argument("--baseline-label", default="earlier build", help="what the baseline binary is, for the table")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    wanted = args.models.split(",")
    tmp = tempfile.mkdtemp(prefix="bench_eval")
    cases = []
    if "lenet" in wanted:
        images = idx(IMAGES).reshape(-1, 784).astype(np.float32) / 255
        cases.append(Case("LeNet-300-100, 10,000 MNIST images (batches of 500)", LENET, IMAGES, images, ["--labels", LABELS]))
    models = ocr_models() if any(m in wanted for m in OCR) else {}
    rng = np.random.default_rng(12)
    for key in ("det", "rec"):
        if key not in wanted:
            continue
        file, shape = OCR[key]
        x = (rng.random(shape, dtype=np.float32) * 2 - 1).astype(np.float32)
        path = os.path.join(tmp, f"{key}.npz")
        np.savez(path, x=x)
        cases.append(Case(f"PP-OCRv4 {key}, batch {' × '.join(map(str, shape))}", models[file], path, x))
    load_before = os.getloadavg()
    out = os.path.join(tmp, "out.npz")
    errors, accuracy = {}, {}
    for case in cases:
        report = case.pith(args.pith, out)  # also the warm-up (file cache)
        if args.baseline:
            case.baseline(args.baseline)  # warm-up
        for _ in range(args.runs):
            settle()
            case.pith(args.pith)
            settle()
            case.onnxruntime()
            if args.baseline:
                settle()
                case.baseline(args.baseline)
        with np.load(out) as saved:  # members are the model's output names, in model order
            have = saved[saved.files[0]]
        errors[case.label] = float(np.abs(have - case.reference).max() / max(np.abs(case.reference).max(), 1e-30))
        if "accuracy" in report:
            accuracy[case.label] = report["accuracy"]
    load_after = os.getloadavg()
    rows = ["| model and input | pith eval, whole command (s) | pith, compute only (s) | onnxruntime session.run (s) | whole ÷ session.run | "
            "compute ÷ session.run | CPU time: whole command ÷ session.run | largest difference |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for case in cases:
        whole, compute, reference, whole_cpu, ort_cpu = (statistics.median(case.times[k]) for k in ("whole", "compute", "ort", "whole_cpu", "ort_cpu"))
        rows.append(f"| {case.label} | {whole:.3f} | {compute:.3f} | {reference:.3f} | {whole / reference:.2f}× | {compute / reference:.2f}× | "
                    f"{whole_cpu:.3f} s ÷ {ort_cpu:.3f} s = {whole_cpu / ort_cpu:.2f}× | {errors[case.label]:.1e} |")
    rows[0] += " onnxruntime, one thread (s) | whole ÷ one-thread session.run |"
    rows[1] += "---:|---:|"
    for k, case in enumerate(cases):
        single, whole = statistics.median(case.times["ort1"]), statistics.median(case.times["whole"])
        rows[k + 2] += f" {single:.3f} | {whole / single:.2f}× |"
    if args.baseline:
        rows[0] += f" {args.baseline_label}: whole command (s) | {args.baseline_label} ÷ session.run |"
        rows[1] += "---:|---:|"
        for k, case in enumerate(cases):
            before, reference = statistics.median(case.times["baseline"]), statistics.median(case.times["ort"])
            rows[k + 2] += f" {before:.3f} | {before / reference:.2f}× |"
    table = "\n".join(rows)
    load = f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    print(table)
    for label, value in accuracy.items():
        print(f"{label}: top-1 accuracy {value * 100:.2f}%")
    print(load)
    if args.write:
        sys.path.insert(0, os.path.join(ROOT, "scripts"))
        from benchdoc import replace_section
        cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.machine())
        replace_section("eval", f"Measured {time.strftime('%Y-%m-%d')} on {cpu} ({os.cpu_count()} cores, shared; {load}), by "
                        f"`scripts/bench_eval.py --write`: {args.runs} interleaved rounds, medians; onnxruntime {ort.__version__} with "
                        f"intra_op_num_threads={os.cpu_count()}, session made once and warmed up; {SETTLE_SECONDS} s pause before each timed measurement (onnxruntime's threads spin after a run); Pith's whole command includes "
                        f"process start, model load and build step, reading the data, the run and the report (the outputs are saved, for "
                        f"the comparison, in one more run, untimed). The largest difference is "
                        f"relative to the largest output magnitude.\n\n{table}")


if __name__ == "__main__":
    main()

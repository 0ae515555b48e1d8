#!/usr/bin/env python3
"""Runs each fuzz target (Fuzz/, built by `make fuzz-build`) for N seconds; `make fuzz` calls it.

    scripts/fuzz.py --seconds 60 [--targets container,onnx] [--jobs 2] [--write]

Every target runs with libFuzzer on its corpus folder (.build/fuzz/corpus/<target>, seeded by
scripts/fuzz_corpus.py), one after the other, or --jobs at a time. An input that crashes, trips AddressSanitizer, runs
longer than 20 s (the hang limit of issue 16) or needs more than 3 GiB is written to
.build/fuzz/artifacts/<target>/ and fails the run: make it a regression fixture under Fixtures/fuzz/
and fix the cause. Prints the executions per target; --write puts them in docs/benchmarks.md.
"""
import argparse
import datetime
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.path.join(ROOT, ".build", "fuzz")
TARGETS = {  # corpus folder → executable
    "container": "FuzzContainer",
    "huffman": "FuzzHuffman",
    "onnx": "FuzzONNX",
    "hdf5": "FuzzHDF5",
}
DICTIONARIES = {"container": os.path.join(ROOT, "Fuzz", "dictionaries", "container.dict")}
HANG_SECONDS = 20
MEMORY_MB = 3072


def run(target, seconds):
    binary = os.path.join(BUILD, "release", TARGETS[target])
    corpus = os.path.join(BUILD, "corpus", target)
    artifacts = os.path.join(BUILD, "artifacts", target)
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(artifacts, exist_ok=True)
    before = set(os.listdir(artifacts))
    # -report_slow_units: libFuzzer writes a `slow-unit-…` artifact for any input slower than 10 s by
    # default; only the hang limit counts here (on a loaded machine a 0.3 s input took 13 s).
    command = [binary, f"-max_total_time={seconds}", f"-timeout={HANG_SECONDS}", f"-report_slow_units={HANG_SECONDS}", f"-rss_limit_mb={MEMORY_MB}",
               # Foreign allocations (libhdf5 reading a damaged size) fail as malloc does outside the
               # fuzzer: the library reports them. Swift allocations that fail still trap, and count.
               "-malloc_limit_mb=1048576", "-print_final_stats=1", f"-artifact_prefix={artifacts}/", corpus]
    if target in DICTIONARIES:
        command.insert(1, f"-dict={DICTIONARIES[target]}")
    environment = dict(os.environ, SWIFT_BACKTRACE="enable=no",  # libFuzzer reports crashes itself
                       ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:handle_abort=1")
    log_path = os.path.join(BUILD, f"{target}.log")
    with open(log_path, "w") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
        # A watchdog for a fuzzer that does not stop by itself; wait4 gives the child's own CPU time
        # (targets may run side by side, --jobs).
        watchdog = threading.Timer(seconds + 10 * HANG_SECONDS + 120, child.kill)
        watchdog.start()
        _, code, usage = os.wait4(child.pid, 0)
        watchdog.cancel()
        # Popen is told the status too: it was reaped here, not by Popen.wait.
        child.returncode = status = os.waitstatus_to_exitcode(code)
    text = open(log_path, errors="replace").read()
    executions = re.findall(r"stat::number_of_executed_units:\s*(\d+)", text)
    done = re.findall(r"Done (\d+) runs in (\d+) second", text)
    coverage = re.findall(r"cov: (\d+) ft: (\d+)", text)
    found = sorted(set(os.listdir(artifacts)) - before)
    return {
        "target": target, "status": status, "executions": int(executions[-1]) if executions else (int(done[-1][0]) if done else 0),
        "seconds": seconds, "coverage": int(coverage[-1][0]) if coverage else 0, "features": int(coverage[-1][1]) if coverage else 0,
        "corpus": len(os.listdir(corpus)), "found": found, "log": log_path, "cpu": usage.ru_utime + usage.ru_stime,
    }


def write_benchmarks(results, jobs):
    path = os.path.join(ROOT, "docs", "benchmarks.md")
    text = open(path, encoding="utf-8").read()
    begin, end = "<!-- fuzz:begin -->", "<!-- fuzz:end -->"
    seconds = results[0]["seconds"]
    reads = {"container": "`.pith` as is and CRC-fixed; open, decode, eval-load, restore dense / factored / compact",
             "huffman": "code tables and 4-stream blocks (whole, run by run, single stream agree); round trips",
             "onnx": "ONNX bytes in memory (wire scanner, protobuf-c, tensor decoding)",
             "hdf5": "HDF5 / Keras file in /dev/shm (libhdf5, Keras layouts)"}
    lines = [begin, "",
             f"`make fuzz FUZZ_SECONDS={seconds} FUZZ_JOBS={jobs}` on {datetime.date.today().isoformat()}: {seconds} s of wall time per target, "
             + ("one after the other" if jobs == 1 else f"{jobs} targets at a time") + f", on {os.cpu_count()} cores shared with other work "
             "(CPU time is each target's own, user + system). Executions include the seed corpus.", "",
             "| target | what one execution does | executions | per second of wall time | CPU time (s) | coverage (edges) | corpus | crashes, hangs, OOMs |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in results:
        lines.append(f"| {r['target']} | {reads[r['target']]} | {r['executions']:,} | {r['executions'] // max(1, r['seconds']):,} | {r['cpu']:,.0f} | "
                     f"{r['coverage']:,} | {r['corpus']:,} | {', '.join(r['found']) or 'none'} |")
    lines += ["", end]
    block = "\n".join(lines)
    if begin in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + SECTION + "\n" + block + "\n"
    open(path, "w", encoding="utf-8").write(text)


SECTION = """## Fuzzing the readers

Four libFuzzer targets (`Fuzz/`, see docs/architecture.md) read hostile bytes through Pith's readers, built in
release mode with AddressSanitizer and coverage instrumentation; `make fuzz FUZZ_SECONDS=N` runs each for N
seconds on a corpus seeded from the fixtures (`scripts/fuzz_corpus.py`), and `make test` runs each for 25 s.
A crash, an AddressSanitizer report, an input taking more than 20 s or 3 GiB fails the run.
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60, help="per target")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--jobs", type=int, default=1, help="targets run at a time (each is one process)")
    parser.add_argument("--write", action="store_true", help="record the executions in docs/benchmarks.md")
    args = parser.parse_args()
    targets = args.targets.split(",")
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda target: run(target, args.seconds), targets))
    for target, result in zip(targets, results):
        print(f"fuzz {target}: {result['executions']:,} executions in {args.seconds} s, coverage {result['coverage']}, "
              f"corpus {result['corpus']}, CPU {result['cpu']:.0f} s" + (f"; FOUND {', '.join(result['found'])} (log: {result['log']})" if result["found"] else ""),
              flush=True)
    if args.write:
        write_benchmarks(results, args.jobs)
    failed = [r for r in results if r["found"] or r["status"] != 0]
    if failed:
        for r in failed:
            print(f"fuzz {r['target']}: exit status {r['status']}; artifacts in .build/fuzz/artifacts/{r['target']}/; log {r['log']}",
                  file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

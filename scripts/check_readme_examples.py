#!/usr/bin/env python3
"""The README's examples are real runs of the current build, and stay so.

Every ```text block of README.md that starts with `$ pith …` (or `$ scripts/…`) is run, in README order,
in a scratch folder where `Fixtures/` is the repository's and the MNIST files the examples name
(`t10k-images.idx3-ubyte.gz`, …) are those of ../shared/data/mnist. Every other line of the block must be a
line of the command's output (standard output and error together), in the same order — a block may leave
lines out (`…`), never change one. Times (`0.123 s`) are not compared, nor the width of the space between columns. `--auto` runs are not rerun (Tests/interop/test_auto.py covers them). Blocks that need MNIST are skipped, with a message, when ../shared/data/mnist is absent.

    python3 scripts/check_readme_examples.py [--pith .build/debug/pith]
"""
import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
MNIST = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "mnist"))
TIME = re.compile(r"\d+(\.\d+)? s\b")


def blocks(text):
    """(line, command, expected lines) of every command of every runnable ```text block: a block
    holds one or more `$ ` commands (continued with a trailing backslash), each followed by its output."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```text" and i + 1 < len(lines) and re.match(r"\$ (pith|scripts/)", lines[i + 1]):
            j = i + 1
            while lines[j].strip() != "```":
                start = j
                command = lines[j][2:]
                while command.endswith("\\"):
                    j += 1
                    command = command[:-1] + " " + lines[j].strip()
                j += 1
                expected = []
                while lines[j].strip() != "```" and not lines[j].startswith("$ "):
                    expected.append(lines[j])
                    j += 1
                yield start, command, expected
            i = j
        i += 1


def normalise(line):
    """Times masked and runs of spaces made one: a table's column widths follow its widest cell."""
    return re.sub(r" +", " ", TIME.sub("<time>", line.rstrip()))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pith", default=os.environ.get("PITH_BINARY", os.path.join(ROOT, ".build", "debug", "pith")))
    args = parser.parse_args()
    args.pith = os.path.abspath(args.pith)
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    problems, ran, skipped = [], 0, 0
    with tempfile.TemporaryDirectory() as scratch:
        os.symlink(os.path.join(ROOT, "Fixtures"), os.path.join(scratch, "Fixtures"))
        os.symlink(os.path.join(ROOT, "scripts"), os.path.join(scratch, "scripts"))
        have_mnist = os.path.isdir(MNIST)
        if have_mnist:
            for name in os.listdir(MNIST):
                os.symlink(os.path.join(MNIST, name), os.path.join(scratch, name))
        for start, command, expected in blocks(readme):
            words = shlex.split(command)
            if "--auto" in words:
                # Its search takes minutes in a debug build and may stop at its time budget on a
                # loaded machine; Tests/interop/test_auto.py checks it.
                print(f"README.md:{start + 1}: skipped (--auto, checked by Tests/interop/test_auto.py): {command}")
                skipped += 1
                continue
            if any(w.endswith(".idx3-ubyte.gz") or w.endswith(".idx1-ubyte.gz") for w in words) or words[0].startswith("scripts/onnxruntime"):
                if not have_mnist:
                    print(f"README.md:{start + 1}: skipped (needs MNIST in {MNIST}): {command}")
                    skipped += 1
                    continue
            if words[0] == "pith":
                words[0] = args.pith
            elif words[0].startswith("scripts/"):
                words = [sys.executable, os.path.join(ROOT, words[0])] + words[1:] + ([MNIST] if "onnxruntime_accuracy" in words[0] else [])
            result = subprocess.run(words, cwd=scratch, capture_output=True, text=True, timeout=900)
            ran += 1
            output = [normalise(line) for line in (result.stdout + result.stderr).split("\n")]
            position = 0
            for line in expected:
                if line.strip() in ("…", "...") or not line.strip():
                    continue
                want = normalise(line)
                try:
                    position = output.index(want, position) + 1
                except ValueError:
                    problems.append(f"README.md:{start + 1}: `{command}`: the line\n    {line}\n  is not in the output (or not in this order); the output is:\n"
                                    + "\n".join("    " + o for o in output[:60]))
                    break
    for problem in problems:
        print(problem)
    print(f"README examples: {ran} run, {len(problems)} stale, {skipped} skipped")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

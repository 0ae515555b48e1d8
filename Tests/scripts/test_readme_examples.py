"""The README's `$ pith …` examples are the current build's output (scripts/check_readme_examples.py):
a change that alters what a command prints fails here until the README says the same."""
import os
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))


def test_readme_examples_match_the_build():
    pith = os.environ.get("PITH_BINARY", os.path.join(ROOT, ".build", "debug", "pith"))
    result = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "check_readme_examples.py"), "--pith", pith],
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " 0 stale" in result.stdout

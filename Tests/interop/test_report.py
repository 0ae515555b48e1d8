"""`pith report` rendered in a real browser: Debian's chromium, headless. Each page is loaded twice —
once for a screenshot, once for the DOM after its script ran — with the browser's console on stderr
(`--enable-logging=stderr`): any console message from the page (an exception, a failed resource) fails
the test, and so does a page whose script did not reach its end (`data-ready` on <body>). The
screenshot must not be blank: many distinct colours, content in every band of the page height, and
the colours of the bars, the histograms and the codebook marks present. The HTML itself must not ask
for anything from the network.

The acceptance screenshots — LeNet-300-100 against a `--prune 0.7 --cluster 4` container verified on
MNIST, and rapidocr's PP-OCRv4 detector against an `--quantize int8-channel` container — are written
to docs/report-lenet.png and docs/report-ocr.png when PITH_UPDATE_SCREENSHOTS=1 (palette PNGs, at most
400 KB each); otherwise they stay in the test's temporary folder. The test is skipped, with the reason,
only when chromium is not installed (scripts/install-deps.sh installs it)."""
import html.parser
import json
import os
import re
import shutil
import subprocess

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import PITH, ROOT, run_pith
from test_eval import IMAGES, LABELS, LENET, MNIST, idx
from test_real_models import fetch

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DOCS = os.path.join(ROOT, "docs")
UPDATE = os.environ.get("PITH_UPDATE_SCREENSHOTS") == "1"
WIDTH = 1280
# The page's own colours (Sources/Pith/ModelReport+HTML.swift): bytes after, bits, zeros, marks, histogram.
BLUE, ORANGE, GREEN, RED, HISTOGRAM = (0x25, 0x63, 0xC9), (0xD9, 0x82, 0x2B), (0x2F, 0x9E, 0x6B), (0xD3, 0x3F, 0x49), (0xA9, 0xC1, 0xEA)
BACKGROUND = (0xF4, 0xF6, 0xF9)


@pytest.fixture(scope="module")
def chromium():
    if CHROMIUM is None:
        pytest.skip("SKIPPED: chromium is not installed (scripts/install-deps.sh installs Debian's chromium)")
    return CHROMIUM


@pytest.fixture(scope="module")
def image():
    return pytest.importorskip("PIL.Image", reason="SKIPPED: Pillow is not installed (scripts/install-deps.sh installs it)")


def browse(chromium, page, tmp_path, height):
    """The page's screenshot (WIDTH × height), its DOM after scripts, and the console lines it logged."""
    shot = tmp_path / (page.stem + ".png")
    flags = ["--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
             f"--user-data-dir={tmp_path / 'chromium-profile'}", "--no-first-run", "--disable-extensions",
             "--host-resolver-rules=MAP * ~NOTFOUND"]
    url = page.resolve().as_uri()
    taken = subprocess.run([chromium, *flags, f"--screenshot={shot}", f"--window-size={WIDTH},{height}", url],
                           capture_output=True, text=True, timeout=180)
    assert taken.returncode == 0 and shot.exists(), f"chromium took no screenshot: {taken.stderr[-2000:]}"
    dumped = subprocess.run([chromium, *flags, f"--window-size={WIDTH},{height}", "--dump-dom", url],
                            capture_output=True, text=True, timeout=180)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    console = [line for line in (taken.stderr + dumped.stderr).splitlines() if ":CONSOLE" in line]
    return shot, dumped.stdout, console


def assert_self_contained(text):
    """Nothing the browser would fetch: no src or href but in-page anchors, no <link>, no url() or
    @import in the CSS, no external script."""
    class Resources(html.parser.HTMLParser):
        found = []

        def handle_starttag(self, tag, attrs):
            for name, value in attrs:
                if name in ("src", "href", "srcset", "poster", "data", "action", "formaction") and not (name == "href" and value.startswith("#")):
                    self.found.append((tag, name, value))
            if tag in ("link", "iframe", "object", "embed", "img", "base"):
                self.found.append((tag, "", ""))

    parser = Resources()
    parser.found = []
    parser.feed(text)
    assert parser.found == [], f"the page loads resources: {parser.found[:5]}"
    style = "".join(re.findall(r"<style>(.*?)</style>", text, re.S))
    assert "url(" not in style and "@import" not in style and "@font-face" not in style


def assert_not_blank(image, shot, colours):
    """Many distinct colours; content down to at least 60% of the window and in every 200-pixel band
    above its end; and each of `colours` drawn."""
    picture = image.open(shot).convert("RGB")
    assert picture.size[0] == WIDTH
    pixels = np.asarray(picture).astype(np.int16)
    distinct = len(picture.getcolors(maxcolors=1 << 24))
    assert distinct >= 300, f"{shot.name}: only {distinct} distinct colours"
    drawn = (np.abs(pixels - np.array(BACKGROUND)).sum(axis=2) > 24) & (np.abs(pixels - 255).sum(axis=2) > 24)
    rows = np.nonzero(drawn.mean(axis=1) > 0.002)[0]
    end = int(rows.max()) if rows.size else 0
    assert end >= 0.6 * picture.size[1], f"{shot.name}: content ends at row {end} of {picture.size[1]}"
    for top in range(0, end - 199, 200):
        share = drawn[top:top + 200].mean()
        assert share > 0.004, f"{shot.name}: rows {top}–{top + 200} are empty ({share:.4f} of pixels drawn)"
    for colour in colours:
        near = (np.abs(pixels - np.array(colour)).sum(axis=2) <= 45).sum()
        assert near >= 150, f"{shot.name}: colour #{bytes(colour).hex()} drawn in only {near} pixels"


def assert_rendered(console, dom):
    assert console == [], "the page logged to the console:\n" + "\n".join(console)
    assert re.search(r'<body[^>]*data-ready="yes"', dom), "the page's script did not run to its end"


def save_for_docs(image, shot, name):
    """The screenshot as a palette PNG in docs/ (only with PITH_UPDATE_SCREENSHOTS=1)."""
    if not UPDATE:
        return
    target = os.path.join(DOCS, name)
    image.open(shot).convert("RGB").quantize(colors=256, method=image.Quantize.FASTOCTREE).save(target, optimize=True)
    assert os.path.getsize(target) <= 400_000, f"{target}: {os.path.getsize(target)} bytes"


def report(*arguments, cwd=None):
    """`pith report`, run in `cwd` so that the page names files as given (short, for the screenshots)."""
    result = subprocess.run([PITH, "report", *arguments, "--force"], capture_output=True, text=True, timeout=900, cwd=cwd)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result


# MARK: the acceptance screenshots


def test_lenet_report_against_its_pruned_and_clustered_container(pith, chromium, image, tmp_path):
    if not os.path.exists(IMAGES):
        pytest.skip(f"SKIPPED: MNIST not found at {MNIST}")
    os.symlink(LENET, tmp_path / "lenet-300-100.onnx")
    os.symlink(MNIST, tmp_path / "mnist")
    container = tmp_path / "lenet.pith"
    result = run_pith("compress", LENET, "--prune", "0.7", "--cluster", "4", "-o", str(container))
    assert result.returncode == 0, result.stderr
    page = tmp_path / "report-lenet.html"
    report("lenet-300-100.onnx", "--compare", "lenet.pith", "--data", "mnist/t10k-images.idx3-ubyte.gz",
           "--labels", "mnist/t10k-labels.idx1-ubyte.gz", "-o", page.name, cwd=tmp_path)
    text = page.read_text()
    assert len(text) < 200_000
    assert_self_contained(text)

    # The numbers on the page are the ones onnxruntime gets.
    x = idx(IMAGES).reshape(-1, 784).astype(np.float32) / 255
    y = idx(LABELS)
    session = ort.InferenceSession(LENET)
    accuracy = float((session.run(None, {session.get_inputs()[0].name: x})[0].argmax(1) == y).mean())
    assert f"{accuracy * 100:.2f}% →" in text
    assert "[N, 784]" in text and "15 centroids and a reserved zero (4 bits)" in text
    assert f"<b>{os.path.getsize(LENET) / os.path.getsize(container):.1f}×</b><span>smaller" in text  # through the symlink

    shot, dom, console = browse(chromium, page, tmp_path, 2000)
    assert_rendered(console, dom)
    for section in ("model", "verify", "layers", "weights"):
        assert f'id="{section}"' in dom
    assert dom.count("<figure") == 3  # fc1, fc2 and fc3: every weight of LeNet
    assert_not_blank(image, shot, [BLUE, ORANGE, GREEN, RED, HISTOGRAM])
    save_for_docs(image, shot, "report-lenet.png")

    # Without its script the page reads the same; only the name filter stays hidden. (Headless
    # chromium takes no screenshot with scripts switched off, so the copy has none.)
    plain = tmp_path / "report-lenet-noscript.html"
    plain.write_text(re.sub(r"<script>.*?</script>", "", text, flags=re.S))
    plain, plain_dom, plain_console = browse(chromium, plain, tmp_path, 2000)
    assert plain_console == [] and "data-ready" not in plain_dom and '<p class="filter" hidden="">' in plain_dom
    assert_not_blank(image, plain, [BLUE, ORANGE, GREEN, RED, HISTOGRAM])


def test_ocr_detector_report_against_its_int8_container(pith, chromium, image, tmp_path):
    (model,) = [p for p in fetch("rapidocr-onnxruntime==1.4.4", ".onnx") if p.endswith("ch_PP-OCRv4_det_infer.onnx")]
    container = tmp_path / "det.pith"
    result = run_pith("compress", model, "--quantize", "int8-channel", "-o", str(container), timeout=600)
    assert result.returncode == 0, result.stderr
    # A page of dark strokes, normalised as rapidocr does, so the detector's map is not all near zero.
    rng = np.random.default_rng(0)
    page_image = np.ones((96, 160), np.float32)
    for row in range(6, 86, 14):
        column = 4
        while column < 148:
            width = int(rng.integers(3, 9))
            page_image[row:row + 8, column:column + width] = 0
            column += width + int(rng.integers(2, 5))
    data = tmp_path / "page.npy"
    np.save(data, np.broadcast_to((page_image - 0.5) / 0.5, (1, 3, 96, 160)).astype(np.float32).copy())

    os.symlink(model, tmp_path / os.path.basename(model))
    page = tmp_path / "report-ocr.html"
    report(os.path.basename(model), "--compare", container.name, "--data", data.name, "-o", page.name, cwd=tmp_path)
    text = page.read_text()
    assert len(text) < 400_000
    assert_self_contained(text)
    # The summary onnx reads: input x with three channels, the output, the operator counts.
    graph = onnx.load(model).graph
    assert f"<code>{graph.input[0].name}</code>" in text and f"<code>{graph.output[0].name}</code>" in text
    assert "p2o.DynamicDimension.0, 3," in text
    convs = sum(1 for node in graph.node if node.op_type == "Conv")
    assert f"Conv: {convs}</title>" in text
    assert "int8 per channel" in text
    assert f"<b>{os.path.getsize(model) / os.path.getsize(container):.1f}×</b><span>smaller" in text

    shot, dom, console = browse(chromium, page, tmp_path, 3000)
    assert_rendered(console, dom)
    assert dom.count("<figure") == 12  # the 12 largest weights by default
    assert_not_blank(image, shot, [BLUE, ORANGE, HISTOGRAM])
    save_for_docs(image, shot, "report-ocr.png")


# MARK: sensitivity, --auto and hostile names


def test_sensitivity_curves_and_the_auto_frontier(pith, chromium, image, tmp_path):
    if not os.path.exists(IMAGES):
        pytest.skip(f"SKIPPED: MNIST not found at {MNIST}")
    train = idx(os.path.join(MNIST, "train-images.idx3-ubyte.gz")).reshape(-1, 784)[:256].astype(np.float32) / 255
    np.save(tmp_path / "calibration.npy", train)
    np.save(tmp_path / "validation.npy", idx(IMAGES).reshape(-1, 784)[:1000].astype(np.float32) / 255)
    np.save(tmp_path / "labels.npy", idx(LABELS)[:1000].astype(np.int64))
    common = ["--calibration", str(tmp_path / "calibration.npy"), "--data", str(tmp_path / "validation.npy"),
              "--labels", str(tmp_path / "labels.npy"), "--only", "fc2.weight", "--only", "fc3.weight",
              "--settings", "keep,int4,kmeans2,prune0.8+kmeans3", "--format", "json"]
    sensitivity = run_pith("sensitivity", LENET, *common, timeout=600)
    assert sensitivity.returncode == 0, sensitivity.stderr
    (tmp_path / "sensitivity.json").write_text(sensitivity.stdout)
    container = tmp_path / "auto.pith"
    auto = run_pith("compress", LENET, "--auto", "--max-accuracy-drop", "0.5", *common, "-o", str(container), timeout=900)
    assert auto.returncode in (0, 1), auto.stderr
    (tmp_path / "auto.json").write_text(auto.stdout)

    page = tmp_path / "report-auto.html"
    report(LENET, "--compare", str(container), "--sensitivity", str(tmp_path / "sensitivity.json"),
           "--auto-report", str(tmp_path / "auto.json"), "-o", str(page))
    text = page.read_text()
    assert_self_contained(text)
    assert 'id="recipe"' in text and "auto.recipe.yaml" in text  # the recipe --auto wrote beside the container
    assert 'id="sensitivity"' in text and "Models checked by --auto" in text
    assert text.count("Sensitivity of ") == 2  # one chart per layer measured
    assert "written" in text and "budget" in text
    width = json.loads(auto.stdout).get("width") or {}
    if width.get("fraction"):  # neurons removed before the search: said, with the layers they came from
        assert "criterion <code>obs</code>" in text and "neurons of `fc" in text

    shot, dom, console = browse(chromium, page, tmp_path, 3400)
    assert_rendered(console, dom)
    assert_not_blank(image, shot, [BLUE, HISTOGRAM])

    # Each JSON report given to the other option is refused, naming the right one.
    swapped = run_pith("report", LENET, "--sensitivity", str(tmp_path / "auto.json"), "-o", str(tmp_path / "x.html"))
    assert swapped.returncode == 64 and "--auto-report" in swapped.stderr
    swapped = run_pith("report", LENET, "--auto-report", str(tmp_path / "sensitivity.json"), "-o", str(tmp_path / "x.html"))
    assert swapped.returncode == 64 and "--sensitivity" in swapped.stderr
    not_json = run_pith("report", LENET, "--sensitivity", LENET, "-o", str(tmp_path / "x.html"))
    assert not_json.returncode == 65 and "not a `pith sensitivity --format json` report" in not_json.stderr
    assert not (tmp_path / "x.html").exists()


def test_hostile_names_are_bounded_and_escaped(pith, chromium, tmp_path):
    """Tensor, node and value names that are markup, or a hundred thousand characters long, show as
    text: bounded, escaped, never run."""
    injected = "<img src=x onerror=\"console.error('pwned')\">"
    weight = injected + "</svg></style><script>console.error('pwned')</script>'&\"" + "w" * 100_000
    rng = np.random.default_rng(1)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["in" + injected, weight, "bias"], ["out</title>" + injected], name="node" + injected, transB=1)],
        "hostile",
        [helper.make_tensor_value_info("in" + injected, TensorProto.FLOAT, ["N" + injected, 64])],
        [helper.make_tensor_value_info("out</title>" + injected, TensorProto.FLOAT, ["N" + injected, 32])],
        [numpy_helper.from_array(rng.standard_normal((32, 64)).astype(np.float32), weight),
         numpy_helper.from_array(rng.standard_normal(32).astype(np.float32), "bias")])
    model = tmp_path / "hostile.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name=injected), model)
    container = tmp_path / "hostile.pith"
    assert run_pith("compress", str(model), "--cluster", "3", "-o", str(container)).returncode == 0
    page = tmp_path / "hostile.html"
    report(str(model), "--compare", str(container), "-o", str(page))
    text = page.read_text()
    assert len(text) < 60_000, f"{len(text)} bytes: a long name was not bounded"
    assert "pwned" not in text.replace("console.error(&#39;pwned&#39;)", "")
    assert "<img" not in text and "<script>console" not in text
    assert_self_contained(text)
    _, dom, console = browse(chromium, page, tmp_path, 1600)
    assert_rendered(console, dom)


def test_refusals_name_the_flag_and_write_nothing(pith, tmp_path):
    page = tmp_path / "page.html"
    no_compare = run_pith("report", LENET, "--data", LENET, "-o", str(page))
    assert no_compare.returncode == 64 and "--compare" in no_compare.stderr
    missing = run_pith("report", LENET, "--compare", str(tmp_path / "missing.pith"), "-o", str(page))
    assert missing.returncode == 66 and "missing.pith" in missing.stderr
    assert not page.exists()
    page.write_text("kept")
    exists = run_pith("report", LENET, "-o", str(page))
    assert exists.returncode == 73 and "--force" in exists.stderr and page.read_text() == "kept"
    over_input = run_pith("report", LENET, "-o", LENET, "--force")
    assert over_input.returncode == 64

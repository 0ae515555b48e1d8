#!/usr/bin/env python3
"""The hostile-input campaign of issue 16's acceptance, against a built `pith` (the release build).

    swift build -c release
    python3 scripts/campaign.py --pith .build/release/pith [--scale 1.0] [--seed 16] [--workers 2]

Classes of runs (each a fresh folder, seeded, so a run is repeatable):
  model-flips, model-truncations        random byte flips / truncations of the ONNX and HDF5 fixtures;
                                        inspect, and compress -o
  container-flips, container-truncations  the same of containers (golden, and made now with several
                                        recipes); restore and inspect. A restore that succeeds must
                                        give the bytes the undamaged container restores to
  crc-valid-containers                  random changes to the manifest (numbers, names, vocabulary,
                                        entries dropped, duplicated, swapped) or to stream bytes, every
                                        checksum fixed; the hostile corpus (Fixtures/broken-containers);
                                        restore and inspect. A restore that succeeds must give a model
                                        Pith reads back
  hostile-models                        Fixtures/broken, Fixtures/fuzz, and models made here: a tensor
                                        name of a million characters, external data that is a FIFO, a
                                        device, a symlink loop; inspect, compress, eval
  special-files                         FIFOs, devices, folders, dangling and looping symlinks as inputs
                                        (model, container, --data, --labels, recipe) and as outputs
                                        (an existing FIFO, /dev/full, a folder, a missing folder)
  huge-names                            file names of 255 and 256+ bytes, paths past PATH_MAX
  kill-9                                compress and restore of a 64 MB model killed with SIGKILL at a
                                        random moment; then the same command again
Every run must end within 20 s, by exit (not a signal), with an exit code of the contract (0, 1 for
verify gates, 64, 65, 66, 69, 73, 74), and a run that fails must leave nothing at its destination
(no output, no temporary file). Prints the runs, exit codes and findings per class; findings are
kept in .build/campaign/findings/.
"""
import argparse
import collections
import concurrent.futures
import glob
import json
import os
import random
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
FIXTURES = os.path.join(ROOT, "Fixtures")
sys.path.insert(0, os.path.join(FIXTURES, "generate"))
from pith_container import Container  # noqa: E402

CONTRACT = {0, 64, 65, 66, 69, 73, 74}
HANG_SECONDS = 20
WORK = os.path.join(ROOT, ".build", "campaign")


class Campaign:
    def __init__(self, pith, seed, workers):
        self.pith = pith
        self.seed = seed
        self.workers = workers
        self.lock = threading.Lock()
        self.runs = collections.Counter()
        self.codes = collections.defaultdict(collections.Counter)
        self.findings = collections.defaultdict(list)
        self.slowest = collections.defaultdict(float)
        self.outcomes = collections.defaultdict(list)  # every run of the small classes, for reading
        os.makedirs(os.path.join(WORK, "findings"), exist_ok=True)

    # One command, checked against the contract.
    def run(self, klass, arguments, folder, outputs=(), allowed=CONTRACT, keep=None, stdin=None, env=None):
        start = time.monotonic()
        process = subprocess.Popen([self.pith] + arguments, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=stdin if stdin is not None else subprocess.DEVNULL, start_new_session=True,
                                   env=dict(os.environ, SWIFT_BACKTRACE="enable=no", **(env or {})))
        try:
            out, err = process.communicate(timeout=HANG_SECONDS)
            hung = False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            hung = True
        elapsed = time.monotonic() - start
        code = process.returncode
        problems = []
        if hung:
            problems.append(f"hang: no exit within {HANG_SECONDS} s")
        elif code < 0:
            problems.append(f"signal {-code}")
        elif code not in allowed:
            problems.append(f"exit {code} outside the contract")
        if code != 0 and not hung:
            for output in outputs:
                if os.path.lexists(output) and not stat.S_ISFIFO(os.lstat(output).st_mode) and not output.startswith("/dev/"):
                    problems.append(f"exit {code} left {os.path.basename(output)}")
        for output in outputs:
            parent = os.path.dirname(output) or folder
            if os.path.isdir(parent) and code != 0:
                leftovers = [n for n in os.listdir(parent) if ".tmp-" in n]
                if leftovers:
                    problems.append(f"temporary files left: {leftovers[:3]}")
        if len(err) > 1 << 20 or len(out) > 64 << 20:
            problems.append(f"output of {len(out)} + {len(err)} bytes")
        with self.lock:
            self.runs[klass] += 1
            self.codes[klass]["hang" if hung else code] += 1
            self.slowest[klass] = max(self.slowest[klass], elapsed)
            # Every run of the small classes; and any I/O error (74), which hostile data should not cause.
            if klass in ("special-files", "huge-names") or code == 74:
                self.outcomes[klass].append(f"{code}: pith {' '.join(a if len(a) < 80 else a[:30] + '…' + a[-30:] for a in arguments)}"
                                            + (f"  [{err.decode(errors='replace').strip()[:160]}]" if code else ""))
        if problems:
            self.finding(klass, arguments, problems, err, keep)
        return code, out, err

    def finding(self, klass, arguments, problems, err=b"", keep=None):
        with self.lock:
            index = sum(len(v) for v in self.findings.values())
            kept = []
            for path in keep or []:
                if os.path.isfile(path):
                    target = os.path.join(WORK, "findings", f"{index}-{os.path.basename(path)}")
                    shutil.copyfile(path, target)
                    kept.append(target)
            self.findings[klass].append({"command": ["pith"] + arguments, "problems": problems,
                                         "stderr": err.decode(errors="replace")[-600:], "kept": kept})

    def parallel(self, jobs):
        with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
            for future in [pool.submit(job) for job in jobs]:
                future.result()


def flip(data, rng, count):
    data = bytearray(data)
    for _ in range(count):
        if data:
            data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
    return bytes(data)


def sources():
    models = sorted(glob.glob(os.path.join(FIXTURES, "onnx", "*.onnx")) + glob.glob(os.path.join(FIXTURES, "keras", "*.h5"))
                    + [os.path.join(FIXTURES, "lenet-300-100.onnx"), os.path.join(FIXTURES, "lenet-300-100.h5")])
    return [m for m in models if "external-data" not in m]


def make_containers(campaign, folder):
    """Containers made now from the fixtures with several recipes, and the golden ones; with the
    bytes each restores to (the reference for damaged copies)."""
    recipes = [[], ["--prune", "0.7"], ["--prune", "0.6", "--cluster", "4"], ["--quantize", "int8-channel"], ["--quantize", "fp16"],
               ["--quantize", "int4"], ["--factorize", "svd", "--rank", "4"], ["--cluster", "3", "--cluster-granularity", "channel"]]
    made = []
    for model in sources():
        for i, flags in enumerate(recipes):
            if "lenet" in model and i not in (0, 2, 3):
                continue
            target = os.path.join(folder, f"{os.path.basename(model)}.{i}.pith")
            result = subprocess.run([campaign.pith, "compress", model, "-o", target, "--allow-empty"] + flags, capture_output=True)
            if result.returncode == 0:
                made.append(target)
    made += sorted(glob.glob(os.path.join(FIXTURES, "golden", "*.pith")))
    references = {}
    for container in made:
        extension = "onnx" if source_format(container) == "onnx" else "h5"
        output = os.path.join(folder, os.path.basename(container) + ".restored." + extension)
        if subprocess.run([campaign.pith, "restore", container, "-o", output, "--force"], capture_output=True).returncode == 0:
            references[container] = (extension, content(output, extension))
    return references


def whole_file(container):
    """Whether a container is in format 1.5's whole-file form (byte 8 `W`): no manifest to change."""
    with open(container, "rb") as f:
        return f.read(9)[8:9] == b"W"


def source_format(container):
    """`onnx` or the HDF5 format a container holds: the whole-file form says it by its dictionary."""
    if whole_file(container):
        with open(container, "rb") as f:
            return "onnx" if f.read(10)[9] == 1 else "hdf5"
    return Container.read(container).manifest["source"]["format"]


def content(path, extension):
    """What a restored file holds: its bytes for ONNX (the writer is deterministic); for HDF5, whose
    object headers carry modification times, every dataset's name, type, shape and bytes and every
    attribute, read with h5py."""
    if extension == "onnx":
        return open(path, "rb").read()
    import h5py
    import numpy as np

    items = []
    with h5py.File(path, "r") as f:
        def visit(name, item):
            for key, value in sorted(item.attrs.items()):
                items.append((name, key, repr(value.tolist() if isinstance(value, np.ndarray) else value)))
            if isinstance(item, h5py.Dataset):
                items.append((name, str(item.dtype), item.shape, item[()].tobytes() if item.dtype.kind != "O" else repr(item[()])))
        for key, value in sorted(f.attrs.items()):
            items.append(("/", key, repr(value.tolist() if isinstance(value, np.ndarray) else value)))
        f.visititems(visit)
    return items


def damaged_container_run(campaign, klass, container, reference, data, seed):
    extension, expected = reference
    with tempfile.TemporaryDirectory(dir=WORK) as folder:
        path = os.path.join(folder, "damaged.pith")
        with open(path, "wb") as f:
            f.write(data)
        output = os.path.join(folder, "restored." + extension)
        code, _, err = campaign.run(klass, ["restore", path, "-o", output], folder, outputs=[output], keep=[path])
        if code == 0 and content(output, extension) != expected:
            campaign.finding(klass, ["restore", f"<{os.path.basename(container)} damaged, seed {seed}>"],
                             ["exit 0 with output that differs from the undamaged container's"], err, keep=[path])
        campaign.run(klass, ["inspect", path], folder, keep=[path])


def mutate_manifest(manifest, rng):
    """One random change somewhere in the manifest tree."""
    paths = []

    def walk(node, path):
        paths.append(path)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, path + [key])
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, path + [i])
    walk(manifest, [])
    path = rng.choice(paths[1:])
    parent = manifest
    for step in path[:-1]:
        parent = parent[step]
    key = path[-1]
    value = parent[key]
    vocabulary = ["raw", "huffman", "zstd", "dense", "planes", "float-split", "strings", "codebook", "quantized", "sparse", "factored",
                  "linear", "float16", "bfloat16", "low-rank", "tensor-train", "circulant", "separable", "onnx", "keras2-h5", "hdf5",
                  "float32", "int8", "int4", "string", "bool", "float64", "", "x" * 1000, "fc1.weight", "keras:a\x1fb\x1fc"]
    choice = rng.random()
    if isinstance(value, bool):
        parent[key] = not value
    elif isinstance(value, int):
        parent[key] = rng.choice([0, -1, 1, value + 1, value - 1, value * 2, value // 2, 1 << 31, 1 << 32, 1 << 62, (1 << 63) - 1, 64, 4096])
    elif isinstance(value, str):
        if all(c in "0123456789abcdef" for c in value) and value and choice < 0.5:
            digits = list(value)
            digits[rng.randrange(len(digits))] = rng.choice("0123456789abcdefg")
            parent[key] = "".join(digits)
        else:
            parent[key] = rng.choice(vocabulary)
    elif isinstance(value, list) and value:
        operation = rng.randrange(4)
        if operation == 0:
            value.pop(rng.randrange(len(value)))
        elif operation == 1:
            value.append(value[rng.randrange(len(value))])
        elif operation == 2:
            i, j = rng.randrange(len(value)), rng.randrange(len(value))
            value[i], value[j] = value[j], value[i]
        else:
            value.insert(0, value[-1])
    elif isinstance(value, dict) and value:
        value.pop(rng.choice(sorted(value)))
    elif value is None:
        parent[key] = rng.choice([0, "", [], {}])
    if isinstance(parent, dict) and choice > 0.9:
        parent.pop(key, None)


def crc_valid_run(campaign, container, seed):
    rng = random.Random(seed)
    c = Container.read(container)
    try:
        for _ in range(rng.randrange(1, 4)):
            if rng.random() < 0.75:
                mutate_manifest(c.manifest, rng)
            else:
                # Stream bytes changed, the checksum fixed (if the stream table still says where).
                s = rng.choice(c.manifest["streams"])
                if 0 < s["length"] and s["offset"] + s["length"] <= len(c.data):
                    for _ in range(rng.randrange(1, 6)):
                        c.data[s["offset"] + rng.randrange(s["length"])] ^= rng.randrange(1, 256)
        data = c.encoded()
    except Exception:  # a mutation left the manifest without what the next one needs
        return
    format_ = c.manifest.get("source", {}).get("format") if isinstance(c.manifest.get("source"), dict) else None
    extension = "onnx" if format_ == "onnx" else "h5"
    with tempfile.TemporaryDirectory(dir=WORK) as folder:
        path = os.path.join(folder, "hostile.pith")
        with open(path, "wb") as f:
            f.write(data)
        output = os.path.join(folder, "restored." + extension)
        code, _, err = campaign.run("crc-valid-containers", ["restore", path, "-o", output], folder, outputs=[output], keep=[path])
        if code == 0:
            back, _, back_err = campaign.run("crc-valid-containers", ["inspect", output], folder, keep=[path])
            if back != 0:
                campaign.finding("crc-valid-containers", ["restore", path], [f"exit 0, but Pith cannot read what it wrote (inspect exit {back})"],
                                 back_err, keep=[path])
        campaign.run("crc-valid-containers", ["inspect", path], folder, keep=[path])


def model_run(campaign, klass, source, data):
    extension = os.path.splitext(source)[1]
    with tempfile.TemporaryDirectory(dir=WORK) as folder:
        path = os.path.join(folder, "model" + extension)
        with open(path, "wb") as f:
            f.write(data)
        campaign.run(klass, ["inspect", path], folder, keep=[path])
        output = os.path.join(folder, "out.pith")
        campaign.run(klass, ["compress", path, "-o", output, "--allow-empty"], folder, outputs=[output], keep=[path])


def write_onnx_with_external(folder, location):
    """A one-initializer ONNX model whose data lives in `location` (external data)."""
    import onnx
    from onnx import TensorProto, helper

    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 4], data_location=TensorProto.EXTERNAL)
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    graph = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [tensor])
    path = os.path.join(folder, "model.onnx")
    with open(path, "wb") as f:
        f.write(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    return path


def hostile_models(campaign, rng):
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    files = sorted(glob.glob(os.path.join(FIXTURES, "broken", "*")) + glob.glob(os.path.join(FIXTURES, "fuzz", "*", "*")))
    jobs = []
    for path in files:
        if path.endswith(".json") or path.endswith(".bin"):
            continue

        def job(path=path):
            with tempfile.TemporaryDirectory(dir=WORK) as folder:
                campaign.run("hostile-models", ["inspect", path], folder)
                output = os.path.join(folder, "out.pith")
                campaign.run("hostile-models", ["compress", path, "-o", output], folder, outputs=[output])
                campaign.run("hostile-models", ["inspect", "--format", "json", path], folder)
        jobs.append(job)
    campaign.parallel(jobs)
    with tempfile.TemporaryDirectory(dir=WORK) as folder:
        # A tensor name of a million characters.
        big = numpy_helper.from_array(np.ones((2, 2), np.float32), "n" * 1_000_000)
        graph = helper.make_graph([helper.make_node("Identity", [big.name], ["y"])], "g", [],
                                  [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], [big])
        path = os.path.join(folder, "long-name.onnx")
        with open(path, "wb") as f:
            f.write(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
        for format_ in ("text", "csv", "json"):
            campaign.run("hostile-models", ["inspect", "--format", format_, path], folder)
        output = os.path.join(folder, "long.pith")
        campaign.run("hostile-models", ["compress", path, "-o", output], folder, outputs=[output])
        if os.path.exists(output):
            campaign.run("hostile-models", ["inspect", output], folder)
            restored = os.path.join(folder, "long-back.onnx")
            campaign.run("hostile-models", ["restore", output, "-o", restored], folder, outputs=[restored])
    # External data that is not a regular file inside the folder.
    for kind in ("fifo", "dev-zero", "dev-null", "symlink-loop", "symlink-to-fifo", "folder", "symlink-to-dev"):
        with tempfile.TemporaryDirectory(dir=WORK) as folder:
            target = os.path.join(folder, "data.bin")
            if kind == "fifo":
                os.mkfifo(target)
            elif kind == "dev-zero":
                os.symlink("/dev/zero", target)
            elif kind == "dev-null":
                os.symlink("/dev/null", target)
            elif kind == "symlink-loop":
                os.symlink("data.bin", target)
            elif kind == "symlink-to-fifo":
                os.mkfifo(os.path.join(folder, "pipe"))
                os.symlink("pipe", target)
            elif kind == "folder":
                os.mkdir(target)
            else:
                os.mkdir(os.path.join(folder, "sub"))
                os.symlink("/dev/urandom", os.path.join(folder, "sub", "x"))
                target = os.path.join(folder, "sub", "x")
            model = write_onnx_with_external(folder, os.path.relpath(target, folder))
            campaign.run("hostile-models", ["inspect", model], folder)
            output = os.path.join(folder, "out.pith")
            campaign.run("hostile-models", ["compress", model, "-o", output], folder, outputs=[output])
            campaign.run("hostile-models", ["eval", model, "--data", model], folder)


def special_files(campaign):
    lenet = os.path.join(FIXTURES, "lenet-300-100.onnx")
    container = os.path.join(FIXTURES, "golden", "v1.2-lenet-mixed.pith")
    with tempfile.TemporaryDirectory(dir=WORK) as folder:
        fifo = os.path.join(folder, "fifo")
        os.mkfifo(fifo)
        os.symlink("fifo", os.path.join(folder, "to-fifo"))
        os.symlink("missing", os.path.join(folder, "dangling"))
        os.symlink("loop", os.path.join(folder, "loop"))
        os.mkdir(os.path.join(folder, "dir"))
        inputs = [fifo, os.path.join(folder, "to-fifo"), os.path.join(folder, "dangling"), os.path.join(folder, "loop"),
                  os.path.join(folder, "dir"), "/dev/zero", "/dev/null", "/dev/urandom", "/dev/stdin", "/proc/self/mem", "/nonexistent/x.onnx", ""]
        for bad in inputs:
            out = os.path.join(folder, "o.pith")
            campaign.run("special-files", ["inspect", bad], folder)
            campaign.run("special-files", ["compress", bad, "-o", out], folder, outputs=[out])
            restored = os.path.join(folder, "r.onnx")
            campaign.run("special-files", ["restore", bad, "-o", restored], folder, outputs=[restored])
            campaign.run("special-files", ["eval", lenet, "--data", bad], folder)
            campaign.run("special-files", ["eval", lenet, "--data", bad, "--labels", bad], folder)
            campaign.run("special-files", ["verify", lenet, bad], folder, allowed=CONTRACT | {1})
            campaign.run("special-files", ["compress", lenet, "--recipe", bad, "--dry-run"], folder)
            campaign.run("special-files", ["compress", lenet, "--calibration", bad, "--prune", "0.5", "--dry-run"], folder)
        # Outputs that are not writable files. Devices are nodes made here (never the system's own:
        # a Pith that replaced its output's device with a file must not take /dev/null with it).
        devices = []
        for name, minor in (("null", 3), ("full", 7)):
            try:
                os.mknod(os.path.join(folder, name), 0o666 | stat.S_IFCHR, os.makedev(1, minor))
                devices.append(os.path.join(folder, name))
            except OSError:
                pass
        existing = os.path.join(folder, "existing.pith")
        shutil.copyfile(container, existing)
        outputs = [fifo, os.path.join(folder, "to-fifo"), os.path.join(folder, "dir"), os.path.join(folder, "missing-folder", "o.pith"),
                   os.path.join(folder, "dangling"), os.path.join(folder, "loop"), "", "/", existing] + devices
        for bad in outputs:
            for force in ([], ["--force"]):
                campaign.run("special-files", ["compress", lenet, "-o", bad] + force, folder)
                campaign.run("special-files", ["restore", container, "-o", bad] + force, folder)
                for device in devices + [fifo]:
                    if not (stat.S_ISCHR(os.lstat(device).st_mode) or stat.S_ISFIFO(os.lstat(device).st_mode)):
                        campaign.finding("special-files", ["-o", bad] + force, [f"{os.path.basename(device)} was replaced by a file"])
                        os.remove(device)
                        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3)) if "fifo" not in device else os.mkfifo(device)
        # Output into a folder that is a file, and an output that is the input.
        campaign.run("special-files", ["compress", lenet, "-o", os.path.join(container, "x.pith")], folder)
        copy = os.path.join(folder, "copy.pith")
        shutil.copyfile(container, copy)
        campaign.run("special-files", ["restore", copy, "-o", copy, "--force"], folder)
        if open(copy, "rb").read() != open(container, "rb").read():
            campaign.finding("special-files", ["restore", copy, "-o", copy, "--force"], ["the input was overwritten"])


def huge_names(campaign):
    lenet = os.path.join(FIXTURES, "lenet-300-100.onnx")
    container = os.path.join(FIXTURES, "golden", "v1.2-lenet-mixed.pith")
    with tempfile.TemporaryDirectory(dir=WORK) as folder:
        for length in (200, 255, 256, 300, 5000):
            name = "m" * (length - 5) + ".pith"
            out = os.path.join(folder, name)
            campaign.run("huge-names", ["compress", lenet, "-o", out, "--force"], folder, outputs=[out] if length > 255 else [])
            restored = os.path.join(folder, "r" * (length - 5) + ".onnx")
            campaign.run("huge-names", ["restore", container, "-o", restored, "--force"], folder, outputs=[restored] if length > 255 else [])
            campaign.run("huge-names", ["inspect", os.path.join(folder, "i" * length)], folder)
        deep = folder
        for _ in range(40):
            deep = os.path.join(deep, "d" * 200)
        campaign.run("huge-names", ["inspect", os.path.join(deep, "x.onnx")], folder)
        campaign.run("huge-names", ["compress", lenet, "-o", os.path.join(deep, "x.pith")], folder)
        campaign.run("huge-names", ["restore", container, "-o", os.path.join(deep, "x.onnx")], folder)


def kill_nine(campaign, rng, runs):
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    folder = os.path.join(WORK, "kill-9")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    values = np.random.default_rng(16).standard_normal((4096, 4096)).astype(np.float32)
    weight = numpy_helper.from_array(values, "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4096])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], [weight])
    model = os.path.join(folder, "big.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), model)
    reference = os.path.join(folder, "reference.pith")
    subprocess.run([campaign.pith, "compress", model, "-o", reference, "--quantize", "int8"], check=True, capture_output=True)
    restored_reference = os.path.join(folder, "reference.onnx")
    subprocess.run([campaign.pith, "restore", reference, "-o", restored_reference], check=True, capture_output=True)
    durations = {}
    for name, command in (("compress", ["compress", model, "-o", "{out}", "--quantize", "int8"]), ("restore", ["restore", reference, "-o", "{out}"])):
        start = time.monotonic()
        subprocess.run([campaign.pith] + [a.replace("{out}", os.path.join(folder, "timing")) for a in command], capture_output=True)
        durations[name] = time.monotonic() - start
        os.remove(os.path.join(folder, "timing"))
    for i in range(runs):
        name, command = rng.choice([("compress", ["compress", model, "-o", "{out}", "--quantize", "int8"]), ("restore", ["restore", reference, "-o", "{out}"])])
        run_folder = os.path.join(folder, f"run-{i}")
        os.makedirs(run_folder)
        out = os.path.join(run_folder, "out.pith" if name == "compress" else "out.onnx")
        expected = open(reference if name == "compress" else restored_reference, "rb").read()
        arguments = [a.replace("{out}", out) for a in command]
        process = subprocess.Popen([campaign.pith] + arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0, durations[name] * 1.1))
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        with campaign.lock:
            campaign.runs["kill-9"] += 1
            campaign.codes["kill-9"]["killed" if process.returncode == -9 else process.returncode] += 1
        if os.path.exists(out) and open(out, "rb").read() != expected:
            campaign.finding("kill-9", arguments, ["a killed run left a partial output at the destination"])
        # The same command again: a stale temporary file neither blocks it nor stays.
        code, _, err = campaign.run("kill-9", arguments + (["--force"] if os.path.exists(out) else []), run_folder, outputs=[out])
        if code == 0 and open(out, "rb").read() != expected:
            campaign.finding("kill-9", arguments, ["the run after a kill wrote different bytes"], err)
        leftovers = [n for n in os.listdir(run_folder) if ".tmp-" in n]
        if leftovers:
            campaign.finding("kill-9", arguments, [f"stale temporary files stay after the next run: {leftovers}"])
        shutil.rmtree(run_folder)
    shutil.rmtree(folder, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pith", required=True)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the number of random runs")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--classes", default="all")
    parser.add_argument("--json", help="write the summary here")
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    campaign = Campaign(os.path.abspath(args.pith), args.seed, args.workers)
    rng = random.Random(args.seed)
    wanted = set(args.classes.split(",")) if args.classes != "all" else None
    n = lambda count: max(1, int(count * args.scale))  # noqa: E731

    def want(klass):
        return wanted is None or klass in wanted

    started = time.monotonic()
    reported = set()

    def report_done():
        for klass in list(campaign.runs):
            if klass in reported:
                continue
            reported.add(klass)
            codes = dict(sorted(((str(k), v) for k, v in campaign.codes[klass].items())))
            print(f"[{(time.monotonic() - started) / 60:.1f} min] {klass}: {campaign.runs[klass]} runs, exit codes {codes}, "
                  f"slowest {campaign.slowest[klass]:.2f} s, {len(campaign.findings[klass])} findings", flush=True)
    models = [(m, open(m, "rb").read()) for m in sources()]
    if want("model-flips"):
        jobs = []
        for i in range(n(1200)):
            source, data = rng.choice(models)
            seed = rng.getrandbits(32)
            jobs.append(lambda s=source, d=data, seed=seed: model_run(campaign, "model-flips", s, flip(d, random.Random(seed), random.Random(seed).randrange(1, 9))))
        campaign.parallel(jobs)
    report_done()
    if want("model-truncations"):
        jobs = []
        for i in range(n(500)):
            source, data = rng.choice(models)
            cut = rng.randrange(len(data))
            jobs.append(lambda s=source, d=data[:cut]: model_run(campaign, "model-truncations", s, d))
        campaign.parallel(jobs)
    report_done()
    containers_folder = os.path.join(WORK, "containers")
    os.makedirs(containers_folder)
    references = make_containers(campaign, containers_folder) if any(want(k) for k in ("container-flips", "container-truncations", "crc-valid-containers")) else {}
    containers = sorted(references)
    if want("container-flips"):
        jobs = []
        for i in range(n(1500)):
            container = rng.choice(containers)
            seed = rng.getrandbits(32)
            data = flip(open(container, "rb").read(), random.Random(seed), random.Random(seed).randrange(1, 9))
            jobs.append(lambda c=container, d=data, seed=seed: damaged_container_run(campaign, "container-flips", c, references[c], d, seed))
        campaign.parallel(jobs)
    report_done()
    if want("container-truncations"):
        jobs = []
        for i in range(n(500)):
            container = rng.choice(containers)
            data = open(container, "rb").read()
            seed = rng.getrandbits(32)
            jobs.append(lambda c=container, d=data[:random.Random(seed).randrange(len(data))], seed=seed:
                        damaged_container_run(campaign, "container-truncations", c, references[c], d, seed))
        campaign.parallel(jobs)
    report_done()
    if want("crc-valid-containers"):
        # Manifests to change: containers in the whole-file form have none (their flips and truncations
        # are in the classes above).
        bases = [c for c in containers if not whole_file(c)]
        campaign.parallel([lambda c=rng.choice(bases), seed=rng.getrandbits(32): crc_valid_run(campaign, c, seed) for _ in range(n(1500))])
        corpus = json.load(open(os.path.join(FIXTURES, "broken-containers", "expected.json")))
        def corpus_job(name, entry):
            with tempfile.TemporaryDirectory(dir=WORK) as folder:
                output = os.path.join(folder, entry["output"])
                path = os.path.join(FIXTURES, "broken-containers", name)
                code, _, err = campaign.run("crc-valid-containers", ["restore", path, "-o", output], folder, outputs=[output])
                if code != entry["exit_code"]:
                    campaign.finding("crc-valid-containers", ["restore", path], [f"exit {code}, documented {entry['exit_code']}"], err)
                campaign.run("crc-valid-containers", ["inspect", path], folder)
        campaign.parallel([lambda name=name, entry=entry: corpus_job(name, entry) for name, entry in sorted(corpus.items())])
    report_done()
    if want("hostile-models"):
        hostile_models(campaign, rng)
    report_done()
    if want("special-files"):
        special_files(campaign)
    report_done()
    if want("huge-names"):
        huge_names(campaign)
    report_done()
    if want("kill-9"):
        kill_nine(campaign, rng, n(60))

    report_done()
    summary = {"pith": args.pith, "seed": args.seed, "scale": args.scale, "minutes": round((time.monotonic() - started) / 60, 1), "classes": {}}
    total = 0
    for klass in campaign.runs:
        total += campaign.runs[klass]
        codes = dict(sorted(((str(k), v) for k, v in campaign.codes[klass].items())))
        summary["classes"][klass] = {"runs": campaign.runs[klass], "exit_codes": codes, "slowest_seconds": round(campaign.slowest[klass], 2),
                                     "findings": campaign.findings[klass], "outcomes": campaign.outcomes.get(klass, [])}
        print(f"{klass}: {campaign.runs[klass]} runs, exit codes {codes}, slowest {campaign.slowest[klass]:.2f} s, "
              f"{len(campaign.findings[klass])} findings")
        for finding in campaign.findings[klass][:10]:
            print(f"  - {' '.join(finding['command'])[:200]}: {'; '.join(finding['problems'])}\n    {finding['stderr'][-300:].strip()}")
    print(f"total: {total} runs in {summary['minutes']} min, {sum(len(v) for v in campaign.findings.values())} findings")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    sys.exit(1 if any(campaign.findings.values()) else 0)


if __name__ == "__main__":
    main()

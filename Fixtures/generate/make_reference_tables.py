"""Reference tables computed with numpy and ml_dtypes, for tests of Pith's own conversions.

Fixtures/reference/float-rounding.json: float32 bit patterns with their float16 and bfloat16
bit patterns under round-to-nearest-even (numpy's astype(float16), ml_dtypes' bfloat16).
Covers zeros, subnormals of both formats, exact halfway cases, the largest finite values,
overflow, infinities, NaN, and random values across the exponent range.
Needs: numpy, ml_dtypes.
"""
import json
import os
import sys

import ml_dtypes
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import FIXTURES  # noqa: E402

rng = np.random.default_rng(16)
special = [0.0, -0.0, 1.0, -1.0, 65504.0, 65519.99, 65520.0, -65520.0, 1e10, -1e10, 2.0 ** -24, 2.0 ** -25,
           2.0 ** -25 * 1.0000001, 2.0 ** -26, 2.0 ** -14, 2.0 ** -14 * (1 - 2 ** -11), 3 * 2.0 ** -25, 6e-8,
           1.00048828125, 1.00146484375, 1.0009765625, np.inf, -np.inf, 3.3895314e38, 1.1754944e-38, 1e-45]
values = np.array(special, dtype=np.float32)
halfway16 = (np.arange(1024, 2048, 37, dtype=np.uint32) << 13 | 0x1000) + (np.uint32(127) << 23)
halfway16 = np.concatenate([halfway16, halfway16 + np.uint32(1), halfway16 - np.uint32(1)]).view(np.float32)
halfway_bf = (rng.integers(0, 2 ** 16, 200, dtype=np.uint32) << 16 | 0x8000).view(np.float32)
random = (rng.normal(size=2000) * 2.0 ** rng.integers(-30, 20, 2000)).astype(np.float32)
values = np.concatenate([values, halfway16, halfway_bf, random, -random[:200]])
values = values[np.isfinite(values) | np.isinf(values)]
with np.errstate(over="ignore"):
    f16 = values.astype(np.float16).view(np.uint16)
bf16 = values.astype(ml_dtypes.bfloat16).view(np.uint16)
rows = [[int(b), int(h), int(g)] for b, h, g in zip(values.view(np.uint32), f16, bf16)]
os.makedirs(os.path.join(FIXTURES, "reference"), exist_ok=True)
with open(os.path.join(FIXTURES, "reference", "float-rounding.json"), "w") as f:
    json.dump({"columns": ["float32_bits", "float16_bits", "bfloat16_bits"], "rows": rows}, f)
print(f"wrote {len(rows)} rows")

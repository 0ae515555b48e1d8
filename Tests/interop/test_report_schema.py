"""`pith inspect --format json` output validates against Schemas/inspect-report.schema.json."""
import glob
import json
import os

import jsonschema
import pytest

from conftest import ROOT, inspect_json

SCHEMA = json.load(open(os.path.join(ROOT, "Schemas", "inspect-report.schema.json")))
FIXTURES = sorted(glob.glob(os.path.join(ROOT, "Fixtures", "**", "*.onnx"), recursive=True)
                  + glob.glob(os.path.join(ROOT, "Fixtures", "**", "*.h5"), recursive=True))
# Broken models and the inputs fuzzing found are refused on purpose (their own tests check how).
FIXTURES = [f for f in FIXTURES if "/broken/" not in f and "/fuzz/" not in f]


def test_schema_is_valid():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: os.path.relpath(p, ROOT))
def test_report_validates(pith, path):
    jsonschema.validate(inspect_json(path), SCHEMA, cls=jsonschema.Draft202012Validator)

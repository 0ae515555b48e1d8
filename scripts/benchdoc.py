"""Shared by the benchmark scripts: writing a measured section into docs/benchmarks.md."""
import os

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))


def replace_section(name, body):
    """Replaces the text between `<!-- name:begin -->` and `<!-- name:end -->` with `body`."""
    doc = os.path.join(ROOT, "docs", "benchmarks.md")
    text = open(doc).read()
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    start, stop = text.index(begin), text.index(end) + len(end)
    with open(doc, "w") as f:
        f.write(text[:start] + f"{begin}\n{body}\n{end}" + text[stop:])

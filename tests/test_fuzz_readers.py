"""The readers against mutated files: the fast subset of scripts/fuzz_readers.py (whose full run
mutates 10,000 files per format): no crash, hang, uncaught error or code run from a file."""
from __future__ import annotations

import functools
import importlib.util
import os

import pytest

CASES = 80  # per format; the script's full run: 10,000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@functools.lru_cache(maxsize=1)
def _fuzzer():
    spec = importlib.util.spec_from_file_location(
        "fuzz_readers", os.path.join(ROOT, "scripts", "fuzz_readers.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("fmt", ["pdmodel", "pdiparams", "info", "pdparams", "pdopt", "json"])
def test_mutated_files_fail_cleanly(fmt):
    fuzz = _fuzzer()
    counts = fuzz.fuzz(CASES, seed=12345, formats=(fmt,), workers=1, timeout=120)  # a busy machine
    c = counts[fmt]
    report = fuzz.report(counts, 0)
    assert c["cases"] == CASES, report
    assert fuzz.failures(counts) == 0, report
    assert c["clean_error"] > 0 and c["loads_and_runs"] > 0, report  # both kinds happen

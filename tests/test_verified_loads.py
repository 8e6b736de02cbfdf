"""A load of files whose IR was verified before skips the verifier (plan_cache.Verified):
the same program, weights file, settings and code verify again only when one of them
changed, and the outputs stay Paddle's."""
from __future__ import annotations

import os
import shutil

import pytest

from conftest import assert_all_close, fixture_cases


@pytest.fixture
def verifications(tmp_path, monkeypatch):
    """The number of verifier runs so far, in a cache directory of this test."""
    import tostatic.passes.manager as manager
    from tostatic.runtime import warm_start

    monkeypatch.setenv("TOSTATIC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(warm_start, "KEPT", 0)  # no warm start record: every load is full
    monkeypatch.delenv("TOSTATIC_PLAN_CACHE", raising=False)
    calls = []
    real = manager.verify
    monkeypatch.setattr(manager, "verify", lambda module: calls.append(1) or real(module))
    return calls


def _copy(name: str, to) -> tuple[str, str, dict, list]:
    ((d, feeds, expected),) = fixture_cases(name)
    for f in ("model.pdmodel", "model.pdiparams"):
        shutil.copy(d / f, to / f)
    return str(to / "model.pdmodel"), str(to / "model.pdiparams"), feeds, expected


def _run(model: str, params: str, feeds: dict, optimize: bool = True) -> list:
    import tostatic

    config = tostatic.inference.Config(model, params)
    config.switch_ir_optim(optimize)
    predictor = tostatic.inference.create_predictor(config)
    return predictor.run([feeds[n] for n in predictor.get_input_names()])


def test_a_second_load_skips_the_verifier_and_matches_paddle(tmp_path, verifications):
    model, params, feeds, expected = _copy("small_cnn", tmp_path)
    assert_all_close(_run(model, params, feeds), expected)
    first = len(verifications)
    assert first >= 2  # the load pipeline's and the inference pipeline's
    assert_all_close(_run(model, params, feeds), expected)
    assert len(verifications) == first  # verified before: not again
    # other settings (the passes off) are another load: verified once, then trusted
    _run(model, params, feeds, optimize=False)
    assert len(verifications) > first
    again = len(verifications)
    assert_all_close(_run(model, params, feeds, optimize=False), expected)
    assert len(verifications) == again


def test_a_changed_file_or_setting_verifies_again(tmp_path, verifications, monkeypatch):
    model, params, feeds, expected = _copy("small_cnn", tmp_path)
    _run(model, params, feeds)
    n = len(verifications)
    st = os.stat(params)  # the weights file rewritten (its modification time)
    os.utime(params, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert_all_close(_run(model, params, feeds), expected)
    assert len(verifications) > n
    n = len(verifications)
    monkeypatch.setenv("TOSTATIC_NUM_THREADS", "1")  # a setting the passes may read
    _run(model, params, feeds)
    assert len(verifications) > n
    n = len(verifications)
    (tmp_path / "mlp").mkdir()
    other, other_params, other_feeds, other_expected = _copy("mlp", tmp_path / "mlp")
    assert_all_close(_run(other, other_params, other_feeds), other_expected)
    assert len(verifications) > n  # another program


def test_with_the_cache_off_every_load_verifies(tmp_path, verifications, monkeypatch):
    monkeypatch.setenv("TOSTATIC_PLAN_CACHE", "0")
    model, params, feeds, expected = _copy("small_cnn", tmp_path)
    _run(model, params, feeds)
    n = len(verifications)
    _run(model, params, feeds)
    assert len(verifications) == 2 * n
    assert not (tmp_path / "cache" / "verified").exists()


def test_marks_are_few_and_an_unwritable_cache_still_loads(tmp_path, verifications,
                                                          monkeypatch):
    from tostatic.runtime import plan_file

    monkeypatch.setattr(plan_file, "VERIFIED_KEPT", 2)
    model, params, feeds, expected = _copy("small_cnn", tmp_path)
    for optimize in (True, False, True):
        _run(model, params, feeds, optimize)
    marks = tmp_path / "cache" / "verified"
    assert len(list(marks.iterdir())) == 2
    shutil.rmtree(marks)
    marks.write_bytes(b"")  # no directory can be made there: nothing is marked
    for _ in range(2):
        n = len(verifications)
        assert_all_close(_run(model, params, feeds), expected)
        assert len(verifications) > n

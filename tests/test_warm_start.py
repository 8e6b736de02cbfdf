"""The warm start (runtime/warm_start.py): a predictor built from an earlier start's record of
its bound plan gives that start's outputs bit for bit (and Paddle's within the usual
tolerance), imports no xDSL, op class, pass or parser, behaves as a loaded model through the
whole predictor API, and is never used when the files, the settings, the thread count or
the record itself changed (the full load runs, and writes the record anew)."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

from conftest import FIXTURES, assert_all_close, fixture_cases

pytestmark = pytest.mark.usefixtures("compiled_kernels")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache directory of this test; the thread count as it was, after it."""
    from tostatic.runtime import threads

    monkeypatch.setenv("TOSTATIC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TOSTATIC_PLAN_CACHE", raising=False)
    before = threads.current()
    yield tmp_path / "cache"
    threads.set_num_threads(before)


def _copy(name: str, tmp_path) -> str:
    """A Paddle fixture's files, copied (their own mtimes); the prefix."""
    prefix = tmp_path / name
    for suffix in (".pdmodel", ".pdiparams"):
        shutil.copy(FIXTURES / name / f"model{suffix}", f"{prefix}{suffix}")
    return str(prefix)


def _predictor(prefix: str, threads: int | None = None, optim: bool = True):
    import tostatic

    config = tostatic.inference.Config(prefix + ".pdmodel", prefix + ".pdiparams")
    if threads is not None:
        config.set_cpu_math_library_num_threads(threads)
    config.switch_ir_optim(optim)
    return tostatic.inference.create_predictor(config)


def _warm(predictor) -> bool:
    from tostatic.runtime.warm_start import WarmModel

    return isinstance(predictor._model, WarmModel)


def _run(predictor, feeds: dict) -> list:
    return predictor.run([feeds[n] for n in predictor.get_input_names()])


@pytest.mark.parametrize("name", ["small_cnn", "mlp", "simple_net"])
def test_a_warm_start_gives_the_full_loads_bits_and_paddles_outputs(name, tmp_path, cache):
    prefix = _copy(name, tmp_path)
    ((_, feeds, expected),) = fixture_cases(name)
    cold = _predictor(prefix)
    assert not _warm(cold)
    want = _run(cold, feeds)
    warm = _predictor(prefix)
    assert _warm(warm)
    got = _run(warm, feeds)
    assert_all_close(got, expected)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and np.array_equal(g, w)
    # and through the handles, twice (the second run is the bound plan's hot one)
    for _ in range(2):
        for n in warm.get_input_names():
            warm.get_input_handle(n).copy_from_cpu(feeds[n])
        assert warm.run() is None
        outs = [warm.get_output_handle(n).copy_to_cpu() for n in warm.get_output_names()]
        assert all(np.array_equal(o, w) for o, w in zip(outs, want))
    assert _warm(warm) and warm._model._full is None  # no full load happened


@pytest.mark.parametrize("name", ["depthwise_cnn", "embed_ln"])
def test_a_plan_with_compiled_elementwise_steps_is_not_recorded(name, tmp_path, cache):
    """A compiled kernel of an elementwise op, softmax or pooling is made from the op itself
    (codegen/kernels.py): such a plan keeps the full load, with the same outputs."""
    prefix = _copy(name, tmp_path)
    ((_, feeds, expected),) = fixture_cases(name)
    want = _run(_predictor(prefix), feeds)
    p = _predictor(prefix)
    assert not _warm(p) and not _record(cache)
    got = _run(p, feeds)
    assert_all_close(got, expected)
    assert all(np.array_equal(g, w) for g, w in zip(got, want))


def _save_resnet_like(prefix: str) -> np.ndarray:
    """A small CNN binding what ResNet binds (im2col, Winograd, packed 1x1 and classifier
    GEMMs, max and mean pooling, a flatten view); its eager output for `_x()`."""
    import tostatic
    from tostatic.static import InputSpec

    nn = tostatic.nn
    tostatic.seed(0)
    model = nn.Sequential(
        nn.Conv2D(3, 16, 3, stride=2, padding=1), nn.BatchNorm2D(16), nn.ReLU(),
        nn.MaxPool2D(3, stride=2, padding=1),
        nn.Conv2D(16, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2D(16, 32, 1), nn.AdaptiveAvgPool2D(1), nn.Flatten(), nn.Linear(32, 10))
    model.eval()
    tostatic.jit.save(model, prefix, input_spec=[InputSpec([None, 3, 40, 40], "float32")])
    return model(tostatic.to_tensor(_x())).numpy()


def _x() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((1, 3, 40, 40)).astype(np.float32)


def test_a_warm_start_imports_no_ir(tmp_path, cache):
    """In a fresh process: create the predictor, run once; xDSL, the op classes, the passes,
    the dialects and the parsers were never imported."""
    prefix = str(tmp_path / "net")
    eager = _save_resnet_like(prefix)
    np.save(tmp_path / "x.npy", _x())
    cold = _predictor(prefix).run([_x()])[0]  # writes the record
    np.testing.assert_allclose(cold, eager, rtol=1e-4, atol=1e-5)
    script = f"""
import sys, numpy as np
import tostatic
c = tostatic.inference.Config({prefix + '.pdmodel'!r}, {prefix + '.pdiparams'!r})
p = tostatic.inference.create_predictor(c)
y = p.run([np.load({str(tmp_path / 'x.npy')!r})])[0]
np.save({str(tmp_path / 'y.npy')!r}, y)
heavy = [m for m in sys.modules if m.split('.')[0] == 'xdsl' or m.startswith(
    ('tostatic.ops', 'tostatic.passes', 'tostatic.dialects', 'tostatic.serialization'))]
print(type(p._model).__name__, len(heavy), heavy[:5])
"""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    assert out == ["WarmModel", "0", "[]"]
    assert np.array_equal(np.load(tmp_path / "y.npy"), cold)


def _record(cache) -> list:
    return sorted((cache / "warm").glob("*.plan"))


def test_changed_files_settings_and_threads_are_not_warm(tmp_path, cache, monkeypatch):
    prefix = _copy("small_cnn", tmp_path)
    ((_, feeds, expected),) = fixture_cases("small_cnn")
    _run(_predictor(prefix, threads=1), feeds)
    assert _warm(_predictor(prefix, threads=1))
    # another thread count, another setting, switch_ir_optim(False): each a full load
    # (which records its own plan: warm the next time)
    p = _predictor(prefix, threads=2)
    assert not _warm(p)
    assert_all_close(_run(p, feeds), expected)
    p = _predictor(prefix, threads=1, optim=False)
    assert not _warm(p)
    assert_all_close(_run(p, feeds), expected)
    monkeypatch.setenv("TOSTATIC_WARM_TEST_SETTING", "1")
    assert not _warm(_predictor(prefix, threads=1))
    monkeypatch.delenv("TOSTATIC_WARM_TEST_SETTING")
    assert _warm(_predictor(prefix, threads=2))
    p = _predictor(prefix, threads=1, optim=False)
    assert _warm(p)
    assert_all_close(_run(p, feeds), expected)
    # the params file touched (same bytes, another mtime): a full load, then warm again
    st = os.stat(prefix + ".pdiparams")
    os.utime(prefix + ".pdiparams", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    p = _predictor(prefix, threads=1)
    assert not _warm(p)
    assert_all_close(_run(p, feeds), expected)
    assert _warm(_predictor(prefix, threads=1))
    # other weights in the params file: the outputs follow them
    data = bytearray(open(prefix + ".pdiparams", "rb").read())
    cold = _run(_predictor(prefix, threads=1), feeds)
    data[-4:] = np.float32(7.5).tobytes()  # the last weight's last element
    with open(prefix + ".pdiparams", "wb") as f:
        f.write(data)
    p = _predictor(prefix, threads=1)
    assert not _warm(p)
    changed = _run(p, feeds)
    assert not np.array_equal(changed[0], cold[0])
    p = _predictor(prefix, threads=1)
    assert _warm(p)
    assert np.array_equal(_run(p, feeds)[0], changed[0])
    # another program in the model file: its own outputs
    _copy("depthwise_cnn", tmp_path)
    shutil.copy(tmp_path / "depthwise_cnn.pdmodel", prefix + ".pdmodel")
    shutil.copy(tmp_path / "depthwise_cnn.pdiparams", prefix + ".pdiparams")
    ((_, feeds2, expected2),) = fixture_cases("depthwise_cnn")
    p = _predictor(prefix, threads=1)
    assert not _warm(p)
    assert_all_close(_run(p, feeds2), expected2)


@pytest.mark.parametrize("how", ["data", "index", "truncated", "garbage"])
def test_a_damaged_record_is_ignored_and_rewritten(how, tmp_path, cache):
    prefix = _copy("small_cnn", tmp_path)
    ((_, feeds, expected),) = fixture_cases("small_cnn")
    want = _run(_predictor(prefix), feeds)
    (path,) = _record(cache)
    data = bytearray(path.read_bytes())
    _, length, _ = struct.unpack_from("<8sQI", data)
    index = json.loads(bytes(data[20:20 + length]))
    if how == "data":  # one bit of a weight
        data[index["entries"][1]["arrays"][0]["offset"] + 2] ^= 0x04
    elif how == "index":
        data[30] ^= 0x01
    elif how == "truncated":
        data = data[:len(data) - 100]
    else:
        data = bytearray(b"not a plan file at all")
    path.write_bytes(bytes(data))
    p = _predictor(prefix)
    got = _run(p, feeds)
    assert np.array_equal(got[0], want[0])
    assert_all_close(got, expected)
    if how in ("data",):  # opened, then refused at bind: the full load ran
        assert p._model._full is not None
    else:
        assert not _warm(p)
    # written anew: the next start is warm
    p = _predictor(prefix)
    assert _warm(p) and np.array_equal(_run(p, feeds)[0], want[0])


def test_another_input_shape_after_a_warm_start_loads_the_model(tmp_path, cache, capfd):
    from tostatic.ir.errors import FeedError

    prefix = _copy("small_cnn", tmp_path)
    ((_, feeds, expected),) = fixture_cases("small_cnn")
    x = feeds["x"]
    x3 = np.concatenate([x, x[:1] * 0.5, x], axis=0)
    cold = _predictor(prefix)
    want1, want3 = _run(cold, feeds)[0], cold.run([x3])[0]
    p = _predictor(prefix)
    assert _warm(p) and np.array_equal(p.run([x])[0], want1)
    assert p._model._full is None
    assert np.array_equal(p.run([x3])[0], want3)  # the full load, now
    assert p._model._full is not None
    assert np.array_equal(p.run([x])[0], want1)
    # feed errors name the input, as the full load's
    p = _predictor(prefix)
    with pytest.raises(FeedError, match="'x'"):
        p.run([x.astype(np.float64)])
    # a profile through the warm plan
    import tostatic

    config = tostatic.inference.Config(prefix + ".pdmodel", prefix + ".pdiparams")
    config.enable_profile()
    p = tostatic.inference.create_predictor(config)
    assert _warm(p) and np.array_equal(p.run([x])[0], want1)
    table = p._model.plan.profile.table()
    assert "pd.fused_conv2d" in table and "(1 runs)" in table
    assert "slowest steps" in table and f"{list(x.shape)} -> [" in table
    assert p._model.plan_store.misses == 0 and p._model.plan_store.hits > 0


def test_the_epilogue_rules_are_the_activation_ops_own():
    """ir/epilogue_rules.py's steps are the ops' SCALAR rules with their full attributes,
    and every op name the bind code dispatches on is a registered op."""
    import tostatic.ops  # noqa: F401
    from tostatic.ir.epilogue_rules import EPILOGUE_STEPS
    from tostatic.ir.opdef import REGISTRY
    from tostatic.ops.fused import EPILOGUE_ACTIVATIONS
    from tostatic.runtime.bind_folding import SHAPE_ONLY
    from tostatic.runtime.kernels import FACTORIES
    from tostatic.runtime.views import VIEWS

    assert EPILOGUE_ACTIVATIONS.keys() == EPILOGUE_STEPS.keys()
    for step, (op, attrs, rule) in EPILOGUE_STEPS.items():
        cls, want = EPILOGUE_ACTIVATIONS[step]
        assert cls.name == op and want == attrs and cls.SCALAR is rule
        assert cls.normalize_attrs(dict(attrs)) == attrs
    for name in [*FACTORIES, *VIEWS, *SHAPE_ONLY]:
        assert name in REGISTRY, name


def _save_elementwise_net(prefix: str) -> None:
    """A GEMM and a fused elementwise tree after it (what BERT's embeddings make): the tree's
    compiled kernel is recorded as its expression (runtime/warm_kernels.py)."""
    import tostatic
    from tostatic.static import InputSpec

    nn = tostatic.nn

    class Net(nn.Layer):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 16)

        def forward(self, x, y):
            return tostatic.tanh(self.fc(x) * 0.5 + y) * nn.functional.sigmoid(y) - y * y

    tostatic.seed(0)
    net = Net()
    net.eval()
    tostatic.jit.save(net, prefix, input_spec=[InputSpec([None, 16], "float32"),
                                               InputSpec([None, 16], "float32")])


def test_a_compiled_elementwise_tree_is_recorded_as_its_expression(tmp_path, cache):
    prefix = str(tmp_path / "ew")
    _save_elementwise_net(prefix)
    rng = np.random.default_rng(0)
    x, y = (rng.standard_normal((3, 16)).astype(np.float32) for _ in range(2))
    cold = _predictor(prefix)
    want = cold.run([x, y])[0]
    kinds = next(iter(cold._model.plan.bound.values())).kinds
    assert "compiled" in kinds
    warm = _predictor(prefix)
    assert _warm(warm) and np.array_equal(warm.run([x, y])[0], want)
    assert warm._model._full is None
    off = _predictor(prefix, optim=False)  # the ops one by one, numpy's
    np.testing.assert_allclose(want, off.run([x, y])[0], rtol=1e-5, atol=1e-6)


def test_a_recorded_kernel_falls_back_as_codegens():
    """Given other dtypes than it was built for, a recorded single op's kernel runs the
    op's numpy kernel; a fused tree's (whose numpy kernel is its region) asks for the
    model (NeedsModel)."""
    from tostatic.ir import scalar_expr as se
    from tostatic.runtime.warm_kernels import NeedsModel, decode, encode, kernel

    a, b = se.arg(0, "float32"), se.arg(1, "float32")
    expr = se.tanh(a * 0.5 + b) * b - 2.0
    assert decode(encode(expr)) == expr
    recipe = {"expr": encode(expr), "dtypes": ["float32", "float32"], "fused": False}
    x, y = np.linspace(-2, 2, 12, dtype=np.float32), np.full(12, 0.25, np.float32)
    got = kernel(recipe, lambda arrays: ["eager"])(x, y)[0]
    np.testing.assert_allclose(got, np.tanh(x * 0.5 + y) * y - 2.0, rtol=1e-6, atol=1e-6)
    assert kernel(recipe, lambda arrays: ["eager"])(x.astype(np.float64), y) == ["eager"]
    with pytest.raises(NeedsModel):
        kernel({**recipe, "fused": True}, None)(x.astype(np.float64), y)


@pytest.mark.parametrize("how", ["renamed", "in_place"])
def test_params_replaced_with_the_same_size_and_mtime_are_not_warm(how, tmp_path, cache):
    """Other weights given the old file's size and mtime (`cp -p`, `rsync -t`, a tar
    extracted: a fine-tuned copy of the same model has the same size) are still seen: the
    record never runs the old weights."""
    prefix = _copy("small_cnn", tmp_path)
    ((_, feeds, _),) = fixture_cases("small_cnn")
    old = _run(_predictor(prefix), feeds)
    assert _warm(_predictor(prefix))
    params = prefix + ".pdiparams"
    st = os.stat(params)
    data = bytearray(open(params, "rb").read())
    data[-4:] = np.float32(7.5).tobytes()  # the last weight's last element
    target = params + ".new" if how == "renamed" else params
    with open(target, "wb") as f:
        f.write(data)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    if how == "renamed":
        os.replace(target, params)
    assert os.stat(params).st_size == st.st_size
    assert os.stat(params).st_mtime_ns == st.st_mtime_ns
    p = _predictor(prefix)
    assert not _warm(p)
    got = _run(p, feeds)
    assert not np.array_equal(got[0], old[0])
    p = _predictor(prefix)  # the new weights' record
    assert _warm(p) and np.array_equal(_run(p, feeds)[0], got[0])


def test_a_used_record_is_kept_before_newer_unused_ones(tmp_path, cache):
    """Records hold their model's weights: KEPT of them, the least recently *used* removed
    (a record every start reads is not evicted by newer ones never read again)."""
    from tostatic.runtime import plan_file, warm_start

    prefix = _copy("small_cnn", tmp_path)
    ((_, feeds, _),) = fixture_cases("small_cnn")
    want = _run(_predictor(prefix), feeds)
    (mine,) = _record(cache)
    st = os.stat(mine)
    os.utime(mine, ns=(st.st_atime_ns, st.st_mtime_ns - 100 * 10**9))
    for k in range(warm_start.KEPT - 1):  # others', written after it
        other = cache / "warm" / f"other{k}.plan"
        other.write_bytes(b"")
        os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns - 50 * 10**9))
    p = _predictor(prefix)
    assert _warm(p) and np.array_equal(_run(p, feeds)[0], want[0])  # used now
    # its new mtime keeps it trusted (the checked mark followed): not read through again
    assert plan_file._read_index(mine)[2] is None
    mlp = _copy("mlp", tmp_path)  # one more record: one of the others goes
    ((_, mlp_feeds, _),) = fixture_cases("mlp")
    _run(_predictor(mlp), mlp_feeds)
    assert mine.exists() and len(_record(cache)) == warm_start.KEPT
    p = _predictor(prefix)
    assert _warm(p) and np.array_equal(_run(p, feeds)[0], want[0])


def test_a_killed_writers_temporary_file_is_removed_in_time(tmp_path, cache):
    """A process killed while writing a record leaves its temporary file (a model's weights):
    the next write removes it once older than any write takes, and no one's write under
    way."""
    from tostatic.runtime import plan_file

    (cache / "warm").mkdir(parents=True)
    left, writing = cache / "warm" / ".tmp-left", cache / "warm" / ".tmp-writing"
    for f in (left, writing):
        f.write_bytes(b"half a record")
    st = os.stat(left)
    os.utime(left, ns=(st.st_atime_ns, st.st_mtime_ns - plan_file.STALE_TEMP_NS - 10**9))
    prefix = _copy("mlp", tmp_path)
    ((_, feeds, _),) = fixture_cases("mlp")
    _run(_predictor(prefix), feeds)
    assert len(_record(cache)) == 1
    assert not left.exists() and writing.exists()


@pytest.mark.parametrize("changed", ["pdmodel", "pdiparams", "removed"])
def test_a_warm_predictor_never_loads_changed_files(changed, tmp_path, cache):
    """A warm predictor loads the model only for another input: the files must then be the
    ones it was made from (Paddle's predictor reads them once, at creation). Changed since
    (another model's program, other weights of the same size, mtime restored; the params
    file removed), the load raises an error naming the file, not run another model; the
    input it was made for still runs warm, and a new predictor runs the new files."""
    from tostatic.ir.errors import ExecutionError

    prefix = _copy("small_cnn", tmp_path)
    ((_, feeds, _),) = fixture_cases("small_cnn")
    x = feeds["x"]
    x3 = np.concatenate([x, x[:1] * 0.5, x], axis=0)
    want = _run(_predictor(prefix), feeds)[0]
    p = _predictor(prefix)
    assert _warm(p)
    target = f"{prefix}.{'pdiparams' if changed == 'removed' else changed}"
    st = os.stat(target)
    if changed == "removed":
        os.unlink(target)
    elif changed == "pdiparams":
        data = bytearray(open(target, "rb").read())
        data[-4:] = np.float32(7.5).tobytes()  # the last weight's last element
        open(target, "wb").write(data)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    else:  # another program: the mlp's (the same input name, another shape)
        shutil.copy(FIXTURES / "mlp" / "model.pdmodel", target)
    with pytest.raises(ExecutionError, match=f"{os.path.basename(target)}: changed"):
        p.run([x3])
    assert np.array_equal(p.run([x])[0], want)  # (its own plan, read at creation)
    if changed == "pdiparams":
        fresh = _predictor(prefix)
        assert not _warm(fresh) and not np.array_equal(_run(fresh, feeds)[0], want)

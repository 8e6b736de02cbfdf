"""The plan cache (runtime/plan_cache.py): a second start maps what the first one's binding
prepared (packed GEMM panels, Winograd filter transforms) and gives the first start's outputs
bit for bit; a damaged, truncated or foreign file and a changed model are never trusted (the
arrays are computed again and the file rewritten); TOSTATIC_PLAN_CACHE=0 turns it off."""
from __future__ import annotations

import json
import os
import struct
import time
import zlib

import numpy as np
import pytest

from conftest import fixture_cases

pytestmark = pytest.mark.usefixtures("compiled_kernels")


def _save_net(prefix: str, seed: int = 0) -> None:
    """A small CNN whose plan prepares through every decorated function: the strided
    im2col's band GEMM (winograd_gemm.pack), Winograd's filter transform, the 1x1
    convolution's and the classifier's packed GEMMs (gemm_pack.pack_rows / pack_cols)."""
    import tostatic
    from tostatic.static import InputSpec

    nn = tostatic.nn
    tostatic.seed(seed)
    model = nn.Sequential(
        nn.Conv2D(3, 16, 3, stride=2, padding=1), nn.BatchNorm2D(16), nn.ReLU(),
        nn.MaxPool2D(3, stride=2, padding=1),
        nn.Conv2D(16, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2D(16, 32, 1),
        nn.Flatten(), nn.Linear(32 * 10 * 10, 10))
    model.eval()
    tostatic.jit.save(model, prefix, input_spec=[InputSpec([None, 3, 40, 40], "float32")])


@pytest.fixture
def plan_dir(tmp_path, monkeypatch):
    """A cache directory of this test (kernels already linked in this process are reused)."""
    monkeypatch.setenv("TOSTATIC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TOSTATIC_PLAN_CACHE", raising=False)
    return tmp_path / "cache" / "plans"


def _start(prefix: str, x: np.ndarray) -> tuple[np.ndarray, object]:
    """A predictor's load and first run, as a new process's; its output and plan store."""
    import tostatic

    config = tostatic.inference.Config(prefix + ".pdmodel", prefix + ".pdiparams")
    predictor = tostatic.inference.create_predictor(config)
    y = predictor.run([x])[0]
    return y, predictor._model.plan_store


def _x(n: int = 1) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((n, 3, 40, 40)).astype(np.float32)


def test_a_warm_start_maps_the_prepared_arrays_and_gives_the_same_bits(tmp_path, plan_dir,
                                                                       monkeypatch):
    prefix = str(tmp_path / "net")
    _save_net(prefix)
    cold, store = _start(prefix, _x())
    assert store.hits == 0 and store.misses >= 4  # band GEMM, Winograd, 1x1, classifier
    files = list(plan_dir.iterdir())
    assert len(files) == 1 and files[0].suffix == ".plan"
    written = files[0].stat().st_ino
    warm, store = _start(prefix, _x())
    assert store.misses == 0 and store.hits >= 4
    assert np.array_equal(cold, warm)
    assert files[0].stat().st_ino == written  # nothing new: not written again (no rename)
    # the cached arrays are the ones computed, bit for bit: a cache-less start agrees
    monkeypatch.setenv("TOSTATIC_PLAN_CACHE", "0")
    off, store = _start(prefix, _x())
    assert store is None and np.array_equal(off, cold)
    # another input shape is another binding, another file
    monkeypatch.delenv("TOSTATIC_PLAN_CACHE")
    two_cold, _ = _start(prefix, _x(2))
    two_warm, store = _start(prefix, _x(2))
    assert len(list(plan_dir.iterdir())) == 2 and store.misses == 0
    assert np.array_equal(two_cold, two_warm)


def test_only_a_first_binding_writes_and_a_model_keeps_few_files(tmp_path, plan_dir,
                                                                 monkeypatch):
    """A predictor meeting a new input shape later reads the cache but writes nothing (a
    service's new shapes cost no file writes); a model's files beyond MAX_FILES are removed,
    least recently used first."""
    import tostatic
    from tostatic.runtime import plan_cache

    prefix = str(tmp_path / "net")
    _save_net(prefix)
    config = tostatic.inference.Config(prefix + ".pdmodel", prefix + ".pdiparams")
    predictor = tostatic.inference.create_predictor(config)
    predictor.run([_x(1)])
    predictor.run([_x(2)])
    assert predictor._model.plan_store.misses > 0
    assert len(list(plan_dir.iterdir())) == 1  # the second shape's binding wrote nothing
    monkeypatch.setattr(plan_cache, "MAX_FILES", 2)
    for n in (2, 3, 1):  # each a first binding: written; batch 1's file is then the oldest
        _start(prefix, _x(n))
    assert len(list(plan_dir.iterdir())) == 2
    _, store = _start(prefix, _x(3))
    assert store.misses == 0  # the most recent ones are kept
    _, store = _start(prefix, _x(2))
    assert store.misses > 0  # evicted


def test_switched_off_nothing_is_written(tmp_path, plan_dir, monkeypatch):
    prefix = str(tmp_path / "net")
    _save_net(prefix)
    monkeypatch.setenv("TOSTATIC_PLAN_CACHE", "0")
    _, store = _start(prefix, _x())
    assert store is None and not plan_dir.exists()


def _damage(path, how: str) -> None:
    data = bytearray(path.read_bytes())
    magic, length, _ = struct.unpack_from("<8sQI", data)
    index = json.loads(bytes(data[20:20 + length]))
    if how == "data":  # one bit of the first array's data
        data[index["entries"][0]["arrays"][0]["offset"] + 3] ^= 0x10
    elif how == "truncated":
        data = data[:len(data) // 2]
    elif how == "header":
        data[:8] = b"NOTAPLAN"
    elif how == "key":  # an index whose keys are other calls', with a valid CRC
        for entry in index["entries"]:
            entry["key"] = entry["key"].replace("array", "arrax")
        raw = json.dumps(index, separators=(",", ":")).encode()
        assert len(raw) == length
        data[:20 + length] = struct.pack("<8sQI", magic, length, zlib.crc32(raw)) + raw
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["data", "truncated", "header", "key", "data, threaded"])
def test_a_damaged_file_is_ignored_and_rewritten(tmp_path, plan_dir, how, monkeypatch):
    from tostatic.runtime import plan_file

    if how.endswith("threaded"):  # the checks of a big file, on other threads
        monkeypatch.setattr(plan_file, "THREADED_FROM", 0)
        how = how.split(",")[0]
    prefix = str(tmp_path / "net")
    _save_net(prefix)
    cold, store = _start(prefix, _x())
    calls = store.misses
    (path,) = plan_dir.iterdir()
    _damage(path, how)
    again, store = _start(prefix, _x())
    assert store.misses >= 1 and store.hits + store.misses == calls
    if how != "data":
        assert store.misses == calls  # nothing in it was usable
    assert np.array_equal(again, cold)
    _, store = _start(prefix, _x())  # the file was written anew: all found
    assert store.misses == 0 and store.hits == calls


def test_a_changed_model_does_not_meet_the_old_arrays(tmp_path, plan_dir):
    """Same program, same shapes, other weights: another content key, another file."""
    prefix = str(tmp_path / "net")
    _save_net(prefix, seed=0)
    first, _ = _start(prefix, _x())
    _save_net(prefix, seed=1)
    second, store = _start(prefix, _x())
    assert store.hits == 0 and not np.array_equal(first, second)
    assert len(list(plan_dir.iterdir())) == 2
    import tostatic

    off = tostatic.inference.Config(prefix + ".pdmodel", prefix + ".pdiparams")
    off.switch_ir_optim(False)  # the numpy path of the same files: the same numbers
    ref = tostatic.inference.create_predictor(off).run([_x()])[0]
    np.testing.assert_allclose(second, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["small_cnn", "depthwise_cnn", "mlp"])
def test_paddle_fixtures_warm_equals_cold(name, plan_dir):
    """Paddle's own files (no manifest: the content key hashes the weights themselves)."""
    import tostatic

    ((d, feeds, _),) = fixture_cases(name)

    def start():
        config = tostatic.inference.Config(str(d / "model.pdmodel"), str(d / "model.pdiparams"))
        predictor = tostatic.inference.create_predictor(config)
        outs = predictor.run([feeds[n] for n in predictor.get_input_names()])
        return outs, predictor._model.plan_store

    cold, store = start()
    warm, again = start()
    assert store.misses > 0 and again.hits == store.misses and again.misses == 0
    for c, w in zip(cold, warm):
        assert np.array_equal(c, w)


def test_the_store_checks_each_call_in_order(tmp_path):
    """A call is answered only by the entry of its place and key; the file is rewritten
    when the calls differ, and read back array for array."""
    from tostatic.runtime.plan_cache import PlanStore

    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = (np.ones(5, np.int64), np.zeros((2, 2), np.float64))
    store = PlanStore("model", lambda: "k", tmp_path)
    for key, value in (("f(a)", a), ("g(b)", b)):
        assert store.fetch(key) is None
        store.keep(key, value)
    assert store.save()
    store = PlanStore("model", lambda: "k", tmp_path)
    got = store.fetch("f(a)")
    assert np.array_equal(got, a) and got.dtype == a.dtype and not got.flags.writeable
    assert store.fetch("g(other)") is None  # the second call asks for something else
    store.keep("g(other)", b)
    assert store.save()
    store = PlanStore("model", lambda: "k", tmp_path)
    store.fetch("f(a)")
    got = store.fetch("g(other)")
    assert all(np.array_equal(x, y) and x.dtype == y.dtype for x, y in zip(got, b))
    assert not store.save()  # the same calls: not written again


@pytest.mark.parametrize("index", [
    {"entries": [{"key": "f(a)", "tuple": False, "arrays": 7}]},
    {"entries": [{"key": "f(a)", "tuple": False, "arrays": ["x"]}]},
    {"entries": [{"key": "f(a)", "tuple": "no", "arrays": [
        {"dtype": "<f4", "shape": [1], "offset": 0, "nbytes": 4, "crc": 0}]}]},
    {"entries": [5, None, "x"]},
    {"entries": {"not": "a list"}},
])
def test_a_malformed_index_with_a_valid_crc_is_a_miss(tmp_path, index):
    """Whatever a (CRC-valid) index says, a call is computed, never failed or trusted."""
    from tostatic.runtime import plan_cache, plan_file

    store = plan_cache.PlanStore("model", lambda: "k", tmp_path)
    raw = json.dumps({**index, "size": 4096}).encode()
    body = struct.pack("<8sQI", plan_file.MAGIC, len(raw), zlib.crc32(raw)) + raw
    store.path.write_bytes(body.ljust(4096, b"\0"))
    if isinstance(index["entries"], list):
        plan_file.read_index(store.path)  # the file passes the header checks: entries fail
    else:
        with pytest.raises(ValueError):
            plan_file.read_index(store.path)
    assert store.fetch("f(a)") is None and store.misses == 1


def test_the_last_plan_file_is_checked_while_the_model_loads(tmp_path, plan_dir, monkeypatch):
    """prefetch: a load opens its model's most recent plan file and checks it on other
    threads; the binding takes that opening when it asks for the same file (same bits as
    a cold start), drops it when it asks for another (another input shape) or when the
    file was replaced meanwhile (another inode: opened again)."""
    import tostatic
    from tostatic.runtime import plan_cache, plan_file

    monkeypatch.setattr(plan_file, "THREADED_FROM", 0)  # (a small model's file too)
    monkeypatch.setattr(plan_cache, "_PREFETCHED", {})  # (another test's model, never run)
    from tostatic.runtime import warm_start

    monkeypatch.setattr(warm_start, "KEPT", 0)  # no warm start record: every load is full
    prefix = str(tmp_path / "net")
    _save_net(prefix)
    cold, store = _start(prefix, _x())
    assert not plan_cache._PREFETCHED  # no file yet: nothing to prefetch
    taken = []
    real_take = plan_cache._take_prefetched
    monkeypatch.setattr(plan_cache, "_take_prefetched",
                        lambda *a: taken.append(real_take(*a)) or taken[-1])
    config = tostatic.inference.Config(prefix + ".pdmodel", prefix + ".pdiparams")
    predictor = tostatic.inference.create_predictor(config)
    ((path, _, opening),) = plan_cache._PREFETCHED.values()
    assert path == store.path
    warm = predictor.run([_x()])[0]
    assert taken == [opening] and not plan_cache._PREFETCHED
    assert predictor._model.plan_store.misses == 0 and np.array_equal(warm, cold)
    # another shape's binding: the prefetched batch-1 file is not the one asked for
    predictor = tostatic.inference.create_predictor(config)
    two = predictor.run([_x(2)])[0]
    assert taken[-1] is None and not plan_cache._PREFETCHED
    np.testing.assert_allclose(two[:1], cold, rtol=1e-5, atol=1e-6)
    # the file replaced (same bytes, new inode) after the load: opened anew, still all hits
    predictor = tostatic.inference.create_predictor(config)
    assert plan_cache._PREFETCHED
    copy = store.path.with_suffix(".tmp")
    copy.write_bytes(store.path.read_bytes())
    copy.replace(store.path)
    again = predictor.run([_x()])[0]
    assert taken[-1] is None and predictor._model.plan_store.misses == 0
    assert np.array_equal(again, cold)
    # one prefetch at a time: another model's load drops one never bound
    other = str(tmp_path / "other")
    _save_net(other, seed=1)
    _, other_store = _start(other, _x())
    tostatic.inference.create_predictor(config)
    assert list(plan_cache._PREFETCHED) == [store.path.name[:16]]
    tostatic.inference.create_predictor(
        tostatic.inference.Config(other + ".pdmodel", other + ".pdiparams"))
    assert list(plan_cache._PREFETCHED) == [other_store.path.name[:16]]


def test_no_prefetch_when_the_cache_is_off_or_the_file_is_small(tmp_path, plan_dir,
                                                                monkeypatch):
    import tostatic
    from tostatic.runtime import plan_cache, plan_file

    monkeypatch.setattr(plan_cache, "_PREFETCHED", {})
    prefix = str(tmp_path / "net")
    _save_net(prefix)
    _start(prefix, _x())
    config = tostatic.inference.Config(prefix + ".pdmodel", prefix + ".pdiparams")
    tostatic.inference.create_predictor(config)  # (a few hundred KB: checked when bound)
    assert not plan_cache._PREFETCHED
    monkeypatch.setattr(plan_file, "THREADED_FROM", 0)
    monkeypatch.setenv("TOSTATIC_PLAN_CACHE", "0")
    tostatic.inference.create_predictor(config)
    assert not plan_cache._PREFETCHED


def test_a_forked_child_does_not_wait_for_the_parents_prefetch(tmp_path, plan_dir):
    """A server loading a model then forking its workers: a child has none of the threads
    an opening waits for, so it opens the file itself (and gives the same bits)."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    prefix = str(tmp_path / "net")
    _save_net(prefix)
    cold, _ = _start(prefix, _x())
    np.save(tmp_path / "x.npy", _x())
    script = textwrap.dedent("""
        import os, sys
        import numpy as np
        import tostatic
        from tostatic.runtime import plan_cache, plan_file
        plan_file.THREADED_FROM = 0
        prefix, x = sys.argv[1], np.load(sys.argv[2])
        config = tostatic.inference.Config(prefix + ".pdmodel", prefix + ".pdiparams")
        np.save(sys.argv[4], tostatic.inference.create_predictor(config).run([x])[0])
        predictor = tostatic.inference.create_predictor(config)  # (this process's file)
        assert plan_cache._PREFETCHED
        pid = os.fork()
        if pid == 0:
            ok = not plan_cache._PREFETCHED
            y = predictor.run([x])[0]
            np.save(sys.argv[3], y)
            os._exit(0 if ok and predictor._model.plan_store.misses == 0 else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """)
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run([sys.executable, "-c", script, prefix, str(tmp_path / "x.npy"),
                          str(tmp_path / "y.npy"), str(tmp_path / "y0.npy")], text=True,
                         capture_output=True, timeout=120,
                         env={**__import__("os").environ, "PYTHONPATH": str(root)})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[-1] == "0"
    assert np.array_equal(np.load(tmp_path / "y.npy"), np.load(tmp_path / "y0.npy"))
    # (this process may run more threads than a fresh one: its own file, its own bits)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), cold, rtol=1e-5, atol=1e-6)


def test_a_file_checked_once_is_trusted_until_it_changes(tmp_path, plan_dir, monkeypatch):
    """A plan file whose every array passed its CRC-32 check is marked by its device, inode,
    size and mtime: later openings check nothing but its index; a file changed in place
    (another mtime) is checked again, and its damage found."""
    from tostatic.runtime import plan_file

    prefix = str(tmp_path / "net")
    _save_net(prefix)
    cold, store = _start(prefix, _x())
    assert plan_file._read_index(store.path)[2] is not None  # written, never checked
    warm, store = _start(prefix, _x())
    assert store.misses == 0 and plan_file._read_index(store.path)[2] is None
    real = plan_file._check
    monkeypatch.setattr(plan_file, "_check", lambda spec, memory: False)  # would all fail
    again, store = _start(prefix, _x())
    assert store.misses == 0 and np.array_equal(again, cold)  # trusted: not checked
    monkeypatch.setattr(plan_file, "_check", real)
    time.sleep(0.05)  # (a change within the file system clock's tick keeps the mtime)
    _damage(store.path, "data")
    damaged, store = _start(prefix, _x())
    assert store.misses == 1 and np.array_equal(damaged, cold)


def test_eviction_keeps_the_most_recently_used_within_count_and_bytes(tmp_path):
    """Plan files and warm records hold a model's weights: eviction bounds both their number
    and their bytes, the least recently used (oldest mtime) going first, the newest kept
    whatever its size."""
    from tostatic.runtime import plan_file

    sizes = {"a": 300, "b": 200, "c": 400, "d": 100}  # a newest, d oldest
    for age, (name, size) in enumerate(sizes.items()):
        f = tmp_path / f"{name}.plan"
        f.write_bytes(b"x" * size)
        os.utime(f, ns=(10**18, 10**18 - age * 10**9))
    plan_file.evict(tmp_path, "*.plan", 3, kept_bytes=600)
    assert sorted(p.stem for p in tmp_path.glob("*.plan")) == ["a", "b"]  # c: 900 > 600
    plan_file.evict(tmp_path, "*.plan", 1)
    assert [p.stem for p in tmp_path.glob("*.plan")] == ["a"]
    plan_file.evict(tmp_path, "*.plan", 3, kept_bytes=10)
    assert [p.stem for p in tmp_path.glob("*.plan")] == ["a"]  # the newest stays


def test_a_file_whose_checks_all_pass_is_marked_checked(tmp_path):
    """The first opening checks every array; once all pass, the file's checked mark is
    written (the next opening trusts it), and a file with a bad array gets none."""
    from tostatic.runtime import plan_file

    good, bad = tmp_path / "plans" / "good.plan", tmp_path / "plans" / "bad.plan"
    good.parent.mkdir()
    for path in (good, bad):
        plan_file.write(path, [("k", np.arange(1000, dtype=np.float32))])
    raw = bytearray(bad.read_bytes())
    raw[raw.index(np.float32(500).tobytes())] ^= 1  # a bit of the array
    bad.write_bytes(bytes(raw))
    for path in (good, bad):
        entries, _ = plan_file.open_checked(path)
        for check in entries[0][1]:
            check.exception()  # (done)
    assert plan_file.checked_mark(good, good.stat()).exists()
    assert not plan_file.checked_mark(bad, bad.stat()).exists()
    assert plan_file._read_index(good)[2] is None  # trusted now
    assert plan_file._read_index(bad)[2] is not None


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="fork")
def test_a_fork_waits_for_the_checks_under_way(tmp_path, monkeypatch):
    """A file opened with its checks on other threads (a warm start's record, a prefetch),
    then a fork: the fork waits for the checks, so the child, which has none of those
    threads, finds their results instead of waiting forever."""
    from tostatic.runtime import plan_file

    path = tmp_path / "plans" / "a.plan"
    path.parent.mkdir()
    plan_file.write(path, [("k", np.arange(1000, dtype=np.float32))])
    real = plan_file._check

    def slow(spec, memory):  # still checking at the fork
        time.sleep(0.3)
        return real(spec, memory)
    monkeypatch.setattr(plan_file, "_check", slow)
    monkeypatch.setattr(plan_file, "THREADED_FROM", 0)
    entries, _ = plan_file.open_checked(path)
    (check,) = entries[0][1]
    assert not check.done()
    pid = os.fork()
    if pid == 0:
        os._exit(0 if check.done() and check.result() is True else 3)
    assert check.done() and not plan_file._PENDING
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="fork")
def test_a_fork_during_a_prefetch_still_submitting_its_checks(tmp_path):
    """A fork while a prefetch's opening is still reading the index (its checks not yet
    submitted): the fork waits for it, and the opening can still submit them (the pools'
    own fork hook, holding their global lock, runs after ours). A fresh process, where
    plan_file is the first to use concurrent.futures' pools."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    from tostatic.runtime import plan_file

    path = tmp_path / "plans" / "a.plan"
    path.parent.mkdir()
    plan_file.write(path, [("k", np.arange(1000, dtype=np.float32))])
    script = textwrap.dedent("""
        import os, sys, time
        from pathlib import Path
        import numpy as np
        from tostatic.runtime import plan_file
        import concurrent.futures
        read = plan_file._read_index
        def slow(path):  # still opening at the fork
            time.sleep(0.3)
            return read(path)
        plan_file._read_index = slow
        plan_file.THREADED_FROM = 0
        pool = concurrent.futures.ThreadPoolExecutor(2)
        opening = plan_file.track(pool.submit(plan_file.open_checked, Path(sys.argv[1]), pool))
        pid = os.fork()
        if pid == 0:
            entries, _ = opening.result()
            os._exit(0 if all(c.result() for c in entries[0][1]) else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """)
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run([sys.executable, "-c", script, str(path)], text=True,
                         capture_output=True, timeout=60,
                         env={**__import__("os").environ, "PYTHONPATH": str(root)})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[-1] == "0"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="tells the fsynced file by /proc")
def test_a_plan_file_is_on_the_disk_before_it_has_its_name(tmp_path, monkeypatch):
    """A checked mark trusts a file unread (size, mtime): after a crash, a file under its
    name must hold what was written, not zeros of the same size. Its data is fsynced before
    the rename."""
    from tostatic.runtime import plan_file

    events = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))), fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (
        events.append(("replace", os.path.abspath(a))), replace(a, b))[1])
    path = tmp_path / "plans" / "m.plan"
    plan_file.write(path, [("k", np.arange(10, dtype=np.float32))])
    assert [kind for kind, _ in events] == ["fsync", "replace"]
    assert events[0][1] == events[1][1]  # (the temporary file, then renamed)
    entries, memory = plan_file.open_checked(path)
    assert np.array_equal(plan_file.entry_value(*entries[0], memory), np.arange(10))

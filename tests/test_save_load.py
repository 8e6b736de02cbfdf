"""paddle.save / paddle.load: Paddle's pickle format, read without running code from the file.

Round trips in tostatic; files refused (malicious, truncated, corrupt); atomic writes; and
(marked `interop`) files exchanged with real Paddle 3.3.1 in both directions, byte for byte.
"""
import collections
import copyreg
import io
import os
import pickle
import pickletools

import numpy as np
import pytest

import tostatic
from tostatic.serialization import FormatError
from tostatic.serialization import state_dict as fmt

DTYPES = ["float32", "float64", "int64", "int32", "bool", "float16"]


def _value(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 10).astype(dtype)


class _T:
    """A Tensor (tostatic or Paddle) reduced to what the files carry: name and array."""

    def __init__(self, t):
        self.name, self.array = t.name, np.asarray(t.numpy())


def _arrays(obj):
    return fmt.map_leaves(obj, lambda o: _T(o) if hasattr(o, "numpy") and hasattr(o, "name")
                          else o)


def _assert_same(got, want, names=True):
    """Equal structure, types, dtypes and values; Tensors also equal names (unless names=False:
    Tensors that files leave unnamed get fresh generated names)."""
    got, want = _arrays(got), _arrays(want)
    assert type(got) is type(want), (type(got), type(want))
    if isinstance(want, dict):
        assert list(got) == list(want)
        for k in want:
            _assert_same(got[k], want[k], names)
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _assert_same(g, w, names)
    elif isinstance(want, (_T, np.ndarray)):
        if isinstance(want, _T):
            assert got.name == want.name or not names
            got, want = got.array, want.array
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    else:
        assert got == want and type(got) is type(want)


class Net(tostatic.nn.Layer):
    def __init__(self):
        super().__init__()
        self.fc1 = tostatic.nn.Linear(4, 5)
        self.fc2 = tostatic.nn.Linear(5, 3)


# ============================================================================ round trips

@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_nested_round_trip_all_dtypes(tmp_path, protocol):
    tensors = {dt: tostatic.to_tensor(_value(dt, (2, 3))) for dt in DTYPES}
    scalar = tostatic.Tensor(np.array(2.5, np.float32))  # 0-d
    empty = tostatic.Tensor(np.zeros((0, 3), np.int64))
    obj = {"by_dtype": tensors, "list": [scalar, empty, 7, "text", None, 1.5, True],
           "tuple": (tensors["int32"], np.arange(3)), "od": collections.OrderedDict(a=scalar),
           "bytes": b"\x00\xff", "epoch": 3}
    path = tmp_path / "nested.pdparams"
    tostatic.save(obj, path, protocol=protocol)
    got = tostatic.load(path)
    _assert_same(got, obj)
    assert got["list"][0].shape == [] and got["list"][1].shape == [0, 3]
    assert isinstance(got["by_dtype"]["float16"], tostatic.Tensor)
    assert isinstance(got["tuple"][1], np.ndarray)  # arrays stay arrays beside tensors (Paddle)
    as_numpy = tostatic.load(path, return_numpy=True)
    np.testing.assert_array_equal(as_numpy["by_dtype"]["bool"], tensors["bool"].numpy())
    assert isinstance(as_numpy["list"][0], np.ndarray) and as_numpy["list"][0].shape == ()


@pytest.mark.parametrize("dtype", DTYPES)
def test_single_tensor_round_trip(tmp_path, dtype):
    for shape in [(), (0,), (3, 0, 2), (2, 3)]:
        t = tostatic.Tensor(_value(dtype, shape), name="my.tensor")
        tostatic.save(t, tmp_path / "t.pdtensor")
        got = tostatic.load(tmp_path / "t.pdtensor")
        assert isinstance(got, tostatic.Tensor) and got.name == "my.tensor"
        assert got.dtype == t.dtype and got.shape == list(shape)
        np.testing.assert_array_equal(got.numpy(), t.numpy())


def test_layer_state_dict_round_trip_and_layout(tmp_path):
    net = Net()
    path = tmp_path / "net.pdparams"
    tostatic.save(net.state_dict(), path)
    raw = pickle.loads(path.read_bytes())  # our own file: the exact layout Paddle writes
    assert type(raw) is dict
    assert list(raw) == [*net.state_dict(), "StructuredToParameterName@@"]
    assert raw["StructuredToParameterName@@"] == {k: v.name for k, v in net.state_dict().items()}
    assert all(type(raw[k]) is np.ndarray for k in net.state_dict())
    assert path.read_bytes()[:2] == b"\x80\x04"  # protocol 4 by default

    loaded = tostatic.load(path)
    assert type(loaded) is dict and "StructuredToParameterName@@" not in loaded
    assert {k: v.name for k, v in loaded.items()} == {k: v.name for k, v in
                                                      net.state_dict().items()}
    other = Net()
    assert other.set_state_dict(loaded) == ([], [])
    assert list(other.state_dict()) == list(net.state_dict()) == [
        "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    for k, a in net.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[k].numpy(), a.numpy(), err_msg=k)
    kept = tostatic.load(path, keep_name_table=True)
    assert kept["StructuredToParameterName@@"] == raw["StructuredToParameterName@@"]
    assert all(type(v) is np.ndarray for k, v in tostatic.load(path, return_numpy=True).items())


def test_optimizer_like_state_dict_and_buffers(tmp_path):
    opt = {"w_moment1_0": tostatic.to_tensor(np.ones((2, 2), np.float32)),
           "w_beta1_pow_acc_0": tostatic.Tensor(np.array([0.9], np.float32)),
           "LR_Scheduler": {"last_epoch": 1, "last_lr": 0.1}}
    buf = io.BytesIO()
    tostatic.save(opt, buf)
    buf.seek(0)
    assert "StructuredToParameterName@@" in pickle.loads(buf.getvalue())  # a state dict
    got = tostatic.load(io.BytesIO(buf.getvalue()))
    _assert_same(got, opt)


def test_big_arrays_are_split_under_protocol_2_and_3(tmp_path):
    sd = {"w": fmt.NamedArray("w_0", np.arange(10, dtype=np.float32).reshape(2, 5)),
          "b": fmt.NamedArray("b_0", np.ones(2, np.float32))}
    with open(tmp_path / "s.pdparams", "wb") as f:
        fmt.dump(sd, f, protocol=2, max_bytes=16)  # 4 float32s per piece
    raw = pickle.loads((tmp_path / "s.pdparams").read_bytes())
    assert raw["UnpackBigParamInfor@@"] == {"w": {"OriginShape": (2, 5),
                                                  "slices": ["w@@.0", "w@@.1", "w@@.2"]}}
    got = tostatic.load(tmp_path / "s.pdparams")
    assert got["w"].name == "w_0" and "w@@.0" not in got
    np.testing.assert_array_equal(got["w"].numpy(), sd["w"].array)


def test_save_refuses_what_load_could_not_read(tmp_path):
    with pytest.raises(ValueError, match="Layer"):
        tostatic.save({"net": Net()}, tmp_path / "x.pdparams")
    with pytest.raises(TypeError, match=r"\['a'\]\[1\].*object"):
        tostatic.save({"a": [1, object()]}, tmp_path / "x.pdparams")
    with pytest.raises(TypeError, match="dtype object"):
        tostatic.save({"a": np.array([1, "x"], dtype=object)}, tmp_path / "x.pdparams")
    for odd in (np.zeros(2, "U3"), np.zeros(2, [("a", "f4")]), np.zeros(2, "M8[s]"),
                np.zeros(2, np.float32).view("V4"), np.str_("x"), np.dtype([("a", "f4")])):
        with pytest.raises(TypeError, match="paddle.save cannot write"):
            tostatic.save({"a": odd}, tmp_path / "x.pdparams")
    with pytest.raises(ValueError, match="protocol"):
        tostatic.save({"a": 1}, tmp_path / "x.pdparams", protocol=5)
    with pytest.raises(ValueError, match="not supported"):
        tostatic.save({"a": 1}, tmp_path / "x.pdparams", bogus=1)
    with pytest.raises(ValueError, match="not supported"):
        tostatic.load(tmp_path / "x.pdparams", bogus=1)
    assert os.listdir(tmp_path) == []


def test_failed_save_leaves_old_file_untouched(tmp_path):
    path = tmp_path / "net.pdparams"
    tostatic.save(Net().state_dict(), path)
    before = path.read_bytes()
    with pytest.raises(TypeError):
        tostatic.save({"w": tostatic.to_tensor([1.0]), "x": {"bad": object()}}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["net.pdparams"]


def test_a_file_that_is_no_pickle_and_no_program_is_a_clear_error(tmp_path):
    (tmp_path / "p.pdparams").write_bytes(b"GARBAGE")
    with pytest.raises(FormatError, match="PROTO"):
        tostatic.load(tmp_path / "p.pdparams")


# ============================================================================ hostile files

class _System:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize("protocol", [2, 4])
def test_malicious_pickle_is_refused_without_running(tmp_path, protocol):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pdparams"
    bad.write_bytes(pickle.dumps({"w": np.ones(2), "x": _System(f"touch {marker}")},
                                 protocol=protocol))
    with pytest.raises(FormatError) as e:
        tostatic.load(bad)
    assert str(bad) in str(e.value) and "system" in str(e.value)
    assert isinstance(e.value.offset, int)
    assert bad.read_bytes()[e.value.offset:e.value.offset + 1] in (b"c", b"\x93")  # the GLOBAL
    assert not marker.exists()


def test_restricted_globals_refuse_other_uses(tmp_path):
    bad = tmp_path / "evil.pdparams"
    marker = tmp_path / "pwned"

    class Eval:
        def __reduce__(self):
            return (eval, (f"__import__('os').mkdir({str(marker)!r})",))

    for payload in (Eval(),):
        bad.write_bytes(pickle.dumps([payload], protocol=2))
        with pytest.raises(FormatError, match="eval"):
            tostatic.load(bad)
        assert not marker.exists()

    # numpy.dtype with copy=False hands out numpy's shared float32, which BUILD then sets
    # state on: the stand-in always makes a copy, so nothing shared is touched.
    class BigEndianF4:
        def __reduce__(self):
            return (np.dtype, ("f4", False, False), (3, ">", None, None, None, -1, -1, 0))

    bad.write_bytes(pickle.dumps([BigEndianF4()], protocol=2))
    got = tostatic.load(bad)[0]
    assert got == np.dtype(">f4") and got is not np.dtype("float32")
    assert np.dtype("float32").byteorder == "="

    for leak in ([np.ndarray], {(np.dtype,): 1}):  # an allowed global as data, not a call
        bad.write_bytes(pickle.dumps(leak, protocol=4))
        with pytest.raises(FormatError, match=r"the global numpy\.(ndarray|dtype) as a value"):
            tostatic.load(bad)

    bad.write_bytes(pickle.dumps({"a": np.array([1, "x"], dtype=object)}, protocol=4))
    with pytest.raises(FormatError, match="object"):
        tostatic.load(bad)


# ------------------------------------------------ BUILD: only the states numpy writes

PLAIN = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
         "float16", "float32", "float64", "complex64", "complex128"]
_RECONSTRUCT = np.zeros(1).__reduce__()[0]  # numpy._core.multiarray._reconstruct (numpy 2)


class _Reduce:
    """Pickles as fn(*args), then BUILD with state if given: what a hostile file can write."""

    def __init__(self, fn, args, state=None):
        self.fn, self.args, self.state = fn, args, state

    def __reduce__(self):
        return (self.fn, self.args) if self.state is None else (self.fn, self.args, self.state)


def _dt(spec, state):
    return _Reduce(np.dtype, (spec, False, True), state)


def _array(state):
    return _Reduce(_RECONSTRUCT, (np.ndarray, (0,), b"b"), state)


def _refused(path, payload, protocol, opcode, *fragments):
    """tostatic.load refuses the file at the offset of `opcode` (BUILD b'b', REDUCE b'R')."""
    path.write_bytes(pickle.dumps({"w": payload}, protocol=protocol))
    with pytest.raises(FormatError) as e:
        tostatic.load(path, return_numpy=True)
    assert str(path) in str(e.value) and f"byte offset {e.value.offset}" in str(e.value)
    assert path.read_bytes()[e.value.offset:e.value.offset + 1] == opcode, str(e.value)
    for fragment in fragments:
        assert fragment in e.value.reason, e.value.reason
    return e.value


_OUT_OF_BOUNDS = (3, "|", None, ("a",), {"a": (np.dtype("i8"), 1 << 16)}, 8, 1, 16)


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_out_of_bounds_structured_dtype_is_refused(tmp_path, protocol):
    # The review's payload: a V8 dtype whose field 'a' lies 64 KiB past the array's 8 bytes;
    # loaded, w['a'] read (and assignment wrote) outside the buffer. numpy.dtype('V8') itself
    # is refused, at its REDUCE.
    bad = tmp_path / "evil.pdparams"
    oob = _dt("V8", _OUT_OF_BOUNDS)
    _refused(bad, _array((1, (1,), oob, False, b"\0" * 8)), protocol, b"R", "V8")
    # The same state on an allowed dtype, and other states numpy never writes for a plain
    # dtype, are refused at their BUILD.
    for spec, state in [("i8", _OUT_OF_BOUNDS),
                        ("f4", (3, "<", (np.dtype("f4"), (4,)), None, None, 16, 4, 0)),
                        ("f4", (3, "<", None, None, None, 1 << 16, 4, 0)),
                        ("f4", (3, "<", None, None, None, -1, 64, 0)),
                        ("f4", (3, "|", None, None, None, -1, -1, 0)),
                        ("i1", (3, "<", None, None, None, -1, -1, 0)),
                        ("f4", (3, "=", None, None, None, -1, -1, 0)),
                        ("f4", (4, "<", None, None, None, -1, -1, 0, {"m": 1})),
                        ("f4", (3, "<", None, (), {}, -1, -1, 0)),
                        ("f4", (3, "<", None, None, None, -1.0, -1, 0)),
                        ("f4", [3, "<", None, None, None, -1, -1, 0])]:
        _refused(bad, _array((1, (1,), _dt(spec, state), False, b"\0" * 8)), protocol, b"b",
                 "refusing numpy dtype state")
        _refused(bad, _dt(spec, state), protocol, b"b", "refusing numpy dtype state")
    for spec in ("O8", "V8", "U2", "S3", "M8", "f16", "?", "float32", "<f4"):
        _refused(bad, _dt(spec, (3, "|", None, None, None, -1, -1, 0)), protocol, b"R",
                 "refusing numpy.dtype")
    assert np.dtype("float32").fields is None and np.dtype("int64").flags == 0


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("flags", [1, 63, 8])
def test_dtype_flags_such_as_hasobject_are_refused(tmp_path, protocol, flags):
    # flags=1 made an int64 dtype claim it holds objects: numpy then hit an internal error.
    bad = tmp_path / "evil.pdparams"
    i8 = _dt("i8", (3, "<", None, None, None, -1, -1, flags))
    _refused(bad, _array((1, (1,), i8, False, b"\0" * 8)), protocol, b"b",
             "refusing numpy dtype state", f"-1, -1, {flags})")
    _refused(bad, [1, i8], protocol, b"b", "refusing numpy dtype state")


@pytest.mark.parametrize("protocol", [2, 4])
def test_build_on_anything_but_a_fresh_array_or_dtype_is_refused(tmp_path, protocol):
    bad = tmp_path / "evil.pdparams"
    # State would land in the instance __dict__ and shadow OrderedDict's methods.
    shadow = _Reduce(collections.OrderedDict, (), {"keys": "shadowed", "items": 1})
    _refused(bad, shadow, protocol, b"b", "BUILD", "collections.OrderedDict")
    for payload, what in [
            (_Reduce(tuple, ([1, 2],), {"x": 1}), "builtins.tuple"),
            (_Reduce(set, ([1],), {"x": 1}), "builtins.set"),
            (_Reduce(complex, (1.0, 2.0), {"real": 3}), "builtins.complex"),
            (_Reduce(np.float32(1).__reduce__()[0], np.float32(1).__reduce__()[1], (1, 2)),
             "numpy.float32")]:
        _refused(bad, payload, protocol, b"b", "BUILD", what)
    # REDUCE calls only the allowed globals' stand-ins, never an object the file built.
    bad.write_bytes(b"\x80\x02]q\x00)R.")  # [] called with ()
    with pytest.raises(FormatError, match="refusing to call a list") as e:
        tostatic.load(bad)
    assert e.value.offset == 6
    # numpy BUILDs each array once; a second BUILD (via the memo) would replace its data.
    data = pickle.dumps({"w": np.zeros(2, np.float32)}, protocol=2)
    ops = list(pickletools.genops(data))
    build = max(i for i, (op, _, _) in enumerate(ops) if op.name == "BUILD")
    (put, memo_key, _), (_, _, at) = ops[build - 1], ops[build]
    assert put.name == "BINPUT" and data[at:at + 1] == b"b"  # the state tuple, memoized
    again = data[:at + 1] + b"h" + bytes([memo_key]) + b"b" + data[at + 1:]  # GET, BUILD again
    assert pickle.loads(again)["w"].shape == (2,)  # plain pickle accepts it
    bad.write_bytes(again)
    with pytest.raises(FormatError, match="BUILD.*numpy.ndarray") as e:
        tostatic.load(bad)
    assert e.value.offset == at + 3


_F4 = np.dtype("float32")


@pytest.mark.parametrize("state, fragment", [
    ((1, (4,), _F4, False, b"\0" * 8), "needs 16 bytes of data, found 8"),
    ((1, (2, 3), _F4, False, b"\0" * 28), "needs 24 bytes of data, found 28"),
    ((1, (0,), _F4, False, b"\0" * 4), "needs 0 bytes of data, found 4"),
    ((1, (), _F4, False, b""), "needs 4 bytes of data, found 0"),
    ((1, (-1,), _F4, False, b""), "shape must be a tuple"),
    ((1, [2], _F4, False, b"\0" * 8), "shape must be a tuple"),
    ((1, (2.0,), _F4, False, b"\0" * 8), "shape must be a tuple"),
    ((1, (True,), _F4, False, b"\0" * 4), "shape must be a tuple"),
    ((1, (1,) * 65, _F4, False, b"\0" * 4), "shape must be a tuple"),
    ((1, (2,), _F4, 0, b"\0" * 8), "Fortran flag must be a bool"),
    ((1, (2,), _F4, False, [0.0, 0.0]), "data must be bytes, found list"),
    ((1, (2,), _F4, False, bytearray(8)), "data must be bytes, found bytearray"),
    ((1, (2,), "f4", False, b"\0" * 8), "dtype 'f4'"),
    ((2, (2,), _F4, False, b"\0" * 8), "version must be 1"),
    (((2,), _F4, False, b"\0" * 8), "state must be (1, shape"),
    ([1, (2,), _F4, False, b"\0" * 8], "state must be (1, shape"),
    ((1, (0, 2**62, 2**62), _F4, False, b""), "too big for numpy"),
])
def test_ndarray_state_must_be_what_numpy_writes(tmp_path, state, fragment):
    for protocol in (2, 4):
        _refused(tmp_path / "evil.pdparams", _array(state), protocol, b"b", fragment)


def _numpy_written(dtype):
    dt = np.dtype(dtype)
    a = (np.arange(6) % 5).astype(dt).reshape(2, 3)
    return {"c": a, "f": np.asfortranarray(a), "swapped": a.astype(dt.newbyteorder("S")),
            "zero_d": a[1, 2].reshape(()), "empty": a[:0], "scalar": a[1, 1], "dtype": dt,
            "big_endian_dtype": dt.newbyteorder(">"), "strided": a[:, ::2]}


@pytest.mark.parametrize("protocol", [2, 3, 4])
@pytest.mark.parametrize("dtype", PLAIN)
def test_every_plain_dtype_numpy_writes_loads(tmp_path, dtype, protocol):
    obj = _numpy_written(dtype)
    data = pickle.dumps(obj, protocol=protocol)
    want = pickle.loads(data)  # numpy swaps arrays to native byte order when unpickling
    path = tmp_path / "np.pkl"
    path.write_bytes(data)
    got = tostatic.load(path, return_numpy=True)
    _assert_same(got, want)
    assert got["f"].flags.f_contiguous and not got["f"].flags.c_contiguous
    assert type(got["scalar"]) is type(obj["scalar"]) and got["dtype"] == np.dtype(dtype)
    assert got["big_endian_dtype"] == obj["big_endian_dtype"]
    if protocol == 2:  # numpy 1.x names its module numpy.core (only GLOBAL lines differ)
        path.write_bytes(data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
        _assert_same(tostatic.load(path, return_numpy=True), want)
    # tostatic writes the same and reads it back
    tostatic.save(obj, tmp_path / "ours.pdparams", protocol=protocol)
    assert (tmp_path / "ours.pdparams").read_bytes() == data
    _assert_same(tostatic.load(tmp_path / "ours.pdparams", return_numpy=True), want)


def test_old_numpy_and_python2_forms_load(tmp_path):
    # Older numpy wrote numpy.dtype(spec, 0, 1); under Python 2 the data was a str, which
    # unpickles (encoding latin1, as paddle.load) as text.
    for protocol in (2, 4):
        f4 = _Reduce(np.dtype, ("f4", 0, 1), (3, ">", None, None, None, -1, -1, 0))
        raw = np.arange(3, dtype=">f4").tobytes().decode("latin1")
        (tmp_path / "old.pkl").write_bytes(pickle.dumps(
            {"w": _array((1, (3,), f4, False, raw)), "b": _array((1, (2,), _dt(
                "b1", (3, "|", None, None, None, -1, -1, 0)), False, "\x01\x00"))}, protocol))
        got = tostatic.load(tmp_path / "old.pkl", return_numpy=True)
        assert got["w"].dtype == np.float32 and got["w"].tolist() == [0.0, 1.0, 2.0]
        assert got["b"].tolist() == [True, False]
        _refused(tmp_path / "bad.pkl", _array((1, (1,), _F4, False, "\u0100" * 4)), protocol,
                 b"b", "latin1")
        _refused(tmp_path / "bad.pkl", _Reduce(np.dtype, ("f4", 1, 1)), protocol, b"R",
                 "unexpected arguments")


def test_exponentially_shared_containers_are_refused(tmp_path):
    x = [np.ones(1)]
    for _ in range(60):  # a few hundred bytes that decode as 2**60 nodes
        x = [x, x]
    bad = tmp_path / "bomb.pdparams"
    bad.write_bytes(pickle.dumps(x, protocol=4))
    with pytest.raises(FormatError, match="shared so often"):
        tostatic.load(bad)
    shared = {"x": [1, 2]}
    tostatic.save({"a": shared, "b": shared}, tmp_path / "ok.pdparams")  # plain sharing is fine
    assert tostatic.load(tmp_path / "ok.pdparams") == {"a": shared, "b": shared}


def test_extension_registry_route_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pdparams"
    copyreg.add_extension("os", "mkdir", 0x7FFFFF02)  # resolved by C pickle without find_class
    try:
        bad.write_bytes(b"\x80\x02\x84\x02\xff\xff\x7fX" + len(str(marker)).to_bytes(4, "little")
                        + str(marker).encode() + b"\x85R.")
        with pytest.raises(FormatError, match="EXT4") as e:
            tostatic.load(bad)
        assert e.value.offset == 2
        assert not marker.exists()
    finally:
        copyreg.remove_extension("os", "mkdir", 0x7FFFFF02)


def test_truncated_or_corrupt_files(tmp_path):
    path = tmp_path / "net.pdparams"
    tostatic.save(Net().state_dict(), path, protocol=2)
    data = path.read_bytes()
    bad = tmp_path / "cut.pdparams"
    for cut in (0, 1, 2, 20, len(data) // 2, len(data) - 1):
        bad.write_bytes(data[:cut])
        with pytest.raises(FormatError) as e:
            tostatic.load(bad)
        assert str(bad) in str(e.value) and e.value.offset is not None
        assert e.value.offset <= cut
    bad.write_bytes(b"\x80\x04\xff\xff")
    with pytest.raises(FormatError, match="does not decode"):
        tostatic.load(bad)
    bad.write_bytes(b"PK\x03\x04 not a pickle")
    with pytest.raises(FormatError, match="PROTO"):
        tostatic.load(bad)
    with pytest.raises(FileNotFoundError):
        tostatic.load(tmp_path / "missing.pdparams")


# ============================================================================ real Paddle

def _real_linear(paddle, seed):
    paddle.seed(seed)
    return paddle.nn.Linear(4, 3)


@pytest.mark.interop
def test_our_state_dict_loads_in_real_paddle(tmp_path, real_paddle):
    net = Net()
    path = tmp_path / "net.pdparams"
    tostatic.save(net.state_dict(), path)
    got = real_paddle.load(str(path))
    want = net.state_dict()
    assert list(got) == list(want)
    for k, v in want.items():
        assert got[k].name == v.name
        np.testing.assert_array_equal(got[k].numpy(), v.numpy())

    ours = tostatic.nn.Linear(4, 3)
    tostatic.save(ours.state_dict(), tmp_path / "linear.pdparams")
    real = real_paddle.nn.Linear(4, 3)
    missing, unexpected = real.set_state_dict(real_paddle.load(str(tmp_path / "linear.pdparams")))
    assert (missing, unexpected) == ([], [])
    np.testing.assert_array_equal(real.weight.numpy(), ours.weight.numpy())
    np.testing.assert_array_equal(real.bias.numpy(), ours.bias.numpy())


@pytest.mark.interop
@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_our_bytes_equal_real_paddle_bytes(tmp_path, real_paddle, protocol):
    real = _real_linear(real_paddle, 1)
    ours = tostatic.nn.Linear(4, 3)
    ours.set_state_dict({k: v.numpy() for k, v in real.state_dict().items()})
    ours.weight.name, ours.bias.name = real.weight.name, real.bias.name
    cases = {"state_dict": (real.state_dict(), ours.state_dict()),
             "nested": ({"model": real.state_dict(), "epoch": 3, "w": [real.weight]},
                        {"model": ours.state_dict(), "epoch": 3, "w": [ours.weight]}),
             "tensor": (real.bias, ours.bias)}
    for case, (real_obj, our_obj) in cases.items():
        real_paddle.save(real_obj, str(tmp_path / "real"), protocol=protocol)
        tostatic.save(our_obj, tmp_path / "ours", protocol=protocol)
        assert (tmp_path / "ours").read_bytes() == (tmp_path / "real").read_bytes(), case


@pytest.mark.interop
def test_our_nested_dtypes_load_in_real_paddle(tmp_path, real_paddle):
    obj = {"t": {dt: tostatic.to_tensor(_value(dt, (2, 3))) for dt in DTYPES},
           "edge": [tostatic.Tensor(np.array(3, np.int64)), tostatic.Tensor(np.zeros((0, 2)))],
           "step": 5}
    tostatic.save(obj, tmp_path / "n.pd")
    _assert_same(real_paddle.load(str(tmp_path / "n.pd")), obj)
    np.testing.assert_array_equal(real_paddle.load(str(tmp_path / "n.pd"), return_numpy=True)
                                  ["t"]["int32"], obj["t"]["int32"].numpy())


@pytest.mark.interop
def test_real_layer_state_dict_loads_in_tostatic(tmp_path, real_paddle):
    real = _real_linear(real_paddle, 2)
    path = str(tmp_path / "real.pdparams")
    real_paddle.save(real.state_dict(), path)
    got = tostatic.load(path)
    _assert_same(got, real_paddle.load(path))
    assert [v.name for v in got.values()] == [real.weight.name, real.bias.name]
    ours = tostatic.nn.Linear(4, 3)
    assert ours.set_state_dict(got) == ([], [])
    np.testing.assert_array_equal(ours.weight.numpy(), real.weight.numpy())
    _assert_same(tostatic.load(path, return_numpy=True), real_paddle.load(path, return_numpy=True))


@pytest.mark.interop
def test_real_optimizer_and_nested_dicts_load_in_tostatic(tmp_path, real_paddle):
    real = _real_linear(real_paddle, 3)
    sched = real_paddle.optimizer.lr.StepDecay(0.1, step_size=2)
    adam = real_paddle.optimizer.Adam(learning_rate=sched, parameters=real.parameters())
    real(real_paddle.randn([2, 4])).mean().backward()
    adam.step()
    sched.step()
    for name, obj, protocol in [
            ("adam.pdopt", adam.state_dict(), 4),
            ("all.pdparams", {"model": real.state_dict(), "opt": adam.state_dict(), "epoch": 3,
                              "hist": [1.5, (real.bias, "x")]}, 2),
            ("tensor.pdtensor", real.weight, 3),
            ("dense.pdtensor", real.weight.get_tensor(), 4),  # static DenseTensor: eval form
            ("dtypes.pd", {dt: real_paddle.to_tensor(_value(dt, (3,))) for dt in DTYPES}
             | {"zero_d": real_paddle.to_tensor(1.5), "empty": real_paddle.zeros([0, 2])}, 4)]:
        path = str(tmp_path / name)
        real_paddle.save(obj, path, protocol=protocol)
        unnamed = name == "dense.pdtensor"  # a DenseTensor has no name in the file
        _assert_same(tostatic.load(path), real_paddle.load(path), names=not unnamed)
        _assert_same(tostatic.load(path, return_numpy=True),
                     real_paddle.load(path, return_numpy=True))
    assert tostatic.load(str(tmp_path / "adam.pdopt"))["LR_Scheduler"] == sched.state_dict()


@pytest.mark.interop
def test_our_split_big_arrays_load_in_real_paddle(tmp_path, real_paddle):
    sd = {"w": fmt.NamedArray("w_0", np.arange(10, dtype=np.float32).reshape(2, 5))}
    with open(tmp_path / "s.pdparams", "wb") as f:
        fmt.dump(sd, f, protocol=3, max_bytes=16)
    got = real_paddle.load(str(tmp_path / "s.pdparams"))
    assert list(got) == ["w"] and got["w"].name == "w_0"
    np.testing.assert_array_equal(got["w"].numpy(), sd["w"].array)


@pytest.mark.interop
@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_real_paddle_every_dtype_loads_in_tostatic(tmp_path, real_paddle, protocol):
    dtypes = ["bool", "int8", "int16", "int32", "int64", "uint8", "float16", "float32",
              "float64", "complex64", "complex128", "bfloat16"]  # bfloat16: saved as uint16
    base = real_paddle.to_tensor((np.arange(6) % 5).astype("float32").reshape(2, 3))
    tensors = {dt: base.astype(dt) for dt in dtypes}
    eager = {dt: t for dt, t in tensors.items() if dt != "bfloat16"}  # tostatic has no bf16
    for name, obj, as_tensors in [
            ("sd.pdparams", tensors, False),  # a state dict: arrays and a name table
            ("eager.pdparams", eager, True),
            ("nested.pd", {"t": eager, "zero_d": [base[1, 2]], "step": 3}, True)]:
        path = str(tmp_path / name)
        real_paddle.save(obj, path, protocol=protocol)
        if as_tensors:
            _assert_same(tostatic.load(path), real_paddle.load(path))
        _assert_same(tostatic.load(path, return_numpy=True),
                     real_paddle.load(path, return_numpy=True))


def test_a_dtype_used_before_its_build_is_refused(tmp_path):
    """A file could make a dtype, use it in an array (passing the array's checks) and only
    then BUILD the dtype into something else under the finished array."""
    dtype_then_array_then_build = (
        b"\x80\x04}q\x00X\x01\x00\x00\x00w]q\x01("
        b"cnumpy\ndtype\nq\x02X\x02\x00\x00\x00i4\x89\x88\x87Rq\x03"  # dtype('i4'), unbuilt
        b"cnumpy._core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R"
        b"(K\x01K\x01\x85h\x03\x89C\x04\x00\x00\x00\x00tb"  # array of it, BUILT
        b"h\x03(K\x03X\x01\x00\x00\x00>NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"  # BUILD later
        b"es.")
    bad = tmp_path / "late_build.pdparams"
    bad.write_bytes(dtype_then_array_then_build)
    with pytest.raises(FormatError, match="before its state is set"):
        tostatic.load(bad, return_numpy=True)


def test_arrays_never_share_memory_with_each_other_or_the_file(tmp_path):
    """Through the pickle memo one bytes object can back two arrays; each gets its own."""
    data = b"\x00" * 4096
    a = _array((1, (1024,), _F4, False, data))
    b = _array((1, (1024,), _F4, False, data))  # the same bytes object: pickled once
    path = tmp_path / "shared.pdparams"
    path.write_bytes(pickle.dumps({"w1": a, "w2": b}, protocol=4))
    got = tostatic.load(path, return_numpy=True)
    got["w1"][0] = -7.0
    assert got["w2"][0] == 0.0

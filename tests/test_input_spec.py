"""InputSpec: hand-written expectations, and the same case table run through real Paddle 3.3.1."""
from __future__ import annotations

import os

import numpy as np
import pytest

from tostatic.frontend.capture.input_spec import InputSpec
from tostatic.ir import dtypes

os.environ.setdefault("FLAGS_enable_pir_api", "0")


class FakeTensor:
    """Duck-typed tensor: all from_tensor reads is .shape, .dtype and .name."""

    def __init__(self, shape, dtype, name):
        self.shape = shape
        self.dtype = dtype
        self.name = name


# --------------------------------------------------------------------------------------------
# Plain tests, expected values written by hand (FORMAT.md §7 and the Paddle docs).


def test_guide_examples():
    x = InputSpec([None, 784], "float32", "x")
    label = InputSpec([None, 1], "int64", "label")
    assert str(x) == "InputSpec(shape=(-1, 784), dtype=paddle.float32, name=x, stop_gradient=False)"
    assert repr(label) == (
        "InputSpec(shape=(-1, 1), dtype=paddle.int64, name=label, stop_gradient=False)"
    )
    assert x.shape == (-1, 784)
    assert x.dtype is dtypes.float32
    assert x.name == "x"
    assert x.stop_gradient is False


def test_defaults_and_stop_gradient():
    s = InputSpec((2, 3))
    assert repr(s) == "InputSpec(shape=(2, 3), dtype=paddle.float32, name=None, stop_gradient=False)"
    s = InputSpec([2], "float64", "y", True)
    assert repr(s) == "InputSpec(shape=(2,), dtype=paddle.float64, name=y, stop_gradient=True)"
    assert InputSpec([2], stop_gradient=1).stop_gradient == 1  # stored as given


def test_shape_normalisation():
    assert InputSpec([None, -1, -7, 0, 5]).shape == (-1, -1, -1, 0, 5)
    assert InputSpec([]).shape == ()
    assert InputSpec(()).shape == ()
    assert InputSpec((-1, 3)).shape == (-1, 3)
    assert InputSpec([True, False]).shape == (True, False)  # bool passes the int check
    assert isinstance(InputSpec([1, 2]).shape, tuple)


def test_shape_list_is_modified_in_place():
    shape = [None, -3, 4]
    assert InputSpec(shape).shape == (-1, -1, 4)
    assert shape == [-1, -1, 4]


@pytest.mark.parametrize("shape", [(None, 3), (3, None), (-5, 3)])
def test_tuple_with_none_raises_typeerror(shape):
    with pytest.raises(TypeError, match=r"^'tuple' object does not support item assignment$"):
        InputSpec(shape)


@pytest.mark.parametrize(
    "shape, exc, msg",
    [
        ([2.0, 3], ValueError, "shape[0] should be an `int`, but received `float`:2.0."),
        ([1, "a"], ValueError, "shape[1] should be an `int`, but received `str`:a."),
        ([np.int64(3)], ValueError, "shape[0] should be an `int`, but received `int64`:3."),
        (3, TypeError, "Type of `shape` in InputSpec should be one of (tuple, list), but received int."),
        (None, TypeError,
         "Type of `shape` in InputSpec should be one of (tuple, list), but received NoneType."),
        ("ab", TypeError, "Type of `shape` in InputSpec should be one of (tuple, list), but received str."),
    ],
)
def test_bad_shapes(shape, exc, msg):
    with pytest.raises(exc) as info:
        InputSpec(shape)
    assert str(info.value) == msg


@pytest.mark.parametrize(
    "dtype, expected",
    [
        ("float32", dtypes.float32),
        ("int64", dtypes.int64),
        ("bool", dtypes.bool_),
        ("bool_", dtypes.bool_),
        ("float", dtypes.float64),  # numpy's meaning, not Python's
        ("int", dtypes.int64),
        ("double", dtypes.float64),
        ("bfloat16", dtypes.bfloat16),
        ("uint16", dtypes.bfloat16),  # Paddle's bfloat16 storage type
        ("FLOAT32", dtypes.float32),  # default (PIR) mode lower()s and strip()s strings
        (" int8 ", dtypes.int8),
        (np.dtype("float16"), dtypes.float16),
        (np.dtype("complex128"), dtypes.complex128),
        (np.dtype("uint16"), dtypes.bfloat16),
    ],
)
def test_dtype_conversion(dtype, expected):
    assert InputSpec([1], dtype).dtype is expected


@pytest.mark.parametrize("dtype", [np.float32, float, int, 5, None, dtypes.int32])
def test_non_str_dtype_kept_as_given(dtype):
    # Paddle converts only str / np.dtype; everything else is stored untouched.
    s = InputSpec([1], dtype)
    assert s.dtype is dtype
    assert repr(s) == f"InputSpec(shape=(1,), dtype={dtype}, name=None, stop_gradient=False)"


def test_raw_numpy_type_repr():
    assert repr(InputSpec([2], np.float32)) == (
        "InputSpec(shape=(2,), dtype=<class 'numpy.float32'>, name=None, stop_gradient=False)"
    )


@pytest.mark.parametrize(
    "dtype, exc, msg",
    [
        ("foo", TypeError, "data type 'foo' not understood"),
        ("paddle.float32", TypeError, "data type 'paddle.float32' not understood"),
        (np.dtype("uint32"), ValueError, "Not supported numpy dtype uint32"),
        (np.dtype(object), ValueError, "Not supported numpy dtype object"),
        (np.dtype(">f4"), ValueError, "Not supported numpy dtype >f4"),
    ],
)
def test_bad_dtypes(dtype, exc, msg):
    with pytest.raises(exc) as info:
        InputSpec([1], dtype)
    assert str(info.value) == msg


def test_float8_is_reported_unsupported():
    with pytest.raises(ValueError, match="float8_e4m3fn"):
        InputSpec([1], "float8_e4m3fn")


def test_other_attributes_stored_as_given():
    assert InputSpec([2], name=3).name == 3


def test_from_tensor_duck_typed():
    t = FakeTensor([2, 2], dtypes.float32, "eager_tmp_0")
    assert repr(InputSpec.from_tensor(t, name="x")) == (
        "InputSpec(shape=(2, 2), dtype=paddle.float32, name=x, stop_gradient=False)"
    )
    s = InputSpec.from_tensor(t)
    assert s.name == "eager_tmp_0"
    assert InputSpec.from_tensor(t, "").name == "eager_tmp_0"  # `name or tensor.name`
    assert s.stop_gradient is False
    assert InputSpec.from_tensor(FakeTensor([None, 4], "int64", "t")).shape == (-1, 4)
    assert InputSpec.from_tensor(FakeTensor([3], "int64", "t")).dtype is dtypes.int64


@pytest.mark.parametrize(
    "obj, type_name", [(np.ones(3), "ndarray"), ([1], "list"), (None, "NoneType"), (3.0, "float")]
)
def test_from_tensor_rejects_non_tensors(obj, type_name):
    with pytest.raises(ValueError) as info:
        InputSpec.from_tensor(obj)
    assert str(info.value) == f"Input `tensor` should be a Tensor, but received {type_name}."


def test_from_numpy():
    s = InputSpec.from_numpy(np.ones([2, 2], np.float32), name="x")
    assert repr(s) == "InputSpec(shape=(2, 2), dtype=paddle.float32, name=x, stop_gradient=False)"
    s = InputSpec.from_numpy(np.ones([], bool))
    assert (s.shape, s.dtype, s.name, s.stop_gradient) == ((), dtypes.bool_, None, False)
    assert InputSpec.from_numpy(np.ones(2, np.uint16)).dtype is dtypes.bfloat16
    with pytest.raises(ValueError, match="^Not supported numpy dtype uint32$"):
        InputSpec.from_numpy(np.ones(2, np.uint32))
    with pytest.raises(AttributeError):
        InputSpec.from_numpy([1, 2])


def test_batch_and_unbatch():
    s = InputSpec(shape=[64], dtype="float32", name="x")
    assert s.batch(4) is s
    assert repr(s) == "InputSpec(shape=(4, 64), dtype=paddle.float32, name=x, stop_gradient=False)"
    assert s.unbatch() is s
    assert s.shape == (64,)
    assert InputSpec([64]).batch([4]).shape == (4, 64)
    assert InputSpec([64]).batch((4,)).shape == (4, 64)
    assert InputSpec([64]).batch(True).shape == (True, 64)
    # batch does not verify what it prepends
    assert InputSpec([64]).batch([None]).shape == (None, 64)
    assert InputSpec([64]).batch(-5).shape == (-5, 64)
    assert InputSpec([64]).batch([2.5]).unbatch().shape == (64,)
    assert InputSpec([3]).unbatch().shape == ()


def test_unbatch_reverifies_rest_of_shape():
    # the rest of the shape is a tuple, so an unverified value < -1 hits the tuple quirk
    s = InputSpec([64]).batch(-7).batch(2)
    with pytest.raises(TypeError, match="does not support item assignment"):
        s.unbatch()


@pytest.mark.parametrize(
    "arg, exc, msg",
    [
        ((4, 5), ValueError, "Length of batch_size: (4, 5) shall be 1, but received 2."),
        ([], ValueError, "Length of batch_size: [] shall be 1, but received 0."),
        (None, TypeError, "type(batch_size) shall be `int`, but received NoneType."),
        (2.0, TypeError, "type(batch_size) shall be `int`, but received float."),
        (np.int64(3), TypeError, "type(batch_size) shall be `int`, but received int64."),
    ],
)
def test_batch_errors(arg, exc, msg):
    with pytest.raises(exc) as info:
        InputSpec([64]).batch(arg)
    assert str(info.value) == msg


def test_unbatch_0d():
    with pytest.raises(ValueError) as info:
        InputSpec([]).unbatch()
    assert str(info.value) == "Not support to unbatch a InputSpec when len(shape) == 0."


def test_eq_ne_hash():
    a = InputSpec([None, 2], "float32", "x")
    assert a == InputSpec((-1, 2), dtypes.float32, "x")
    assert not a != InputSpec((-1, 2), dtypes.float32, "x")
    assert a != InputSpec([-1, 2], "float32", "y")
    assert hash(a) == hash(InputSpec([-1, 2], "float32", "y"))  # name not hashed
    assert a != InputSpec([-1, 2], "float64", "x")
    assert a != InputSpec([-1, 2], "float32", "x", stop_gradient=True)
    assert a != InputSpec([-1, 3], "float32", "x")
    assert a != (-1, 2)
    assert (a == 3) is False
    # a raw numpy type is not a Paddle dtype, so it never equals the converted one
    assert InputSpec([2], np.float32) != InputSpec([2])
    assert InputSpec([2], np.float32) == InputSpec([2], np.float32)
    assert len({InputSpec([2], name="a"), InputSpec([2], name="b")}) == 2


def test_eq_needs_exact_class():
    class Sub(InputSpec):
        pass

    assert InputSpec([2]) != Sub([2])
    assert repr(Sub([2])).startswith("Sub(shape=(2,)")


def test_public_attributes():
    public = {a for a in dir(InputSpec([2])) if not a.startswith("_")}
    assert public == {"batch", "dtype", "from_numpy", "from_tensor", "name", "shape",
                      "stop_gradient", "unbatch"}


# --------------------------------------------------------------------------------------------
# Interop: the same cases through paddle.static.InputSpec and ours.


@pytest.fixture(scope="module")
def paddle():
    os.environ.setdefault("FLAGS_enable_pir_api", "0")
    return pytest.importorskip("paddle")


class _OurDtypes:
    """`dt.float32` etc. for our side; the Paddle side uses the paddle module itself."""

    def __getattr__(self, name):
        return dtypes.convert_dtype(name)


def _summary(value, paddle_mod):
    if isinstance(value, (InputSpec, paddle_mod.static.InputSpec)):
        return {
            "repr": repr(value),
            "shape": value.shape,
            "dtype": str(value.dtype),
            "name": value.name,
            "stop_gradient": value.stop_gradient,
        }
    if isinstance(value, (list, tuple)):
        return type(value)(_summary(v, paddle_mod) for v in value)
    return value


def _outcome(fn, paddle_mod):
    try:
        return ("ok", _summary(fn(), paddle_mod))
    except Exception as e:  # noqa: BLE001 - comparing exceptions is the point
        return (type(e).__name__, str(e))


def _pair_facts(pair):
    a, b = pair
    return {"eq": a == b, "ne": a != b, "hash_eq": hash(a) == hash(b)}


def _mutated(S, shape):
    S(shape)
    return shape


CASES = {
    # construction and repr
    "guide_x": lambda S, dt: S([None, 784], "float32", "x"),
    "guide_label": lambda S, dt: S([None, 1], "int64", "label"),
    "tuple_ok": lambda S, dt: S((2, 3)),
    "tuple_minus1": lambda S, dt: S((-1, 3)),
    "list_neg": lambda S, dt: S([-5, 3, None]),
    "empty_list": lambda S, dt: S([]),
    "empty_tuple": lambda S, dt: S(()),
    "bools": lambda S, dt: S([True, False]),
    "stop_gradient": lambda S, dt: S([2], "float32", "x", True),
    "stop_gradient_int": lambda S, dt: S([2], "float32", None, 1),
    "name_int": lambda S, dt: S([2], name=3),
    "list_mutated": lambda S, dt: _mutated(S, [None, -3, 4]),
    "list_partly_mutated": lambda S, dt: _mutated_then_error(S),
    # shape errors
    "tuple_none": lambda S, dt: S((None, 3)),
    "tuple_none_late": lambda S, dt: S((3, None)),
    "tuple_lt_minus1": lambda S, dt: S((-5, 3)),
    "tuple_none_before_float": lambda S, dt: S((None, 2.0)),
    "float_dim": lambda S, dt: S([2.0, 3]),
    "str_dim": lambda S, dt: S([1, "a"]),
    "np_int_dim": lambda S, dt: S([np.int64(3)]),
    "shape_int": lambda S, dt: S(3),
    "shape_none": lambda S, dt: S(None),
    "shape_str": lambda S, dt: S("ab"),
    "shape_dict": lambda S, dt: S({1: 2}),
    # dtypes
    **{f"dtype_{d}": (lambda d: lambda S, dt: S([2], d))(d)
       for d in ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
                 "bool", "bool_", "complex64", "complex128", "bfloat16", "uint16", "float",
                 "int", "double", "half", "f4", "<f8", "i2"]},
    "dtype_npdtype": lambda S, dt: S([2], np.dtype("float16")),
    "dtype_npdtype_uint16": lambda S, dt: S([2], np.dtype("uint16")),
    "dtype_paddle": lambda S, dt: S([2], dt.float64),
    "dtype_np_type": lambda S, dt: S([2], np.float32),
    "dtype_py_float": lambda S, dt: S([2], float),
    "dtype_none": lambda S, dt: S([2], None),
    "dtype_int": lambda S, dt: S([2], 5),
    "dtype_foo": lambda S, dt: S([2], "foo"),
    "dtype_prefixed": lambda S, dt: S([2], "paddle.float32"),
    "dtype_fp32": lambda S, dt: S([2], "fp32"),
    "dtype_uint32": lambda S, dt: S([2], np.dtype("uint32")),
    "dtype_object": lambda S, dt: S([2], np.dtype(object)),
    "dtype_bigendian": lambda S, dt: S([2], np.dtype(">f4")),
    # from_numpy / from_tensor errors
    "from_numpy": lambda S, dt: S.from_numpy(np.ones([2, 3], "int32")),
    "from_numpy_named": lambda S, dt: S.from_numpy(np.ones([2, 3]), "n"),
    "from_numpy_0d": lambda S, dt: S.from_numpy(np.ones([], "bool")),
    "from_numpy_uint16": lambda S, dt: S.from_numpy(np.ones([2], "uint16")),
    "from_numpy_uint32": lambda S, dt: S.from_numpy(np.ones([2], "uint32")),
    "from_tensor_ndarray": lambda S, dt: S.from_tensor(np.ones(3)),
    "from_tensor_list": lambda S, dt: S.from_tensor([1]),
    "from_tensor_none": lambda S, dt: S.from_tensor(None),
    # batch / unbatch
    "batch": lambda S, dt: S([64], name="x").batch(4),
    "batch_list": lambda S, dt: S([64]).batch([4]),
    "batch_tuple": lambda S, dt: S([64]).batch((4,)),
    "batch_len2": lambda S, dt: S([64]).batch((4, 5)),
    "batch_empty": lambda S, dt: S([64]).batch([]),
    "batch_none": lambda S, dt: S([64]).batch(None),
    "batch_float": lambda S, dt: S([64]).batch(2.0),
    "batch_np_int": lambda S, dt: S([64]).batch(np.int64(3)),
    "batch_bool": lambda S, dt: S([64]).batch(True),
    "batch_list_none": lambda S, dt: S([64]).batch([None]),
    "batch_list_float": lambda S, dt: S([64]).batch([2.5]),
    "batch_neg": lambda S, dt: S([64]).batch(-5),
    "batch_returns_self": lambda S, dt: (lambda s: s.batch(1) is s)(S([2])),
    "unbatch": lambda S, dt: S([4, 64]).unbatch(),
    "unbatch_to_0d": lambda S, dt: S([3]).unbatch(),
    "unbatch_0d": lambda S, dt: S([]).unbatch(),
    "unbatch_twice": lambda S, dt: S([3]).unbatch().unbatch(),
    "unbatch_after_neg": lambda S, dt: S([64]).batch(-5).unbatch(),
    "unbatch_tuple_quirk": lambda S, dt: S([64]).batch(-7).batch(2).unbatch(),
    "unbatch_returns_self": lambda S, dt: (lambda s: s.unbatch() is s)(S([2])),
    # equality / hash (pairs)
    "eq_list_tuple": lambda S, dt: _pair_facts((S([-1, 2]), S((-1, 2)))),
    "eq_none_minus1": lambda S, dt: _pair_facts((S([None, 2]), S([-1, 2]))),
    "eq_name": lambda S, dt: _pair_facts((S([2]), S([2], name="a"))),
    "eq_dtype": lambda S, dt: _pair_facts((S([2]), S([2], "float64"))),
    "eq_str_vs_paddle": lambda S, dt: _pair_facts((S([2], "float64"), S([2], dt.float64))),
    "eq_np_type_vs_str": lambda S, dt: _pair_facts((S([2], np.float32), S([2]))),
    "eq_np_type_vs_np_type": lambda S, dt: _pair_facts((S([2], np.float32), S([2], np.float32))),
    "eq_stop_gradient": lambda S, dt: _pair_facts((S([2]), S([2], stop_gradient=True))),
    "eq_shape": lambda S, dt: _pair_facts((S([2]), S([3]))),
    "eq_bool_vs_int_dim": lambda S, dt: _pair_facts((S([True]), S([1]))),
    "eq_batched": lambda S, dt: _pair_facts((S([3]).batch(2), S([2, 3]))),
    "eq_other_type": lambda S, dt: (S([2]) == 3, S([2]) != 3, S([2]) == (2,)),
}


def _mutated_then_error(S):
    shape = [None, 2.0]
    try:
        S(shape)
    except ValueError as e:
        return (shape, str(e))
    return None


@pytest.mark.interop
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_paddle(paddle, case):
    fn = CASES[case]
    theirs = _outcome(lambda: fn(paddle.static.InputSpec, paddle), paddle)
    ours = _outcome(lambda: fn(InputSpec, _OurDtypes()), paddle)
    assert ours == theirs


@pytest.mark.interop
@pytest.mark.parametrize(
    "shape, dtype, name",
    [
        ([2, 3], "float32", None),
        ([2, 3], "float32", "x"),
        ([4], "int64", ""),
        ([], "bool", None),
        ([1, 2, 3], "float16", "h"),
    ],
)
def test_from_tensor_matches_paddle(paddle, shape, dtype, name):
    t = paddle.ones(shape, dtype)
    duck = FakeTensor(t.shape, dtypes.convert_dtype(str(t.dtype)), t.name)
    theirs = paddle.static.InputSpec.from_tensor(t, name)
    ours = InputSpec.from_tensor(duck, name)
    assert _summary(ours, paddle) == _summary(theirs, paddle)
    assert theirs.name == (name or t.name)

"""Index expressions for `Tensor.__getitem__` / `__setitem__`, written once and run on
tostatic, real Paddle and numpy. `x` is [4, 5, 6] float32; `v` [6] float32; `i` [3] int64
([0, 2, 3]); `s` a 0-D int64 (2); `b` a [4, 5] bool mask; `m` x's full bool mask."""
import numpy as np

# expression -> the numpy expression giving the same result (None: Paddle's rule differs from
# numpy's, checked against Paddle only)
GETITEM = {
    "x[1]": "x[1]", "x[-1]": "x[-1]", "x[-4]": "x[-4]", "x[1:3]": "x[1:3]", "x[-3:-1]": "x[-3:-1]",
    "x[:100]": "x[:100]", "x[3:1]": "x[3:1]", "x[::2]": "x[::2]", "x[1::2, ::3]": "x[1::2, ::3]",
    "x[::-1]": "x[::-1]", "x[3:0:-2]": "x[3:0:-2]", "x[:, ::-2, -2::-3]": "x[:, ::-2, -2::-3]",
    "x[1, None, ::-2]": "x[1, None, ::-2]", "x[..., 1]": "x[..., 1]", "x[None]": "x[None]",
    "x[..., None]": "x[..., None]", "x[1, ..., 2]": "x[1, ..., 2]", "x[:, -1]": "x[:, -1]",
    "x[0, 1, 2]": "x[0, 1, 2]", "x[None, 1:3, None, 2]": None,
    "x[s]": "x[2]", "x[:, s]": "x[:, 2]", "x[s, 1:3]": "x[2, 1:3]", "x[s, ::-1]": "x[2, ::-1]",
    "x[:, -s + 1]": "x[:, -1]", "x[-s - 2]": "x[-4]", "x[1:s]": "x[1:2]", "x[s:]": "x[2:]",
    "x[:, s:s + 2]": "x[:, 2:4]", "x[-s:, 1]": "x[-2:, 1]", "x[:s, [0, 1]]": "x[:2, [0, 1]]",
    "x[i]": "x[[0, 2, 3]]", "x[[0, 2]]": "x[[0, 2]]", "x[:, [0, 2]]": "x[:, [0, 2]]",
    "x[[0, 1], [1, 2]]": "x[[0, 1], [1, 2]]", "x[[-1, 0]]": "x[[-1, 0]]",
    "x[1, [0, 2]]": "x[1, [0, 2]]", "x[:, [0, 2], 1:3]": "x[:, [0, 2], 1:3]",
    "x[[[0, 1], [2, 3]]]": "x[[[0, 1], [2, 3]]]", "x[i, :, i]": "x[[0, 2, 3], :, [0, 2, 3]]",
    "x[..., [1, 2]]": "x[..., [1, 2]]", "x[::2, [4, 0]]": "x[::2, [4, 0]]",
    "x[[0, 3], 1:4, [5, 1]]": None, "x[np.array([3, 1])]": "x[np.array([3, 1])]",
    "x[b]": "x[b]", "x[m]": "x[m]", "x[x > 50.0]": "x[x > 50.0]",
    "x[0, b[0]]": "x[0, b[0]]", "x[:, b[0]]": "x[:, b[0]]", "x[[True, False, True, True]]":
    "x[[True, False, True, True]]", "x[True]": "x[True]", "x[1, False]": "x[1, False]",
}

# what both refuse with an IndexError
GETITEM_ERRORS = ["x[b[0]]", "x[4]", "x[:, 5]", "x[..., ...]"]
SETITEM_ERRORS = [("x > 50.0", "v")]  # a mask's value broadcasts to the selected elements

# (index expression, value expression, whether numpy's x[index] = value means the same); `w` is [5, 6] float32, `n` an int64 [6]
SETITEM = [
    ("1", "2.0", True), ("-1", "w", True), ("(slice(None), slice(None, None, 2), -1)", "v[:3]", True),
    ("(Ellipsis, slice(1, 3))", "7", True), ("(None, 1)", "3", True),
    ("slice(None, None, -1)", "v", True), ("(slice(None, None, -1), 1)", "v", True),
    ("(1, slice(4, 0, -2))", "n", True), ("s", "v", True),
    ("(slice(1, 3), slice(None), 0)", "np.ones([2, 5], 'float32')", True),
    ("m", "1.0", True), ("x > 50.0", "v[2]", True), ("b", "-1.0", True), ("[0, 2]", "v", True),
    ("i", "0.5", True), ("(slice(None), [1, 3], 2)", "-1.0", True),
    ("([0, 1], [1, 2])", "5.0", True), ("(1, [0, 4])", "v", True),
]


def tensors(mod):
    """The named tensors of the table, on `mod` (tostatic or paddle; numpy when None)."""
    rng = np.random.default_rng(0)
    x = (np.arange(120, dtype="float32").reshape(4, 5, 6) - 40.0) * 1.5
    arrays = {"x": x, "v": np.arange(6, dtype="float32") * 10.0,
              "w": rng.standard_normal((5, 6)).astype("float32"),
              "i": np.array([0, 2, 3], "int64"), "s": np.array(2, "int64"),
              "n": np.arange(6, dtype="int64"), "b": rng.random((4, 5)) > 0.5, "m": x > 10.0}
    if mod is None:
        return arrays
    return {k: mod.to_tensor(a) for k, a in arrays.items()}

"""paddle.nn's recurrent cells (SimpleRNNCell, LSTMCell, GRUCell), the RNN / BiRNN layers that
run a cell over time, and the zero initial states every recurrent layer makes
(paddle/nn/layer/rnn.py).

A cell is one time step, written with the ops Paddle's cell writes (matmul_v2 with
transpose_y, elementwise_add, split, sigmoid / tanh); its parameters are made as Paddle makes
them (names `lstm_cell_K.w_0` / `.w_1` / `.b_0` / `.b_1`, Uniform(-1/sqrt(hidden),
1/sqrt(hidden)), a `False` attribute giving a constant, non-trainable parameter). RNN and
BiRNN loop over the time steps in Python (Paddle's dygraph `rnn()`): eager, or unrolled while
tracing when the number of steps is known. nn.LSTM / GRU / SimpleRNN (rnn.py) hold their
cells in these layers, for Paddle's structured names, and run one `rnn` op instead.
"""
from __future__ import annotations

import math as pymath
from typing import Any, Sequence

from xdsl.dialects.builtin import ArrayAttr, StringAttr

from tostatic.frontend.nn import initializer as I
from tostatic.frontend.nn.layer import Layer, _default_dtype_name
from tostatic.frontend.nn.naming import emit
from tostatic.frontend.tensor import math
from tostatic.frontend.tensor.dispatch import apply
from tostatic.ir import builder as builders
from tostatic.ir import dtypes
from tostatic.ir.attr_keys import NAMES_ATTR
from tostatic.ir.errors import UnsupportedError
from tostatic.ops import creation
from tostatic.ops.creation_from_tensors import FullFromShapeList
from tostatic.ops.indexing import Slice
from tostatic.ops.joining import Concat, Split, Stack
from tostatic.ops.manipulation import Shape


# --- names and zero states, as Paddle writes them --------------------------------------------

def rename(result: Any, name: str) -> None:
    """Give a traced result the variable name Paddle gives it (nothing eager, or in static
    mode, whose program builder has declared its variables already)."""
    builder = builders.current()
    value = getattr(result, "value", None)
    if builder is None or value is None or not hasattr(builder, "captures"):
        return
    op = value.owner
    names = [s.data for s in op.attributes[NAMES_ATTR].data]
    names[value.index] = name
    op.attributes[NAMES_ATTR] = ArrayAttr([StringAttr(n) for n in names])
    result.name = name


def _full(shape: Sequence[int], value: float, dtype: Any, force_cpu: bool = False) -> Any:
    """paddle.full with a static shape: fill_constant, named `fill_constant_<K+1>.tmp_0`
    (Paddle's full uses two numbers of the key)."""
    builder = builders.current()
    if builder is not None:
        builder.names("fill_constant")
    dtype = dtypes.convert_dtype(dtype)
    return apply(creation.Full, shape=tuple(shape), value=float(value), dtype=dtype,
                 str_value=creation.paddle_value_text(value, dtype), force_cpu=force_cpu)


def zero_states(ref: Any, batch_index: int, shapes: Sequence[Sequence[int | None]],
                dtype: Any, value: float = 0.0) -> list[Any]:
    """One zero (or `value`) tensor per shape in `shapes`, whose None dim is the batch size of
    `ref`
    (its dim `batch_index`), as Paddle's RNN layers make their initial states: paddle.full
    with the batch size as a number when it is known, else as the tensor
    `paddle.shape(ref)[batch_index]` (one shape and slice op for all states; each dim of the
    full a one-element tensor: fill_constant with a ShapeTensorList)."""
    batch = ref.shape[batch_index]
    if batch >= 0:
        return [_full([batch if d is None else d for d in s], value, dtype) for s in shapes]
    shape = apply(Shape, ref)
    size = apply(Slice, shape, axes=(0,), starts=(batch_index,), ends=(batch_index + 1,),
                 decrease_axis=(0,))
    builder = builders.current()
    rename(size, builder.names(f"{shape.name}_slice"))
    states = []
    for s in shapes:
        builder.names("fill_constant")
        prefix = builder.names("fill_constant")
        dims = [size if d is None else _full([], d, dtypes.int32, force_cpu=True) for d in s]
        dt = dtypes.convert_dtype(dtype)
        states.append(emit(FullFromShapeList, dims,
                           {"shape": tuple(-1 if d is None else d for d in s),
                            "value": float(value), "dtype": dt,
                            "str_value": creation.paddle_value_text(value, dt),
                            "force_cpu": False}, "fill_constant", name=prefix, created=[0]))
    return states


# --- the cells ---------------------------------------------------------------------------------

class RNNCellBase(Layer):
    """A cell: one time step of a recurrent network (inputs [batch, input_size])."""

    def get_initial_states(self, batch_ref: Any, shape: Any = None, dtype: Any = None,
                           init_value: float = 0.0, batch_dim_idx: int = 0) -> Any:
        """Zeros (or `init_value`) of `shape` (default: state_shape) with the batch size of
        `batch_ref` in front: one tensor, or a tuple for an LSTM's (h, c)."""
        shapes = self.state_shape if shape is None else shape
        nested = isinstance(shapes[0], (list, tuple))
        shapes = list(shapes) if nested else [shapes]
        shapes = [[None, *s] if s[0] != -1 else [None, *s[1:]] for s in shapes]
        if dtype is None:  # Paddle's cells declare no state_dtype: the default dtype
            dtype = _default_dtype_name()
        states = zero_states(batch_ref, batch_dim_idx, shapes, dtype, init_value)
        return tuple(states) if nested else states[0]

    @property
    def state_shape(self) -> Any:
        raise NotImplementedError("Please add implementation for `state_shape` in the used "
                                  "cell.")

    @property
    def state_dtype(self) -> Any:
        raise NotImplementedError("Please add implementation for `state_dtype` in the used "
                                  "cell.")

    def _make_parameters(self, rows: int, input_size: int, hidden_size: int,
                         weight_ih_attr: Any, weight_hh_attr: Any, bias_ih_attr: Any,
                         bias_hh_attr: Any, hh_cols: int | None = None) -> None:
        """weight_ih [rows, input_size], weight_hh [rows, hh_cols], bias_ih, bias_hh [rows],
        each Uniform(-std, std), std = 1/sqrt(hidden_size); an attribute of False gives a
        constant (1 for weights, 0 for biases) that does not train, as Paddle does."""
        if hidden_size <= 0:
            raise ValueError(f"hidden_size of {type(self).__name__} must be greater than 0, "
                             f"but now equals to {hidden_size}")
        std = 1.0 / pymath.sqrt(hidden_size)
        specs = (("weight_ih", (rows, input_size), weight_ih_attr, False),
                 ("weight_hh", (rows, hh_cols or hidden_size), weight_hh_attr, False),
                 ("bias_ih", (rows,), bias_ih_attr, True),
                 ("bias_hh", (rows,), bias_hh_attr, True))
        for name, shape, attr, is_bias in specs:
            if attr is not False:
                p = self.create_parameter(shape, attr, is_bias=is_bias,
                                          default_initializer=I.Uniform(-std, std))
            else:
                p = self.create_parameter(shape, None, is_bias=is_bias,
                                          default_initializer=I.Constant(0.0 if is_bias
                                                                         else 1.0))
                p.stop_gradient = True
            setattr(self, name, p)
        self.input_size = input_size
        self.hidden_size = hidden_size

    def _projections(self, inputs: Any, pre_hidden: Any) -> tuple[Any, Any]:
        """(x W_ih^T + b_ih, h W_hh^T + b_hh), as Paddle's cells write them."""
        x = math.matmul(inputs, self.weight_ih, transpose_y=True)
        if self.bias_ih is not None:
            x = x + self.bias_ih
        h = math.matmul(pre_hidden, self.weight_hh, transpose_y=True)
        if self.bias_hh is not None:
            h = h + self.bias_hh
        return x, h


class SimpleRNNCell(RNNCellBase):
    """h = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act tanh or relu."""

    def __init__(self, input_size: int, hidden_size: int, activation: str = "tanh",
                 weight_ih_attr: Any = None, weight_hh_attr: Any = None,
                 bias_ih_attr: Any = None, bias_hh_attr: Any = None,
                 name: str | None = None) -> None:
        super().__init__()
        self._make_parameters(hidden_size, input_size, hidden_size, weight_ih_attr,
                              weight_hh_attr, bias_ih_attr, bias_hh_attr)
        if activation not in ("tanh", "relu"):
            raise ValueError(f"activation for SimpleRNNCell should be tanh or relu, but get "
                             f"{activation}")
        self.activation = activation
        self._activation_fn = math.tanh if activation == "tanh" else math.relu

    def forward(self, inputs: Any, states: Any = None) -> tuple[Any, Any]:
        if states is None:
            states = self.get_initial_states(inputs, self.state_shape)
        i2h, h2h = self._projections(inputs, states)
        h = self._activation_fn(i2h + h2h)
        return h, h

    @property
    def state_shape(self) -> tuple[int]:
        return (self.hidden_size,)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        return s + (f", activation={self.activation}" if self.activation != "tanh" else "")


class LSTMCell(RNNCellBase):
    """Gates i, f, g, o: c = sigmoid(f) c + sigmoid(i) tanh(g), h = sigmoid(o) tanh(c)."""

    def __init__(self, input_size: int, hidden_size: int, weight_ih_attr: Any = None,
                 weight_hh_attr: Any = None, bias_ih_attr: Any = None,
                 bias_hh_attr: Any = None, proj_size: int = 0,
                 name: str | None = None) -> None:
        super().__init__()
        if proj_size < 0:
            raise ValueError(f"proj_size of {type(self).__name__} must be greater than 0, "
                             f"but now equals to {hidden_size}")
        if proj_size >= hidden_size and proj_size:
            raise ValueError("proj_size must be smaller than hidden_size")
        self._make_parameters(4 * hidden_size, input_size, hidden_size, weight_ih_attr,
                              weight_hh_attr, bias_ih_attr, bias_hh_attr,
                              hh_cols=proj_size or hidden_size)
        self.proj_size = proj_size
        if proj_size > 0:
            std = 1.0 / pymath.sqrt(hidden_size)
            self.weight_ho = self.create_parameter((hidden_size, proj_size), weight_hh_attr,
                                                   default_initializer=I.Uniform(-std, std))

    def forward(self, inputs: Any, states: Any = None) -> tuple[Any, tuple[Any, Any]]:
        if states is None:
            states = self.get_initial_states(inputs, self.state_shape)
        pre_hidden, pre_cell = states
        gates, h2h = self._projections(inputs, pre_hidden)
        gates = gates + h2h
        # paddle.split(gates, 4, axis=-1), which writes the axis non-negative
        i, f, g, o = apply(Split, gates, num=4, axis=len(gates.shape) - 1)
        c = math.sigmoid(f) * pre_cell + math.sigmoid(i) * math.tanh(g)
        h = math.sigmoid(o) * math.tanh(c)
        if self.proj_size > 0:
            h = math.matmul(h, self.weight_ho)
        return h, (h, c)

    @property
    def state_shape(self) -> tuple[tuple[int], tuple[int]]:
        return ((self.hidden_size,), (self.proj_size or self.hidden_size,))  # as Paddle

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class GRUCell(RNNCellBase):
    """Gates r, z, c, the reset gate applied after the hidden matmul:
    c = tanh(x_c + r (h W_hc^T + b_hc)), h = (h - c) z + c."""

    def __init__(self, input_size: int, hidden_size: int, weight_ih_attr: Any = None,
                 weight_hh_attr: Any = None, bias_ih_attr: Any = None,
                 bias_hh_attr: Any = None, name: str | None = None) -> None:
        super().__init__()
        self._make_parameters(3 * hidden_size, input_size, hidden_size, weight_ih_attr,
                              weight_hh_attr, bias_ih_attr, bias_hh_attr)

    def forward(self, inputs: Any, states: Any = None) -> tuple[Any, Any]:
        if states is None:
            states = self.get_initial_states(inputs, self.state_shape)
        x_gates, h_gates = self._projections(inputs, states)
        x_r, x_z, x_c = apply(Split, x_gates, num=3, axis=1)
        h_r, h_z, h_c = apply(Split, h_gates, num=3, axis=1)
        r = math.sigmoid(x_r + h_r)
        z = math.sigmoid(x_z + h_z)
        c = math.tanh(x_c + r * h_c)
        h = (states - c) * z + c
        return h, h

    @property
    def state_shape(self) -> tuple[int]:
        return (self.hidden_size,)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


# --- running a cell over time -----------------------------------------------------------------

def _step(x: Any, t: int) -> Any:
    return apply(Slice, x, axes=(0,), starts=(t,), ends=(t + 1,), decrease_axis=(0,))


def _flat(states: Any) -> list[Any]:
    return list(states) if isinstance(states, (list, tuple)) else [states]


def _like(template: Any, flat: list[Any]) -> Any:
    return tuple(flat) if isinstance(template, (list, tuple)) else flat[0]


def run_cell(cell: RNNCellBase, inputs: Any, initial_states: Any = None,
             sequence_length: Any = None, time_major: bool = False,
             is_reverse: bool = False, **kwargs: Any) -> tuple[Any, Any]:
    """Paddle's dygraph `rnn()`: the cell applied at every time step (in reverse order for
    is_reverse), outputs stacked on the time axis; with sequence_length, a state stops
    updating past its sequence's length (outputs there are what the cell gave, as Paddle's)."""
    time_axis = 0 if time_major else 1
    steps = inputs.shape[time_axis]
    if steps < 0:
        raise UnsupportedError(f"{type(cell).__name__} over time: the number of time steps "
                               f"must be known to unroll the loop (input shape "
                               f"{list(inputs.shape)}); nn.LSTM / nn.GRU / nn.SimpleRNN run "
                               f"any length as one rnn op")
    if initial_states is None:
        initial_states = cell.get_initial_states(inputs, batch_dim_idx=1 if time_major else 0)
    if not time_major:
        inputs = math.transpose(inputs, [1, 0, *range(2, len(inputs.shape))])
    mask = None
    if sequence_length is not None:
        t = math.arange(0, steps, dtype=sequence_length.dtype)
        mask = math.cast(math.less_than(math.reshape(t, [steps, 1]),
                                        math.reshape(sequence_length, [1, -1])),
                         inputs.dtype)
    states, outputs = initial_states, [None] * steps
    for t in (range(steps - 1, -1, -1) if is_reverse else range(steps)):
        out, new_states = cell(_step(inputs, t), states, **kwargs)
        if mask is not None:
            m = math.reshape(_step(mask, t), [-1, 1])
            new_states = _like(new_states, [n * m + s * (1.0 - m) for s, n in
                                            zip(_flat(states), _flat(new_states))])
        states = new_states
        outputs[t] = out
    return apply(Stack, *outputs, axis=time_axis), states


class RNN(Layer):
    """Runs `cell` over the time steps of its input (batch-first unless time_major)."""

    def __init__(self, cell: RNNCellBase, is_reverse: bool = False,
                 time_major: bool = False) -> None:
        super().__init__()
        self.cell = cell
        if not hasattr(self.cell, "call"):
            self.cell.call = self.cell.forward
        self.is_reverse = is_reverse
        self.time_major = time_major

    def forward(self, inputs: Any, initial_states: Any = None, sequence_length: Any = None,
                **kwargs: Any) -> tuple[Any, Any]:
        return run_cell(self.cell, inputs, initial_states, sequence_length, self.time_major,
                        self.is_reverse, **kwargs)


class BiRNN(Layer):
    """A forward and a backward cell over the same input, outputs concatenated on the last
    axis, final states as (forward, backward)."""

    def __init__(self, cell_fw: RNNCellBase, cell_bw: RNNCellBase,
                 time_major: bool = False) -> None:
        super().__init__()
        self.cell_fw = cell_fw
        self.cell_bw = cell_bw
        if cell_fw.input_size != cell_bw.input_size:
            raise ValueError(f"input size of forward cell({cell_fw.input_size}) does not "
                             f"equalsthat of backward cell({cell_bw.input_size})")
        for cell in (self.cell_fw, self.cell_bw):
            if not hasattr(cell, "call"):
                cell.call = cell.forward
        self.time_major = time_major

    def forward(self, inputs: Any, initial_states: Any = None, sequence_length: Any = None,
                **kwargs: Any) -> tuple[Any, tuple[Any, Any]]:
        if isinstance(initial_states, (list, tuple)):
            assert len(initial_states) == 2, \
                "length of initial_states should be 2 when it is a list/tuple"
            fw_states, bw_states = initial_states
        else:
            fw_states = bw_states = None
        out_fw, st_fw = run_cell(self.cell_fw, inputs, fw_states, sequence_length,
                                 self.time_major, False, **kwargs)
        out_bw, st_bw = run_cell(self.cell_bw, inputs, bw_states, sequence_length,
                                 self.time_major, True, **kwargs)
        return apply(Concat, out_fw, out_bw, axis=-1), (st_fw, st_bw)

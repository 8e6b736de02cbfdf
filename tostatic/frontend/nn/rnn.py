"""nn.SimpleRNN, nn.LSTM, nn.GRU: multi-layer, optionally bidirectional recurrent networks,
each one Paddle `rnn` op (paddle/nn/layer/rnn.py, RNNBase).

As in Paddle, the layer is a LayerList of RNN (forward) or BiRNN (bidirectional) layers
holding one cell per direction (structured names `0.cell.weight_ih`, `0.cell_fw.weight_ih`),
and the same parameters are also its own attributes `weight_ih_l0`, `weight_hh_l0`,
`bias_ih_l0`, `bias_hh_l0`, ... `_reverse` for the backward direction; so its state_dict has
both sets of keys, as Paddle's has, and `set_state_dict(paddle_layer.state_dict())` works.

forward writes what Paddle's `_cudnn_impl` writes: without initial states, zero states
(paddle.full: `rnn_zero_states`); batch-first input transposed to time-major (transpose2
[1, 0, 2]) and the output back; the `rnn` op reading every weight first and every bias after
(`_all_weights`, Paddle's flatten_parameters order), its variables named `lstm_0.tmp_K` and
`lstm_0.dropout_state__non_persistable` after the layer's full name.
"""
from __future__ import annotations

from typing import Any

from tostatic.frontend.nn.common import LayerList
from tostatic.frontend.nn.naming import emit
from tostatic.frontend.nn.rnn_cells import (
    BiRNN,
    GRUCell,
    LSTMCell,
    RNN,
    SimpleRNNCell,
    rename,
    zero_states,
)
from tostatic.frontend.tensor import math
from tostatic.ir import names as unique_name
from tostatic.ir.errors import UnsupportedError
from tostatic.ops import recurrent

BIDIRECTIONAL = ("bidirectional", "bidirect")
CELLS = {"LSTM": LSTMCell, "GRU": GRUCell, "RNN_TANH": SimpleRNNCell,
         "RNN_RELU": SimpleRNNCell}


class RNNBase(LayerList):
    """What SimpleRNN, LSTM and GRU share: the layers of cells, the flat weight list, and
    forward as one `rnn` op."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 direction: str = "forward", time_major: bool = False, dropout: float = 0.0,
                 weight_ih_attr: Any = None, weight_hh_attr: Any = None,
                 bias_ih_attr: Any = None, bias_hh_attr: Any = None,
                 proj_size: int = 0) -> None:
        super().__init__()
        kind = type(self).__name__
        if proj_size:
            raise UnsupportedError(f"nn.{kind}: proj_size={proj_size} is not supported "
                                   f"(Paddle runs an LSTM with projections as a Python loop, "
                                   f"not as an rnn op); use proj_size=0")
        for arg, value in (("bias_ih_attr", bias_ih_attr), ("bias_hh_attr", bias_hh_attr)):
            if value is False:  # Paddle 3.3.1's layer then misplaces its weights and crashes
                raise UnsupportedError(f"nn.{kind}: {arg}=False is not supported (Paddle "
                                       f"3.3.1 cannot run it either); use a ParamAttr with a "
                                       f"Constant(0.0) initializer and trainable=False")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.dropout = dropout
        self.num_directions = 2 if direction in BIDIRECTIONAL else 1
        self.time_major = time_major
        self.num_layers = num_layers
        self.state_components = 2 if mode == "LSTM" else 1
        self.proj_size = proj_size
        kwargs: dict[str, Any] = {"weight_ih_attr": weight_ih_attr,
                                  "weight_hh_attr": weight_hh_attr,
                                  "bias_ih_attr": bias_ih_attr, "bias_hh_attr": bias_hh_attr}
        if mode in ("RNN_RELU", "RNN_TANH"):
            kwargs["activation"] = "relu" if mode == "RNN_RELU" else "tanh"
        cell = CELLS[mode]
        if direction == "forward":
            for layer in range(num_layers):
                self.append(RNN(cell(input_size if layer == 0 else hidden_size, hidden_size,
                                     **kwargs), False, time_major))
        elif direction in BIDIRECTIONAL:
            for layer in range(num_layers):
                size = input_size if layer == 0 else 2 * hidden_size
                cell_fw = cell(size, hidden_size, **kwargs)
                cell_bw = cell(size, hidden_size, **kwargs)
                self.append(BiRNN(cell_fw, cell_bw, time_major))
        else:
            raise ValueError("direction should be forward or bidirect (or bidirectional), "
                             f"received direction = {direction}")
        self.could_use_cudnn = True
        # the parameters as the layer's own attributes too (Paddle's names and order)
        param_names: list[str] = []
        for layer in range(num_layers):
            for d in range(self.num_directions):
                suffix = "_reverse" if d == 1 else ""
                param_names += [f"weight_ih_l{layer}{suffix}", f"weight_hh_l{layer}{suffix}",
                                f"bias_ih_l{layer}{suffix}", f"bias_hh_l{layer}{suffix}"]
        for name, param in zip(param_names, self._cell_parameters()):
            setattr(self, name, param)
        self.flatten_parameters()

    def _cell_parameters(self) -> list[Any]:
        """w_ih, w_hh, b_ih, b_hh of each cell, by layer then direction: what Paddle's
        `parameters()` lists here (read from the cells, so that static mode's parameters,
        which a Layer does not register, are found too)."""
        cells = [c for layer in self for c in ((layer.cell,) if isinstance(layer, RNN)
                                               else (layer.cell_fw, layer.cell_bw))]
        return [getattr(c, n) for c in cells
                for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

    def flatten_parameters(self) -> None:
        """The rnn op's WeightList order: for each layer and direction w_ih, w_hh; then for
        each b_ih, b_hh. (Paddle also packs them into one buffer for cuDNN, a parameter named
        `<layer>.w_0` that no inference program reads: its name is taken here all the same.)"""
        params = self._cell_parameters()
        n = len(params) // 2
        self._all_weights = [None] * len(params)
        for i, param in enumerate(params):
            offset = 0 if i % 4 < 2 else n
            self._all_weights[offset + (i // 4) * 2 + i % 2] = param
        unique_name.generate(f"{self._full_name}.w")

    def forward(self, inputs: Any, initial_states: Any = None,
                sequence_length: Any = None) -> tuple[Any, Any]:
        batch_index = 1 if self.time_major else 0
        if initial_states is None:
            shape = [self.num_layers * self.num_directions, None, self.hidden_size]
            initial_states = tuple(zero_states(inputs, batch_index,
                                               [shape] * self.state_components,
                                               inputs.dtype))
        elif not isinstance(initial_states, (list, tuple)):
            initial_states = [initial_states]
        if len(initial_states) != self.state_components:
            raise ValueError(f"nn.{type(self).__name__} takes {self.state_components} initial "
                             f"state tensor(s), got {len(initial_states)}")
        return self._cudnn_impl(inputs, list(initial_states), sequence_length)

    def _cudnn_impl(self, inputs: Any, initial_states: list[Any],
                    sequence_length: Any) -> tuple[Any, Any]:
        if not self.time_major:
            inputs = math.transpose(inputs, [1, 0, 2])
        lstm = self.mode == "LSTM"
        lengths = sequence_length is not None
        op = ((recurrent.LstmWithLengths if lengths else recurrent.Lstm) if lstm
              else (recurrent.RnnWithLengths if lengths else recurrent.Rnn))
        attrs: dict[str, Any] = {"dropout_prob": self.dropout,
                                 "is_bidirec": self.num_directions == 2,
                                 "input_size": self.input_size,
                                 "hidden_size": self.hidden_size,
                                 "num_layers": self.num_layers, "is_test": not self.training,
                                 "seed": 0}
        if not lstm:
            attrs["mode"] = self.mode
        operands = [inputs, *initial_states, *self._all_weights]
        if lengths:
            operands.append(sequence_length)
        k = self.state_components
        outs = emit(op, operands, attrs, "rnn", name=self._full_name,
                    created=list(range(k + 2)))
        rename(outs[-1], f"{self._full_name}.dropout_state__non_persistable")
        out, state = outs[0], outs[1:1 + k]
        if not self.time_major:
            out = math.transpose(out, [1, 0, 2])
        return out, tuple(state) if k > 1 else state[0]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.time_major is not False:
            s += f", time_major={self.time_major}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        return s


class SimpleRNN(RNNBase):
    """h = act(x W_ih^T + b_ih + h W_hh^T + b_hh) per layer, act tanh or relu."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 direction: str = "forward", time_major: bool = False, dropout: float = 0.0,
                 activation: str = "tanh", weight_ih_attr: Any = None,
                 weight_hh_attr: Any = None, bias_ih_attr: Any = None,
                 bias_hh_attr: Any = None, name: str | None = None) -> None:
        if activation not in ("tanh", "relu"):
            raise ValueError(f"Unknown activation '{activation}'")
        self.activation = activation
        super().__init__("RNN_TANH" if activation == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, direction, time_major, dropout,
                         weight_ih_attr, weight_hh_attr, bias_ih_attr, bias_hh_attr, 0)


class LSTM(RNNBase):
    """Gates i, f, g, o per layer: c = sigmoid(f) c + sigmoid(i) tanh(g),
    h = sigmoid(o) tanh(c). Returns (outputs, (h, c))."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 direction: str = "forward", time_major: bool = False, dropout: float = 0.0,
                 weight_ih_attr: Any = None, weight_hh_attr: Any = None,
                 bias_ih_attr: Any = None, bias_hh_attr: Any = None, proj_size: int = 0,
                 name: str | None = None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, direction, time_major,
                         dropout, weight_ih_attr, weight_hh_attr, bias_ih_attr, bias_hh_attr,
                         proj_size)


class GRU(RNNBase):
    """Gates r, z, c per layer, the reset gate applied after the hidden matmul."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 direction: str = "forward", time_major: bool = False, dropout: float = 0.0,
                 weight_ih_attr: Any = None, weight_hh_attr: Any = None,
                 bias_ih_attr: Any = None, bias_hh_attr: Any = None,
                 name: str | None = None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, direction, time_major,
                         dropout, weight_ih_attr, weight_hh_attr, bias_ih_attr, bias_hh_attr,
                         0)

"""The common layers and containers of paddle.nn: Linear, ReLU, Identity, Flatten,
Sequential, LayerList, LayerDict (paddle/nn/layer/common.py, activation.py, container.py)."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from itertools import chain
from typing import Any, Iterator

from tostatic.frontend.nn import functional as nn_functional
from tostatic.frontend.nn.layer import Layer, _default_dtype_name
from tostatic.frontend.nn import functional as F


class Linear(Layer):
    """y = x @ weight + bias, weight of shape [in_features, out_features] (Paddle's layout)."""

    def __init__(self, in_features: int, out_features: int, weight_attr: Any = None,
                 bias_attr: Any = None, name: str | None = None) -> None:
        super().__init__()
        self._dtype = _default_dtype_name()
        self._weight_attr = weight_attr
        self._bias_attr = bias_attr
        self.weight = self.create_parameter(shape=[in_features, out_features],
                                            attr=self._weight_attr, dtype=self._dtype,
                                            is_bias=False)
        self.bias = self.create_parameter(shape=[out_features], attr=self._bias_attr,
                                          dtype=self._dtype, is_bias=True)
        self.name = name

    def forward(self, input: Any) -> Any:
        return F.linear(x=input, weight=self.weight, bias=self.bias, name=self.name)

    def extra_repr(self) -> str:
        name_str = f", name={self.name}" if self.name else ""
        return (f"in_features={self.weight.shape[0]}, out_features={self.weight.shape[1]}, "
                f"dtype={self._dtype}{name_str}")


class ReLU(Layer):
    """Its full name is `re_lu_<k>`: Paddle's camel-to-snake rule splits `ReLU`."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__()
        self._name = name

    def forward(self, x: Any) -> Any:
        return nn_functional.relu(x)

    def extra_repr(self) -> str:
        return f"name={self._name}" if self._name else ""


class Identity(Layer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> Any:
        return input


class Flatten(Layer):
    def __init__(self, start_axis: int = 1, stop_axis: int = -1) -> None:
        super().__init__()
        self.start_axis = start_axis
        self.stop_axis = stop_axis

    def forward(self, input: Any) -> Any:
        return nn_functional.flatten(input, start_axis=self.start_axis,
                                      stop_axis=self.stop_axis)


# --- containers -------------------------------------------------------------------------------
class Sequential(Layer):
    """Sequential(l0, l1, ...) names sublayers '0', '1', ...; Sequential(OrderedDict) or
    Sequential(('name', layer), ...) uses the given names."""

    def __init__(self, *layers: Any) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], OrderedDict):
            for name, layer in layers[0].items():
                self.add_sublayer(name, layer)
        elif len(layers) > 0 and isinstance(layers[0], (list, tuple)):
            for name, layer in layers:
                self.add_sublayer(name, layer)
        else:
            for idx, layer in enumerate(layers):
                self.add_sublayer(str(idx), layer)

    def __getitem__(self, name: str | slice | int) -> Any:
        if isinstance(name, slice):
            return self.__class__(*(list(self._sub_layers.values())[name]))
        if isinstance(name, str):
            return self._sub_layers[name]
        if name >= len(self._sub_layers):
            raise IndexError(f"index {name} is out of range")
        if name < 0 and name >= -len(self._sub_layers):
            name += len(self._sub_layers)
        elif name < -len(self._sub_layers):
            raise IndexError(f"index {name} is out of range")
        return list(self._sub_layers.values())[name]

    def __setitem__(self, name: str, layer: Layer) -> None:
        assert isinstance(layer, Layer)
        setattr(self, str(name), layer)

    def __delitem__(self, name: str) -> None:
        name = str(name)
        assert name in self._sub_layers
        del self._sub_layers[name]

    def __len__(self) -> int:
        return len(self._sub_layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self._sub_layers.values())

    def forward(self, input: Any) -> Any:
        for layer in self._sub_layers.values():
            input = layer(input)
        return input

    def append(self, module: Layer) -> "Sequential":
        self.add_sublayer(str(len(self)), module)
        return self

    def insert(self, index: int, module: Layer) -> "Sequential":
        if not isinstance(module, Layer):
            raise AssertionError(f"module should be of type: {Layer}")
        n = len(self._sub_layers)
        if not (-n <= index <= n):
            raise IndexError(f"Index out of range: {index}")
        if index < 0:
            index += n
        for i in range(n, index, -1):
            self._sub_layers[str(i)] = self._sub_layers[str(i - 1)]
        self._sub_layers[str(index)] = module
        return self

    def extend(self, sequential: Iterable[Layer]) -> "Sequential":
        for layer in sequential:
            self.append(layer)
        return self


class LayerList(Layer):
    """A list of sublayers named '0', '1', ...; registered, so their parameters are found."""

    def __init__(self, sublayers: Iterable[Layer] | None = None) -> None:
        super().__init__()
        if sublayers is not None:
            for idx, layer in enumerate(sublayers):
                self.add_sublayer(str(idx), layer)

    def _get_abs_idx(self, idx: int) -> int:
        if isinstance(idx, int):
            if not (-len(self) <= idx < len(self)):
                raise IndexError(f"index {idx} is out of range, should be an integer in range "
                                 f"[{-len(self)}, {len(self)})")
            if idx < 0:
                idx += len(self)
        return idx

    def __getitem__(self, idx: int | slice) -> Any:
        if isinstance(idx, slice):
            return self.__class__(list(self._sub_layers.values())[idx])
        return self._sub_layers[str(self._get_abs_idx(idx))]

    def __setitem__(self, idx: int, sublayer: Layer) -> None:
        setattr(self, str(self._get_abs_idx(idx)), sublayer)

    def __delitem__(self, idx: int | slice) -> None:
        if isinstance(idx, slice):
            for k in range(len(self._sub_layers))[idx]:
                delattr(self, str(k))
        else:
            delattr(self, str(self._get_abs_idx(idx)))
        str_indices = [str(i) for i in range(len(self._sub_layers))]
        self._sub_layers = OrderedDict(list(zip(str_indices, self._sub_layers.values())))

    def __len__(self) -> int:
        return len(self._sub_layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self._sub_layers.values())

    def __iadd__(self, modules: Iterable[Layer]) -> "LayerList":
        return self.extend(modules)

    def __add__(self, other: Iterable[Layer]) -> "LayerList":
        combined = LayerList()
        for i, module in enumerate(chain(self, other)):
            combined.add_module(str(i), module)
        return combined

    def __dir__(self) -> list[str]:
        return [key for key in super().__dir__() if not key.isdigit()]

    def append(self, sublayer: Layer) -> "LayerList":
        self.add_sublayer(str(len(self)), sublayer)
        return self

    def insert(self, index: int, sublayer: Layer) -> None:
        n = len(self._sub_layers)
        assert isinstance(index, int) and -n <= index <= n, \
            f"index should be an integer in range [{-len(self)}, {len(self)}]"
        if index < 0:
            index += len(self)
        for i in range(len(self._sub_layers), index, -1):
            self._sub_layers[str(i)] = self._sub_layers[str(i - 1)]
        self._sub_layers[str(index)] = sublayer

    def extend(self, sublayers: Iterable[Layer]) -> "LayerList":
        offset = len(self)
        for i, sublayer in enumerate(sublayers):
            self.add_sublayer(str(offset + i), sublayer)
        return self

    def pop(self, key: int | slice) -> Any:
        v = self[key]
        del self[key]
        return v


class LayerDict(Layer):
    """An ordered dict of sublayers, keyed by name."""

    def __init__(self, sublayers: Any = None) -> None:
        super().__init__()
        if sublayers is not None:
            self.update(sublayers)

    def __getitem__(self, key: str) -> Layer:
        return self._sub_layers[key]

    def __setitem__(self, key: str, sublayer: Layer) -> Layer:
        return self.add_sublayer(key, sublayer)

    def __delitem__(self, key: str) -> None:
        del self._sub_layers[key]

    def __len__(self) -> int:
        return len(self._sub_layers)

    def __iter__(self) -> Iterator[str]:
        return iter(self._sub_layers)

    def __contains__(self, key: str) -> bool:
        return key in self._sub_layers

    def clear(self) -> None:
        self._sub_layers.clear()

    def pop(self, key: str) -> Layer:
        v = self[key]
        del self[key]
        return v

    def keys(self):
        return self._sub_layers.keys()

    def items(self):
        return self._sub_layers.items()

    def values(self):
        return self._sub_layers.values()

    def update(self, sublayers: Any) -> None:
        assert isinstance(sublayers, Iterable), (
            "The type of sublayers is not iterable of key/value pairs, the type of sublayers is "
            + type(sublayers).__name__)
        if isinstance(sublayers, (OrderedDict, LayerDict, Mapping)):
            for key, layer in sublayers.items():
                self.add_sublayer(key, layer)
        else:
            for i, kv in enumerate(sublayers):
                if len(kv) != 2:
                    raise ValueError(f"The length of the {i}'s element in sublayers is "
                                     f"{len(kv)}, which must be 2.")
                self.add_sublayer(kv[0], kv[1])


__all__ = ["Linear", "ReLU", "Identity", "Flatten", "Sequential", "LayerList", "LayerDict"]

"""paddle.nn LayerNorm, Embedding and GELU (Paddle 3.3.1: paddle/nn/layer/norm.py,
common.py, activation.py), with Paddle's constructors, initialisers and state_dict keys.

LayerNorm: `weight` (ones) and `bias` (zeros) of prod(normalized_shape) values, named
`layer_norm_K.w_0` / `.b_0`; weight_attr / bias_attr False (or elementwise_affine=False,
bias=False) leave them out, and the layer writes the layer_norm form without them.
Embedding: `weight` [num_embeddings, embedding_dim], XavierUniform like every default
weight, named `embedding_K.w_0`; the padding row is zeroed at construction, as Paddle does.
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from tostatic.frontend.nn import functional_nlp as FN
from tostatic.frontend.nn.initializer import Constant
from tostatic.frontend.nn.layer import Layer, _default_dtype_name


class LayerNorm(Layer):
    def __init__(self, normalized_shape: Any, epsilon: float = 1e-05, *,
                 elementwise_affine: bool = True, bias: bool = True, device: Any = None,
                 dtype: Any = None, weight_attr: Any = None, bias_attr: Any = None,
                 name: str | None = None, eps: float | None = None) -> None:
        super().__init__()
        if eps is not None:  # Paddle's alias
            epsilon = eps
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = [normalized_shape]
        self._normalized_shape = list(normalized_shape)
        self._epsilon = epsilon
        self._device = device
        self._dtype = _default_dtype_name() if dtype is None else dtype
        if not elementwise_affine:
            weight_attr = False
            bias_attr = False
        elif not bias:
            bias_attr = False
        self._weight_attr = weight_attr
        self._bias_attr = bias_attr
        param_shape = [int(np.prod(self._normalized_shape))]
        self.weight = (None if weight_attr is False else
                       self.create_parameter(attr=self._weight_attr, dtype=self._dtype,
                                             shape=param_shape,
                                             default_initializer=Constant(1.0),
                                             device=self._device))
        self.bias = (None if bias_attr is False else
                     self.create_parameter(attr=self._bias_attr, dtype=self._dtype,
                                           shape=param_shape, default_initializer=Constant(0.0),
                                           device=self._device, is_bias=True))

    def forward(self, input: Any) -> Any:
        return FN.layer_norm(input, normalized_shape=self._normalized_shape, weight=self.weight,
                             bias=self.bias, epsilon=self._epsilon)

    def extra_repr(self) -> str:
        return f"normalized_shape={self._normalized_shape}, epsilon={self._epsilon}"


class Embedding(Layer):
    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0, *,
                 scale_grad_by_freq: bool = False, sparse: bool = False, _weight: Any = None,
                 _freeze: bool = False, device: Any = None, dtype: Any = None,
                 weight_attr: Any = None, name: str | None = None) -> None:
        super().__init__()
        self._num_embeddings = num_embeddings
        self._embedding_dim = embedding_dim
        self._sparse = sparse
        self._is_distributed = False
        self._max_norm = max_norm
        self._norm_type = norm_type
        self._padding_idx = padding_idx
        self._scale_grad_by_freq = scale_grad_by_freq
        self._device = device
        if self._num_embeddings <= 0:
            raise ValueError("num_embeddings must be gather than 0")
        if self._embedding_dim <= 0:
            raise ValueError("embedding_dim must be gather than 0")
        padding_idx = (-1 if padding_idx is None else
                       padding_idx if padding_idx >= 0 else num_embeddings + padding_idx)
        if padding_idx >= num_embeddings or padding_idx < -num_embeddings:
            raise ValueError(f"padding_idx must be within [-{num_embeddings}, "
                             f"{num_embeddings})")
        self._dtype = _default_dtype_name() if dtype is None else dtype
        self._size = [self._num_embeddings, self._embedding_dim]
        self._weight_attr = weight_attr
        self._remote_prefetch = False
        self._name = name
        if _weight is not None:
            if list(_weight.shape) != [num_embeddings, embedding_dim]:
                raise AssertionError("Shape of weight does not match num_embeddings and "
                                     "embedding_dim")
            self.weight = _weight
            self.weight.stop_gradient = _freeze
        else:
            self.weight = self.create_parameter(attr=self._weight_attr, shape=self._size,
                                                dtype=self._dtype, is_bias=False,
                                                device=self._device)
            if self._weight_attr is None:
                self.weight.stop_gradient = _freeze
        if padding_idx != -1 and hasattr(self.weight, "_data"):  # eager: zero the row
            self.weight._data[padding_idx] = 0.0

    @property
    def padding_idx(self) -> Any:
        return self._padding_idx

    @padding_idx.setter
    def padding_idx(self, value: Any) -> None:
        self._padding_idx = value

    def forward(self, x: Any) -> Any:
        return FN.embedding(x, weight=self.weight, padding_idx=self._padding_idx,
                            max_norm=self._max_norm, norm_type=self._norm_type,
                            sparse=self._sparse, scale_grad_by_freq=self._scale_grad_by_freq,
                            name=self._name)

    def extra_repr(self) -> str:
        main_str = "{_num_embeddings}, {_embedding_dim}"
        if self._padding_idx is not None:
            main_str += ", padding_idx={_padding_idx}"
        main_str += ", sparse={_sparse}"
        main_str += ", scale_grad_by_freq={_scale_grad_by_freq}"
        if self._name is not None:
            main_str += ", name={_name}"
        return main_str.format(**self.__dict__)


class GELU(Layer):
    def __init__(self, approximate: Any = False, name: str | None = None) -> None:
        super().__init__()
        self._approximate = approximate
        self._name = name

    def forward(self, x: Any) -> Any:
        return FN.gelu(x, self._approximate, self._name)

    def extra_repr(self) -> str:
        name_str = f", name={self._name}" if self._name else ""
        return f"approximate={self._approximate}{name_str}"


__all__ = ["Embedding", "GELU", "LayerNorm"]

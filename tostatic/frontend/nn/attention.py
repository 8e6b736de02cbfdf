"""paddle.nn.MultiHeadAttention (Paddle 3.3.1, paddle/nn/layer/transformer.py), op for op.

Sublayers q_proj, k_proj, v_proj, out_proj (Linear, so the state_dict keys are
`q_proj.weight`, `q_proj.bias`, ...). forward(query, key=None, value=None, attn_mask=None,
cache=None): heads split by reshape2 [0, 0, num_heads, head_dim] + transpose2 [0, 2, 1, 3],
q scaled by head_dim ** -0.5 (a scale op), q k^T by matmul_v2 with trans_y, the mask added,
softmax, dropout (when dropout > 0: is_test in eval), weights v, heads merged again and
projected.

attn_mask follows Paddle's _convert_attention_mask: a bool or int mask is 1/True where
attention is allowed and becomes (cast(mask) - 1) * 1e9 (0 kept, -1e9 masked); a float mask
is added as it is (cast to the scores' dtype if it differs). It broadcasts to
[batch, num_heads, query_len, key_len].

cache: MultiHeadAttention.Cache(k, v) holds the keys and values of earlier steps, which the
new ones are appended to (concat on axis 2) and returned as a new Cache; StaticCache(k, v)
holds precomputed keys and values used instead of key and value (cross attention), returned
as given. gen_cache makes either.
"""
from __future__ import annotations

import collections
import copy
from typing import Any

from tostatic.frontend.nn import functional_dropout
from tostatic.frontend.nn.common import Linear
from tostatic.frontend.nn.functional_activation import softmax
from tostatic.frontend.nn.layer import Layer
from tostatic.frontend.nn.param_attr import ParamAttr
from tostatic.frontend.tensor import math
from tostatic.frontend.tensor.manipulation import concat
from tostatic.ir import dtypes
from tostatic.ir.errors import UnsupportedError


def _convert_param_attr_to_list(param_attr: Any, n: int) -> list[Any]:
    """Paddle's rule: a list/tuple gives one attr each; a bool all or none; anything else is
    repeated n times, a name in it suffixed `_0`, `_1`, ..."""
    if isinstance(param_attr, (list, tuple)):
        if len(param_attr) != n:
            raise AssertionError(f"length of param_attr should be {n} when it is a list/tuple")
        attrs = []
        for attr in param_attr:
            if isinstance(attr, bool):
                attrs.append(ParamAttr._to_attr(None) if attr else False)
            else:
                attrs.append(ParamAttr._to_attr(attr))
        return attrs
    if isinstance(param_attr, bool):
        return [ParamAttr._to_attr(None) for _ in range(n)] if param_attr else [False] * n
    attr = ParamAttr._to_attr(param_attr)
    attrs = []
    for i in range(n):
        attr_i = copy.deepcopy(attr)
        if attr.name:
            attr_i.name = attr_i.name + "_" + str(i)
        attrs.append(attr_i)
    return attrs


def _convert_attention_mask(attn_mask: Any, dtype: Any) -> Any:
    """A bool / int mask (True or 1 = attend) as an additive float mask, (mask - 1) * 1e9; a
    float mask cast to `dtype`; None stays None."""
    if attn_mask is not None and attn_mask.dtype != dtype:
        name = dtypes.convert_dtype(attn_mask.dtype).name
        if name == "bool" or "int" in name:
            attn_mask = (math.cast(attn_mask, dtype) - 1.0) * 1e9
        else:
            attn_mask = math.cast(attn_mask, dtype)
    return attn_mask


class MultiHeadAttention(Layer):
    Cache = collections.namedtuple("Cache", ["k", "v"])
    StaticCache = collections.namedtuple("StaticCache", ["k", "v"])

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0,
                 kdim: int | None = None, vdim: int | None = None, need_weights: bool = False,
                 weight_attr: Any = None, bias_attr: Any = None) -> None:
        super().__init__()
        assert embed_dim > 0, ("Expected embed_dim to be greater than 0, but received "
                               f"{embed_dim}")
        assert num_heads > 0, ("Expected num_heads to be greater than 0, but received "
                               f"{num_heads}")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.need_weights = need_weights
        self.head_dim = embed_dim // num_heads
        assert self.head_dim * num_heads == self.embed_dim, \
            "embed_dim must be divisible by num_heads"
        self.q_proj = Linear(embed_dim, embed_dim, weight_attr, bias_attr=bias_attr)
        self.k_proj = Linear(self.kdim, embed_dim, weight_attr, bias_attr=bias_attr)
        self.v_proj = Linear(self.vdim, embed_dim, weight_attr, bias_attr=bias_attr)
        self.out_proj = Linear(embed_dim, embed_dim, weight_attr, bias_attr=bias_attr)

    def _split_heads(self, x: Any) -> Any:
        x = math.reshape(x, [0, 0, self.num_heads, self.head_dim])
        return math.transpose(x, [0, 2, 1, 3])

    def _prepare_qkv(self, query: Any, key: Any, value: Any, cache: Any = None) -> tuple:
        q = self._split_heads(self.q_proj(query))
        if isinstance(cache, self.StaticCache):
            k, v = cache.k, cache.v
        else:
            k, v = self.compute_kv(key, value)
        if isinstance(cache, self.Cache):
            k = concat([cache.k, k], axis=2)
            v = concat([cache.v, v], axis=2)
            cache = self.Cache(k, v)
        return (q, k, v) if cache is None else (q, k, v, cache)

    def compute_kv(self, key: Any, value: Any) -> tuple[Any, Any]:
        """Keys and values projected and split into heads: [batch, num_heads, len, head_dim]."""
        k = self.k_proj(key)
        v = self.v_proj(value)
        k = math.reshape(k, [0, 0, self.num_heads, self.head_dim])
        k = math.transpose(k, [0, 2, 1, 3])
        v = math.reshape(v, [0, 0, self.num_heads, self.head_dim])
        v = math.transpose(v, [0, 2, 1, 3])
        return k, v

    def gen_cache(self, key: Any, value: Any = None, type: Any = Cache) -> Any:
        """StaticCache: compute_kv(key, value). Cache with value None: empty keys and values
        [batch, num_heads, 0, head_dim] (batch from key). Cache otherwise: Cache(key, value)."""
        if type == MultiHeadAttention.StaticCache:
            k, v = self.compute_kv(key, value)
            return self.StaticCache(k, v)
        if value is None:
            batch = key.shape[0]
            if batch < 0:
                raise UnsupportedError("MultiHeadAttention.gen_cache: an empty Cache needs the "
                                       "batch size, which is dynamic here (as in Paddle, "
                                       "which reads it with .item())")
            shape = [batch, self.num_heads, 0, self.head_dim]
            return self.Cache(math.full(shape, 0, key.dtype), math.full(shape, 0, key.dtype))
        return self.Cache(key, value)

    def forward(self, query: Any, key: Any = None, value: Any = None, attn_mask: Any = None,
                cache: Any = None) -> Any:
        key = query if key is None else key
        value = query if value is None else value
        if cache is None:
            q, k, v = self._prepare_qkv(query, key, value, cache)
        else:
            q, k, v, cache = self._prepare_qkv(query, key, value, cache)
        product = math.matmul(q * (self.head_dim ** -0.5), k, transpose_y=True)
        if attn_mask is not None:
            attn_mask = _convert_attention_mask(attn_mask, product.dtype)
            product = product + attn_mask
        weights = softmax(product)
        if self.dropout:
            weights = functional_dropout.dropout(weights, self.dropout, training=self.training,
                                                 mode="upscale_in_train")
        out = math.matmul(weights, v)
        out = math.transpose(out, [0, 2, 1, 3])
        out = math.reshape(out, [0, 0, out.shape[2] * out.shape[3]])
        out = self.out_proj(out)
        outs = [out]
        if self.need_weights:
            outs.append(weights)
        if cache is not None:
            outs.append(cache)
        return out if len(outs) == 1 else tuple(outs)


__all__ = ["MultiHeadAttention"]

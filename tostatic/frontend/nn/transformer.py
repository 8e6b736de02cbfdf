"""paddle.nn TransformerEncoderLayer, TransformerEncoder, TransformerDecoderLayer,
TransformerDecoder and Transformer (Paddle 3.3.1, paddle/nn/layer/transformer.py).

Same sublayers under the same names as Paddle's (self_attn, cross_attn, linear1, linear2,
norm1..3, dropout, dropout1..3; layers.N inside the stacks; encoder / decoder in
Transformer), so state dicts load both ways. normalize_before puts each LayerNorm before its
sublayer (pre-norm) instead of after the residual add. The stacks make layers 1..N-1 anew
from the first layer's constructor arguments (fresh weights), as Paddle does.
"""
from __future__ import annotations

from typing import Any, Callable

from tostatic.frontend.nn import functional_activation as FA
from tostatic.frontend.nn import functional_nlp as FN
from tostatic.frontend.nn.attention import (
    MultiHeadAttention,
    _convert_attention_mask,
    _convert_param_attr_to_list,
)
from tostatic.frontend.nn.common import LayerList, Linear
from tostatic.frontend.nn.common_nlp import LayerNorm
from tostatic.frontend.nn.dropout import Dropout
from tostatic.frontend.nn.layer import Layer, _default_dtype_name
from tostatic.frontend.tensor import math

# what getattr(paddle.nn.functional, activation) finds for a feed-forward block
ACTIVATIONS: dict[str, Callable[..., Any]] = {
    **{name: getattr(FA, name) for name in FA.__all__}, "gelu": FN.gelu,
}


def _activation(name: str) -> Callable[..., Any]:
    """getattr(paddle.nn.functional, name), for the activations a feed-forward block uses."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise AttributeError(f"module 'paddle.nn.functional' has no attribute {name!r} "
                             f"(tostatic's Transformer layers take "
                             f"{', '.join(sorted(ACTIVATIONS))})") from None


def _check_sizes(d_model: int, nhead: int, dim_feedforward: int) -> None:
    assert d_model > 0, f"Expected d_model to be greater than 0, but received {d_model}"
    assert nhead > 0, f"Expected nhead to be greater than 0, but received {nhead}"
    assert dim_feedforward > 0, ("Expected dim_feedforward to be greater than 0, but "
                                 f"received {dim_feedforward}")


class _ResidualBlock(Layer):
    """What Paddle's encoder and decoder layers share: the constructor's bookkeeping (the
    config a stack copies its other layers from), their sublayers in Paddle's creation order
    (attentions, the feed-forward pair, then one LayerNorm and one Dropout per residual
    sublayer), and a residual sublayer with its norm before or after it."""

    def _build(self, config: dict[str, Any], attentions: tuple[str, ...]) -> None:
        self._config = {k: v for k, v in config.items() if k not in ("self", "__class__")}
        c = self._config
        super().__init__()
        _check_sizes(c["d_model"], c["nhead"], c["dim_feedforward"])
        dropout = c["dropout"]
        attn_dropout = dropout if c["attn_dropout"] is None else c["attn_dropout"]
        act_dropout = dropout if c["act_dropout"] is None else c["act_dropout"]
        self.normalize_before = c["normalize_before"]
        n = len(attentions) + 1
        weight_attrs = _convert_param_attr_to_list(c["weight_attr"], n)
        bias_attrs = _convert_param_attr_to_list(c["bias_attr"], n)
        for i, name in enumerate(attentions):
            setattr(self, name, MultiHeadAttention(c["d_model"], c["nhead"],
                                                   dropout=attn_dropout,
                                                   weight_attr=weight_attrs[i],
                                                   bias_attr=bias_attrs[i]))
        d, ff = c["d_model"], c["dim_feedforward"]
        self.linear1 = Linear(d, ff, weight_attrs[-1], bias_attr=bias_attrs[-1])
        self.dropout = Dropout(act_dropout, mode="upscale_in_train")
        self.linear2 = Linear(ff, d, weight_attrs[-1], bias_attr=bias_attrs[-1])
        for i in range(1, n + 1):
            setattr(self, f"norm{i}", LayerNorm(d, c["layer_norm_eps"]))
        for i in range(1, n + 1):
            setattr(self, f"dropout{i}", Dropout(dropout, mode="upscale_in_train"))
        self.activation = _activation(c["activation"])

    def _residual(self, x: Any, k: int, sublayer: Callable[[Any], Any]) -> Any:
        """x + dropout_k(sublayer(x)) with norm_k before the sublayer (pre-norm) or after
        the add; a sublayer may return (value, cache), and the cache is passed through."""
        norm = getattr(self, f"norm{k}")
        residual = x
        if self.normalize_before:
            x = norm(x)
        out = sublayer(x)
        x, extra = out if isinstance(out, tuple) else (out, None)
        x = residual + getattr(self, f"dropout{k}")(x)
        if not self.normalize_before:
            x = norm(x)
        return x, extra

    def _feed_forward(self, x: Any) -> Any:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))


class TransformerEncoderLayer(_ResidualBlock):
    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float = 0.1,
                 activation: str = "relu", attn_dropout: float | None = None,
                 act_dropout: float | None = None, normalize_before: bool = False,
                 weight_attr: Any = None, bias_attr: Any = None,
                 layer_norm_eps: float = 1e-05) -> None:
        self._build(dict(locals()), ("self_attn",))

    def forward(self, src: Any, src_mask: Any = None, cache: Any = None) -> Any:
        src_mask = _convert_attention_mask(src_mask, src.dtype)
        src, incremental_cache = self._residual(
            src, 1, lambda x: self.self_attn(x, x, x, src_mask, cache))
        src, _ = self._residual(src, 2, self._feed_forward)
        return src if cache is None else (src, incremental_cache)

    def gen_cache(self, src: Any) -> Any:
        return self.self_attn.gen_cache(src, type=self.self_attn.Cache)


class _Stack(Layer):
    """TransformerEncoder / TransformerDecoder: num_layers layers made anew from the first
    one's constructor arguments, each fed the last one's output, then an optional norm."""

    def __init__(self, layer: _ResidualBlock, num_layers: int,
                 norm: LayerNorm | None = None) -> None:
        super().__init__()
        self.layers = LayerList([layer if i == 0 else type(layer)(**layer._config)
                                 for i in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def _run(self, output: Any, cache: Any, call: Callable[[Any, Any, Any], Any]) -> Any:
        new_caches = []
        for i, mod in enumerate(self.layers):
            if cache is None:
                output = call(mod, output, None)
            else:
                output, new_cache = call(mod, output, cache[i])
                new_caches.append(new_cache)
        if self.norm is not None:
            output = self.norm(output)
        return output if cache is None else (output, new_caches)


class TransformerEncoder(_Stack):
    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int,
                 norm: LayerNorm | None = None) -> None:
        super().__init__(encoder_layer, num_layers, norm)

    def forward(self, src: Any, src_mask: Any = None, cache: Any = None) -> Any:
        src_mask = _convert_attention_mask(src_mask, src.dtype)
        return self._run(src, cache, lambda mod, x, c: mod(x, src_mask=src_mask) if c is None
                         else mod(x, src_mask=src_mask, cache=c))

    def gen_cache(self, src: Any) -> list[Any]:
        return [layer.gen_cache(src) for layer in self.layers]


class TransformerDecoderLayer(_ResidualBlock):
    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float = 0.1,
                 activation: str = "relu", attn_dropout: float | None = None,
                 act_dropout: float | None = None, normalize_before: bool = False,
                 weight_attr: Any = None, bias_attr: Any = None,
                 layer_norm_eps: float = 1e-05) -> None:
        self._build(dict(locals()), ("self_attn", "cross_attn"))

    def forward(self, tgt: Any, memory: Any, tgt_mask: Any = None, memory_mask: Any = None,
                cache: Any = None) -> Any:
        tgt_mask = _convert_attention_mask(tgt_mask, tgt.dtype)
        memory_mask = _convert_attention_mask(memory_mask, memory.dtype)
        tgt, incremental_cache = self._residual(
            tgt, 1, lambda x: self.self_attn(x, x, x, tgt_mask,
                                             None if cache is None else cache[0]))
        tgt, static_cache = self._residual(
            tgt, 2, lambda x: self.cross_attn(x, memory, memory, memory_mask,
                                              None if cache is None else cache[1]))
        tgt, _ = self._residual(tgt, 3, self._feed_forward)
        return tgt if cache is None else (tgt, (incremental_cache, static_cache))

    def gen_cache(self, memory: Any) -> tuple[Any, Any]:
        incremental_cache = self.self_attn.gen_cache(memory, type=self.self_attn.Cache)
        static_cache = self.cross_attn.gen_cache(memory, memory,
                                                 type=self.cross_attn.StaticCache)
        return incremental_cache, static_cache


class TransformerDecoder(_Stack):
    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int,
                 norm: LayerNorm | None = None) -> None:
        super().__init__(decoder_layer, num_layers, norm)

    def forward(self, tgt: Any, memory: Any, tgt_mask: Any = None, memory_mask: Any = None,
                cache: Any = None) -> Any:
        tgt_mask = _convert_attention_mask(tgt_mask, tgt.dtype)
        memory_mask = _convert_attention_mask(memory_mask, memory.dtype)
        return self._run(tgt, cache, lambda mod, x, c: mod(
            x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask, cache=c))

    def gen_cache(self, memory: Any, do_zip: bool = False) -> list[Any]:
        cache = [layer.gen_cache(memory) for layer in self.layers]
        if do_zip:
            cache = list(zip(*cache))
        return cache


def _split_attrs(attr: Any, what: str) -> tuple[Any, Any]:
    """Transformer's rule for a list of 1, 2 or 3 attrs: (encoder's, decoder's)."""
    if not isinstance(attr, (list, tuple)):
        return attr, attr
    if len(attr) == 1:
        return [attr[0]] * 2, [attr[0]] * 3
    if len(attr) == 2:
        return attr, [attr[0], attr[0], attr[-1]]
    if len(attr) == 3:
        return [attr[0], attr[-1]], attr
    raise AssertionError(f"length of {what} should be 1 or 2 or 3 when it is a list/tuple")


class Transformer(Layer):
    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str = "relu",
                 attn_dropout: float | None = None, act_dropout: float | None = None,
                 normalize_before: bool = False, weight_attr: Any = None, bias_attr: Any = None,
                 custom_encoder: Layer | None = None,
                 custom_decoder: Layer | None = None) -> None:
        super().__init__()
        _check_sizes(d_model, nhead, dim_feedforward)
        encoder_bias_attr, decoder_bias_attr = _split_attrs(bias_attr, "bias_attr")
        encoder_weight_attr, decoder_weight_attr = _split_attrs(weight_attr, "weight_attr")
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            encoder_layer = TransformerEncoderLayer(
                d_model, nhead, dim_feedforward, dropout, activation, attn_dropout,
                act_dropout, normalize_before, encoder_weight_attr, encoder_bias_attr)
            encoder_norm = LayerNorm(d_model)
            self.encoder = TransformerEncoder(encoder_layer, num_encoder_layers, encoder_norm)
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            decoder_layer = TransformerDecoderLayer(
                d_model, nhead, dim_feedforward, dropout, activation, attn_dropout,
                act_dropout, normalize_before, decoder_weight_attr, decoder_bias_attr)
            decoder_norm = LayerNorm(d_model)
            self.decoder = TransformerDecoder(decoder_layer, num_decoder_layers, decoder_norm)
        self.d_model = d_model
        self.nhead = nhead

    def forward(self, src: Any, tgt: Any, src_mask: Any = None, tgt_mask: Any = None,
                memory_mask: Any = None) -> Any:
        src_mask = _convert_attention_mask(src_mask, src.dtype)
        memory = self.encoder(src, src_mask=src_mask)
        tgt_mask = _convert_attention_mask(tgt_mask, tgt.dtype)
        memory_mask = _convert_attention_mask(memory_mask, memory.dtype)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask)

    def generate_square_subsequent_mask(self, length: Any) -> Any:
        """[length, length] float: 0 on and below the diagonal, -inf above."""
        return math.triu(math.full([length, length], float("-inf"), _default_dtype_name()), 1)


__all__ = ["Transformer", "TransformerDecoder", "TransformerDecoderLayer",
           "TransformerEncoder", "TransformerEncoderLayer"]

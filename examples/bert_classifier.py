"""A BERT-class text classifier, exported with a dynamic [batch, seq_len] spec and run natively.

    python examples/bert_classifier.py [OUTDIR] [--layers 4] [--hidden 256] [--heads 4]

The model is BERT's (as PaddleNLP writes it): word, position and token-type embeddings summed
and layer-normalised, a stack of post-norm TransformerEncoderLayers with GELU, a pooler
(Linear + tanh on the first token) and a classification head. Padding (id 0) is masked out of
attention with an additive float mask. Position ids are computed in the model (cumsum of
ones), so the exported program takes only input_ids and token_type_ids, both int64
[batch, seq_len] with batch and seq_len dynamic.

The script builds it with tostatic, exports it with jit.save (.pdmodel / .pdiparams /
.pdiparams.info), loads the files alone with tostatic.inference and checks, at two
sequence lengths from the one export, that the native run gives the eager outputs.

The classes are written against a `paddle` module passed in (`P`), so the tests build the
very same architecture with real Paddle (tests/test_transformer_interop.py) and the
benchmark runs it in Paddle Inference and onnxruntime (benchmarks/bert.py).
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class BertConfig:
    vocab_size: int = 1000
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    num_labels: int = 2
    seed: int = 2024


def BertForSequenceClassification(P: Any, config: BertConfig) -> Any:
    """The model, built with the library `P` (tostatic or paddle), in eval mode. Its weights
    are drawn from numpy with config.seed (normal(0, initializer_range) for weights and
    embeddings, zeros for biases, ones for LayerNorm scales), so both libraries build the
    same numbers."""
    nn = P.nn

    class BertEmbeddings(nn.Layer):
        def __init__(self):
            super().__init__()
            self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size,
                                                padding_idx=config.pad_token_id)
            self.position_embeddings = nn.Embedding(config.max_position_embeddings,
                                                    config.hidden_size)
            self.token_type_embeddings = nn.Embedding(config.type_vocab_size,
                                                      config.hidden_size)
            self.layer_norm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
            self.dropout = nn.Dropout(config.hidden_dropout_prob)

        def forward(self, input_ids, token_type_ids):
            ones = P.ones_like(input_ids)
            position_ids = P.cumsum(ones, axis=-1) - ones  # 0, 1, ..., seq_len - 1
            embeddings = (self.word_embeddings(input_ids)
                          + self.position_embeddings(position_ids)
                          + self.token_type_embeddings(token_type_ids))
            return self.dropout(self.layer_norm(embeddings))

    class BertPooler(nn.Layer):
        def __init__(self):
            super().__init__()
            self.dense = nn.Linear(config.hidden_size, config.hidden_size)
            self.activation = nn.Tanh()

        def forward(self, hidden_states):
            return self.activation(self.dense(hidden_states[:, 0]))

    class BertModel(nn.Layer):
        def __init__(self):
            super().__init__()
            self.embeddings = BertEmbeddings()
            layer = nn.TransformerEncoderLayer(
                config.hidden_size, config.num_attention_heads, config.intermediate_size,
                dropout=config.hidden_dropout_prob, activation=config.hidden_act,
                attn_dropout=config.attention_probs_dropout_prob, act_dropout=0.0,
                layer_norm_eps=config.layer_norm_eps)
            self.encoder = nn.TransformerEncoder(layer, config.num_hidden_layers)
            self.pooler = BertPooler()

        def forward(self, input_ids, token_type_ids):
            padding = P.equal(input_ids, P.full_like(input_ids, config.pad_token_id))
            attention_mask = P.unsqueeze(P.cast(padding, "float32") * -1e4, axis=[1, 2])
            sequence_output = self.encoder(self.embeddings(input_ids, token_type_ids),
                                           attention_mask)
            return sequence_output, self.pooler(sequence_output)

    class Classifier(nn.Layer):
        def __init__(self):
            super().__init__()
            self.bert = BertModel()
            self.dropout = nn.Dropout(config.hidden_dropout_prob)
            self.classifier = nn.Linear(config.hidden_size, config.num_labels)

        def forward(self, input_ids, token_type_ids):
            _, pooled = self.bert(input_ids, token_type_ids)
            return self.classifier(self.dropout(pooled))

    model = Classifier()
    rng = np.random.default_rng(config.seed)
    for key, param in model.state_dict().items():
        shape = list(param.shape)
        if "norm" in key:
            value = np.ones(shape) if key.endswith("weight") else np.zeros(shape)
        elif key.endswith("bias"):
            value = np.zeros(shape)
        else:
            value = rng.normal(0.0, config.initializer_range, shape)
            if key.endswith("word_embeddings.weight"):
                value[config.pad_token_id] = 0.0
        param.set_value(value.astype(np.float32))
    model.eval()
    return model


def input_spec(P: Any) -> list[Any]:
    return [P.static.InputSpec([None, None], "int64", "input_ids"),
            P.static.InputSpec([None, None], "int64", "token_type_ids")]


def example_inputs(batch: int, seq_len: int, vocab_size: int, seed: int = 0) -> dict:
    """Token ids in [1, vocab) with the last quarter of every other sample padding (0), and
    two segments (token type 0, then 1)."""
    rng = np.random.default_rng(seed)
    input_ids = rng.integers(1, vocab_size, (batch, seq_len)).astype(np.int64)
    input_ids[1::2, seq_len - max(1, seq_len // 4):] = 0
    token_type_ids = np.zeros((batch, seq_len), np.int64)
    token_type_ids[:, seq_len // 2:] = 1
    return {"input_ids": input_ids, "token_type_ids": token_type_ids}


def main(argv: list[str]) -> None:
    import tostatic as paddle

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", default="out")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    args = parser.parse_args(argv)
    config = BertConfig(hidden_size=args.hidden, num_hidden_layers=args.layers,
                        num_attention_heads=args.heads, intermediate_size=4 * args.hidden)
    model = BertForSequenceClassification(paddle, config)
    os.makedirs(args.outdir, exist_ok=True)
    prefix = os.path.join(args.outdir, "bert_classifier")
    paddle.jit.save(model, prefix, input_spec=input_spec(paddle))
    for suffix in (".pdmodel", ".pdiparams", ".pdiparams.info"):
        print(f"wrote {prefix + suffix} ({os.path.getsize(prefix + suffix)} bytes)")

    predictor = paddle.inference.create_predictor(
        paddle.inference.Config(prefix + ".pdmodel", prefix + ".pdiparams"))
    print("inputs:", predictor.get_input_names(), "outputs:", predictor.get_output_names())
    for batch, seq_len in ((2, 16), (3, 41)):
        feeds = example_inputs(batch, seq_len, config.vocab_size, seed=seq_len)
        eager = model(*[paddle.to_tensor(v) for v in feeds.values()]).numpy()
        for name, value in feeds.items():
            handle = predictor.get_input_handle(name)
            handle.reshape(value.shape)
            handle.copy_from_cpu(value)
        predictor.run()
        logits = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
        np.testing.assert_allclose(logits, eager, rtol=1e-4, atol=1e-5)
        print(f"batch {batch}, seq_len {seq_len}: logits {logits.shape}, max |native - eager| "
              f"= {np.abs(logits - eager).max():.2e}")
    print("native run of the exported BERT classifier matches eager mode at two sequence "
          "lengths: OK")


if __name__ == "__main__":
    main(sys.argv[1:])

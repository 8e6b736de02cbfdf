"""Paddle 3.x PIR models (`.json` + `.pdiparams`, what Paddle 3.3.1's jit.save writes by
default), made by real Paddle (tests/pir_models.py, once a session):

- tostatic.jit.load and tostatic.inference run them with Paddle Inference's outputs;
- the format is told by content, not by name; malformed files fail naming the file and the
  field or op.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tostatic
from tostatic.ir.errors import UnsupportedError
from tostatic.serialization import FormatError

pytestmark = pytest.mark.interop

HERE = Path(__file__).parent
MODELS = ["mlp", "small_cnn", "control_flow", "nested_control_flow", "nlp_ops", "vision_ops",
          "resnet18"]
TOL = dict(rtol=2e-4, atol=2e-5)


def _paddle_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("FLAGS_enable_pir_api", None)  # Paddle's default: PIR, .json
    env.pop("OPENBLAS_CORETYPE", None)
    return env


@pytest.fixture(scope="session")
def pir_dir(tmp_path_factory):
    """Every model of tests/pir_models.py, written by real Paddle in a process of its own."""
    pytest.importorskip("paddle")
    out = tmp_path_factory.mktemp("pir_models")
    r = subprocess.run([sys.executable, str(HERE / "pir_models.py"), str(out)],
                       env=_paddle_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    return out


@pytest.fixture(scope="session")
def index(pir_dir):
    return json.loads((pir_dir / "index.json").read_text())


def _io(pir_dir, index, name):
    z = np.load(pir_dir / f"{name}.npz")
    meta = index[name]
    feeds = {n: z[n] for n in meta["feeds"]}
    want = [z[f"out{i}"] for i in range(len(meta["fetches"]))]
    return feeds, want


def _close(got, want):
    got, want = list(got), list(want)
    assert want and len(got) == len(want), f"{len(got)} outputs, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        g = np.asarray(g)
        assert g.shape == w.shape, f"output {i}: shape {g.shape}, expected {w.shape}"
        assert g.dtype == w.dtype, f"output {i}: dtype {g.dtype}, expected {w.dtype}"
        np.testing.assert_allclose(g, w, err_msg=f"output {i}", **TOL)


# --- running Paddle's .json in tostatic ------------------------------------------------------

@pytest.mark.parametrize("name", MODELS)
def test_jit_load_runs_paddle_json_with_paddle_inference_outputs(pir_dir, index, name):
    feeds, want = _io(pir_dir, index, name)
    layer = tostatic.jit.load(str(pir_dir / name))
    outs = layer(*feeds.values())
    outs = outs if isinstance(outs, list) else [outs]
    _close([o.numpy() for o in outs], want)


@pytest.mark.parametrize("name", MODELS)
def test_inference_config_runs_paddle_json(pir_dir, index, name):
    feeds, want = _io(pir_dir, index, name)
    cfg = tostatic.inference.Config(str(pir_dir / f"{name}.json"),
                                    str(pir_dir / f"{name}.pdiparams"))
    pred = tostatic.inference.create_predictor(cfg)
    assert pred.get_input_names() == index[name]["feeds"]
    assert pred.get_output_names() == index[name]["fetches"]  # fetch_name_0, ... as Paddle
    for n, a in feeds.items():
        h = pred.get_input_handle(n)
        h.reshape(a.shape)
        h.copy_from_cpu(a)
    pred.run()
    _close([pred.get_output_handle(n).copy_to_cpu() for n in pred.get_output_names()], want)


def test_prefix_finds_the_json(pir_dir, index):
    """Config(prefix) and jit.load(prefix) find prefix.json when no .pdmodel exists."""
    feeds, want = _io(pir_dir, index, "mlp")
    pred = tostatic.inference.create_predictor(tostatic.inference.Config(str(pir_dir / "mlp")))
    _close(pred.run(list(feeds.values())), want)


def test_parameters_keep_their_flags(pir_dir):
    layer = tostatic.jit.load(str(pir_dir / "small_cnn"))
    info = layer._info
    assert info["conv2d_0.w_0"] == {"structured_name": "conv2d_0.w_0", "stop_gradient": False,
                                    "trainable": True}
    # batch norm's running mean: a buffer, not a trainable parameter
    mean = next(n for n in info if n.startswith("batch_norm") and n.endswith("w_1"))
    assert info[mean]["stop_gradient"] is True and "trainable" not in info[mean]
    assert set(layer.state_dict()) == set(info)


# --- the format is the content's, not the name's ---------------------------------------------

def test_json_named_pdmodel_is_read_as_pir(pir_dir, index, tmp_path):
    feeds, want = _io(pir_dir, index, "control_flow")
    shutil.copy(pir_dir / "control_flow.json", tmp_path / "m.pdmodel")
    shutil.copy(pir_dir / "control_flow.pdiparams", tmp_path / "m.pdiparams")
    pred = tostatic.inference.create_predictor(
        tostatic.inference.Config(str(tmp_path / "m.pdmodel"), str(tmp_path / "m.pdiparams")))
    assert pred._model.source_format == "pir-json"
    _close(pred.run(list(feeds.values())), want)


# --- malformed files ---------------------------------------------------------------------------

def _broken(pir_dir, tmp_path, edit) -> Path:
    doc = json.loads((pir_dir / "mlp.json").read_text())
    edit(doc)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc))
    shutil.copy(pir_dir / "mlp.pdiparams", tmp_path / "broken.pdiparams")
    return path


def _ops(doc):
    return doc["program"]["regions"][0]["blocks"][0]["ops"]


def test_truncated_json_names_file_line_and_offset(pir_dir, tmp_path):
    text = (pir_dir / "mlp.json").read_bytes()
    path = tmp_path / "cut.json"
    path.write_bytes(text[: len(text) // 2])
    with pytest.raises(FormatError) as e:
        tostatic.inference.create_predictor(tostatic.inference.Config(str(path)))
    msg = str(e.value)
    assert str(path) in msg and "not valid JSON" in msg and "truncated" in msg
    assert e.value.offset is not None and e.value.offset <= len(text) // 2


def test_wrong_magic_names_the_field(pir_dir, tmp_path):
    _broken(pir_dir, tmp_path, lambda d: d["base_code"].update(magic="onnx"))
    with pytest.raises(FormatError, match=r"broken\.json: base_code\.magic: expected \"pir\""):
        tostatic.jit.load(str(tmp_path / "broken"))


def test_bad_field_names_its_path(pir_dir, tmp_path):
    found = {}

    def edit(d):
        i = next(k for k, o in enumerate(_ops(d)) if o["#"] == "1.matmul")
        _ops(d)[i]["O"][0]["TT"]["D"][1] = "wide"
        found["i"] = i
    path = _broken(pir_dir, tmp_path, edit)
    with pytest.raises(FormatError) as e:
        tostatic.inference.create_predictor(tostatic.inference.Config(str(path)))
    assert (f"broken.json: program.regions[0].blocks[0].ops[{found['i']}].O[0].TT.D[1]: "
            f"expected an array, found the string 'wide'") in str(e.value)


def test_unknown_op_names_the_op_and_its_position(pir_dir, tmp_path):
    found = {}

    def edit(d):
        i = next(k for k, o in enumerate(_ops(d)) if o["#"] == "1.relu")
        _ops(d)[i]["#"] = "1.frobnicate"
        found["i"] = i
    path = _broken(pir_dir, tmp_path, edit)
    with pytest.raises(UnsupportedError) as e:
        tostatic.jit.load(str(path)[:-5])
    msg = str(e.value)
    assert "broken.json" in msg and "pd_op.frobnicate" in msg
    assert f"program.regions[0].blocks[0].ops[{found['i']}]" in msg


def test_unsupported_attribute_is_named(pir_dir, tmp_path):
    def edit(d):
        op = next(o for o in _ops(d) if o["#"] == "1.matmul")
        op["A"].append({"N": "frobnicate", "AT": {"#": "0.a_bool", "D": True}})
    _broken(pir_dir, tmp_path, edit)
    with pytest.raises(UnsupportedError, match=r"pd_op\.matmul.*frobnicate"):
        tostatic.jit.load(str(tmp_path / "broken"))


def test_unknown_dialect_and_dangling_value(pir_dir, tmp_path):
    _broken(pir_dir, tmp_path, lambda d: _ops(d)[-1].update({"#": "9.fetch"}))
    with pytest.raises(FormatError, match=r"ops\[\d+\]\.#: unknown dialect id '9'"):
        tostatic.jit.load(str(tmp_path / "broken"))

    def dangle(d):
        _ops(d)[-1]["I"][0]["%"] = 999
    _broken(pir_dir, tmp_path, dangle)
    with pytest.raises(ValueError, match=r"operand 0 reads value %999"):
        tostatic.jit.load(str(tmp_path / "broken"))


def test_missing_params_file_is_named(pir_dir, tmp_path):
    shutil.copy(pir_dir / "mlp.json", tmp_path / "m.json")
    with pytest.raises(FileNotFoundError, match=r"m\.json has 4 parameters .*m\.pdiparams"):
        tostatic.jit.load(str(tmp_path / "m"))
